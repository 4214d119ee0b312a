// PAGED_ATTENTION: the new tokens' k and v stored into the paged KV cache,
// then each token's attention over positions 0..p of its row, read through
// the block table. One kernel serves prefill and decode: a block takes a
// tile of tokens and one kv head (so the query heads sharing it read each
// K/V chunk once, from shared memory) and one range of positions; decode
// splits the context over many blocks (flash-decoding) and merges the
// partial softmax sums in a second kernel. Online softmax in f32.
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

} // namespace

int64_t planPagedAttention(PagedAttentionParams &p, int sms) {
  int64_t group = p.hq / p.hkv;
  // Decode (few tokens): a token per block, its context split over
  // blocks. Prefill: tiles of tokens sharing each K/V chunk.
  bool decode = p.tokens <= 64;
  p.tileTokens =
      decode ? 1 : static_cast<int>(std::max<int64_t>(1, 16 / group));
  int64_t tiles = (p.tokens + p.tileTokens - 1) / p.tileTokens;
  int64_t chunks = std::max<int64_t>(
      1, (p.blocksPerSeq * p.blockSize + kPagedChunk - 1) / kPagedChunk);
  int64_t splits = 1;
  if (decode) {
    int64_t base = std::max<int64_t>(1, tiles * p.hkv);
    splits = (2 * int64_t(sms) + base - 1) / base;
    // At least 4 chunks a split, at most 256 splits.
    splits = std::clamp<int64_t>(splits, 1,
                                 std::min<int64_t>((chunks + 3) / 4, 256));
  }
  int64_t perSplit = (chunks + splits - 1) / splits;
  p.splitLen = perSplit * kPagedChunk;
  p.splits = static_cast<int>((chunks + perSplit - 1) / perSplit);
  return p.splits > 1 ? p.tokens * p.hq * p.splits * (p.dv + 2) : 0;
}

cudaError_t preparePagedAttention(const PagedAttentionParams &p) {
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
