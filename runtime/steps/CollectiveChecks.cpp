// Checks of the multi-rank steps: COLLECTIVE (all-reduce sum, all-gather),
// SEND and RECV, and their group and peer attributes.
#include "runtime/steps/StepChecks.h"

#include <set>

namespace weft::runtime::steps {

/// The group attribute: non-empty, distinct, non-negative ranks; with a
/// known place, within its world and holding its rank.
Result<std::vector<uint32_t>> groupAttr(const StepArgs &args) {
  Shape list = toShape(args.step.collective().group());
  std::set<int64_t> seen;
  for (int64_t r : list)
    if (r < 0 || !seen.insert(r).second)
      return errorStatus("group " + shapeString(list) +
                         " holds a negative or repeated rank");
  if (list.empty())
    return errorStatus("group is empty");
  if (args.place) {
    for (int64_t r : list)
      if (r >= args.place->worldSize)
        return errorStatus("group " + shapeString(list) + " holds rank " +
                           std::to_string(r) + ", outside the world of " +
                           std::to_string(args.place->worldSize));
    if (!seen.count(args.place->rank))
      return errorStatus("group " + shapeString(list) +
                         " does not hold this rank (" +
                         std::to_string(args.place->rank) + ")");
  }
  return std::vector<uint32_t>(list.begin(), list.end());
}

/// The peer attribute of SEND / RECV: another rank of the world.
Result<uint32_t> peerAttr(const StepArgs &args) {
  const artifact::SendRecvAttrs &attrs = args.step.send_recv();
  int64_t peer = attrs.peer();
  if (peer < 0 ||
      (args.place && (peer >= args.place->worldSize ||
                      peer == static_cast<int64_t>(args.place->rank))))
    return errorStatus(
        "peer " + std::to_string(peer) + " is not another rank of the world" +
        (args.place ? " of " + std::to_string(args.place->worldSize)
                    : std::string()));
  if (attrs.tag() < 0)
    return errorStatus("tag " + std::to_string(attrs.tag()) + " is negative");
  return static_cast<uint32_t>(peer);
}

//===----------------------------------------------------------------------===//
// COLLECTIVE
//===----------------------------------------------------------------------===//

Status checkCollective(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 1); !s.ok())
    return s;
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  if (Status s = expectSameDType(in.dtype, out.dtype, "input and output");
      !s.ok())
    return s;
  auto group = groupAttr(args);
  if (!group.ok())
    return group.status();
  int64_t op = args.step.collective().op();
  if (op == kAllReduce)
    return expectShape(out, in.shape);
  if (op != kAllGather)
    return errorStatus("op " + std::to_string(op) +
                       " is not 0 (all-reduce sum) or 1 (all-gather)");
  auto axis = normalizeAxis(args.step.collective().axis(), in.rank());
  if (!axis.ok())
    return axis.status();
  Shape expected = in.shape;
  expected[*axis] *= static_cast<int64_t>(group->size());
  return expectShape(out, expected);
}

//===----------------------------------------------------------------------===//
// SEND and RECV
//===----------------------------------------------------------------------===//

Status checkSend(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 0); !s.ok())
    return s;
  return peerAttr(args).status();
}

Status checkRecv(const StepArgs &args) {
  if (Status s = expectArity(args, 0, 1); !s.ok())
    return s;
  return peerAttr(args).status();
}

} // namespace weft::runtime::steps
