// PAGED_ATTENTION: the new tokens' k and v stored into the paged KV cache,
// then each token's attention over positions 0..p of its row, read through
// the block table. Online softmax in f32.
//
// Two kernels. Decode (a few tokens, or no more tokens than rows) takes one
// block per token, kv head and split of the context (flash-decoding): the
// block stores its token's k and v, reads every other position straight
// from the cache into registers (positions new in this step from the step's
// own k and v, so nothing waits for the store), and the last split of a
// token to finish merges the splits; one launch in all. The general kernel
// (prefill, and shapes the decode kernel does not take) stores first, then
// takes a tile of tokens and one kv head (so the query heads sharing it
// read each K/V chunk once, from shared memory) and one range of
// positions, and merges split contexts in a second kernel.
#include "runtime/backends/cuda/kernels/Support.cuh"

#include <algorithm>
#include <mutex>

namespace weft::runtime::cuda::kernels {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

/// Elements of one 16-byte vector of a `type` tensor.
__host__ __device__ inline int vectorWidth(int type) {
  return type == kF32 ? 4 : 8;
}

/// Loads 16 bytes of `type` elements at element offset `i` as floats.
__device__ __forceinline__ void loadVector(const void *p, int64_t i, int type,
                                           float *dst) {
  if (type == kF32) {
    float4 v =
        *reinterpret_cast<const float4 *>(static_cast<const float *>(p) + i);
    dst[0] = v.x;
    dst[1] = v.y;
    dst[2] = v.z;
    dst[3] = v.w;
    return;
  }
  uint4 raw =
      *reinterpret_cast<const uint4 *>(static_cast<const uint16_t *>(p) + i);
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    if (type == kBF16) {
      __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162 *>(&words[w]);
      float2 f = __bfloat1622float2(h);
      dst[2 * w] = f.x;
      dst[2 * w + 1] = f.y;
    } else {
      __half2 h = *reinterpret_cast<const __half2 *>(&words[w]);
      float2 f = __half22float2(h);
      dst[2 * w] = f.x;
      dst[2 * w + 1] = f.y;
    }
  }
}

/// The cache slot (element offset of head 0) of position `pos` in row
/// `row`, or -1 where the block table points outside the cache.
__device__ __forceinline__ int64_t cacheSlot(const PagedAttentionParams &p,
                                             int64_t row, int64_t pos,
                                             int64_t width) {
  if (row < 0 || row >= p.rows || pos < 0)
    return -1;
  int64_t index = pos / p.blockSize;
  if (index >= p.blocksPerSeq)
    return -1;
  int64_t block = p.blockTables[row * p.blocksPerSeq + index];
  if (block < 0 || block >= p.blocks)
    return -1;
  return (block * p.blockSize + pos % p.blockSize) * p.hkv * width;
}

/// Stores every non-padding token's k and v at its cache slot.
__global__ void storeKvKernel(PagedAttentionParams p, int elemSize) {
  int64_t kRow = p.hkv * p.d, vRow = p.hkv * p.dv;
  int64_t total = p.tokens * (kRow + vRow);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    bool isK = e < p.tokens * kRow;
    int64_t rowLen = isK ? kRow : vRow;
    int64_t local = isK ? e : e - p.tokens * kRow;
    int64_t t = local / rowLen, r = local % rowLen;
    int64_t slot =
        cacheSlot(p, p.tokenSeq[t], p.positions[t], isK ? p.d : p.dv);
    if (slot < 0)
      continue;
    const char *src = static_cast<const char *>(isK ? p.k : p.v);
    char *dst = static_cast<char *>(isK ? p.kCache : p.vCache);
    int64_t from = (t * rowLen + r) * elemSize, to = (slot + r) * elemSize;
    if (elemSize == 4)
      *reinterpret_cast<float *>(dst + to) =
          *reinterpret_cast<const float *>(src + from);
    else
      *reinterpret_cast<uint16_t *>(dst + to) =
          *reinterpret_cast<const uint16_t *>(src + from);
  }
}

/// Shared memory of the attention kernel, in floats.
__host__ __device__ inline int64_t sharedFloats(int64_t pairs, int64_t d,
                                                int64_t dv) {
  return pairs * (d + dv + 2) + kPagedChunk * (d + 1) + kPagedChunk * dv +
         kWarps * kPagedChunk;
}

