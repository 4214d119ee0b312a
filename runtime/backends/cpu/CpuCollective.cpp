// CPU kernels of multi-rank plans: COLLECTIVE (all-reduce sum, all-gather),
// SEND and RECV, over the step's transport; and the element sums the
// transports use.
#include "runtime/backends/cpu/CpuSupport.h"

#include "runtime/comm/Transport.h"
#include "runtime/support/AlignedBuffer.h"
#include "runtime/support/Float16.h"

#include <cstring>
#include <set>

namespace weft::runtime::cpu {

namespace {

constexpr int64_t kAllReduce = 0, kAllGather = 1;

template <typename T>
void sumAs(std::span<const std::byte *const> parts, std::byte *out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T acc;
    std::memcpy(&acc, parts[0] + i * sizeof(T), sizeof(T));
    for (size_t p = 1; p < parts.size(); ++p) {
      T v;
      std::memcpy(&v, parts[p] + i * sizeof(T), sizeof(T));
      acc += v;
    }
    std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
  }
}

/// f16 / bf16: summed in f32, rounded once.
template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void sumHalf(std::span<const std::byte *const> parts, std::byte *out,
             int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, parts[0] + 2 * i, 2);
    float acc = Load(h);
    for (size_t p = 1; p < parts.size(); ++p) {
      std::memcpy(&h, parts[p] + 2 * i, 2);
      acc += Load(h);
    }
    h = Store(acc);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

/// The group attribute: non-empty, distinct, non-negative ranks; with a
/// transport, within its world and holding its rank.
Result<comm::Group> groupAttr(const StepArgs &args) {
  auto list = listAttr(args.step, "group");
  if (!list.ok())
    return list.status();
  std::set<int64_t> seen;
  for (int64_t r : *list)
    if (r < 0 || !seen.insert(r).second)
      return errorStatus("group " + shapeString(*list) +
                         " holds a negative or repeated rank");
  if (list->empty())
    return errorStatus("group is empty");
  if (args.comm) {
    for (int64_t r : *list)
      if (r >= args.comm->worldSize())
        return errorStatus("group " + shapeString(*list) + " holds rank " +
                           std::to_string(r) + ", outside the world of " +
                           std::to_string(args.comm->worldSize()));
    if (!seen.count(args.comm->rank()))
      return errorStatus("group " + shapeString(*list) +
                         " does not hold this rank (" +
                         std::to_string(args.comm->rank()) + ")");
  }
  return comm::Group(list->begin(), list->end());
}

/// The peer attribute of SEND / RECV: another rank of the world.
Result<uint32_t> peerAttr(const StepArgs &args) {
  auto peer = intAttr(args.step, "peer");
  if (!peer.ok())
    return peer.status();
  if (*peer < 0 ||
      (args.comm && (*peer >= args.comm->worldSize() ||
                     *peer == static_cast<int64_t>(args.comm->rank()))))
    return errorStatus(
        "peer " + std::to_string(*peer) + " is not another rank of the world" +
        (args.comm ? " of " + std::to_string(args.comm->worldSize())
                   : std::string()));
  if (intAttrOr(args.step, "tag", 0) < 0)
    return errorStatus("tag " + std::to_string(intAttrOr(args.step, "tag", 0)) +
                       " is negative");
  return static_cast<uint32_t>(*peer);
}

Status needTransport(const StepArgs &args) {
  if (args.comm)
    return okStatus();
  return errorStatus(artifact::Step::Kind_Name(args.step.kind()) +
                     " needs other ranks, and this rank runs alone (no "
                     "transport)");
}

} // namespace

void sumElements(DType dtype, std::span<const std::byte *const> parts,
                 std::byte *out, int64_t n) {
  if (parts.empty() || n <= 0)
    return;
  switch (dtype) {
  case DType::F32:
    return sumAs<float>(parts, out, n);
  case DType::F64:
    return sumAs<double>(parts, out, n);
  case DType::F16:
    return sumHalf<halfToFloat, floatToHalf>(parts, out, n);
  case DType::BF16:
    return sumHalf<bf16ToFloat, floatToBf16>(parts, out, n);
  case DType::BOOL:
    for (int64_t i = 0; i < n; ++i) {
      bool any = false;
      for (const std::byte *p : parts)
        any |= p[i] != std::byte{0};
      out[i] = std::byte{any};
    }
    return;
  default:
    // Integers: summed modulo 2^64, then wrapped to the width.
    for (int64_t i = 0; i < n; ++i) {
      uint64_t acc = 0;
      for (const std::byte *p : parts)
        acc += static_cast<uint64_t>(loadInt(dtype, p, i));
      storeInt(dtype, out, i, static_cast<int64_t>(acc));
    }
  }
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
  auto op = intAttr(args.step, "op");
  if (!op.ok())
    return op.status();
  if (*op == kAllReduce)
    return expectShape(out, in.shape);
  if (*op != kAllGather)
    return errorStatus("op " + std::to_string(*op) +
                       " is not 0 (all-reduce sum) or 1 (all-gather)");
  auto axisAttr = intAttr(args.step, "axis");
  if (!axisAttr.ok())
    return axisAttr.status();
  auto axis = normalizeAxis(*axisAttr, in.rank());
  if (!axis.ok())
    return axis.status();
  Shape expected = in.shape;
  expected[*axis] *= static_cast<int64_t>(group->size());
  return expectShape(out, expected);
}

Status runCollective(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  comm::Group group = *groupAttr(args);
  if (*intAttr(args.step, "op") == kAllReduce)
    return args.comm->allReduceSum(group, in.dtype, in.data, out.data,
                                   in.numElements());
  int64_t axis = *normalizeAxis(*intAttr(args.step, "axis"), in.rank());
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

Status checkSend(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 0); !s.ok())
    return s;
  return peerAttr(args).status();
}

Status runSend(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const InTensor &in = args.inputs[0];
  return args.comm->send(*peerAttr(args), intAttrOr(args.step, "tag", 0),
                         in.data, in.bytes());
}

Status checkRecv(const StepArgs &args) {
  if (Status s = expectArity(args, 0, 1); !s.ok())
    return s;
  return peerAttr(args).status();
}

Status runRecv(const StepArgs &args) {
  if (Status s = needTransport(args); !s.ok())
    return s;
  const OutTensor &out = args.outputs[0];
  return args.comm->recv(*peerAttr(args), intAttrOr(args.step, "tag", 0),
                         out.data, out.bytes());
}

} // namespace weft::runtime::cpu
