// The CUDA backend's view of a plan step: device tensors and a step bound to
// them once (shapes checked, launch parameters computed) and launched any
// number of times, also inside a CUDA graph capture.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDASTEP_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDASTEP_H

#include "runtime/artifact/DType.h"
#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <cuda_runtime.h>

#include <memory>
#include <span>
#include <string>

namespace weft::runtime::cuda {

/// A row-major tensor in device memory (borrowed).
struct DeviceTensor {
  DType dtype = DType::DTYPE_UNSPECIFIED;
  Shape shape;
  void *data = nullptr;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numElements() const { return runtime::numElements(shape); }
  uint64_t bytes() const { return numElements() * dtypeSize(dtype); }
};

/// A step bound to its device operands. launch() only enqueues work on
/// `stream` (no allocation, no synchronization, no host reads of device
/// data), so that it can be captured into a CUDA graph.
class BoundStep {
public:
  virtual ~BoundStep() = default;
  virtual Status launch(cudaStream_t stream) = 0;
};

/// "cudaErrorInvalidValue: invalid argument".
inline std::string cudaErrorString(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

/// An error status for a failed CUDA runtime call, naming what was done.
inline Status cudaStatus(cudaError_t err, const std::string &what) {
  if (err == cudaSuccess)
    return okStatus();
  return errorStatus(what + ": " + cudaErrorString(err));
}

/// Binds a step run by the runtime's own kernels (every kind but
/// ELEMENTWISE, GEMM, COPY, COLLECTIVE, SEND and RECV). `inputs` and
/// `outputs` follow the step's operand order; outputs never overlap inputs.
/// Refuses, with the reason, a step it cannot run (an unsupported kind,
/// dtype, shape or attribute).
Result<std::unique_ptr<BoundStep>>
bindLibraryStep(const artifact::Step &step,
                std::span<const DeviceTensor> inputs,
                std::span<const DeviceTensor> outputs);

/// Binds a PAGED_ATTENTION step: inputs q, k, v, k_cache, v_cache,
/// positions, token_seq, block_tables (artifact.proto); the caches are
/// written. Launch shapes (tiles, context splits) are fixed here from the
/// static shapes; the real lengths are read on the device.
Result<std::unique_ptr<BoundStep>>
bindPagedAttention(const artifact::Step &step,
                   std::span<const DeviceTensor> inputs,
                   std::span<const DeviceTensor> outputs);

/// The ROTARY steps that produce a PAGED_ATTENTION step's q and k, to be
/// applied by the attention launch itself: each step and its operands (x,
/// cos, sin).
struct PagedRotary {
  const artifact::Step *qStep = nullptr, *kStep = nullptr;
  DeviceTensor qx, qCos, qSin, kx, kCos, kSin;
};

/// Binds a PAGED_ATTENTION step that applies `rotary` to its q and k:
/// `inputs` as bindPagedAttention's, q and k their unrotated bytes (the
/// ROTARY steps' x). The output may be q's bytes exactly, no other input's.
/// Null where the launch does not take the shape (the decode kernel's
/// dtypes, head dims and step sizes; the whole head rotated): the steps
/// then run apart.
Result<std::unique_ptr<BoundStep>> bindPagedAttentionRotary(
    const artifact::Step &step, std::span<const DeviceTensor> inputs,
    std::span<const DeviceTensor> outputs, const PagedRotary &rotary);

namespace kernels {
struct RotaryTables;
}
/// The cos and sin row maps of a ROTARY step over `x`.
Result<kernels::RotaryTables> rotaryTables(const DeviceTensor &x,
                                           const DeviceTensor &cos,
                                           const DeviceTensor &sin);

/// Binds a SAMPLE step: inputs logits, params, seeds; output ids.
Result<std::unique_ptr<BoundStep>>
bindSample(const artifact::Step &step, std::span<const DeviceTensor> inputs,
           std::span<const DeviceTensor> outputs);

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDASTEP_H
