// The skinny GEMM of decode: a few activation rows times a 16-bit weight
// matrix, bound by reading the weight once from memory.
//
// With the weight as [n, k] (nn.Linear's layout, the one the projections
// have), each warp takes one row of the weight (an output column; two for
// a gated pair, the gate's and the up's) over the whole of k, or over a
// split of it where the columns are too few to fill the GPU: its lanes
// stream 16-byte vectors of those rows past the L1 (kUnroll loads a row in
// flight), multiply each by every activation row (read through the L1,
// where the block's warps share them) into f32 registers, and add across
// the warp at the end. The number of rows is a
// template argument, so that the accumulators stay in registers. One launch
// may cover the columns of several weights that read the same activations
// (the q, k and v projections), and the gate and up projections of a gated
// MLP as pairs, storing silu(gate) * up: the launches, not the bytes, are
// what a small model's decode step is made of.
//
// Split partial sums are added by a second kernel that also runs the
// epilogue (bias, residual, tanh GELU) before the one rounding. A weight as
// [k, n] goes to cuBLASLt, which reads it at the copy rate.
#include "runtime/backends/cuda/kernels/Support.cuh"

#include <algorithm>

namespace weft::runtime::cuda::kernels {

namespace {

constexpr int kVec = 8; // 16-bit elements in 16 bytes
constexpr int kMax = static_cast<int>(kGemvMaxRows);
/// The rows kernel: warps a block, 16-byte loads in flight per weight row
/// and lane, elements of k a warp covers per vector step.
constexpr int kRowsWarps = 4;
constexpr int kRowsThreads = kRowsWarps * 32;
constexpr int kUnroll = 4;
constexpr int64_t kStride = 32 * kVec;
/// The scalar kernel's block.
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;

template <typename T> __device__ __forceinline__ float toFloat(T v);
template <> __device__ __forceinline__ float toFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <> __device__ __forceinline__ float toFloat(__half v) {
  return __half2float(v);
}

/// v rounded to T (nearest even) and back.
template <typename T> __device__ __forceinline__ float rounded(float v);
template <> __device__ __forceinline__ float rounded<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}
template <> __device__ __forceinline__ float rounded<__half>(float v) {
  return __half2float(__float2half_rn(v));
}

template <typename T> __device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <> __device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);
}

/// Eight 16-bit elements of a 16-byte word as floats.
template <typename T>
__device__ __forceinline__ void unpack(const uint4 &raw, float *out) {
  const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
  for (int i = 0; i < kVec; ++i)
    out[i] = toFloat<T>(e[i]);
}
/// bf16 is the top half of an f32: a shift or a mask per element.
template <>
__device__ __forceinline__ void unpack<__nv_bfloat16>(const uint4 &raw,
                                                      float *out) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(words[i] << 16);
    out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

