// Pass pipelines and dialect registration, assembled in one place.
#ifndef WEFT_COMPILER_PIPELINE_PIPELINE_H
#define WEFT_COMPILER_PIPELINE_PIPELINE_H

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"

namespace mlir::weft {
/// The dialects (and their interface models) that weft's IR may hold.
void registerWeftDialects(DialectRegistry &registry);

/// Graph pipeline: canonicalize, recognize norms, activations, rotary and
/// attention, form projections, clean up; then, when `computeType` is f16 or
/// bf16, convert the float computation to it. Runs on the module.
void buildGraphPipeline(OpPassManager &pm, llvm::StringRef computeType = "");

/// Layout: rewrite the lifted graph into one tensor-parallel rank's graph
/// for `tp` ranks (tp 1: the graph itself), then let attention and rotary
/// work in the projections' layout, store f32 casts of projections as their
/// accumulators and fuse residual adds into the projections before them.
void buildLayoutPipeline(OpPassManager &pm, int64_t tp);

/// Registers the named pipelines (`--weft-graph-pipeline`) with mlir-opt.
void registerWeftPipelines();
} // namespace mlir::weft

#endif // WEFT_COMPILER_PIPELINE_PIPELINE_H
