// Lowers a lifted weft graph to a per-rank execution plan: kernel formation
// (elementwise chains fused into one program), library steps (GEMM,
// attention, norms, ...), and a static arena from liveness-based planning.
#ifndef WEFT_COMPILER_ARTIFACT_PLANBUILDER_H
#define WEFT_COMPILER_ARTIFACT_PLANBUILDER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "runtime/artifact/artifact.pb.h"
#include "llvm/ADT/DenseMap.h"

#include <string>

namespace mlir::weft {

/// How the plan builder finds a weight's stored type (the ONNX initializer's)
/// by name; the buffer's type is the op's (the compute type).
struct WeightInfo {
  ::weft::artifact::DType dtype;
  std::vector<int64_t> shape;
};

/// Where a rank sits: rank = (replica * pp + stage) * tp + tpIndex.
struct RankLayout {
  int64_t tp = 1, pp = 1, dp = 1;
  int64_t tpIndex = 0, stage = 0, replica = 0;
  int64_t rankOf(int64_t s) const { return (replica * pp + s) * tp + tpIndex; }
  int64_t rank() const { return rankOf(stage); }
};

/// Pipeline stages of the ops in `func` (weights and constants excluded):
/// contiguous ranges of the op list with about equal estimated cost
/// (matrix products and attention by their FLOPs, other ops by size).
/// With `layerCuts` (pp - 1 attention layer indices, ascending): stage s
/// begins with layer layerCuts[s - 1], cut where the fewest bytes cross
/// after the attention before it, so that graphs of the same model at
/// other lengths put every layer (and its KV cache) on the same stage.
llvm::DenseMap<Operation *, int64_t>
assignStages(func::FuncOp func, int64_t pp, ArrayRef<int64_t> layerCuts = {});

/// The attention layers that begin stages 1.. of `stages` (assignStages).
SmallVector<int64_t>
stageLayerCuts(func::FuncOp func,
               const llvm::DenseMap<Operation *, int64_t> &stages);

/// Builds one rank's plan of `func` (a per-rank graph for `layout.tp`
/// ranks): the ops of its pipeline stage, values from earlier stages
/// received and values for later stages sent. Weights appear in
/// plan.weights with name, dtype, full shape and this rank's slice; the
/// artifact writer fills in where their bytes are. Fails with a diagnostic
/// on an op that has no step.
FailureOr<::weft::artifact::Plan>
buildPlan(func::FuncOp func,
          const std::function<std::optional<WeightInfo>(StringRef)> &weights,
          const RankLayout &layout = {},
          const llvm::DenseMap<Operation *, int64_t> *stages = nullptr);

/// The artifact dtype of an MLIR element type, or DTYPE_UNSPECIFIED.
::weft::artifact::DType toArtifactDType(Type type);

/// Whether `op` is elementwise and so joins a fused kernel (the cost model
/// counts kernels with the same rule).
bool isFusableElementwise(Operation *op);

/// Bytes per element of an artifact dtype.
int64_t dtypeBytes(::weft::artifact::DType dtype);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ARTIFACT_PLANBUILDER_H