/// Waits for the grid this one depends on programmatically (a no-op when
/// launched without the attribute), and lets the next grid launch.
__device__ __forceinline__ void waitForPrerequisite() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allowDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void prefetchL2(const void *p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/// A 16-byte vector of a weight, read once: not kept in the L1, which
/// holds the activations every warp of the block reads.
__device__ __forceinline__ uint4 loadStreaming(const void *p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

__device__ __forceinline__ float geluTanh(float x) {
  const float c = 0.7978845608028654f; // sqrt(2 / pi)
  return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

/// x * sigmoid(x), as the generated elementwise kernels compute it.
__device__ __forceinline__ float silu(float x) {
  if (x >= 0)
    return x * (1.0f / (1.0f + expf(-x)));
  const float e = expf(x);
  return x * (e / (1.0f + e));
}

/// Segment s of p, by value (kernel parameters indexed at run time would
/// be copied to local memory).
__device__ __forceinline__ GemvSegment segmentAt(const GemvParams &p, int s) {
  GemvSegment r = p.seg[0];
#pragma unroll
  for (int i = 1; i < kGemvMaxSegments; ++i)
    if (s == i)
      r = p.seg[i];
  return r;
}

/// The epilogue of output (m, n) of segment `seg` from its f32 sum.
__device__ __forceinline__ void finish(const GemvParams &p,
                                       const GemvSegment &seg, int64_t m,
                                       int64_t n, float acc) {
  if (seg.bias)
    acc += loadFloat(seg.bias, n, p.type);
  if (seg.residual)
    acc += loadFloat(seg.residual, m * seg.n + n, p.type);
  if (p.gelu)
    acc = geluTanh(acc);
  storeFloat(seg.out, m * seg.n + n, p.outType, acc);
}

/// Emits output (m, n)'s sum (one segment): finished, or a split's partial.
__device__ __forceinline__ void emit(const GemvParams &p, int split, int64_t m,
                                     int64_t n, float acc) {
  if (p.splitK == 1)
    finish(p, p.seg[0], m, n, acc);
  else
    p.partials[(split * p.m + m) * p.seg[0].n + n] = acc;
}

/// acc[m][r] += a[m, k..k+8) . w_r[k..k+8) for the M rows of a.
/// `Shared`: a is in shared memory (a normalizing launch's).
template <typename T, int M, int R, bool Shared>
__device__ __forceinline__ void accumulate(const T *a, int64_t lda, int64_t k,
                                           const uint4 (&wv)[R],
                                           float (&acc)[M][R]) {
  float wf[R][kVec];
#pragma unroll
  for (int r = 0; r < R; ++r)
    unpack<T>(wv[r], wf[r]);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float af[kVec];
    const uint4 *at = reinterpret_cast<const uint4 *>(a + m * lda + k);
    unpack<T>(Shared ? *at : __ldg(at), af);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        acc[m][r] = fmaf(wf[r][i], af[i], acc[m][r]);
  }
}

/// out[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w, rounded to T, as
/// the RMS_NORM kernel computes it (f32, scale applied after the inverse
/// root), for the block's M rows; every warp returns after the block's
/// barrier.
template <typename T, int M>
__device__ __forceinline__ void normalize(const GemvParams &p, T *out) {
  __shared__ float inv[M];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const T *x = static_cast<const T *>(p.normX);
  const T *w = static_cast<const T *>(p.normW);
  for (int m = warp; m < M; m += kRowsWarps) {
    float sq = 0;
    for (int64_t k = lane * kVec; k < p.k; k += kStride) {
      float f[kVec];
      unpack<T>(__ldg(reinterpret_cast<const uint4 *>(x + m * p.k + k)), f);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        sq += f[i] * f[i];
    }
    sq = warpSum(sq);
    if (lane == 0)
      inv[m] = 1.0f / sqrtf(sq / static_cast<float>(p.k) + p.normEps);
  }
  __syncthreads();
  const int64_t vecs = p.k / kVec;
  for (int64_t i = threadIdx.x; i < M * vecs; i += kRowsThreads) {
    const int64_t m = i / vecs, c = i % vecs;
    float f[kVec], g[kVec];
    unpack<T>(__ldg(reinterpret_cast<const uint4 *>(x + m * p.k + c * kVec)),
              f);
    unpack<T>(__ldg(reinterpret_cast<const uint4 *>(w + c * kVec)), g);
    uint4 raw;
    T *e = reinterpret_cast<T *>(&raw);
#pragma unroll
    for (int j = 0; j < kVec; ++j)
      e[j] = fromFloat<T>(f[j] * inv[m] * g[j]);
    reinterpret_cast<uint4 *>(out)[i] = raw;
  }
  __syncthreads();
}

/// w [n, k], k a multiple of 8 and every operand 16-byte aligned: one warp
/// per R columns (Swiglu: column j of the gate and of the up weight) and
/// split of k, M activation rows.
template <typename T, int M, int R, bool Swiglu, bool Norm>
__global__ void __launch_bounds__(kRowsThreads) gemvRowsKernel(GemvParams p) {
  static_assert(!Swiglu || R == 2, "a gated pair is two rows");
  extern __shared__ uint4 normed[];
  const T *a = static_cast<const T *>(p.a);
  const int lane = threadIdx.x % 32;
  const int64_t unit = blockIdx.x * int64_t(kRowsWarps) + threadIdx.x / 32;
  const int split = blockIdx.y;
  // This warp's segment and first column in it: segments start at
  // multiples of R.
  int s = 0;
  int64_t n0 = unit * R;
  if (!Swiglu) {
#pragma unroll
    for (int i = 0; i + 1 < kGemvMaxSegments; ++i) {
      int64_t width = (segmentAt(p, s).n + R - 1) / R * R;
      if (s + 1 < p.segments && n0 >= width) {
        n0 -= width;
        ++s;
      }
    }
  } else {
    n0 = unit;
  }
  const GemvSegment seg = segmentAt(p, s);
  const bool active = n0 < seg.n;
  const T *wr[R];
  if (Swiglu) {
    wr[0] = static_cast<const T *>(p.seg[0].w) + n0 * p.k;
    wr[1] = static_cast<const T *>(p.seg[1].w) + n0 * p.k;
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r)
      wr[r] = static_cast<const T *>(seg.w) +
              max(int64_t(0), min(n0 + r, seg.n - 1)) * p.k;
  }
  // Split ranges are whole warp strides, so vectors stay aligned.
  const int64_t perSplit =
      ((p.k + p.splitK - 1) / p.splitK + kStride - 1) / kStride * kStride;
  const int64_t k0 = split * perSplit, k1 = min(p.k, k0 + perSplit);
  // The weights do not depend on the kernel before: their first bytes are
  // on their way while it finishes.
  if (active)
    for (int64_t k = k0 + lane * kVec; k < min(k1, k0 + kUnroll * kStride);
         k += kStride)
#pragma unroll
      for (int r = 0; r < R; ++r)
        prefetchL2(wr[r] + k);
  waitForPrerequisite();
  if (Norm) {
    normalize<T, M>(p, reinterpret_cast<T *>(normed));
    a = reinterpret_cast<const T *>(normed);
  }
  if (!active)
    return;
  // Zeroed by unrolled loops: an aggregate initializer becomes a loop
  // that puts the array in local memory.
  float acc[M][R];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r)
      acc[m][r] = 0;
  int64_t k = k0 + lane * kVec;
  for (; k + (kUnroll - 1) * kStride < k1; k += kUnroll * kStride) {
    uint4 wv[kUnroll][R];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r)
        wv[u][r] = loadStreaming(wr[r] + k + u * kStride);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      accumulate<T, M, R, Norm>(a, p.k, k + u * kStride, wv[u], acc);
  }
  for (; k < k1; k += kStride) {
    uint4 wv[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
      wv[r] = loadStreaming(wr[r] + k);
    accumulate<T, M, R, Norm>(a, p.k, k, wv, acc);
  }
  // The weights are read: the next kernel may start its own.
  allowDependents();
  if (Swiglu) {
    // Lane m stores row m's silu(gate) * up.
    float gate = 0, up = 0;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float g = warpSum(acc[m][0]), u = warpSum(acc[m][R - 1]);
      gate = lane == m ? g : gate;
      up = lane == m ? u : up;
    }
    if (lane < M) {
      gate = rounded<T>(gate);
      up = rounded<T>(up);
      storeFloat(p.seg[0].out, lane * seg.n + n0, p.outType,
                 rounded<T>(silu(gate)) * up);
    }
    return;
  }
  // Every lane gets every sum; lane m * R + r then emits sum (m, r) (a
  // small body outside the unrolled loops, which keeps acc in registers).
  float mine = 0;
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float v = warpSum(acc[m][r]);
      mine = lane == m * R + r ? v : mine;
    }
  const int64_t m = lane / R, n = n0 + lane % R;
  if (lane < M * R && n < seg.n) {
    if (p.segments == 1)
      emit(p, split, m, n, mine);
    else
      finish(p, seg, m, n, mine);
  }
}

