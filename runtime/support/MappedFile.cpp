// Read-only memory mappings of whole files.
#include "runtime/support/MappedFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace weft::runtime {

static Status systemError(const std::string &what, const std::string &path) {
  return errorStatus("cannot " + what + " '" + path +
                     "': " + std::strerror(errno));
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return systemError("open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = systemError("stat", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return errorStatus("cannot map '" + path + "': not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->filePath = path;
  file->length = static_cast<uint64_t>(st.st_size);
  if (file->length > 0) {
    void *p = ::mmap(nullptr, file->length, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      Status s = systemError("map", path);
      ::close(fd);
      return s;
    }
    file->base = static_cast<const std::byte *>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (base)
    ::munmap(const_cast<std::byte *>(base), length);
}

Result<std::string> readFileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return systemError("read", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return systemError("read", path);
  return ss.str();
}

} // namespace weft::runtime