/// Stages positions [c, c + kPagedChunk) of `row`, kv head `h`, into
/// `dst` (rows `stride` floats apart); positions past `last` or outside the
/// cache read as zero.
__device__ void stageChunk(const PagedAttentionParams &p, const void *cache,
                           int64_t width, int64_t stride, int64_t row,
                           int64_t c, int64_t last, int64_t h, float *dst) {
  int vec = vectorWidth(p.dataType);
  bool vectors = width % vec == 0;
  int step = vectors ? vec : 1;
  int64_t perRow = width / step;
  for (int64_t i = threadIdx.x; i < kPagedChunk * perRow; i += blockDim.x) {
    int64_t j = i / perRow, e = (i % perRow) * step;
    int64_t pos = c + j;
    int64_t slot = pos <= last ? cacheSlot(p, row, pos, width) : -1;
    float *out = dst + j * stride + e;
    if (slot < 0) {
      for (int q = 0; q < step; ++q)
        out[q] = 0;
      continue;
    }
    int64_t at = slot + h * width + e;
    if (vectors) {
      float vals[8];
      loadVector(cache, at, p.dataType, vals);
#pragma unroll
      for (int q = 0; q < 8; ++q)
        if (q < step)
          out[q] = vals[q];
    } else {
      out[0] = loadFloat(cache, at, p.dataType);
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    pagedAttentionKernel(PagedAttentionParams p) {
  extern __shared__ float shared[];
  const int64_t group = p.hq / p.hkv;
  const int64_t pairs = p.tileTokens * group;
  const int64_t t0 = blockIdx.x * int64_t(p.tileTokens);
  const int64_t h = blockIdx.y;
  const int split = blockIdx.z;
  float *qS = shared;
  float *accS = qS + pairs * p.d;
  float *mS = accS + pairs * p.dv;
  float *lS = mS + pairs;
  float *kS = lS + pairs;
  float *vS = kS + kPagedChunk * (p.d + 1);
  float *weights = vS + kPagedChunk * p.dv + (threadIdx.x / 32) * kPagedChunk;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  // Each pair's query row (scaled), an empty accumulator.
  for (int64_t i = threadIdx.x; i < pairs * p.d; i += blockDim.x) {
    int64_t pair = i / p.d, e = i % p.d;
    int64_t t = t0 + pair / group, head = h * group + pair % group;
    qS[i] =
        t < p.tokens
            ? loadFloat(p.q, (t * p.hq + head) * p.d + e, p.dataType) * p.scale
            : 0.0f;
  }
  for (int64_t i = threadIdx.x; i < pairs * p.dv; i += blockDim.x)
    accS[i] = 0;
  for (int64_t i = threadIdx.x; i < pairs; i += blockDim.x) {
    mS[i] = -INFINITY;
    lS[i] = 0;
  }

  // Split s takes chunks s, s + splits, s + 2 * splits, ...: however short
  // the real context (the split count is fixed by max_seq), its chunks are
  // spread over all splits rather than queued in the first.
  const int64_t begin = split * int64_t(kPagedChunk);
  const int64_t stride = p.splits * int64_t(kPagedChunk);
  // The tile's rows one at a time (a packed prefill may change row inside
  // a tile), each over the positions its tokens see in this split.
  for (int ti = 0; ti < p.tileTokens; ++ti) {
    int64_t t = t0 + ti;
    if (t >= p.tokens)
      break;
    int64_t row = p.tokenSeq[t];
    if (row < 0)
      continue;
    bool seen = false;
    int64_t last = -1;
    for (int tj = 0; tj < p.tileTokens && t0 + tj < p.tokens; ++tj) {
      if (p.tokenSeq[t0 + tj] != row)
        continue;
      seen |= tj < ti;
      last = max(last, p.positions[t0 + tj]);
    }
    if (seen)
      continue;
    int64_t stop = last + 1;
    for (int64_t c = begin; c < stop; c += stride) {
      __syncthreads(); // the previous chunk is consumed
      stageChunk(p, p.kCache, p.d, p.d + 1, row, c, last, h, kS);
      stageChunk(p, p.vCache, p.dv, p.dv, row, c, last, h, vS);
      __syncthreads();
      for (int64_t pair = warp; pair < pairs; pair += kWarps) {
        int64_t tok = t0 + pair / group;
        if (tok >= p.tokens || p.tokenSeq[tok] != row)
          continue;
        int64_t pos = c + lane;
        bool visible = pos <= p.positions[tok];
        float score = -INFINITY;
        if (visible) {
          const float *qr = qS + pair * p.d, *kr = kS + lane * (p.d + 1);
          float s = 0;
          for (int64_t e = 0; e < p.d; ++e)
            s = fmaf(qr[e], kr[e], s);
          score = s;
        }
        float chunkMax = warpMax(score);
        if (chunkMax == -INFINITY)
          continue;
        float mOld = mS[pair];
        float mNew = fmaxf(mOld, chunkMax);
        float weight = visible ? __expf(score - mNew) : 0.0f;
        float correction = mOld == -INFINITY ? 0.0f : __expf(mOld - mNew);
        float sum = warpSum(weight);
        weights[lane] = weight;
        __syncwarp();
        float *acc = accS + pair * p.dv;
        for (int64_t e = lane; e < p.dv; e += 32) {
          float a = 0;
#pragma unroll 8
          for (int j = 0; j < kPagedChunk; ++j)
            a = fmaf(weights[j], vS[j * p.dv + e], a);
          acc[e] = acc[e] * correction + a;
        }
        __syncwarp();
        if (lane == 0) {
          mS[pair] = mNew;
          lS[pair] = lS[pair] * correction + sum;
        }
        __syncwarp();
      }
    }
  }
  __syncthreads();

  for (int64_t i = threadIdx.x; i < pairs * p.dv; i += blockDim.x) {
    int64_t pair = i / p.dv, e = i % p.dv;
    int64_t t = t0 + pair / group, head = h * group + pair % group;
    if (t >= p.tokens)
      continue;
    if (p.splits == 1) {
      float l = lS[pair];
      storeFloat(p.out, (t * p.hq + head) * p.dv + e, p.dataType,
                 l > 0 ? accS[i] / l : 0.0f);
      continue;
    }
    float *part =
        p.partials + ((t * p.hq + head) * p.splits + split) * (p.dv + 2);
    part[e] = accS[i];
    if (e == 0) {
      part[p.dv] = mS[pair];
      part[p.dv + 1] = lS[pair];
    }
  }
}

/// Merges the splits of each (token, head): softmax-weighted by their
/// maxima.
__global__ void mergeSplitsKernel(PagedAttentionParams p) {
  int64_t index = blockIdx.x; // token * hq + head
  const float *parts = p.partials + index * p.splits * (p.dv + 2);
  float m = -INFINITY;
  for (int s = 0; s < p.splits; ++s)
    m = fmaxf(m, parts[s * (p.dv + 2) + p.dv]);
  float l = 0;
  for (int s = 0; s < p.splits; ++s) {
    float ms = parts[s * (p.dv + 2) + p.dv];
    if (ms != -INFINITY)
      l += __expf(ms - m) * parts[s * (p.dv + 2) + p.dv + 1];
  }
  for (int64_t e = threadIdx.x; e < p.dv; e += blockDim.x) {
    float acc = 0;
    for (int s = 0; s < p.splits; ++s) {
      float ms = parts[s * (p.dv + 2) + p.dv];
      if (ms != -INFINITY)
        acc += __expf(ms - m) * parts[s * (p.dv + 2) + e];
    }
    storeFloat(p.out, index * p.dv + e, p.dataType, l > 0 ? acc / l : 0.0f);
  }
}

/// 16 bytes of T.
template <typename T> struct Vector;
template <> struct Vector<float> {
  static constexpr int kType = kF32;
  static constexpr int N = 4;
  __device__ static float round(float x) { return x; }
  __device__ static uint4 pack(const float *f) {
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]),
                      __float_as_uint(f[2]), __float_as_uint(f[3]));
  }
  __device__ static void unpack(uint4 r, float *f) {
    f[0] = __uint_as_float(r.x);
    f[1] = __uint_as_float(r.y);
    f[2] = __uint_as_float(r.z);
    f[3] = __uint_as_float(r.w);
  }
};
/// Conversions of a pair of 16-bit floats.
__device__ __forceinline__ float2 toFloat2(__nv_bfloat162 h) {
  return __bfloat1622float2(h);
}
__device__ __forceinline__ float2 toFloat2(__half2 h) {
  return __half22float2(h);
}
template <typename Pair> __device__ Pair fromFloats(float a, float b);
template <>
__device__ __forceinline__ __nv_bfloat162 fromFloats(float a, float b) {
  return __floats2bfloat162_rn(a, b);
}
template <> __device__ __forceinline__ __half2 fromFloats(float a, float b) {
  return __floats2half2_rn(a, b);
}

