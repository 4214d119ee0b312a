// Row-wise float kernels: LAYER_NORM, RMS_NORM, SOFTMAX, ROTARY and SWIGLU.
// Everything is computed in f32 and rounded once into the output's dtype,
// like the CPU kernels.
#include "runtime/backends/cuda/kernels/Support.cuh"

#include <algorithm>
#include <type_traits>

namespace weft::runtime::cuda::kernels {

namespace {

// Typed access for the common case of one dtype throughout; T = void reads
// and writes by the runtime dtype instead (mixed or f64 operands).
__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T fromFloat(float v) {
  if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(v);
  else
    return v;
}

template <typename T>
__device__ __forceinline__ float load(const void *p, int64_t i, int type) {
  if constexpr (std::is_void_v<T>)
    return loadFloat(p, i, type);
  else
    return toFloat(static_cast<const T *>(p)[i]);
}

template <typename T>
__device__ __forceinline__ void store(void *p, int64_t i, int type, float v) {
  if constexpr (std::is_void_v<T>)
    storeFloat(p, i, type, v);
  else
    static_cast<T *>(p)[i] = fromFloat<T>(v);
}

/// Elements per 16-byte vector.
template <typename T> constexpr int vecWidth() { return 16 / sizeof(T); }

template <typename T>
__device__ __forceinline__ void loadVec(const T *p, float (&f)[vecWidth<T>()]) {
  uint4 raw = *reinterpret_cast<const uint4 *>(p);
  const T *e = reinterpret_cast<const T *>(&raw);
  for (int i = 0; i < vecWidth<T>(); ++i)
    f[i] = toFloat(e[i]);
}

template <typename T>
__device__ __forceinline__ void storeVec(T *p,
                                         const float (&f)[vecWidth<T>()]) {
  uint4 raw;
  T *e = reinterpret_cast<T *>(&raw);
  for (int i = 0; i < vecWidth<T>(); ++i)
    e[i] = fromFloat<T>(f[i]);
  *reinterpret_cast<uint4 *>(p) = raw;
}

//===----------------------------------------------------------------------===//
// LAYER_NORM, RMS_NORM
//===----------------------------------------------------------------------===//

__device__ __forceinline__ float normScale(const NormParams &p, int64_t row,
                                           int64_t i) {
  int64_t at = p.scaleByColumn ? i : mapOffset(p.scaleMap, row * p.inner + i);
  return loadFloat(p.scale, at, p.scaleType);
}

__device__ __forceinline__ float normBias(const NormParams &p, int64_t row,
                                          int64_t i) {
  if (!p.bias)
    return 0.0f;
  int64_t at = p.biasByColumn ? i : mapOffset(p.biasMap, row * p.inner + i);
  return loadFloat(p.bias, at, p.biasType);
}

/// One block per row; the row is read three times (mean, variance,
/// output), the later reads mostly from cache. `Vec`: 16-byte accesses.
template <typename T, bool Vec> __global__ void normRows(const NormParams p) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x, base = row * p.inner;
  using E = std::conditional_t<std::is_void_v<T>, float, T>;
  constexpr int V = vecWidth<E>();
  const E *x = static_cast<const E *>(p.x) + base;
  auto forEach = [&](auto fn) {
    if constexpr (Vec) {
      for (int64_t c = threadIdx.x; c < p.inner / V; c += blockDim.x) {
        float f[V];
        loadVec(x + c * V, f);
        for (int k = 0; k < V; ++k)
          fn(f[k]);
      }
    } else {
      for (int64_t i = threadIdx.x; i < p.inner; i += blockDim.x)
        fn(load<T>(p.x, base + i, p.xType));
    }
  };
  float mean = 0.0f;
  if (!p.rms) {
    float sum = 0.0f;
    forEach([&](float v) { sum += v; });
    mean = blockReduce<false>(sum, scratch) / static_cast<float>(p.inner);
  }
  float sq = 0.0f;
  forEach([&](float v) { sq += (v - mean) * (v - mean); });
  float var = blockReduce<false>(sq, scratch) / static_cast<float>(p.inner);
  float inv = 1.0f / sqrtf(var + p.epsilon);
  if constexpr (Vec) {
    E *y = static_cast<E *>(p.out) + base;
    for (int64_t c = threadIdx.x; c < p.inner / V; c += blockDim.x) {
      float f[V];
      loadVec(x + c * V, f);
      for (int k = 0; k < V; ++k) {
        int64_t i = c * V + k;
        float n = (f[k] - mean) * inv;
        f[k] = n * normScale(p, row, i) + normBias(p, row, i);
      }
      storeVec(y + c * V, f);
    }
  } else {
    for (int64_t i = threadIdx.x; i < p.inner; i += blockDim.x) {
      float n = (load<T>(p.x, base + i, p.xType) - mean) * inv;
      store<T>(p.out, base + i, p.outType,
               n * normScale(p, row, i) + normBias(p, row, i));
    }
  }
}

template <typename T> constexpr int typeCode() {
  if constexpr (std::is_same_v<T, __half>)
    return kF16;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return kBF16;
  else
    return kF32;
}

/// One block per row of at most K 16-byte vectors per thread: the row is
/// read once into registers (not re-read for each pass), and a scale or
/// bias of the row's dtype given per column is read by vectors too. K is
/// the fewest that hold the row: registers beyond it would cost occupancy.
constexpr int kMaxCached = 4;
template <typename T, int K>
__global__ void normRowsCached(const NormParams p, bool vecScale,
                               bool vecBias) {
  __shared__ float scratch[32];
  constexpr int V = vecWidth<T>();
  const int64_t row = blockIdx.x, base = row * p.inner, vecs = p.inner / V;
  const T *x = static_cast<const T *>(p.x) + base;
  T *y = static_cast<T *>(p.out) + base;
  float f[K][V];
  float sum = 0.0f;
  for (int j = 0; j < K; ++j) {
    int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
    if (c < vecs) {
      loadVec(x + c * V, f[j]);
      for (int k = 0; k < V; ++k)
        sum += f[j][k];
    }
  }
  float mean = 0.0f;
  if (!p.rms)
    mean = blockReduce<false>(sum, scratch) / static_cast<float>(p.inner);
  float sq = 0.0f;
  for (int j = 0; j < K; ++j) {
    if (threadIdx.x + int64_t(j) * blockDim.x < vecs)
      for (int k = 0; k < V; ++k)
        sq += (f[j][k] - mean) * (f[j][k] - mean);
  }
  float var = blockReduce<false>(sq, scratch) / static_cast<float>(p.inner);
  float inv = 1.0f / sqrtf(var + p.epsilon);
  for (int j = 0; j < K; ++j) {
    int64_t c = threadIdx.x + int64_t(j) * blockDim.x;
    if (c >= vecs)
      continue;
    float scale[V], bias[V];
    if (vecScale)
      loadVec(static_cast<const T *>(p.scale) + c * V, scale);
    else
      for (int k = 0; k < V; ++k)
        scale[k] = normScale(p, row, c * V + k);
    if (vecBias)
      loadVec(static_cast<const T *>(p.bias) + c * V, bias);
    else
      for (int k = 0; k < V; ++k)
        bias[k] = normBias(p, row, c * V + k);
    for (int k = 0; k < V; ++k)
      f[j][k] = (f[j][k] - mean) * inv * scale[k] + bias[k];
    storeVec(y + c * V, f[j]);
  }
}

template <typename T>
cudaError_t launchNormAs(const NormParams &p, cudaStream_t stream) {
  int64_t work = p.inner;
  bool vec = false;
  if constexpr (!std::is_void_v<T>) {
    constexpr int V = vecWidth<T>();
    vec = p.inner % V == 0 && aligned16(p.x) && aligned16(p.out);
    if (vec)
      work = p.inner / V;
  }
  int threads = work >= 1024 ? 512 : (work >= 256 ? 256 : 128);
  // Rows go on grid x (up to 2^31 - 1 blocks).
  unsigned blocks = static_cast<unsigned>(p.rows);
  if constexpr (!std::is_void_v<T>) {
    if (vec && work <= int64_t(threads) * kMaxCached) {
      auto typed = [&](const void *param, int type, bool byColumn) {
        return param && byColumn && type == typeCode<T>() && aligned16(param);
      };
      bool vecScale = typed(p.scale, p.scaleType, p.scaleByColumn);
      bool vecBias = typed(p.bias, p.biasType, p.biasByColumn);
      int64_t perThread = (work + threads - 1) / threads;
      if (perThread == 1)
        normRowsCached<T, 1>
            <<<blocks, threads, 0, stream>>>(p, vecScale, vecBias);
      else if (perThread == 2)
        normRowsCached<T, 2>
            <<<blocks, threads, 0, stream>>>(p, vecScale, vecBias);
      else
        normRowsCached<T, kMaxCached>
            <<<blocks, threads, 0, stream>>>(p, vecScale, vecBias);
      return cudaGetLastError();
    }
    if (vec) {
      normRows<T, true><<<blocks, threads, 0, stream>>>(p);
      return cudaGetLastError();
    }
  }
  normRows<T, false><<<blocks, threads, 0, stream>>>(p);
  return cudaGetLastError();
}

//===----------------------------------------------------------------------===//
// SOFTMAX
//===----------------------------------------------------------------------===//

/// Contiguous lines (inner == 1): one block per line.
__global__ void softmaxRows(const SoftmaxParams p) {
  __shared__ float scratch[32];
  const int64_t base = int64_t(blockIdx.x) * p.len;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < p.len; i += blockDim.x)
    mx = fmaxf(mx, loadFloat(p.x, base + i, p.xType));
  mx = blockReduce<true>(mx, scratch);
  if (!isfinite(mx)) // like the CPU kernel (and numpy): shift by 0
    mx = 0.0f;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < p.len; i += blockDim.x)
    sum += expf(loadFloat(p.x, base + i, p.xType) - mx);
  sum = blockReduce<false>(sum, scratch);
  for (int64_t i = threadIdx.x; i < p.len; i += blockDim.x)
    storeFloat(p.out, base + i, p.outType,
               expf(loadFloat(p.x, base + i, p.xType) - mx) / sum);
}