/// w [n, k] in any other case (k not a multiple of 8, or an unaligned
/// operand): one column per warp, element by element; one segment.
template <typename T>
__global__ void __launch_bounds__(kThreads) gemvRowsScalarKernel(GemvParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int split = blockIdx.y;
  if (n >= p.seg[0].n)
    return;
  const int64_t perSplit = (p.k + p.splitK - 1) / p.splitK;
  const int64_t k0 = split * perSplit, k1 = min(p.k, k0 + perSplit);
  const T *a = static_cast<const T *>(p.a);
  const T *w = static_cast<const T *>(p.seg[0].w) + n * p.k;
  float acc[kMax];
#pragma unroll
  for (int m = 0; m < kMax; ++m)
    acc[m] = 0;
  for (int64_t k = k0 + lane; k < k1; k += 32) {
    float wf = toFloat<T>(w[k]);
#pragma unroll
    for (int m = 0; m < kMax; ++m)
      if (m < p.m)
        acc[m] = fmaf(wf, toFloat<T>(a[m * p.k + k]), acc[m]);
  }
  float mine = 0;
#pragma unroll
  for (int m = 0; m < kMax; ++m) {
    float v = warpSum(acc[m]);
    mine = lane == m ? v : mine;
  }
  if (lane < p.m)
    emit(p, split, lane, n, mine);
}

/// Adds the splits' partial sums (one segment) and runs the epilogue.
__global__ void gemvReduceKernel(GemvParams p) {
  const int64_t n = p.seg[0].n, total = p.m * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0;
    for (int split = 0; split < p.splitK; ++split)
      s += p.partials[split * total + i];
    finish(p, p.seg[0], i / n, i % n, s);
  }
}

bool vectorizable(const GemvParams &p) {
  if (!aligned16(p.normX ? p.normX : p.a) || !aligned16(p.normW))
    return false;
  for (int s = 0; s < p.segments; ++s)
    if (!aligned16(p.seg[s].w))
      return false;
  return p.k % kVec == 0;
}

/// Columns of all segments as the rows kernel numbers them (each padded to
/// a multiple of warpCols); for Swiglu, the pairs.
int64_t rowsUnits(const GemvParams &p) {
  if (p.swiglu)
    return p.seg[0].n;
  int64_t cols = 0;
  for (int s = 0; s < p.segments; ++s)
    cols += (p.seg[s].n + p.warpCols - 1) / p.warpCols * p.warpCols;
  return cols / p.warpCols;
}

