// Finds where each initializer's bytes are in an ONNX file or its external
// data, so that the artifact can reference them instead of copying.
#ifndef WEFT_COMPILER_ARTIFACT_WEIGHTLOCATOR_H
#define WEFT_COMPILER_ARTIFACT_WEIGHTLOCATOR_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mlir::weft {

/// A byte range of a file.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

/// The byte ranges of the initializers' raw_data fields inside the serialized
/// model, by initializer name (read from the protobuf wire format).
llvm::Expected<llvm::StringMap<ByteRange>>
locateRawData(llvm::StringRef modelBytes);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ARTIFACT_WEIGHTLOCATOR_H