/// Strided lines (inner > 1): one thread per line; neighbouring threads
/// read neighbouring elements.
__global__ void softmaxStrided(const SoftmaxParams p) {
  int64_t line = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (line >= p.outer * p.inner)
    return;
  int64_t base = (line / p.inner) * p.len * p.inner + line % p.inner;
  float mx = -INFINITY;
  for (int64_t i = 0; i < p.len; ++i)
    mx = fmaxf(mx, loadFloat(p.x, base + i * p.inner, p.xType));
  if (!isfinite(mx))
    mx = 0.0f;
  float sum = 0.0f;
  for (int64_t i = 0; i < p.len; ++i)
    sum += expf(loadFloat(p.x, base + i * p.inner, p.xType) - mx);
  for (int64_t i = 0; i < p.len; ++i)
    storeFloat(p.out, base + i * p.inner, p.outType,
               expf(loadFloat(p.x, base + i * p.inner, p.xType) - mx) / sum);
}

//===----------------------------------------------------------------------===//
// ROTARY
//===----------------------------------------------------------------------===//

/// Any dtypes and layouts: one thread per element.
__global__ void rotaryAny(const RotaryParams p) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= p.rows * p.width)
    return;
  int64_t row = e / p.width, i = e % p.width;
  float x = loadFloat(p.x, e, p.xType);
  if (i >= p.rotaryDim) {
    storeFloat(p.out, e, p.outType, x);
    return;
  }
  int64_t half = p.rotaryDim / 2;
  float rot;
  if (p.interleaved)
    rot = i % 2 ? loadFloat(p.x, e - 1, p.xType)
                : -loadFloat(p.x, e + 1, p.xType);
  else
    rot = i < half ? -loadFloat(p.x, e + half, p.xType)
                   : loadFloat(p.x, e - half, p.xType);
  float c = loadFloat(p.cos, mapOffset(p.cosRows, row) + i, p.cosType);
  float s = loadFloat(p.sin, mapOffset(p.sinRows, row) + i, p.sinType);
  storeFloat(p.out, e, p.outType, x * c + rot * s);
}

