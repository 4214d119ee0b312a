// Float conversions on the GPU.
#include "runtime/backends/cuda/CudaConvert.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

namespace weft::runtime::cuda {

namespace {

__device__ float toFloat(float v) { return v; }
__device__ float toFloat(__half v) { return __half2float(v); }
__device__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ T fromFloat(float v);
template <> __device__ float fromFloat<float>(float v) { return v; }
template <> __device__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <> __device__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename From, typename To>
__global__ void convertKernel(const From *src, To *dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = fromFloat<To>(toFloat(src[i]));
}

template <typename From, typename To>
cudaError_t launch(const void *src, void *dst, int64_t n, cudaStream_t s) {
  int64_t blocks = (n + 255) / 256;
  unsigned grid = static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
  convertKernel<From, To><<<grid ? grid : 1, 256, 0, s>>>(
      static_cast<const From *>(src), static_cast<To *>(dst), n);
  return cudaGetLastError();
}

template <typename From>
cudaError_t launchTo(DType to, const void *src, void *dst, int64_t n,
                     cudaStream_t s) {
  switch (to) {
  case DType::F32:
    return launch<From, float>(src, dst, n, s);
  case DType::F16:
    return launch<From, __half>(src, dst, n, s);
  case DType::BF16:
    return launch<From, __nv_bfloat16>(src, dst, n, s);
  default:
    return cudaErrorInvalidValue;
  }
}

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

} // namespace

Status convertOnDevice(DType from, const void *src, DType to, void *dst,
                       int64_t n, cudaStream_t stream) {
  if (!isFloat(from) || !isFloat(to))
    return errorStatus("cannot convert " + dtypeName(from) + " to " +
                       dtypeName(to) + " on the GPU");
  if (n == 0)
    return okStatus();
  cudaError_t err;
  switch (from) {
  case DType::F32:
    err = launchTo<float>(to, src, dst, n, stream);
    break;
  case DType::F16:
    err = launchTo<__half>(to, src, dst, n, stream);
    break;
  default:
    err = launchTo<__nv_bfloat16>(to, src, dst, n, stream);
  }
  if (err != cudaSuccess)
    return errorStatus(std::string("converting on the GPU: ") +
                       cudaGetErrorString(err));
  return okStatus();
}

} // namespace weft::runtime::cuda
