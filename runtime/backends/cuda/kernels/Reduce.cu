// REDUCE and CUMSUM: floats accumulate in double, integers (and BOOL) in
// int64 wrapped to their width, like the CPU kernels.
#include "runtime/backends/cuda/kernels/Support.cuh"

namespace weft::runtime::cuda::kernels {

namespace {

__device__ __forceinline__ double combine(int op, double acc, double v) {
  if (isnan(acc) || isnan(v)) // NaN propagates, as in numpy
    return isnan(acc) ? acc : v;
  switch (op) {
  case kMax:
    return v > acc ? v : acc;
  case kMin:
    return v < acc ? v : acc;
  case kProd:
    return acc * v;
  default:
    return acc + v;
  }
}

__device__ __forceinline__ int64_t combine(int op, int64_t acc, int64_t v) {
  switch (op) {
  case kMax:
    return v > acc ? v : acc;
  case kMin:
    return v < acc ? v : acc;
  case kProd:
    return static_cast<int64_t>(static_cast<uint64_t>(acc) *
                                static_cast<uint64_t>(v));
  default:
    return static_cast<int64_t>(static_cast<uint64_t>(acc) +
                                static_cast<uint64_t>(v));
  }
}

__device__ __forceinline__ double identityDouble(int op) {
  return op == kMax ? -INFINITY
                    : (op == kMin ? INFINITY : (op == kProd ? 1 : 0));
}

__device__ __forceinline__ int64_t identityInt(int op) {
  return op == kMax ? INT64_MIN
                    : (op == kMin ? INT64_MAX : (op == kProd ? 1 : 0));
}

/// The integer a double converts to: truncated, NaN 0, saturated.
__device__ __forceinline__ int64_t doubleToInt(double v) {
  if (isnan(v))
    return 0;
  if (v >= 9223372036854775807.0)
    return INT64_MAX;
  if (v <= -9223372036854775808.0)
    return INT64_MIN;
  return static_cast<int64_t>(v);
}

__device__ __forceinline__ void storeDouble(void *p, int64_t i, int type,
                                            double v) {
  if (type == kF64)
    static_cast<double *>(p)[i] = v;
  else if (isFloatType(type))
    storeFloat(p, i, type, static_cast<float>(v));
  else if (type == kBool)
    static_cast<uint8_t *>(p)[i] = v != 0;
  else
    storeInt(p, i, type, doubleToInt(v));
}

__device__ __forceinline__ double loadDouble(const void *p, int64_t i,
                                             int type) {
  if (type == kF64)
    return static_cast<const double *>(p)[i];
  return loadFloat(p, i, type);
}

/// One warp per output element: lanes stride over the reduced positions,
/// then combine pairwise (NaN and integer wrap behave as in a serial loop).
__global__ void reduce(const ReduceParams p) {
  int64_t o = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (o >= p.outN)
    return;
  int64_t base = mapOffset(p.keptMap, o);
  if (isFloatType(p.type)) {
    double acc = identityDouble(p.op);
    for (int64_t r = lane; r < p.count; r += 32)
      acc = combine(p.op, acc,
                    loadDouble(p.x, base + mapOffset(p.reducedMap, r), p.type));
    for (int off = 16; off > 0; off >>= 1)
      acc = combine(p.op, acc, __shfl_xor_sync(0xffffffffu, acc, off));
    if (lane == 0)
      storeDouble(p.out, o, p.type,
                  p.op == kMean ? acc / static_cast<double>(p.count) : acc);
    return;
  }
  int64_t acc = identityInt(p.op);
  for (int64_t r = lane; r < p.count; r += 32)
    acc = combine(p.op, acc,
                  loadInt(p.x, base + mapOffset(p.reducedMap, r), p.type));
  for (int off = 16; off > 0; off >>= 1)
    acc = combine(p.op, acc,
                  static_cast<int64_t>(__shfl_xor_sync(
                      0xffffffffu, static_cast<long long>(acc), off)));
  if (lane != 0)
    return;
  if (p.op == kMean)
    storeDouble(p.out, o, p.type,
                static_cast<double>(acc) / static_cast<double>(p.count));
  else
    storeInt(p.out, o, p.type, acc);
}

/// One thread per line; neighbouring threads take neighbouring lines.
__global__ void cumsum(const CumsumParams p) {
  int64_t l = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (l >= p.lines)
    return;
  int64_t base = (l / p.inner) * p.len * p.inner + l % p.inner;
  bool isFloat = isFloatType(p.type);
  double accF = 0;
  int64_t accI = 0;
  for (int64_t step = 0; step < p.len; ++step) {
    int64_t i = base + (p.reverse ? p.len - 1 - step : step) * p.inner;
    if (isFloat) {
      double v = loadDouble(p.x, i, p.type);
      if (!p.exclusive)
        accF += v;
      storeDouble(p.out, i, p.type, accF);
      if (p.exclusive)
        accF += v;
    } else {
      int64_t v = loadInt(p.x, i, p.type);
      if (!p.exclusive)
        accI = combine(kSum, accI, v);
      storeInt(p.out, i, p.type, accI);
      if (p.exclusive)
        accI = combine(kSum, accI, v);
    }
  }
}

} // namespace

cudaError_t launchReduce(const ReduceParams &p, cudaStream_t stream) {
  if (p.outN == 0)
    return cudaSuccess;
  constexpr int kThreads = 256;
  reduce<<<blocksFor(p.outN * 32, kThreads), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchCumsum(const CumsumParams &p, cudaStream_t stream) {
  if (p.lines == 0 || p.len == 0)
    return cudaSuccess;
  constexpr int kThreads = 128;
  cumsum<<<blocksFor(p.lines, kThreads), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

} // namespace weft::runtime::cuda::kernels