/// 16 bytes of a 16-bit float type, whose pairs are `Pair`.
template <typename Pair, int Type> struct PairVector {
  static constexpr int kType = Type;
  static constexpr int N = 8;
  __device__ static float round(float x) {
    return toFloat2(fromFloats<Pair>(x, 0.0f)).x;
  }
  __device__ static uint4 pack(const float *f) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      Pair h = fromFloats<Pair>(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const uint32_t *>(&h);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
  __device__ static void unpack(uint4 r, float *f) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 x = toFloat2(*reinterpret_cast<const Pair *>(&w[i]));
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    }
  }
};
template <> struct Vector<__nv_bfloat16> : PairVector<__nv_bfloat162, kBF16> {};
template <> struct Vector<__half> : PairVector<__half2, kF16> {};

/// mapOffset for a row index below 2^32 (a rotary row: its dims are a
/// tensor's leading dims), in 32-bit division.
__device__ __forceinline__ int64_t rowOffset(const IndexMap &m, int64_t row) {
  uint32_t linear = static_cast<uint32_t>(row);
  int64_t off = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    uint32_t dim = static_cast<uint32_t>(m.shape[d]);
    off += int64_t(linear % dim) * m.stride[d];
    linear /= dim;
  }
  return off;
}

/// ROTARY of the N elements [part * N, part * N + N) of a head row `x`
/// (D = Parts * N, rotary row `row` of `tables`), rounded to T, into `out`.
/// Every lane of the warp calls it: the halves of a row meet by shuffle.
template <typename T, int Parts>
__device__ __forceinline__ void rotate(const float *x, float *out,
                                       const RotaryTables &tables, int64_t row,
                                       int part, bool interleaved) {
  constexpr int N = Vector<T>::N;
  constexpr int Half = Parts * N / 2;
  float other[N];
#pragma unroll
  for (int n = 0; n < N; ++n)
    other[n] = __shfl_xor_sync(0xffffffffu, x[n], Parts / 2);
  const int64_t c0 = rowOffset(tables.cosRows, row);
  const int64_t s0 = rowOffset(tables.sinRows, row);
  // The tables' N elements: one 16-byte load each where they are T and
  // aligned (the usual gathered tables), else element by element.
  float c[N], s[N];
  const int64_t ce = c0 + part * N, se = s0 + part * N;
  auto vectorOk = [](const void *table, int type, int64_t at) {
    return type == Vector<T>::kType && at % N == 0 &&
           reinterpret_cast<uintptr_t>(table) % 16 == 0;
  };
  if (vectorOk(tables.cos, tables.cosType, ce) &&
      vectorOk(tables.sin, tables.sinType, se)) {
    Vector<T>::unpack(*reinterpret_cast<const uint4 *>(
                          static_cast<const T *>(tables.cos) + ce),
                      c);
    Vector<T>::unpack(*reinterpret_cast<const uint4 *>(
                          static_cast<const T *>(tables.sin) + se),
                      s);
  } else {
#pragma unroll
    for (int n = 0; n < N; ++n) {
      c[n] = loadFloat(tables.cos, ce + n, tables.cosType);
      s[n] = loadFloat(tables.sin, se + n, tables.sinType);
    }
  }
#pragma unroll
  for (int n = 0; n < N; ++n) {
    int e = part * N + n;
    float rot = interleaved ? (n % 2 ? x[n - 1] : -x[n + 1])
                            : (e < Half ? -other[n] : other[n]);
    out[n] = Vector<T>::round(x[n] * c[n] + rot * s[n]);
  }
}

