// Hex SHA-256 digests of byte ranges and file regions (OpenSSL EVP).
#ifndef WEFT_RUNTIME_ARTIFACT_SHA256_H
#define WEFT_RUNTIME_ARTIFACT_SHA256_H

#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace weft::runtime {

/// Lower-case hex SHA-256 of `size` bytes at `data`.
std::string sha256Hex(const void *data, size_t size);

/// Lower-case hex SHA-256 of [offset, offset + length) of the file at
/// `path`; refuses a missing file and a range past its end.
Result<std::string> sha256HexOfFile(const std::string &path, uint64_t offset,
                                    uint64_t length);

/// Lower-case hex SHA-256 of the whole file at `path`.
Result<std::string> sha256HexOfFile(const std::string &path);

/// Whether `expected` (hex, any case) names the digest `actualHex`.
bool sha256Matches(const std::string &expected, const std::string &actualHex);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_SHA256_H
