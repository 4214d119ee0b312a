// Pass pipelines and dialect registration, assembled in one place.
#include "compiler/pipeline/Pipeline.h"

#include "dialects/Weft/WeftOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/ShardingInterfaceImpl.h"
#include "mlir/Dialect/Func/Extensions/ShardingExtensions.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void weft::registerWeftDialects(DialectRegistry &registry) {
  registry.insert<WeftDialect, func::FuncDialect, arith::ArithDialect,
                  math::MathDialect, tensor::TensorDialect,
                  linalg::LinalgDialect, shard::ShardDialect>();
  registerShardingInterfaceExternalModels(registry);
  arith::registerShardingInterfaceExternalModels(registry);
  func::registerShardingInterfaceExternalModels(registry);
}

void weft::buildGraphPipeline(OpPassManager &pm, llvm::StringRef computeType) {
  pm.addPass(createCanonicalizerPass());
  OpPassManager &fn = pm.nest<func::FuncOp>();
  fn.addPass(createFuseNorms());
  fn.addPass(createFuseActivations());
  fn.addPass(createFuseRotary());
  fn.addPass(createFuseAttention());
  fn.addPass(createFormLinear());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (!computeType.empty()) {
    ConvertComputeTypeOptions options;
    options.dtype = computeType.str();
    pm.addNestedPass<func::FuncOp>(createConvertComputeType(options));
    pm.addPass(createCanonicalizerPass());
    // The casts around exporters' f32 norms are gone now: fold the weight
    // multiplies they kept out of the norms.
    pm.addNestedPass<func::FuncOp>(createFuseNorms());
  }
}

void weft::buildLayoutPipeline(OpPassManager &pm, int64_t tp) {
  TensorParallelOptions options;
  options.tp = tp;
  pm.addNestedPass<func::FuncOp>(createTensorParallel(options));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // After the split: tensor parallelism reasons in [B, H, S, D].
  pm.addNestedPass<func::FuncOp>(createSeqMajorAttention());
  pm.addNestedPass<func::FuncOp>(createWidenLinearOutput());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Last: after the split (a row-parallel projection's partial sums must not
  // each add the residual) and once canonicalization has settled the adds.
  pm.addNestedPass<func::FuncOp>(createFuseResidual());
  // After the residual fusion: a GELU never follows a projection that took
  // a residual (the epilogue would apply it to the sum).
  pm.addNestedPass<func::FuncOp>(createFuseGeluEpilogue());
}

void weft::registerWeftPipelines() {
  PassPipelineRegistration<>("weft-graph-pipeline",
                             "Lift an imported graph to weft's high-level ops",
                             [](OpPassManager &pm) { buildGraphPipeline(pm); });
}
