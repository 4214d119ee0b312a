// The one place for weft's file rules: what it may read and what it may
// replace.
#include "runtime/support/SafeFile.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace weft::runtime {

namespace {

std::string quoted(const std::string &s) { return "'" + s + "'"; }

Status systemError(const std::string &what, const std::string &path) {
  return errorStatus("cannot " + what + " " + quoted(path) + ": " +
                     std::strerror(errno));
}

const char *kindOf(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISSOCK(mode))
    return "a socket";
  if (S_ISLNK(mode))
    return "a symbolic link";
  return "not a regular file";
}

std::string parentOf(const std::string &path) {
  size_t slash = path.find_last_not_of('/');
  if (slash == std::string::npos)
    return "/";
  slash = path.rfind('/', slash);
  if (slash == std::string::npos)
    return ".";
  size_t end = path.find_last_not_of('/', slash);
  return end == std::string::npos ? "/" : path.substr(0, end + 1);
}

std::string joined(const std::string &dir, const std::string &file) {
  if (dir.empty())
    return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

/// The real path of `path`, or of its nearest existing ancestor with the
/// rest appended (lexically) where it does not exist yet.
std::string realPathOf(const std::string &path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf))
    return buf;
  std::string parent = parentOf(path);
  if (parent == path)
    return path;
  size_t slash = path.find_last_of('/');
  std::string rest = slash == std::string::npos ? path : path.substr(slash + 1);
  return joined(realPathOf(parent), rest);
}

bool isInside(const std::string &dir, const std::string &path) {
  if (dir == "/")
    return true;
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

/// The parent directory of an output must exist: weft never creates it.
Status checkParentDirectory(const std::string &path) {
  std::string parent = parentOf(path);
  struct stat st;
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return errorStatus("cannot write " + quoted(path) + ": directory " +
                       quoted(parent) + " does not exist");
  return okStatus();
}

} // namespace

RegularFile::RegularFile(RegularFile &&other) noexcept
    : descriptor(other.descriptor), bytes(other.bytes),
      filePath(std::move(other.filePath)) {
  other.descriptor = -1;
}

RegularFile &RegularFile::operator=(RegularFile &&other) noexcept {
  if (this != &other) {
    if (descriptor >= 0)
      ::close(descriptor);
    descriptor = other.descriptor;
    bytes = other.bytes;
    filePath = std::move(other.filePath);
    other.descriptor = -1;
  }
  return *this;
}

RegularFile::~RegularFile() {
  if (descriptor >= 0)
    ::close(descriptor);
}

Result<RegularFile> RegularFile::open(const std::string &path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
  // checked on the open descriptor, so a swap after a stat cannot fool it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return systemError("read", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = systemError("stat", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return errorStatus("cannot read " + quoted(path) + ": " +
                       kindOf(st.st_mode) + ", not a regular file");
  }
  // Reads of a regular file never block; clear the flag for plain reads.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  RegularFile file;
  file.descriptor = fd;
  file.bytes = static_cast<uint64_t>(st.st_size);
  file.filePath = path;
  return file;
}

Result<std::string> RegularFile::read(uint64_t offset, uint64_t length) const {
  if (Status s = checkFileRange(filePath, bytes, offset, length, "range");
      !s.ok())
    return s;
  std::string out(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(descriptor, out.data() + done, length - done,
                        static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return systemError("read", filePath);
    if (n == 0)
      return errorStatus("cannot read " + quoted(filePath) +
                         ": the file shrank while being read");
    done += static_cast<uint64_t>(n);
  }
  return out;
}

Result<std::string> readRegularFile(const std::string &path,
                                    uint64_t maxBytes) {
  auto file = RegularFile::open(path);
  if (!file.ok())
    return file.status();
  if (file->size() > maxBytes)
    return errorStatus("cannot read " + quoted(path) + ": " +
                       std::to_string(file->size()) + " bytes is more than " +
                       std::to_string(maxBytes));
  return file->read(0, file->size());
}

Status checkFileRange(const std::string &path, uint64_t size, uint64_t offset,
                      uint64_t length, const std::string &field) {
  if (offset > size || length > size - offset)
    return errorStatus(
        path + ": " + field + " [" + std::to_string(offset) + ", " +
        std::to_string(offset) + " + " + std::to_string(length) +
        ") is past the end of the file (" + std::to_string(size) + " bytes)");
  return okStatus();
}

Result<std::string> resolveInside(const std::string &dir,
                                  const std::string &relative,
                                  const std::string &field) {
  if (relative.empty())
    return errorStatus(field + " is empty");
  if (relative[0] == '/')
    return errorStatus(field + " " + quoted(relative) +
                       " is absolute (must be relative)");
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string::npos)
      end = relative.size();
    if (end - start == 2 && relative.compare(start, 2, "..") == 0)
      return errorStatus(field + " " + quoted(relative) + " contains '..'");
    start = end + 1;
  }
  std::string path = joined(dir, relative);
  char buf[PATH_MAX];
  if (!::realpath(dir.empty() ? "." : dir.c_str(), buf))
    return path; // a missing directory: opening the file reports it
  std::string realDir = buf;
  std::string real = realPathOf(path);
  if (!isInside(realDir, real))
    return errorStatus(field + " " + quoted(relative) + " resolves to " +
                       quoted(real) + ", outside " + quoted(realDir) +
                       " (through a symbolic link)");
  return path;
}

Status checkWritableFile(const std::string &path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      return errorStatus("refusing to replace " + quoted(path) + ": " +
                         kindOf(st.st_mode) +
                         ", not a regular file (only a regular file or a "
                         "new path can be written)");
    return okStatus();
  }
  if (errno != ENOENT)
    return systemError("write", path);
  return checkParentDirectory(path);
}

Status checkWritableDirectory(const std::string &path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return errorStatus("refusing to replace " + quoted(path) + ": " +
                         kindOf(st.st_mode) +
                         ", not a directory (an artifact is written to a "
                         "new path or over an existing directory)");
    return okStatus();
  }
  if (errno != ENOENT)
    return systemError("write", path);
  return checkParentDirectory(path);
}

Status replaceWith(const std::string &temp, const std::string &path) {
  if (Status s = checkWritableFile(path); !s.ok())
    return s;
  if (std::rename(temp.c_str(), path.c_str()) != 0)
    return systemError("rename " + quoted(temp) + " to", path);
  return okStatus();
}

} // namespace weft::runtime
