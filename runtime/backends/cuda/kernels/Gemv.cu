// The skinny GEMM of decode: a few activation rows times a 16-bit weight
// matrix, bound by reading the weight once from memory. Every thread
// streams 16-byte vectors of the weight (several in flight), multiplies
// each by all the rows at once (f32 accumulators in registers), and the
// K dim is split over warps and blocks until the GPU holds enough loads in
// flight; split partial sums are added by a second kernel that also runs
// the epilogue (bias, residual, tanh GELU) before the one rounding.
#include "runtime/backends/cuda/kernels/Support.cuh"

#include <algorithm>

namespace weft::runtime::cuda::kernels {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kVec = 8; // 16-bit elements in 16 bytes
constexpr int kMax = static_cast<int>(kGemvMaxRows);

template <typename T> __device__ __forceinline__ float toFloat(T v);
template <> __device__ __forceinline__ float toFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <> __device__ __forceinline__ float toFloat(__half v) {
  return __half2float(v);
}

/// Eight 16-bit elements of a 16-byte word as floats.
template <typename T>
__device__ __forceinline__ void unpack(const uint4 &raw, float *out) {
  const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    out[i] = toFloat<T>(e[i]);
}

__device__ __forceinline__ float geluTanh(float x) {
  const float c = 0.7978845608028654f; // sqrt(2 / pi)
  return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

/// The epilogue of output (m, n) from its f32 sum.
__device__ __forceinline__ void finish(const GemvParams &p, int64_t m,
                                       int64_t n, float acc) {
  if (p.bias)
    acc += loadFloat(p.bias, n, p.type);
  if (p.residual)
    acc += loadFloat(p.residual, m * p.n + n, p.type);
  if (p.gelu)
    acc = geluTanh(acc);
  storeFloat(p.out, m * p.n + n, p.outType, acc);
}

/// Emits output (m, n)'s sum: finished, or a split's partial.
__device__ __forceinline__ void emit(const GemvParams &p, int split, int64_t m,
                                     int64_t n, float acc) {
  if (p.splitK == 1)
    finish(p, m, n, acc);
  else
    p.partials[(split * p.m + m) * p.n + n] = acc;
}

/// Columns of w [n, k] one warp of the vector kernel takes: each
/// activation vector loaded is used for all of them.
constexpr int kRowsCols = 4;

/// acc[m][c] += a[m, k..k+8) . w(c)[k..k+8) for every row: each
/// activation vector is loaded once for all the columns.
template <typename T, int Cols>
__device__ __forceinline__ void fmaColumns(const GemvParams &p, const T *a,
                                           int64_t k, const uint4 (&wv)[Cols],
                                           float (&acc)[kMax * Cols]) {
  float wf[Cols][kVec], af[kVec];
#pragma unroll
  for (int c = 0; c < Cols; ++c)
    unpack<T>(wv[c], wf[c]);
#pragma unroll
  for (int m = 0; m < kMax; ++m) {
    if (m < p.m) {
      unpack<T>(__ldg(reinterpret_cast<const uint4 *>(a + m * p.k + k)), af);
#pragma unroll
      for (int c = 0; c < Cols; ++c)
#pragma unroll
        for (int i = 0; i < kVec; ++i)
          acc[m * Cols + c] = fmaf(wf[c][i], af[i], acc[m * Cols + c]);
    }
  }
}

/// w [n, k]: one warp per (kRowsCols columns, split), lanes along k.
/// `Vector`: k is a multiple of 8 and the operands 16-byte aligned; each
/// lane then keeps kUnroll x kRowsCols 16-byte loads of the weight in
/// flight. Otherwise one column per warp, element by element.
template <typename T, bool Vector>
__global__ void __launch_bounds__(kThreads) gemvRowsKernel(GemvParams p) {
  constexpr int kUnroll = 2;
  constexpr int kCols = Vector ? kRowsCols : 1;
  constexpr int64_t kStride = 32 * kVec;
  const int lane = threadIdx.x % 32;
  const int64_t n0 = (blockIdx.x * int64_t(kWarps) + threadIdx.x / 32) * kCols;
  const int split = blockIdx.y;
  if (n0 >= p.n)
    return;
  // Split ranges are whole warp strides, so vectors stay aligned.
  const int64_t perSplit =
      ((p.k + p.splitK - 1) / p.splitK + kStride - 1) / kStride * kStride;
  const int64_t k0 = split * perSplit, k1 = min(p.k, k0 + perSplit);
  const T *a = static_cast<const T *>(p.a);
  const T *w[kCols];
#pragma unroll
  for (int c = 0; c < kCols; ++c)
    w[c] = static_cast<const T *>(p.w) + min(n0 + c, p.n - 1) * p.k;
  // Zeroed by unrolled loops: an aggregate initializer becomes a loop
  // that puts the array in local memory.
  float acc[kMax * kCols];
#pragma unroll
  for (int m = 0; m < kMax; ++m)
#pragma unroll
    for (int c = 0; c < kCols; ++c)
      acc[m * kCols + c] = 0;
  if (Vector) {
    int64_t k = k0 + lane * kVec;
    for (; k + (kUnroll - 1) * kStride < k1; k += kUnroll * kStride) {
      uint4 wv[kUnroll][kCols];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int c = 0; c < kCols; ++c)
          wv[u][c] =
              __ldg(reinterpret_cast<const uint4 *>(w[c] + k + u * kStride));
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        fmaColumns<T, kCols>(p, a, k + u * kStride, wv[u], acc);
    }
    for (; k < k1; k += kStride) {
      uint4 wv[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c)
        wv[c] = __ldg(reinterpret_cast<const uint4 *>(w[c] + k));
      fmaColumns<T, kCols>(p, a, k, wv, acc);
    }
  } else {
    for (int64_t k = k0 + lane; k < k1; k += 32) {
      float wf = toFloat<T>(w[0][k]);
#pragma unroll
      for (int m = 0; m < kMax; ++m)
        if (m < p.m)
          acc[m * kCols] = fmaf(wf, toFloat<T>(a[m * p.k + k]), acc[m * kCols]);
    }
  }
  // Every lane gets every sum; lane j then emits sum j (a small body
  // outside the unrolled loops, which keeps acc in registers).
  float mine = 0;
#pragma unroll
  for (int j = 0; j < kMax * kCols; ++j) {
    float s = warpSum(acc[j]);
    mine = j == lane ? s : mine;
  }
  int64_t m = lane / kCols, n = n0 + lane % kCols;
  if (lane < kMax * kCols && m < p.m && n < p.n)
    emit(p, split, m, n, mine);
}

/// w [k, n]: each thread takes 8 adjacent columns (one 16-byte vector; a
/// single column without `Vector`), the block's warps and the grid's y
/// split k.
template <typename T, bool Vector>
__global__ void __launch_bounds__(kThreads) gemvColumnsKernel(GemvParams p) {
  __shared__ float partial[kWarps][32 * kVec];
  constexpr int width = Vector ? kVec : 1;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t n0 = (blockIdx.x * 32 + int64_t(lane)) * width;
  const int split = blockIdx.y;
  const int64_t perSplit = (p.k + p.splitK - 1) / p.splitK;
  const int64_t s0 = split * perSplit, s1 = min(p.k, s0 + perSplit);
  const int64_t perWarp = (s1 - s0 + kWarps - 1) / kWarps;
  const int64_t k0 = s0 + warp * perWarp, k1 = min(s1, k0 + perWarp);
  const T *w = static_cast<const T *>(p.w);
  const T *a = static_cast<const T *>(p.a);
  float acc[kMax][width];
#pragma unroll
  for (int m = 0; m < kMax; ++m)
#pragma unroll
    for (int i = 0; i < width; ++i)
      acc[m][i] = 0;
  if (n0 < p.n) {
#pragma unroll 4
    for (int64_t k = k0; k < k1; ++k) {
      float wf[width];
      if (Vector)
        unpack<T>(__ldg(reinterpret_cast<const uint4 *>(w + k * p.n + n0)), wf);
      else
        wf[0] = toFloat<T>(w[k * p.n + n0]);
#pragma unroll
      for (int m = 0; m < kMax; ++m) {
        if (m >= p.m)
          break;
        float av = toFloat<T>(a[m * p.k + k]);
#pragma unroll
        for (int i = 0; i < width; ++i)
          acc[m][i] = fmaf(wf[i], av, acc[m][i]);
      }
    }
  }
  // The warps' sums, row by row.
  for (int m = 0; m < p.m; ++m) {
#pragma unroll
    for (int i = 0; i < width; ++i) {
      float v = 0;
#pragma unroll
      for (int r = 0; r < kMax; ++r)
        v = r == m ? acc[r][i] : v;
      partial[warp][lane * width + i] = v;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < 32 * width; c += blockDim.x) {
      int64_t n = blockIdx.x * int64_t(32 * width) + c;
      if (n >= p.n)
        continue;
      float s = 0;
#pragma unroll
      for (int r = 0; r < kWarps; ++r)
        s += partial[r][c];
      emit(p, split, m, n, s);
    }
    __syncthreads();
  }
}

/// Adds the splits' partial sums and runs the epilogue.
__global__ void gemvReduceKernel(GemvParams p) {
  int64_t total = p.m * p.n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0;
    for (int split = 0; split < p.splitK; ++split)
      s += p.partials[split * total + i];
    finish(p, i / p.n, i % p.n, s);
  }
}

