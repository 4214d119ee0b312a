// Loading an ONNX ModelProto and reading its initializers' bytes (inline or
// external data), with every malformed input refused by a clear message.
#ifndef WEFT_COMPILER_ONNX_ONNXMODEL_H
#define WEFT_COMPILER_ONNX_ONNXMODEL_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "runtime/support/SafeFile.h"
#include "llvm/Support/Error.h"

#include <onnx/onnx_pb.h>

#include <optional>
#include <string>

namespace mlir::weft {

/// Where an initializer's bytes live when they are outside the model file.
struct ExternalRef {
  std::string location; // relative to the model's directory
  int64_t offset = 0;
  int64_t length = -1; // -1: to the end of the file
};

/// A loaded model and the directory its external data is relative to.
struct OnnxModel {
  onnx::ModelProto proto;
  std::string path;
  std::string dir;
  int64_t opset = 0; // default-domain opset
};

/// Parses the model file; fails with a message naming the file.
llvm::Expected<OnnxModel> loadOnnxModel(llvm::StringRef path);

/// Maps an ONNX element type to MLIR, or null if unsupported.
Type onnxElementType(MLIRContext &ctx, int32_t dataType);

/// The external reference of a tensor, or std::nullopt for inline data; fails
/// on an absolute or escaping path, or a malformed entry.
llvm::Expected<std::optional<ExternalRef>>
externalRefOf(const onnx::TensorProto &tensor);

/// The largest model file read (protobuf's own limit is 2 GiB).
constexpr uint64_t kMaxModelBytes = uint64_t(2) << 30;

/// The largest tensor one initializer or constant may describe (1 TiB).
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;

/// The bytes `tensor` needs as `elem`: an error for a negative dim or a
/// size beyond kMaxTensorBytes (before anything multiplies its dims), naming
/// the tensor as `what` (default: "initializer 'NAME'").
llvm::Expected<int64_t> tensorBytes(const onnx::TensorProto &tensor, Type elem,
                                    llvm::StringRef what = "");

/// Opens an initializer's external data file: a regular file whose real path
/// (symlinks resolved) is inside `dir`; the error names the initializer.
llvm::Expected<::weft::runtime::RegularFile>
openExternalData(const onnx::TensorProto &tensor, const ExternalRef &ref,
                 llvm::StringRef dir);

/// Checks an initializer's external data up front: a safe location and, when
/// its file exists, a regular file holding the whole range at the size its
/// shape and type need. Fails naming the initializer, the file and the field.
llvm::Error checkExternalData(const onnx::TensorProto &tensor,
                              RankedTensorType type, llvm::StringRef dir);

/// Reads a tensor's elements into a DenseElementsAttr of `type`. External
/// data is read from `dir`; a missing file or a range past its end fails.
llvm::Expected<DenseElementsAttr>
readTensorData(const onnx::TensorProto &tensor, RankedTensorType type,
               llvm::StringRef dir);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ONNX_ONNXMODEL_H
