// Imports an ONNX model into the weft dialect, binding symbolic dims and
// folding shape arithmetic as it goes.
#ifndef WEFT_COMPILER_ONNX_IMPORTER_H
#define WEFT_COMPILER_ONNX_IMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace mlir::weft {

struct ImportOptions {
  /// Values of symbolic input dims (`--dim NAME=VALUE`).
  llvm::StringMap<int64_t> dims;
  /// Compile for one chunk of the batch: every graph input's dim 0 is
  /// divided by this (data-parallel replicas x micro-batches).
  int64_t batchChunks = 1;
};

/// Reads `path` (an ONNX ModelProto, external data by reference) and returns a
/// module holding `func.func @main`. Errors are emitted as diagnostics that
/// name the ONNX node or input; the result is then null.
OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &ctx, llvm::StringRef path,
                                      const ImportOptions &options);

/// Lowest and highest default-domain opset the importer accepts.
constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 23;

} // namespace mlir::weft

#endif // WEFT_COMPILER_ONNX_IMPORTER_H
