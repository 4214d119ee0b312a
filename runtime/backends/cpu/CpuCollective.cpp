// CPU kernels of multi-rank plans: COLLECTIVE (all-reduce sum, all-gather),
// SEND and RECV, over the step's transport.
#include "runtime/backends/cpu/CpuSupport.h"

#include "runtime/comm/Transport.h"
#include "runtime/support/AlignedBuffer.h"
#include "runtime/support/Float16.h"

#include <cstring>
#include <set>

namespace weft::runtime::cpu {

namespace {

Status needTransport(const StepArgs &args) {
  if (args.comm)
    return okStatus();
  return errorStatus(artifact::Step::Kind_Name(args.step.kind()) +
                     " needs other ranks, and this rank runs alone (no "
                     "transport)");
}

} // namespace

//===----------------------------------------------------------------------===//
// COLLECTIVE
//===----------------------------------------------------------------------===//

Status runCollective(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  comm::Group group = *steps::groupAttr(args);
  if (args.step.collective().op() == steps::kAllReduce)
    return args.comm->allReduceSum(group, in.dtype, in.data, out.data,
                                   in.numElements());
  int64_t axis = *normalizeAxis(args.step.collective().axis(), in.rank());
  int64_t outer = product(in.shape, 0, axis);
  if (outer <= 1)
    return args.comm->allGather(group, in.data, in.bytes(), out.data);
  // Gathered rank by rank, then interleaved along the axis.
  AlignedBuffer gathered(in.bytes() * group.size());
  if (Status s =
          args.comm->allGather(group, in.data, in.bytes(), gathered.data());
      !s.ok())
    return s;
  uint64_t chunk = in.bytes() / outer;
  std::byte *dst = out.data;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t g = 0; g < group.size(); ++g, dst += chunk)
      std::memcpy(dst, gathered.data() + g * in.bytes() + o * chunk, chunk);
  return okStatus();
}

//===----------------------------------------------------------------------===//
// SEND and RECV
//===----------------------------------------------------------------------===//

Status runSend(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const InTensor &in = args.inputs[0];
  return args.comm->send(*steps::peerAttr(args), args.step.send_recv().tag(),
                         in.data, in.bytes());
}

Status runRecv(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const OutTensor &out = args.outputs[0];
  return args.comm->recv(*steps::peerAttr(args), args.step.send_recv().tag(),
                         out.data, out.bytes());
}

} // namespace weft::runtime::cpu