/// Shared memory of the decode kernel, in floats: each position stream's
/// max, sum and accumulator per query head of the group, or the merge's
/// three values per head and split, whichever is more.
__host__ __device__ inline int64_t decodeSharedFloats(int streams, int group,
                                                      int64_t d, int splits) {
  int64_t reduce = int64_t(streams) * group * (d + 2);
  int64_t merge = 3 * int64_t(group) * splits;
  return reduce > merge ? reduce : merge;
}

/// Decode attention: block (t, h, s) takes token t, kv head h and the
/// chunks s, s + splits, ... of t's context. `Parts` lanes hold one K (and
/// V) row of D = Parts * N elements, 16 bytes each; a warp reads 32 / Parts
/// positions at once, each of its position streams kPagedChunk / streams
/// positions of a chunk, all loads in flight before any is used. `Group`
/// is the query heads per kv head, rounded up to a power of two; up to 4,
/// registers are capped for three blocks a multiprocessor (a few bytes
/// spill where the ROTARY code is compiled in, rather than two blocks).
template <typename T, int Parts, int Group>
__global__ void __launch_bounds__(kThreads, Group >= 8 ? 1 : 3)
    pagedDecodeKernel(PagedAttentionParams p) {
  using Vec = Vector<T>;
  constexpr int N = Vec::N;
  constexpr int Subs = 32 / Parts;
  constexpr int Streams = kWarps * Subs;
  constexpr int Per = kPagedChunk / Streams;
  constexpr int64_t D = int64_t(Parts) * N;
  static_assert(kPagedChunk % Streams == 0, "a chunk splits over streams");
  extern __shared__ float shared[];
  __shared__ long long firstNew;
  __shared__ int isLast;

  const int64_t t = blockIdx.x, h = blockIdx.y;
  const int split = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int part = lane % Parts, stream = warp * Subs + lane / Parts;
  const int group = static_cast<int>(p.hq / p.hkv);
  const int64_t row = p.tokenSeq[t], last = p.positions[t];
  const bool live = row >= 0 && row < p.rows && last >= 0 &&
                    last < p.blocksPerSeq * p.blockSize;
  const int64_t outHead = t * p.hq + h * group; // the group's first head
  const int active =
      live ? static_cast<int>(min(int64_t(p.splits), last / kPagedChunk + 1))
           : 1;
  if (split >= active)
    return;
  if (!live) { // padding: zeros
    for (int64_t i = threadIdx.x; i < group * D; i += kThreads)
      storeFloat(p.out, outHead * D + i, p.dataType, 0.0f);
    return;
  }
  const T *kIn = static_cast<const T *>(p.k);
  const T *vIn = static_cast<const T *>(p.v);
  const T *kCache = static_cast<const T *>(p.kCache);
  const T *vCache = static_cast<const T *>(p.vCache);

  // The group's q rows, loaded first: nothing before them is pending.
  uint4 qRaw[Group];
#pragma unroll
  for (int g = 0; g < Group; ++g)
    qRaw[g] =
        g < group
            ? *reinterpret_cast<const uint4 *>(static_cast<const T *>(p.q) +
                                               (outHead + g) * D + part * N)
            : make_uint4(0, 0, 0, 0);

  // The token's own k (warp 0) and v (warp 1) into the cache. No block of
  // this launch reads them there: positions new in this step are read from
  // k and v.
  if (split == 0 && warp < 2) {
    int64_t slot = cacheSlot(p, row, last, D);
    bool isV = warp == 1;
    int64_t e = part * N;
    uint4 raw = *reinterpret_cast<const uint4 *>((isV ? vIn : kIn) +
                                                 (t * p.hkv + h) * D + e);
    if (!isV && p.rotary) { // warp-uniform
      float x[N], r[N];
      Vec::unpack(raw, x);
      rotate<T, Parts>(x, r, p.kRotary, t * p.hkv + h, part, p.interleaved);
      raw = Vec::pack(r);
    }
    if (slot >= 0 && lane < Parts)
      *reinterpret_cast<uint4 *>(static_cast<T *>(isV ? p.vCache : p.kCache) +
                                 slot + h * D + e) = raw;
  }

  // The first position of this row that is new in this step.
  if (threadIdx.x == 0)
    firstNew = last;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < p.tokens; i += kThreads) {
    long long at = p.positions[i];
    if (p.tokenSeq[i] == row && at >= 0 && at < last)
      atomicMin(&firstNew, at);
  }
  __syncthreads();
  const int64_t first = firstNew;

  // Where position `pos`'s k and v are: the step's own rows for new
  // positions (`tok`, the token), else the cache; false where it has
  // neither.
  auto locate = [&](int64_t pos, const T *&kp, const T *&vp, int64_t &tok) {
    tok = -1;
    if (pos > last)
      return false;
    if (pos == last)
      tok = t;
    for (int64_t i = 0; tok < 0 && pos >= first && i < p.tokens; ++i)
      if (p.tokenSeq[i] == row && p.positions[i] == pos)
        tok = i;
    if (tok >= 0) {
      kp = kIn + (tok * p.hkv + h) * D;
      vp = vIn + (tok * p.hkv + h) * D;
      return true;
    }
    int64_t slot = cacheSlot(p, row, pos, D);
    if (slot < 0)
      return false;
    kp = kCache + slot + h * D;
    vp = vCache + slot + h * D;
    return true;
  };

  float q[Group][N];