/// One dtype T for x and out, C for cos and sin; every row's rotated part
/// a whole number of 16-byte vectors of T. A thread rotates one vector of
/// each half (non-interleaved: x[i..i+V) with x[i+half..i+half+V); the
/// interleaved pairs sit inside one vector) and maps its row to the cos and
/// sin rows once per vector, not once per element.
template <typename T, typename C>
__global__ void rotaryVec(const RotaryParams p, int64_t units) {
  constexpr int V = vecWidth<T>();
  const int64_t half = p.rotaryDim / 2;
  // Non-interleaved: a unit is a vector of the first half; interleaved: a
  // vector anywhere in the rotated part.
  const int64_t perRow = p.interleaved ? p.rotaryDim / V : half / V;
  const T *x = static_cast<const T *>(p.x);
  T *out = static_cast<T *>(p.out);
  const C *cosT = static_cast<const C *>(p.cos);
  const C *sinT = static_cast<const C *>(p.sin);
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += int64_t(gridDim.x) * blockDim.x) {
    int64_t row = u / perRow, i = (u - row * perRow) * V;
    const T *xr = x + row * p.width;
    T *yr = out + row * p.width;
    const C *cr = cosT + mapOffset(p.cosRows, row);
    const C *sr = sinT + mapOffset(p.sinRows, row);
    float a[V], y[V];
    loadVec(xr + i, a);
    if (p.interleaved) {
      for (int k = 0; k < V; k += 2) {
        float c0 = toFloat(cr[i + k]), s0 = toFloat(sr[i + k]);
        float c1 = toFloat(cr[i + k + 1]), s1 = toFloat(sr[i + k + 1]);
        y[k] = a[k] * c0 - a[k + 1] * s0;
        y[k + 1] = a[k + 1] * c1 + a[k] * s1;
      }
      storeVec(yr + i, y);
      continue;
    }
    float b[V], z[V];
    loadVec(xr + i + half, b);
    for (int k = 0; k < V; ++k) {
      y[k] = a[k] * toFloat(cr[i + k]) - b[k] * toFloat(sr[i + k]);
      z[k] =
          b[k] * toFloat(cr[i + half + k]) + a[k] * toFloat(sr[i + half + k]);
    }
    storeVec(yr + i, y);
    storeVec(yr + i + half, z);
  }
}

