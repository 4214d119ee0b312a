// Read-only memory mappings of whole files.
#ifndef WEFT_RUNTIME_SUPPORT_MAPPEDFILE_H
#define WEFT_RUNTIME_SUPPORT_MAPPEDFILE_H

#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace weft::runtime {

/// A file mapped read-only for its lifetime (an empty file maps to nothing).
class MappedFile {
public:
  /// Maps `path`; the error names the file and the system's reason.
  static Result<std::shared_ptr<MappedFile>> open(const std::string &path);
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;

  const std::byte *data() const { return base; }
  uint64_t size() const { return length; }
  const std::string &path() const { return filePath; }

private:
  MappedFile() = default;
  const std::byte *base = nullptr;
  uint64_t length = 0;
  std::string filePath;
};

/// Reads a whole file into a string; the error names the file.
Result<std::string> readFileBytes(const std::string &path);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_MAPPEDFILE_H
