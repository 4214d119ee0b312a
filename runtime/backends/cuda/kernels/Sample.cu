// SAMPLE: one block per row. Greedy rows take the first index of the
// largest logit. Others find the top_k and top_p thresholds by radix
// selection over the logits' order-preserving 32-bit keys (four passes of
// 256-bin histograms of counts, or of softmax mass, no sort), then take
// the argmax of z + Gumbel noise over the kept ids, the noise from the
// counter-based hash every backend shares (runtime/steps/Sampling.h).
#include "runtime/backends/cuda/kernels/Support.cuh"
#include "runtime/steps/Sampling.h"

namespace weft::runtime::cuda::kernels {

namespace {

constexpr int kThreads = 512;
constexpr int kBins = 256;

/// A key whose unsigned order is the floats' order.
__device__ __forceinline__ uint32_t orderKey(float f) {
  uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float keyValue(uint32_t key) {
  uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  return __uint_as_float(u);
}

/// (value, index) pairs: the larger value, the smaller index on ties.
__device__ __forceinline__ void better(float &v, int64_t &i, float ov,
                                       int64_t oi) {
  if (ov > v || (ov == v && oi < i) || (v != v && ov == ov)) {
    v = ov;
    i = oi;
  }
}

__device__ int64_t blockArgmax(float v, int64_t i, float *values,
                               int64_t *indices) {
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, v, o);
    int64_t oi = __shfl_xor_sync(0xffffffffu, i, o);
    better(v, i, ov, oi);
  }
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) {
    values[warp] = v;
    indices[warp] = i;
  }
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? values[lane] : -INFINITY;
    i = lane < kThreads / 32 ? indices[lane] : INT64_MAX;
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, v, o);
      int64_t oi = __shfl_xor_sync(0xffffffffu, i, o);
      better(v, i, ov, oi);
    }
    if (lane == 0)
      indices[0] = i;
  }
  __syncthreads();
  return indices[0];
}

struct Row {
  const void *logits;
  int type;
  int64_t base, vocab;
  float temperature;
  __device__ float z(int64_t i) const {
    return loadFloat(logits, base + i, type) / temperature;
  }
};

/// The key of the largest t (among the row's z >= floor) whose `weight`
/// sum over {z >= t} reaches `target`; weights are counts or softmax mass.
template <bool Mass>
__device__ uint32_t radixSelect(const Row &row, float floor, float zmax,
                                float target, float *hist, float *chosen) {
  uint32_t prefix = 0, mask = 0;
  float remaining = target;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < kBins; b += blockDim.x)
      hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < row.vocab; i += blockDim.x) {
      float z = row.z(i);
      if (!(z >= floor))
        continue;
      uint32_t key = orderKey(z);
      if ((key & mask) != prefix)
        continue;
      atomicAdd(&hist[(key >> shift) & 0xff], Mass ? __expf(z - zmax) : 1.0f);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float cum = 0;
      int pick = -1, lowest = 0;
      for (int b = kBins - 1; b >= 0; --b) {
        if (hist[b] <= 0)
          continue;
        lowest = b;
        if (cum + hist[b] >= remaining) {
          pick = b;
          break;
        }
        cum += hist[b];
      }
      // Rounding may leave the target unmet: the lowest non-empty bin.
      if (pick < 0) {
        pick = lowest;
        cum -= hist[lowest];
      }
      chosen[0] = static_cast<float>(pick);
      chosen[1] = remaining - cum;
    }
    __syncthreads();
    uint32_t bin = static_cast<uint32_t>(chosen[0]);
    remaining = chosen[1];
    prefix |= bin << shift;
    mask |= 0xffu << shift;
    __syncthreads();
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads) sampleKernel(SampleParams p) {
  __shared__ float hist[kBins];
  __shared__ float chosen[2];
  __shared__ float values[kThreads / 32];
  __shared__ int64_t indices[kThreads / 32];
  const int64_t r = blockIdx.x;
  const float temperature = p.params[r * 3];
  const float topK = p.params[r * 3 + 1], topP = p.params[r * 3 + 2];
  Row row{p.logits, p.logitsType, r * p.vocab, p.vocab,
          temperature > 0 ? temperature : 1.0f};

  if (!(temperature > 0)) {
    float best = -INFINITY;
    int64_t at = INT64_MAX;
    for (int64_t i = threadIdx.x; i < p.vocab; i += blockDim.x)
      better(best, at, loadFloat(p.logits, row.base + i, p.logitsType), i);
    int64_t pick = blockArgmax(best, at, values, indices);
    if (threadIdx.x == 0)
      p.ids[r] = static_cast<int32_t>(pick < p.vocab ? pick : 0);
    return;
  }

  float floor = -INFINITY;
  int64_t k = static_cast<int64_t>(topK);
  if (k > 0 && k < p.vocab)
    floor =
        keyValue(radixSelect<false>(row, -INFINITY, 0, float(k), hist, chosen));
  if (topP < 1) {
    float zmax = -INFINITY;
    for (int64_t i = threadIdx.x; i < p.vocab; i += blockDim.x)
      zmax = fmaxf(zmax, row.z(i));
    zmax = blockReduce<true>(zmax, values);
    float total = 0;
    for (int64_t i = threadIdx.x; i < p.vocab; i += blockDim.x) {
      float z = row.z(i);
      if (z >= floor)
        total += __expf(z - zmax);
    }
    total = blockReduce<false>(total, values);
    floor = keyValue(radixSelect<true>(
        row, floor, zmax, fmaxf(topP, 0.0f) * total, hist, chosen));
  }

  const uint64_t seed = static_cast<uint64_t>(p.seeds[r * 2]);
  const uint64_t position = static_cast<uint64_t>(p.seeds[r * 2 + 1]);
  float best = -INFINITY;
  int64_t at = INT64_MAX;
  for (int64_t i = threadIdx.x; i < p.vocab; i += blockDim.x) {
    float z = row.z(i);
    if (!(z >= floor))
      continue;
    better(best, at,
           z + steps::sampleGumbel(seed, position, static_cast<uint64_t>(i)),
           i);
  }
  int64_t pick = blockArgmax(best, at, values, indices);
  if (threadIdx.x == 0)
    p.ids[r] = static_cast<int32_t>(pick < p.vocab ? pick : 0);
}

} // namespace

cudaError_t launchSample(const SampleParams &p, cudaStream_t stream) {
  if (p.rows == 0)
    return cudaSuccess;
  sampleKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

} // namespace weft::runtime::cuda::kernels