#pragma unroll
  for (int g = 0; g < Group; ++g) {
    if (g < group) {
      Vec::unpack(qRaw[g], q[g]);
      if (p.rotary) {
        float r[N];
        rotate<T, Parts>(q[g], r, p.qRotary, outHead + g, part, p.interleaved);
#pragma unroll
        for (int n = 0; n < N; ++n)
          q[g][n] = r[n];
      }
#pragma unroll
      for (int n = 0; n < N; ++n)
        q[g][n] *= p.scale;
    } else {
#pragma unroll
      for (int n = 0; n < N; ++n)
        q[g][n] = 0;
    }
  }
  float m[Group], l[Group], acc[Group][N];
#pragma unroll
  for (int g = 0; g < Group; ++g) {
    m[g] = -INFINITY;
    l[g] = 0;
#pragma unroll
    for (int n = 0; n < N; ++n)
      acc[g][n] = 0;
  }

  const int64_t stride = int64_t(p.splits) * kPagedChunk;
  for (int64_t c = int64_t(split) * kPagedChunk; c <= last; c += stride) {
    const T *kp[Per], *vp[Per];
    int64_t tok[Per];
    bool ok[Per];
#pragma unroll
    for (int i = 0; i < Per; ++i)
      ok[i] = locate(c + stream + i * Streams, kp[i], vp[i], tok[i]);
    uint4 kr[Per], vr[Per];
#pragma unroll
    for (int i = 0; i < Per; ++i) {
      kr[i] = vr[i] = make_uint4(0, 0, 0, 0);
      if (ok[i]) {
        kr[i] = *reinterpret_cast<const uint4 *>(kp[i] + part * N);
        vr[i] = *reinterpret_cast<const uint4 *>(vp[i] + part * N);
      }
    }
    float s[Per][Group];
#pragma unroll
    for (int i = 0; i < Per; ++i) {
      float kf[N];
      Vec::unpack(kr[i], kf);
      // A new position's k, not rotated yet (warp-uniform branch).
      if (p.rotary && __any_sync(0xffffffffu, tok[i] >= 0)) {
        float r[N];
        int64_t kRow = (tok[i] >= 0 ? tok[i] : 0) * p.hkv + h;
        rotate<T, Parts>(kf, r, p.kRotary, kRow, part, p.interleaved);
        if (tok[i] >= 0)
#pragma unroll
          for (int n = 0; n < N; ++n)
            kf[n] = r[n];
      }
#pragma unroll
      for (int g = 0; g < Group; ++g) {
        float dot = 0;
#pragma unroll
        for (int n = 0; n < N; ++n)
          dot = fmaf(q[g][n], kf[n], dot);
#pragma unroll
        for (int o = Parts / 2; o > 0; o >>= 1)
          dot += __shfl_xor_sync(0xffffffffu, dot, o);
        s[i][g] = ok[i] ? dot : -INFINITY;
      }
    }
    float vf[Per][N];
#pragma unroll
    for (int i = 0; i < Per; ++i)
      Vec::unpack(vr[i], vf[i]);
#pragma unroll
    for (int g = 0; g < Group; ++g) {
      float mx = m[g];
#pragma unroll
      for (int i = 0; i < Per; ++i)
        mx = fmaxf(mx, s[i][g]);
      if (mx == -INFINITY)
        continue;
      float correction = __expf(m[g] - mx);
      l[g] *= correction;
#pragma unroll
      for (int n = 0; n < N; ++n)
        acc[g][n] *= correction;
#pragma unroll
      for (int i = 0; i < Per; ++i) {
        float w = __expf(s[i][g] - mx);
        l[g] += w;
#pragma unroll
        for (int n = 0; n < N; ++n)
          acc[g][n] = fmaf(w, vf[i][n], acc[g][n]);
      }
      m[g] = mx;
    }
  }

  // The block's streams merged, per head of the group.
  float *mS = shared, *lS = mS + Streams * Group, *aS = lS + Streams * Group;
