// weft-opt: mlir-opt with weft's dialects, passes and pipelines, for lit.
#include "compiler/pipeline/Pipeline.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Shard/Transforms/Passes.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::weft::registerWeftDialects(registry);
  mlir::registerTransformsPasses();
  mlir::shard::registerShardPasses();
  mlir::weft::registerWeftPasses();
  mlir::weft::registerWeftPipelines();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "weft optimizer driver\n", registry));
}