bool vectorizable(const GemvParams &p) {
  return aligned16(p.a) && aligned16(p.w) && (p.transW ? p.k : p.n) % kVec == 0;
}

template <typename T>
cudaError_t launchTyped(const GemvParams &p, cudaStream_t stream) {
  bool vec = vectorizable(p);
  if (p.transW) {
    int64_t perBlock = kWarps * (vec ? kRowsCols : 1);
    dim3 grid(static_cast<unsigned>((p.n + perBlock - 1) / perBlock),
              static_cast<unsigned>(p.splitK));
    if (vec)
      gemvRowsKernel<T, true><<<grid, kThreads, 0, stream>>>(p);
    else
      gemvRowsKernel<T, false><<<grid, kThreads, 0, stream>>>(p);
  } else {
    int64_t width = vec ? kVec : 1;
    dim3 grid(static_cast<unsigned>((p.n + 32 * width - 1) / (32 * width)),
              static_cast<unsigned>(p.splitK));
    if (vec)
      gemvColumnsKernel<T, true><<<grid, kThreads, 0, stream>>>(p);
    else
      gemvColumnsKernel<T, false><<<grid, kThreads, 0, stream>>>(p);
  }
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return err;
  if (p.splitK > 1) {
    gemvReduceKernel<<<std::min<unsigned>(blocksFor(p.m * p.n, 256), 1024), 256,
                       0, stream>>>(p);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

} // namespace

int64_t planGemv(GemvParams &p, int sms, int64_t maxPartials) {
  // Enough warps to keep ~48 per multiprocessor streaming, each over at
  // least 512 elements of k.
  bool vec = vectorizable(p);
  int64_t warps =
      p.transW ? (p.n + (vec ? kRowsCols : 1) - 1) / (vec ? kRowsCols : 1)
               : ((p.n + 32 * (vec ? kVec : 1) - 1) / (32 * (vec ? kVec : 1))) *
                     kWarps;
  int64_t want = 48 * int64_t(sms);
  int64_t split = std::max<int64_t>(1, (want + warps - 1) / warps);
  int64_t minK = p.transW ? 512 : 32 * kWarps;
  split = std::min<int64_t>(split, std::max<int64_t>(1, p.k / minK));
  split = std::min<int64_t>(split, 64);
  split = std::max<int64_t>(
      1,
      std::min<int64_t>(split, maxPartials / std::max<int64_t>(1, p.m * p.n)));
  p.splitK = static_cast<int>(split);
  return p.splitK > 1 ? p.splitK * p.m * p.n : 0;
}

cudaError_t launchGemv(const GemvParams &p, cudaStream_t stream) {
  if (p.m == 0 || p.n == 0)
    return cudaSuccess;
  return p.type == kBF16 ? launchTyped<__nv_bfloat16>(p, stream)
                         : launchTyped<__half>(p, stream);
}

} // namespace weft::runtime::cuda::kernels
