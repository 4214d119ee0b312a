// GEMM steps on the GPU through cuBLASLt: row-major operands, batched with
// broadcast, the bias fused as an epilogue, f16/bf16 with f32 accumulation
// and true f32 (no TF32) for checking. The algorithm of each distinct
// problem is chosen once per process (timed among cuBLASLt's candidates)
// and cached.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H

#include "runtime/backends/cuda/CudaStep.h"

#include <memory>

namespace weft::runtime::cuda {

/// A cuBLASLt handle and the workspace its GEMMs share (one stream at a
/// time).
class GemmContext {
public:
  /// `tune`: time cuBLASLt's candidate algorithms at bind time (else take
  /// its first).
  static Result<std::unique_ptr<GemmContext>> create(bool tune);
  ~GemmContext();

  /// Binds a GEMM step (checked by the CPU backend's rules first).
  /// Tuning, when on, runs the problem on `stream` a few times.
  Result<std::unique_ptr<BoundStep>> bind(const artifact::Step &step,
                                          std::span<const DeviceTensor> inputs,
                                          std::span<const DeviceTensor> outputs,
                                          cudaStream_t stream);

  uint64_t workspaceBytes() const { return workspaceSize; }

private:
  GemmContext() = default;
  /// m x k times k x n (n x k when `transB`) by the skinny-GEMM kernel.
  Result<std::unique_ptr<BoundStep>>
  bindGemv(const artifact::Step &step, std::span<const DeviceTensor> inputs,
           std::span<const DeviceTensor> outputs, int64_t m, int64_t n,
           int64_t k, bool transB);
  void *handle = nullptr; // cublasLtHandle_t
  void *workspace = nullptr;
  uint64_t workspaceSize = 0;
  bool tune = true;
};

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H
