// Reading and writing numpy .npz archives of tensors.
#ifndef WEFT_RUNTIME_EXEC_NPZ_H
#define WEFT_RUNTIME_EXEC_NPZ_H

#include "runtime/artifact/DType.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime {

/// One array of an .npz archive, named without the ".npy" suffix.
struct NpyArray {
  std::string name;
  DType dtype = DType::DTYPE_UNSPECIFIED;
  Shape shape;
  std::vector<std::byte> data; // row-major, little-endian
};

/// An array to write: its bytes are borrowed.
struct NpyView {
  std::string name;
  DType dtype = DType::DTYPE_UNSPECIFIED;
  Shape shape;
  const std::byte *data = nullptr;
  uint64_t bytes = 0;
};

/// Reads every array of an .npz archive (stored or deflated entries). The
/// error names the file and, where it applies, the entry. The entries'
/// uncompressed sizes, as the archive's directory states them, must add up
/// to at most `maxBytes`: checked before anything is inflated, so that a
/// small archive cannot claim gigabytes of memory.
Result<std::vector<NpyArray>> readNpz(const std::string &path,
                                      uint64_t maxBytes = UINT64_MAX);

/// Parses one .npy file held in memory; `where` prefixes errors.
Result<NpyArray> parseNpy(std::span<const std::byte> bytes,
                          const std::string &where);

/// The .npy header (magic, version 1.0, padded dict) for an array.
std::string npyHeader(DType dtype, std::span<const int64_t> shape);

/// Writes an uncompressed .npz that numpy.load reads. The file appears
/// atomically: it is written beside `path` and renamed, so a failure leaves
/// no partial file.
Status writeNpz(const std::string &path, std::span<const NpyView> arrays);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_NPZ_H