#pragma unroll
  for (int g = 0; g < Group; ++g) {
    if (part == 0) {
      mS[stream * Group + g] = m[g];
      lS[stream * Group + g] = l[g];
    }
#pragma unroll
    for (int n = 0; n < N; ++n)
      aS[(stream * Group + g) * D + part * N + n] = acc[g][n];
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < group * D; i += kThreads) {
    int g = static_cast<int>(i / D);
    int64_t e = i % D;
    float mx = -INFINITY;
    for (int st = 0; st < Streams; ++st)
      mx = fmaxf(mx, mS[st * Group + g]);
    float sum = 0, a = 0;
    for (int st = 0; st < Streams && mx != -INFINITY; ++st) {
      float ms = mS[st * Group + g];
      if (ms == -INFINITY)
        continue;
      float w = __expf(ms - mx);
      sum += w * lS[st * Group + g];
      a += w * aS[(st * Group + g) * D + e];
    }
    if (p.splits == 1) {
      storeFloat(p.out, (outHead + g) * D + e, p.dataType,
                 sum > 0 ? a / sum : 0.0f);
      continue;
    }
    float *out = p.partials + ((outHead + g) * p.splits + split) * (D + 2);
    out[e] = a;
    if (e == 0) {
      out[D] = mx;
      out[D + 1] = sum;
    }
  }
  if (p.splits == 1)
    return;

  // The last of the token's active splits to finish merges them.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    int *counter = p.counters + t * p.hkv + h;
    isLast = atomicAdd(counter, 1) == active - 1;
    if (isLast)
      *counter = 0; // ready for the next launch
  }
  __syncthreads();
  if (!isLast)
    return;
  __threadfence();
  float *maxes = shared, *sums = maxes + Group * active,
        *weights = sums + Group * active;
  for (int i = threadIdx.x; i < group * active; i += kThreads) {
    int g = i / active, sp = i % active;
    const float *from =
        p.partials + ((outHead + g) * p.splits + sp) * (D + 2) + D;
    maxes[i] = __ldcg(from);
    sums[i] = __ldcg(from + 1);
  }
  __syncthreads();
  if (threadIdx.x < group) {
    const int g = threadIdx.x;
    float mx = -INFINITY, sum = 0;
    for (int sp = 0; sp < active; ++sp)
      mx = fmaxf(mx, maxes[g * active + sp]);
    for (int sp = 0; sp < active; ++sp) {
      float ms = maxes[g * active + sp];
      float w = ms == -INFINITY ? 0.0f : __expf(ms - mx);
      weights[g * active + sp] = w;
      sum += w * sums[g * active + sp];
    }
    for (int sp = 0; sp < active; ++sp)
      weights[g * active + sp] = sum > 0 ? weights[g * active + sp] / sum : 0;
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < group * D; i += kThreads) {
    int g = static_cast<int>(i / D);
    int64_t e = i % D;
    float a = 0;
    for (int sp = 0; sp < active; ++sp)
      a += weights[g * active + sp] *
           __ldcg(p.partials + ((outHead + g) * p.splits + sp) * (D + 2) + e);
    storeFloat(p.out, (outHead + g) * D + e, p.dataType, a);
  }
}

