// The one-shot all-reduce kernel (PeerAllReduce.h).
//
// Block b of every member handles the same 16-byte vectors of the payload
// (b, b + grid, ...: the mapping depends only on the count, which every
// member shares), so a barrier per block suffices: block b writes its
// vectors into its member's place in every member's slot, raises its flag
// in every other member's buffer, waits for theirs in its own, then sums
// its vectors over the places of its own slot. The flag holds the block's
// call number; a flag at or past the current call means that member's
// block b has written its vectors here for this call.
#include "runtime/backends/cuda/PeerAllReduce.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace weft::runtime::cuda {

namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ uint32_t loadAcquire(const uint32_t *p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];\n"
               : "=r"(v)
               : "l"(p)
               : "memory");
  return v;
}

__device__ __forceinline__ void storeRelease(uint32_t *p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;\n" ::"l"(p), "r"(v)
               : "memory");
}

__device__ __forceinline__ uint64_t globalTimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) {
  return x;
}
template <> __device__ __forceinline__ __half fromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

/// 16 bytes as elements.
template <typename T> union Vec {
  static constexpr int kCount = 16 / sizeof(T);
  uint4 bits;
  T e[kCount];
};

template <typename T>
__device__ __forceinline__ uint4 loadVec(const T *p, int64_t v, bool aligned) {
  Vec<T> x;
  if (aligned) {
    x.bits = reinterpret_cast<const uint4 *>(p)[v];
  } else {
#pragma unroll
    for (int j = 0; j < Vec<T>::kCount; ++j)
      x.e[j] = p[v * Vec<T>::kCount + j];
  }
  return x.bits;
}

template <typename T>
__device__ __forceinline__ void storeVec(T *p, int64_t v, uint4 bits,
                                         bool aligned) {
  if (aligned) {
    reinterpret_cast<uint4 *>(p)[v] = bits;
    return;
  }
  Vec<T> x;
  x.bits = bits;
#pragma unroll
  for (int j = 0; j < Vec<T>::kCount; ++j)
    p[v * Vec<T>::kCount + j] = x.e[j];
}

struct Args {
  PeerGroup g;
  const void *in;
  void *out;
  int64_t count;
  bool inAligned, outAligned;
};

/// Raises this block's flag in every other member's buffer to `value`, then
/// waits until theirs here reach it (or the timeout: then false, with the
/// error word set). Every thread of the block calls it.
template <int N>
__device__ __forceinline__ bool barrier(const Args &a, uint32_t value,
                                        int &failed) {
  const int block = blockIdx.x, t = threadIdx.x, self = a.g.self;
  __syncthreads();
  if (t < N && t != self) {
    __threadfence_system();
    auto *theirs = static_cast<uint32_t *>(a.g.buffers[t]);
    storeRelease(theirs + block * kPeerMaxRanks + self, value);
    const uint32_t *flag = static_cast<const uint32_t *>(a.g.buffers[self]) +
                           block * kPeerMaxRanks + t;
    uint64_t deadline = 0;
    for (uint32_t spins = 0;
         static_cast<int32_t>(loadAcquire(flag) - value) < 0; ++spins) {
      if (spins % 1024)
        continue;
      uint64_t now = globalTimer();
      if (!deadline) {
        deadline = now + a.g.timeoutNs;
      } else if (now > deadline) {
        *reinterpret_cast<volatile uint32_t *>(a.g.error) = 1;
        failed = 1;
        break;
      }
    }
  }
  __syncthreads();
  return !failed;
}

/// The sum in group order of vector v of `N` arrays.
template <typename T, int N>
__device__ __forceinline__ uint4 sumVectors(const T *const (&from)[N],
                                            int64_t v) {
  constexpr int kPer = Vec<T>::kCount;
  Vec<T> parts[N];
#pragma unroll
  for (int r = 0; r < N; ++r)
    parts[r].bits = __ldcg(reinterpret_cast<const uint4 *>(from[r]) + v);
  Vec<T> sum;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    float acc = 0.0f;
#pragma unroll
    for (int r = 0; r < N; ++r)
      acc += toFloat(parts[r].e[j]);
    sum.e[j] = fromFloat<T>(acc);
  }
  return sum.bits;
}

