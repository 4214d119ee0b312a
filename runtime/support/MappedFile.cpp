// Read-only memory mappings of whole files.
#include "runtime/support/MappedFile.h"

#include "runtime/support/SafeFile.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

namespace weft::runtime {

static Status systemError(const std::string &what, const std::string &path) {
  return errorStatus("cannot " + what + " '" + path +
                     "': " + std::strerror(errno));
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string &path) {
  // Only a regular file is mapped (SafeFile.h): a FIFO or device would block
  // or fault instead.
  auto regular = RegularFile::open(path);
  if (!regular.ok())
    return regular.status();
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->filePath = path;
  file->length = regular->size();
  if (file->length > 0) {
    void *p =
        ::mmap(nullptr, file->length, PROT_READ, MAP_PRIVATE, regular->fd(), 0);
    if (p == MAP_FAILED)
      return systemError("map", path);
    file->base = static_cast<const std::byte *>(p);
  }
  return file;
}

MappedFile::~MappedFile() {
  if (base)
    ::munmap(const_cast<std::byte *>(base), length);
}

Result<std::string> readFileBytes(const std::string &path) {
  return readRegularFile(path);
}

} // namespace weft::runtime