/// The unrotated tail of each row (partial rotary), copied.
template <typename T> __global__ void rotaryTail(const RotaryParams p) {
  const int64_t tail = p.width - p.rotaryDim, n = p.rows * tail;
  const T *x = static_cast<const T *>(p.x);
  T *out = static_cast<T *>(p.out);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    int64_t at = (e / tail) * p.width + p.rotaryDim + e % tail;
    out[at] = x[at];
  }
}

template <typename T, typename C>
cudaError_t launchRotaryVec(const RotaryParams &p, cudaStream_t stream) {
  constexpr int kThreads = 256;
  constexpr int V = vecWidth<T>();
  int64_t units = p.rows * (p.interleaved ? p.rotaryDim : p.rotaryDim / 2) / V;
  const unsigned kMaxBlocks = 65536;
  unsigned blocks = std::min(blocksFor(units, kThreads), kMaxBlocks);
  rotaryVec<T, C><<<blocks, kThreads, 0, stream>>>(p, units);
  if (p.width > p.rotaryDim) {
    unsigned tail = std::min(
        blocksFor(p.rows * (p.width - p.rotaryDim), kThreads), kMaxBlocks);
    rotaryTail<T><<<tail, kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

/// Whether the vector kernel of element size `size` can run p.
bool rotaryVecFits(const RotaryParams &p, int size) {
  int64_t v = 16 / size;
  int64_t unit = p.interleaved ? p.rotaryDim : p.rotaryDim / 2;
  return p.rotaryDim % 2 == 0 && unit % v == 0 && p.width % v == 0 &&
         aligned16(p.x) && aligned16(p.out);
}

//===----------------------------------------------------------------------===//
// SWIGLU
//===----------------------------------------------------------------------===//

template <typename T> __global__ void swiglu(const SwigluParams p) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float g = load<T>(p.gate, i, p.gateType);
    float u = load<T>(p.up, i, p.upType);
    // sigmoid without overflow on either side, as the CPU kernel.
    float sig =
        g >= 0.0f ? 1.0f / (1.0f + expf(-g)) : expf(g) / (1.0f + expf(g));
    store<T>(p.out, i, p.outType, g * sig * u);
  }
}