using RowsKernel = void (*)(GemvParams);

template <typename T, int M> RowsKernel rowsKernelOf(const GemvParams &p) {
  const bool norm = p.normX != nullptr;
  if (p.swiglu)
    return norm ? gemvRowsKernel<T, M, 2, true, true>
                : gemvRowsKernel<T, M, 2, true, false>;
  if (p.warpCols == 2)
    return norm ? gemvRowsKernel<T, M, 2, false, true>
                : gemvRowsKernel<T, M, 2, false, false>;
  return norm ? gemvRowsKernel<T, M, 1, false, true>
              : gemvRowsKernel<T, M, 1, false, false>;
}

/// The vector kernel that runs `p`.
template <typename T> RowsKernel rowsKernelOf(const GemvParams &p) {
  switch (p.m) {
  case 1:
    return rowsKernelOf<T, 1>(p);
  case 2:
    return rowsKernelOf<T, 2>(p);
  case 3:
    return rowsKernelOf<T, 3>(p);
  default:
    return rowsKernelOf<T, 4>(p);
  }
}

RowsKernel rowsKernelOf(const GemvParams &p) {
  return p.type == kBF16 ? rowsKernelOf<__nv_bfloat16>(p)
                         : rowsKernelOf<__half>(p);
}

/// Dynamic shared memory of `p`'s launch: the normalized activations.
size_t sharedBytes(const GemvParams &p) {
  return p.normX ? static_cast<size_t>(p.m * p.k * 2) : 0;
}

template <typename T>
cudaError_t launchTyped(const GemvParams &p, cudaStream_t stream) {
  const int64_t n = p.seg[0].n;
  if (vectorizable(p)) {
    dim3 grid(
        static_cast<unsigned>((rowsUnits(p) + kRowsWarps - 1) / kRowsWarps),
        static_cast<unsigned>(p.splitK));
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = dim3(kRowsThreads);
    config.dynamicSmemBytes = sharedBytes(p);
    config.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attr;
    config.numAttrs = p.dependent ? 1 : 0;
    if (cudaError_t err = cudaLaunchKernelEx(&config, rowsKernelOf(p), p);
        err != cudaSuccess)
      return err;
  } else {
    dim3 grid(static_cast<unsigned>((n + kWarps - 1) / kWarps),
              static_cast<unsigned>(p.splitK));
    gemvRowsScalarKernel<T><<<grid, kThreads, 0, stream>>>(p);
  }
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return err;
  if (p.splitK > 1) {
    gemvReduceKernel<<<std::min<unsigned>(blocksFor(p.m * n, 256), 1024), 256,
                       0, stream>>>(p);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

} // namespace

int64_t planGemv(GemvParams &p, int sms, int64_t maxPartials) {
  p.splitK = 1;
  p.warpCols = 1;
  const bool rows = vectorizable(p);
  if (rows && (p.swiglu || p.segments > 1 || p.normX)) {
    // Never split (a split would normalize again, and the columns of
    // several weights or the pairs fill the GPU). One weight row a warp
    // (two, gate and up, for a pair): back to back, one row a warp read
    // the weight faster than two in every shape measured (docs/perf.md).
    p.warpCols = p.swiglu ? 2 : 1;
    return 0;
  }
  const int64_t n = p.seg[0].n;
  int64_t warps, minK;
  if (rows) {
    warps = n;
    // Split only where fewer than 4 warps a multiprocessor would stream,
    // up to about 8, each split at least one unrolled step of the loop.
    if (warps >= 4 * int64_t(sms))
      return 0;
    minK = kUnroll * kStride;
  } else {
    warps = n;
    minK = 512;
  }
  int64_t want = (rows ? 8 : 48) * int64_t(sms);
  int64_t split = std::max<int64_t>(1, (want + warps - 1) / warps);
  split = std::min<int64_t>(split, std::max<int64_t>(1, p.k / minK));
  split = std::min<int64_t>(split, 64);
  split = std::max<int64_t>(
      1, std::min<int64_t>(split, maxPartials / std::max<int64_t>(1, p.m * n)));
  p.splitK = static_cast<int>(split);
  return p.splitK > 1 ? p.splitK * p.m * n : 0;
}

cudaError_t prepareGemv(const GemvParams &p) {
  size_t bytes = sharedBytes(p);
  if (bytes <= (48 << 10) || !vectorizable(p))
    return cudaSuccess;
  return cudaFuncSetAttribute(rowsKernelOf(p),
                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

cudaError_t launchGemv(const GemvParams &p, cudaStream_t stream) {
  if (p.m == 0 || p.seg[0].n == 0)
    return cudaSuccess;
  return p.type == kBF16 ? launchTyped<__nv_bfloat16>(p, stream)
                         : launchTyped<__half>(p, stream);
}

} // namespace weft::runtime::cuda::kernels
