// Lowers a lifted weft graph to a per-rank execution plan: kernel formation
// (elementwise chains fused into one program), library steps (GEMM,
// attention, norms, ...), and a static arena from liveness-based planning.
#ifndef WEFT_COMPILER_ARTIFACT_PLANBUILDER_H
#define WEFT_COMPILER_ARTIFACT_PLANBUILDER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "runtime/artifact/artifact.pb.h"

#include <string>

namespace mlir::weft {

/// How the plan builder finds a weight's stored type (the ONNX initializer's)
/// by name; the buffer's type is the op's (the compute type).
struct WeightInfo {
  ::weft::artifact::DType dtype;
  std::vector<int64_t> shape;
};

/// Builds rank `rank`'s plan of `func` (a per-rank graph for `tp` ranks).
/// Weights appear in plan.weights with name, dtype, full shape and this
/// rank's slice; the artifact writer fills in where their bytes are. Fails
/// with a diagnostic on an op that has no step.
FailureOr<::weft::artifact::Plan>
buildPlan(func::FuncOp func,
          const std::function<std::optional<WeightInfo>(StringRef)> &weights,
          int64_t rank = 0, int64_t tp = 1);

/// The artifact dtype of an MLIR element type, or DTYPE_UNSPECIFIED.
::weft::artifact::DType toArtifactDType(Type type);

/// Bytes per element of an artifact dtype.
int64_t dtypeBytes(::weft::artifact::DType dtype);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ARTIFACT_PLANBUILDER_H