template <typename T>
cudaError_t launchSwigluAs(const SwigluParams &p, cudaStream_t stream) {
  constexpr int kThreads = 256;
  unsigned blocks = blocksFor(p.n, kThreads);
  if (blocks > 65536)
    blocks = 65536;
  swiglu<T><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

bool sameType(int a, int b, int c) { return a == b && b == c; }

} // namespace

cudaError_t launchNorm(const NormParams &p, cudaStream_t stream) {
  if (p.rows == 0 || p.inner == 0)
    return cudaSuccess;
  if (p.xType == p.outType) {
    if (p.xType == kF32)
      return launchNormAs<float>(p, stream);
    if (p.xType == kF16)
      return launchNormAs<__half>(p, stream);
    if (p.xType == kBF16)
      return launchNormAs<__nv_bfloat16>(p, stream);
  }
  return launchNormAs<void>(p, stream);
}

cudaError_t launchSoftmax(const SoftmaxParams &p, cudaStream_t stream) {
  int64_t lines = p.outer * p.inner;
  if (lines == 0 || p.len == 0)
    return cudaSuccess;
  if (p.inner == 1)
    softmaxRows<<<static_cast<unsigned>(lines), p.len >= 1024 ? 256 : 128, 0,
                  stream>>>(p);
  else
    softmaxStrided<<<blocksFor(lines, 128), 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchRotary(const RotaryParams &p, cudaStream_t stream) {
  int64_t n = p.rows * p.width;
  if (n == 0)
    return cudaSuccess;
  if (p.xType == p.outType && p.cosType == p.sinType) {
    bool wideTables = p.cosType == kF32;
    if (p.xType == kBF16 && rotaryVecFits(p, 2) &&
        (wideTables || p.cosType == kBF16))
      return wideTables
                 ? launchRotaryVec<__nv_bfloat16, float>(p, stream)
                 : launchRotaryVec<__nv_bfloat16, __nv_bfloat16>(p, stream);
    if (p.xType == kF16 && rotaryVecFits(p, 2) &&
        (wideTables || p.cosType == kF16))
      return wideTables ? launchRotaryVec<__half, float>(p, stream)
                        : launchRotaryVec<__half, __half>(p, stream);
    if (p.xType == kF32 && wideTables && rotaryVecFits(p, 4))
      return launchRotaryVec<float, float>(p, stream);
  }
  rotaryAny<<<blocksFor(n, 256), 256, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launchSwiglu(const SwigluParams &p, cudaStream_t stream) {
  if (p.n == 0)
    return cudaSuccess;
  if (sameType(p.gateType, p.upType, p.outType)) {
    if (p.outType == kF32)
      return launchSwigluAs<float>(p, stream);
    if (p.outType == kF16)
      return launchSwigluAs<__half>(p, stream);
    if (p.outType == kBF16)
      return launchSwigluAs<__nv_bfloat16>(p, stream);
  }
  return launchSwigluAs<void>(p, stream);
}

} // namespace weft::runtime::cuda::kernels
