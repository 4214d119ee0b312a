// CPU kernels of REDUCE (sum, mean, max, min, prod) and CUMSUM.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace weft::runtime::cpu {

using enum steps::ReduceKind;

namespace {

/// Strides mapping each input dim to the output element (0 when reduced).
Shape reduceStrides(const ReducePlan &p, const Shape &in) {
  Shape full;
  for (size_t d = 0; d < in.size(); ++d)
    full.push_back(p.reduced[d] ? 1 : in[d]);
  Shape strides = contiguousStrides(full);
  for (size_t d = 0; d < in.size(); ++d)
    if (p.reduced[d])
      strides[d] = 0;
  return strides;
}

template <typename T> T identity(ReduceKind kind) {
  switch (kind) {
  case Max:
    return std::numeric_limits<T>::has_infinity
               ? -std::numeric_limits<T>::infinity()
               : std::numeric_limits<T>::lowest();
  case Min:
    return std::numeric_limits<T>::has_infinity
               ? std::numeric_limits<T>::infinity()
               : std::numeric_limits<T>::max();
  case Prod:
    return 1;
  default:
    return 0;
  }
}

double combine(ReduceKind kind, double acc, double v) {
  if (std::isnan(acc) || std::isnan(v)) // NaN propagates, as in numpy
    return std::isnan(acc) ? acc : v;
  switch (kind) {
  case Max:
    return v > acc ? v : acc;
  case Min:
    return v < acc ? v : acc;
  case Prod:
    return acc * v;
  default:
    return acc + v;
  }
}

/// Integers (int64, or uint64 for u64 tensors): ordered in their own type,
/// summed and multiplied modulo 2^64.
template <typename T>
  requires std::is_integral_v<T>
T combine(ReduceKind kind, T acc, T v) {
  switch (kind) {
  case Max:
    return v > acc ? v : acc;
  case Min:
    return v < acc ? v : acc;
  case Prod:
    return static_cast<T>(static_cast<uint64_t>(acc) *
                          static_cast<uint64_t>(v));
  default:
    return static_cast<T>(static_cast<uint64_t>(acc) +
                          static_cast<uint64_t>(v));
  }
}

/// Accumulates every input element into its output slot, then stores.
template <typename Acc, typename Load>
void reduceInto(const ReducePlan &p, const InTensor &in, const OutTensor &out,
                Load load) {
  int64_t outN = out.numElements(), inN = in.numElements();
  std::vector<Acc> acc(outN, identity<Acc>(p.kind));
  StridedWalker walker(in.shape, {reduceStrides(p, in.shape)});
  for (int64_t i = 0; i < inN; ++i, walker.next())
    acc[walker.offset(0)] = combine(p.kind, acc[walker.offset(0)], load(i));
  int64_t count = outN ? inN / outN : 0;
  for (int64_t o = 0; o < outN; ++o) {
    if (p.kind == Mean)
      storeDouble(out.dtype, out.data, o,
                  static_cast<double>(acc[o]) / static_cast<double>(count));
    else if constexpr (std::is_same_v<Acc, double>)
      storeDouble(out.dtype, out.data, o, acc[o]);
    else
      storeInt(out.dtype, out.data, o, static_cast<int64_t>(acc[o]));
  }
}

} // namespace

Status runReduce(const StepArgs &args) {
  ReducePlan p = *reducePlan(args);
  const InTensor &in = args.inputs[0];
  if (isFloatDType(in.dtype))
    reduceInto<double>(p, in, args.outputs[0], [&](int64_t i) {
      return loadDouble(in.dtype, in.data, i);
    });
  else if (in.dtype == DType::U64)
    reduceInto<uint64_t>(p, in, args.outputs[0], [&](int64_t i) {
      return static_cast<uint64_t>(loadInt(in.dtype, in.data, i));
    });
  else
    reduceInto<int64_t>(p, in, args.outputs[0], [&](int64_t i) {
      return loadInt(in.dtype, in.data, i);
    });
  return okStatus();
}

//===----------------------------------------------------------------------===//
// CUMSUM
//===----------------------------------------------------------------------===//

namespace {

/// Cumulative sums along one axis of `len` elements `inner` apart.
template <typename Acc, typename Load, typename Store>
void cumsumLines(int64_t lines, int64_t len, int64_t inner, bool exclusive,
                 bool reverse, Load load, Store store) {
  for (int64_t l = 0; l < lines; ++l) {
    int64_t base = (l / inner) * len * inner + l % inner;
    Acc acc = 0;
    for (int64_t step = 0; step < len; ++step) {
      int64_t i = base + (reverse ? len - 1 - step : step) * inner;
      Acc v = load(i);
      if (!exclusive)
        acc += v;
      store(i, acc);
      if (exclusive)
        acc += v;
    }
  }
}

} // namespace

Status runCumsum(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  int64_t axis = *normalizeAxis(args.step.cumsum().axis(), in.rank());
  bool exclusive = args.step.cumsum().exclusive();
  bool reverse = args.step.cumsum().reverse();
  int64_t len = in.shape[axis];
  int64_t inner = product(in.shape, axis + 1, in.shape.size());
  int64_t lines = len && inner ? in.numElements() / len : 0;
  if (isFloatDType(in.dtype)) {
    cumsumLines<double>(
        lines, len, inner, exclusive, reverse,
        [&](int64_t i) { return loadDouble(in.dtype, in.data, i); },
        [&](int64_t i, double v) { storeDouble(out.dtype, out.data, i, v); });
    return okStatus();
  }
  cumsumLines<int64_t>(
      lines, len, inner, exclusive, reverse,
      [&](int64_t i) { return loadInt(in.dtype, in.data, i); },
      [&](int64_t i, int64_t v) { storeInt(out.dtype, out.data, i, v); });
  return okStatus();
}

} // namespace weft::runtime::cpu