/// `N`: the group's size. One shot: every member writes its whole payload
/// into its place in every member's slot; one barrier; each sums the
/// places of its own slot. Two shot (a multiple of N vectors): chunk c of
/// every payload goes to member c, which sums it (a reduce-scatter) and
/// writes the sum into every member's slot (an all-gather): each member
/// sends 2 (N - 1) / N payloads rather than N - 1, for one more barrier.
template <typename T, int N, bool TwoShot>
__global__ void __launch_bounds__(kThreads) peerAllReduce(Args a) {
  constexpr int kPer = Vec<T>::kCount;
  __shared__ uint32_t callShared;
  __shared__ int failed;
  const int block = blockIdx.x, t = threadIdx.x, self = a.g.self;
  if (t == 0) {
    callShared = a.g.epochs[block] + 1;
    failed = 0;
  }
  __syncthreads();
  const uint32_t call = callShared;
  // Flags rise by two per call: the first barrier of a two-shot call waits
  // for 2 call - 1, the last barrier of every call for 2 call.
  const uint32_t done = 2 * call;
  // This call's slot in any member's buffer.
  const uint64_t slot = kPeerFlagBytes + (call & 1) * a.g.slotBytes;
  auto at = [&](int r, uint64_t offset) {
    return reinterpret_cast<T *>(static_cast<char *>(a.g.buffers[r]) + slot +
                                 offset);
  };
  const T *in = static_cast<const T *>(a.in);
  T *out = static_cast<T *>(a.out);
  const int64_t vectors = a.count / kPer, tail = a.count - vectors * kPer;
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  const int64_t first = int64_t(block) * kThreads + t;

  if constexpr (!TwoShot) {
    // Member r's place: payloads of up to g.placeBytes.
    T *places[N];
    const T *own[N];
#pragma unroll
    for (int r = 0; r < N; ++r) {
      places[r] = at(r, self * a.g.placeBytes);
      own[r] = at(self, r * a.g.placeBytes);
    }
    for (int64_t v = first; v < vectors; v += stride) {
      uint4 x = loadVec(in, v, a.inAligned);
#pragma unroll
      for (int r = 0; r < N; ++r)
        reinterpret_cast<uint4 *>(places[r])[v] = x;
    }
    if (block == 0 && t < tail) {
      T x = in[vectors * kPer + t];
#pragma unroll
      for (int r = 0; r < N; ++r)
        places[r][vectors * kPer + t] = x;
    }
    if (!barrier<N>(a, done, failed))
      return;
    for (int64_t v = first; v < vectors; v += stride)
      storeVec(out, v, sumVectors<T, N>(own, v), a.outAligned);
    if (block == 0 && t < tail) {
      int64_t i = vectors * kPer + t;
      float acc = 0.0f;
#pragma unroll
      for (int r = 0; r < N; ++r)
        acc += toFloat(__ldcg(own[r] + i));
      out[i] = fromFloat<T>(acc);
    }
  } else {
    // The slot holds the chunks every member sent here (member r's at r
    // chunks), then the gathered sums (chunk c at c chunks past the
    // payload).
    const int64_t chunk = vectors / N;
    const uint64_t chunkBytes = uint64_t(chunk) * 16,
                   gathered = uint64_t(N) * chunkBytes;
    for (int64_t v = first; v < chunk; v += stride)
#pragma unroll
      for (int c = 0; c < N; ++c)
        reinterpret_cast<uint4 *>(at(c, self * chunkBytes))[v] =
            loadVec(in, c * chunk + v, a.inAligned);
    if (!barrier<N>(a, done - 1, failed))
      return;
    const T *mine[N];
#pragma unroll
    for (int r = 0; r < N; ++r)
      mine[r] = at(self, r * chunkBytes);
    for (int64_t v = first; v < chunk; v += stride) {
      uint4 sum = sumVectors<T, N>(mine, v);
#pragma unroll
      for (int r = 0; r < N; ++r)
        reinterpret_cast<uint4 *>(at(r, gathered + self * chunkBytes))[v] = sum;
    }
    if (!barrier<N>(a, done, failed))
      return;
    // The vectors this block read from `in` (which may be `out`): no other
    // block of this member may still be reading what it overwrites.
    const uint4 *sums = reinterpret_cast<const uint4 *>(at(self, gathered));
    for (int64_t v = first; v < chunk; v += stride)
#pragma unroll
      for (int c = 0; c < N; ++c)
        storeVec(out, c * chunk + v, __ldcg(sums + c * chunk + v),
                 a.outAligned);
  }
  if (t == 0)
    a.g.epochs[block] = call;
}

template <typename T, bool TwoShot>
cudaError_t launchFor(const Args &a, int size, cudaStream_t stream) {
  dim3 grid(kPeerBlocks), threads(kThreads);
  switch (size) {
  case 2:
    peerAllReduce<T, 2, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 3:
    peerAllReduce<T, 3, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 4:
    peerAllReduce<T, 4, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 5:
    peerAllReduce<T, 5, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 6:
    peerAllReduce<T, 6, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 7:
    peerAllReduce<T, 7, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  case 8:
    peerAllReduce<T, 8, TwoShot><<<grid, threads, 0, stream>>>(a);
    break;
  default:
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launchFor(const Args &a, bool twoShot, cudaStream_t stream) {
  return twoShot ? launchFor<T, true>(a, a.g.size, stream)
                 : launchFor<T, false>(a, a.g.size, stream);
}

} // namespace

bool peerAllReduceTakes(const PeerGroup &g, PeerDType dtype, int64_t count) {
  uint64_t size = dtype == PeerDType::F32 ? 4 : 2;
  uint64_t bytes = uint64_t(count) * size;
  if (count < 0 || g.size < 2 || g.size > kPeerMaxRanks || bytes > g.limit)
    return false;
  return bytes <= g.placeBytes ||
         (bytes % (16 * uint64_t(g.size)) == 0 && 2 * bytes <= g.slotBytes);
}

cudaError_t launchPeerAllReduce(const PeerGroup &g, PeerDType dtype,
                                const void *in, void *out, int64_t count,
                                cudaStream_t stream) {
  if (!peerAllReduceTakes(g, dtype, count) || g.self < 0 || g.self >= g.size ||
      !g.epochs || !g.error)
    return cudaErrorInvalidValue;
  if (count == 0)
    return cudaSuccess;
  uint64_t bytes = uint64_t(count) * (dtype == PeerDType::F32 ? 4 : 2);
  bool twoShot = bytes > g.placeBytes;
  Args a{g,
         in,
         out,
         count,
         reinterpret_cast<uintptr_t>(in) % 16 == 0,
         reinterpret_cast<uintptr_t>(out) % 16 == 0};
  switch (dtype) {
  case PeerDType::F32:
    return launchFor<float>(a, twoShot, stream);
  case PeerDType::F16:
    return launchFor<__half>(a, twoShot, stream);
  case PeerDType::BF16:
    return launchFor<__nv_bfloat16>(a, twoShot, stream);
  }
  return cudaErrorInvalidValue;
}

} // namespace weft::runtime::cuda
