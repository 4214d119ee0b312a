// Float conversions on the GPU (weights stored in another float type than
// the plan computes in).
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDACONVERT_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDACONVERT_H

#include "runtime/artifact/DType.h"
#include "runtime/support/Status.h"

#include <cuda_runtime.h>

namespace weft::runtime::cuda {

/// dst[i] = src[i] converted from `from` to `to` (f32, f16, bf16; rounding
/// to nearest even), for n elements, enqueued on `stream`.
Status convertOnDevice(DType from, const void *src, DType to, void *dst,
                       int64_t n, cudaStream_t stream);

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDACONVERT_H