using DecodeKernel = void (*)(PagedAttentionParams);

template <typename T, int Parts> DecodeKernel decodeKernelFor(int group) {
  if (group <= 1)
    return pagedDecodeKernel<T, Parts, 1>;
  if (group <= 2)
    return pagedDecodeKernel<T, Parts, 2>;
  if (group <= 4)
    return pagedDecodeKernel<T, Parts, 4>;
  // Eight query heads of a 256-wide head would spill registers.
  if constexpr (Parts * Vector<T>::N <= 128)
    return pagedDecodeKernel<T, Parts, 8>;
  return nullptr;
}

template <typename T> DecodeKernel decodeKernelFor(int parts, int group) {
  switch (parts) {
  case 8:
    return decodeKernelFor<T, 8>(group);
  case 16:
    return decodeKernelFor<T, 16>(group);
  case 32:
    return decodeKernelFor<T, 32>(group);
  default:
    return nullptr;
  }
}

/// The decode kernel for `p`'s dtype, head dim and group, or null where it
/// does not take them.
DecodeKernel decodeKernel(const PagedAttentionParams &p) {
  int64_t group = p.hq / p.hkv;
  if (p.d != p.dv || group > 8 || p.d % vectorWidth(p.dataType) != 0)
    return nullptr;
  int parts = static_cast<int>(p.d / vectorWidth(p.dataType));
  switch (p.dataType) {
  case kF32:
    return decodeKernelFor<float>(parts, static_cast<int>(group));
  case kBF16:
    return decodeKernelFor<__nv_bfloat16>(parts, static_cast<int>(group));
  case kF16:
    return decodeKernelFor<__half>(parts, static_cast<int>(group));
  default:
    return nullptr;
  }
}

