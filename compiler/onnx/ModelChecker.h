// Checks of an ONNX model against the format and the operator schemas,
// before weft's importer reads it.
#ifndef WEFT_COMPILER_ONNX_MODELCHECKER_H
#define WEFT_COMPILER_ONNX_MODELCHECKER_H

#include "llvm/Support/Error.h"

#include <onnx/onnx_pb.h>

namespace mlir::weft {

/// Refuses what the ONNX format forbids whatever the opset: a domain
/// imported twice, a graph output listed twice, names (nodes, values,
/// initializers) that are not UTF-8. Then, for a default-domain opset the
/// linked ONNX library knows, every node against its operator schema (input
/// and output counts, attribute names and types) and strict shape and type
/// inference (attribute values such as an axis out of range, a declared
/// output type the graph does not compute). The error names the node.
llvm::Error checkOnnxModel(const onnx::ModelProto &model);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ONNX_MODELCHECKER_H
