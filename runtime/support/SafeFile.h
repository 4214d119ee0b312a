// The one place for weft's file rules: what it may read and what it may
// replace.
//
// Reading: regular files only (a FIFO, device, socket or directory is
// refused without blocking on it; a symlink is followed and its target
// checked), sizes and ranges checked before any byte is read or mapped, and
// paths from an artifact or a model resolved (symlinks included) and kept
// inside the directory they are relative to.
//
// Writing: a new file is written beside its target and renamed over it only
// when the target is a regular file or does not exist; a missing parent
// directory is an error, never created.
#ifndef WEFT_RUNTIME_SUPPORT_SAFEFILE_H
#define WEFT_RUNTIME_SUPPORT_SAFEFILE_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>

namespace weft::runtime {

/// The largest file read whole into memory (manifests, plans, models,
/// topology and calibration files): 4 GiB, which no valid one approaches.
constexpr uint64_t kMaxWholeFileBytes = uint64_t(4) << 30;

/// An open, read-only descriptor of a regular file and its size.
class RegularFile {
public:
  /// Opens `path` for reading; refuses anything but a regular file.
  static Result<RegularFile> open(const std::string &path);
  RegularFile(RegularFile &&other) noexcept;
  RegularFile &operator=(RegularFile &&other) noexcept;
  RegularFile(const RegularFile &) = delete;
  RegularFile &operator=(const RegularFile &) = delete;
  ~RegularFile();

  int fd() const { return descriptor; }
  uint64_t size() const { return bytes; }
  const std::string &path() const { return filePath; }

  /// Reads [offset, offset + length); the range is checked against the
  /// file's size first, so a bad offset or length is an error, not a fault.
  Result<std::string> read(uint64_t offset, uint64_t length) const;

private:
  RegularFile() = default;
  int descriptor = -1;
  uint64_t bytes = 0;
  std::string filePath;
};

/// Reads a whole regular file of at most `maxBytes`.
Result<std::string> readRegularFile(const std::string &path,
                                    uint64_t maxBytes = kMaxWholeFileBytes);

/// Checks that [offset, offset + length) lies inside a file of `size` bytes
/// (without overflow); the error names the file and `field`.
Status checkFileRange(const std::string &path, uint64_t size, uint64_t offset,
                      uint64_t length, const std::string &field);

/// `relative` (a path from an artifact or model, named `field` in errors)
/// joined to `dir`: refused if absolute, if it holds "..", or if its real
/// path (symlinks resolved) leaves the real path of `dir`. A path that does
/// not exist yet is checked through its nearest existing parent.
Result<std::string> resolveInside(const std::string &dir,
                                  const std::string &relative,
                                  const std::string &field);

/// Checks that `path` may be replaced by a file written beside it: it is a
/// regular file or does not exist, and its parent directory exists.
Status checkWritableFile(const std::string &path);

/// The same for an output directory (an artifact): an existing directory
/// (replaced as a whole) or nothing, in an existing parent directory.
Status checkWritableDirectory(const std::string &path);

/// Renames the finished temporary `temp` over `path`, after checking `path`
/// again (it may have changed while `temp` was written).
Status replaceWith(const std::string &temp, const std::string &path);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_SAFEFILE_H
