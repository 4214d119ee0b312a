// Device helpers of the library kernels: element loads and stores by
// runtime dtype, index maps, warp and block reductions.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_SUPPORT_CUH
#define WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_SUPPORT_CUH

#include "runtime/backends/cuda/kernels/Kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace weft::runtime::cuda::kernels {

/// Blocks for n items of `threads` each, at least one (an empty grid is a
/// launch error).
inline unsigned blocksFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1)
    blocks = 1;
  return static_cast<unsigned>(blocks < 0x7fffffff ? blocks : 0x7fffffff);
}

/// Whether ptr may be read or written by 16-byte vectors.
inline bool aligned16(const void *ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

/// Element i of a float tensor (f32, f16, bf16, f64) as float; f64 rounds
/// to float like the CPU kernels' float staging.
__device__ __forceinline__ float loadFloat(const void *p, int64_t i, int type) {
  switch (type) {
  case kF16:
    return __half2float(static_cast<const __half *>(p)[i]);
  case kBF16:
    return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
  case kF64:
    return static_cast<float>(static_cast<const double *>(p)[i]);
  default:
    return static_cast<const float *>(p)[i];
  }
}

/// Stores v into element i of a float tensor, rounding to nearest even.
__device__ __forceinline__ void storeFloat(void *p, int64_t i, int type,
                                           float v) {
  switch (type) {
  case kF16:
    static_cast<__half *>(p)[i] = __float2half_rn(v);
    return;
  case kBF16:
    static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v);
    return;
  case kF64:
    static_cast<double *>(p)[i] = v;
    return;
  default:
    static_cast<float *>(p)[i] = v;
  }
}

/// Element i of an integer tensor (or BOOL) as int64.
__device__ __forceinline__ int64_t loadInt(const void *p, int64_t i, int type) {
  switch (type) {
  case kI32:
    return static_cast<const int32_t *>(p)[i];
  case kI16:
    return static_cast<const int16_t *>(p)[i];
  case kI8:
    return static_cast<const int8_t *>(p)[i];
  case kU8:
  case kBool:
    return static_cast<const uint8_t *>(p)[i];
  default:
    return static_cast<const int64_t *>(p)[i];
  }
}

/// Stores v wrapped to an integer dtype's width (BOOL: v != 0).
__device__ __forceinline__ void storeInt(void *p, int64_t i, int type,
                                         int64_t v) {
  switch (type) {
  case kI32:
    static_cast<int32_t *>(p)[i] = static_cast<int32_t>(v);
    return;
  case kI16:
    static_cast<int16_t *>(p)[i] = static_cast<int16_t>(v);
    return;
  case kI8:
    static_cast<int8_t *>(p)[i] = static_cast<int8_t>(v);
    return;
  case kU8:
    static_cast<uint8_t *>(p)[i] = static_cast<uint8_t>(v);
    return;
  case kBool:
    static_cast<uint8_t *>(p)[i] = v != 0;
    return;
  default:
    static_cast<int64_t *>(p)[i] = v;
  }
}

__device__ __forceinline__ bool isFloatType(int type) {
  return type >= kF32 && type <= kF64;
}

/// The offset a map gives the row-major position `linear`.
__device__ __forceinline__ int64_t mapOffset(const IndexMap &m,
                                             int64_t linear) {
  int64_t off = 0;
  for (int d = m.rank - 1; d >= 0; --d) {
    int64_t dim = m.shape[d];
    off += (linear % dim) * m.stride[d];
    linear /= dim;
  }
  return off;
}

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Sum (or max) over the block, returned to every thread. `scratch` holds
/// 32 floats; the block's size is a multiple of 32.
template <bool Max>
__device__ __forceinline__ float blockReduce(float v, float *scratch) {
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int warps = blockDim.x / 32;
  v = Max ? warpMax(v) : warpSum(v);
  __syncthreads(); // scratch may still be read by a previous reduction
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  float r = lane < warps ? scratch[lane] : (Max ? -INFINITY : 0.0f);
  return Max ? warpMax(r) : warpSum(r);
}

} // namespace weft::runtime::cuda::kernels

#endif // WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_SUPPORT_CUH
