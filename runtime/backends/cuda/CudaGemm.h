// GEMM steps on the GPU through cuBLASLt: row-major operands, batched with
// broadcast, the bias fused as an epilogue, f16/bf16 with f32 accumulation
// and true f32 (no TF32) for checking. The algorithm of each distinct
// problem is chosen once per process (timed among cuBLASLt's candidates)
// and cached.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H

#include "runtime/backends/cuda/CudaStep.h"

#include <memory>
#include <optional>

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

  /// A GEMM step the skinny GEMM can run: m rows of k times a weight
  /// [n, k] (a Linear's).
  struct GemvProblem {
    int64_t m = 0, n = 0, k = 0;
  };
  /// The problem of a GEMM step the skinny GEMM runs (at most
  /// kGemvMaxRows rows); none for the others.
  static std::optional<GemvProblem>
  gemvProblem(const artifact::Step &step, std::span<const DeviceTensor> inputs,
              std::span<const DeviceTensor> outputs);
  /// Whether gemvProblem steps `a` and `b` may share one launch: the same
  /// activations (a 16-byte aligned [m, k], k a multiple of 8), weights
  /// [n, k] 16-byte aligned, one dtype throughout, no GELU.
  static bool groupable(const artifact::Step &a,
                        std::span<const DeviceTensor> aInputs,
                        std::span<const DeviceTensor> aOutputs,
                        const artifact::Step &b,
                        std::span<const DeviceTensor> bInputs,
                        std::span<const DeviceTensor> bOutputs);

  /// The RMS norm a grouped skinny GEMM computes instead of reading its
  /// output: the norm step's input x [m, k] and scale [k].
  struct GemvNorm {
    DeviceTensor x, scale;
    float epsilon = 0;
  };
  /// Whether RMS_NORM step `norm` (its operands given) can be computed by
  /// the launch of the gemvProblem step `member`, whose activations it
  /// writes.
  static bool normable(const artifact::Step &norm,
                       std::span<const DeviceTensor> normInputs,
                       std::span<const DeviceTensor> normOutputs,
                       const artifact::Step &member,
                       std::span<const DeviceTensor> memberInputs,
                       std::span<const DeviceTensor> memberOutputs);

  /// One member of a grouped skinny GEMM: a step and its operands.
  struct GemvMember {
    const artifact::Step *step = nullptr;
    std::span<const DeviceTensor> inputs, outputs;
  };
  /// Binds up to kernels::kGemvMaxSegments groupable steps as one launch.
  /// With `swigluOut`, the two members are a gated MLP's gate and up
  /// projections (equal n, no bias or residual), and the launch stores
  /// only silu(gate) * up into *swigluOut (of their output's shape) as the
  /// elementwise step after them would.
  /// With `norm`, the members' activations are not read but computed.
  Result<std::unique_ptr<BoundStep>>
  bindGemvGroup(std::span<const GemvMember> members,
                const DeviceTensor *swigluOut, const GemvNorm *norm = nullptr);

private:
  GemmContext() = default;
  /// m x k times (n x k)^T by the skinny-GEMM kernel.
  Result<std::unique_ptr<BoundStep>>
  bindGemv(const artifact::Step &step, std::span<const DeviceTensor> inputs,
           std::span<const DeviceTensor> outputs, int64_t m, int64_t n,
           int64_t k);
  Result<int> multiprocessors();
  void *handle = nullptr; // cublasLtHandle_t
  void *workspace = nullptr;
  uint64_t workspaceSize = 0;
  bool tune = true;
};

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDAGEMM_H
