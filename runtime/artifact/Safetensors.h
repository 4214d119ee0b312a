// The header of a safetensors file: each tensor's dtype, shape and bytes.
#ifndef WEFT_RUNTIME_ARTIFACT_SAFETENSORS_H
#define WEFT_RUNTIME_ARTIFACT_SAFETENSORS_H

#include "runtime/artifact/DType.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <map>
#include <string>

namespace weft::runtime {

/// One tensor of a safetensors file; offsets are absolute in the file.
struct SafetensorsTensor {
  std::string dtypeName;                  // as written: "F32", "BF16", ...
  DType dtype = DType::DTYPE_UNSPECIFIED; // unspecified if not supported
  Shape shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  uint64_t dataStart = 0; // 8 + header length
  std::map<std::string, SafetensorsTensor> tensors;
};

/// Parses and checks the header of the safetensors file held in
/// [data, data + size): an 8-byte little-endian length, then a JSON object
/// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...} whose
/// offsets count from the end of the header. `path` prefixes errors.
Result<SafetensorsHeader> parseSafetensors(const std::byte *data, uint64_t size,
                                           const std::string &path);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_SAFETENSORS_H