/// The decode kernel's position streams for `p`'s head dim.
int decodeStreams(const PagedAttentionParams &p) {
  return kWarps * 32 / static_cast<int>(p.d / vectorWidth(p.dataType));
}

/// The group the decode kernel is instantiated for.
int decodeGroup(const PagedAttentionParams &p) {
  int64_t group = p.hq / p.hkv;
  return group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
}
} // namespace

int64_t planPagedAttention(PagedAttentionParams &p, int sms) {
  int64_t group = p.hq / p.hkv;
  // The decode kernel: a token per block, the caller allowing it (aligned
  // operands), for a decode step (a few tokens, or one a row at most).
  p.decodeKernel = p.decodeKernel && decodeKernel(p) != nullptr &&
                   p.tokens <= std::max<int64_t>(64, p.rows);
  // Otherwise decode (few tokens): a token per block, its context split
  // over blocks. Prefill: tiles of tokens sharing each K/V chunk.
  bool decode = p.decodeKernel || p.tokens <= 64;
  p.tileTokens =
      decode ? 1 : static_cast<int>(std::max<int64_t>(1, 16 / group));
  int64_t tiles = (p.tokens + p.tileTokens - 1) / p.tileTokens;
  int64_t chunks = std::max<int64_t>(
      1, (p.blocksPerSeq * p.blockSize + kPagedChunk - 1) / kPagedChunk);
  int64_t splits = 1;
  if (decode) {
    int64_t base = std::max<int64_t>(1, tiles * p.hkv);
    splits = (2 * int64_t(sms) + base - 1) / base;
    // At least 4 chunks a split, at most 64 splits (a grid's z limit).
    splits =
        std::clamp<int64_t>(splits, 1, std::min<int64_t>((chunks + 3) / 4, 64));
  }
  int64_t perSplit = (chunks + splits - 1) / splits;
  p.splitLen = perSplit * kPagedChunk;
  p.splits = static_cast<int>((chunks + perSplit - 1) / perSplit);
  return p.splits > 1 ? p.tokens * p.hq * p.splits * (p.dv + 2) : 0;
}

cudaError_t preparePagedAttention(const PagedAttentionParams &p) {
  if (p.decodeKernel)
    return cudaSuccess; // under 48 KiB of shared memory
  // The limit is the kernel's, for every binding: only ever raised.
  static std::mutex mutex;
  static int64_t raised = 48 << 10;
  int64_t pairs = p.tileTokens * (p.hq / p.hkv);
  int64_t bytes = sharedFloats(pairs, p.d, p.dv) * 4;
  std::lock_guard<std::mutex> lock(mutex);
  if (bytes <= raised)
    return cudaSuccess;
  cudaError_t err = cudaFuncSetAttribute(
      pagedAttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
      static_cast<int>(bytes));
  if (err == cudaSuccess)
    raised = bytes;
  return err;
}

cudaError_t launchPagedAttention(const PagedAttentionParams &p,
                                 cudaStream_t stream) {
  if (p.tokens == 0)
    return cudaSuccess;
  if (p.decodeKernel) {
    size_t bytes =
        decodeSharedFloats(decodeStreams(p), decodeGroup(p), p.d, p.splits) * 4;
    dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.hkv),
              static_cast<unsigned>(p.splits));
    decodeKernel(p)<<<grid, kThreads, bytes, stream>>>(p);
    return cudaGetLastError();
  }
  int elemSize = p.dataType == kF32 ? 4 : 2;
  int64_t storeTotal = p.tokens * p.hkv * (p.d + p.dv);
  unsigned storeBlocks = std::min<unsigned>(blocksFor(storeTotal, 256), 4096);
  storeKvKernel<<<storeBlocks, 256, 0, stream>>>(p, elemSize);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return err;
  int64_t pairs = p.tileTokens * (p.hq / p.hkv);
  size_t bytes = sharedFloats(pairs, p.d, p.dv) * 4;
  dim3 grid(static_cast<unsigned>((p.tokens + p.tileTokens - 1) / p.tileTokens),
            static_cast<unsigned>(p.hkv), static_cast<unsigned>(p.splits));
  pagedAttentionKernel<<<grid, kThreads, bytes, stream>>>(p);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return err;
  if (p.splits > 1) {
    mergeSplitsKernel<<<static_cast<unsigned>(p.tokens * p.hq), 128, 0,
                        stream>>>(p);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

} // namespace weft::runtime::cuda::kernels
