// Hex SHA-256 digests of byte ranges and file regions (OpenSSL EVP).
#include "runtime/artifact/Sha256.h"

#include "runtime/support/MappedFile.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <openssl/evp.h>

namespace weft::runtime {

std::string sha256Hex(const void *data, size_t size) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digestLen = 0;
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx.get(), data, size);
  EVP_DigestFinal_ex(ctx.get(), digest, &digestLen);
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < digestLen; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Result<std::string> sha256HexOfFile(const std::string &path, uint64_t offset,
                                    uint64_t length) {
  auto file = MappedFile::open(path);
  if (!file.ok())
    return file.status();
  uint64_t size = (*file)->size();
  if (offset > size || length > size - offset)
    return errorStatus(
        "'" + path + "': range [" + std::to_string(offset) + ", " +
        std::to_string(offset) + " + " + std::to_string(length) +
        ") is past the end of the file (" + std::to_string(size) + " bytes)");
  return sha256Hex((*file)->data() + offset, length);
}

Result<std::string> sha256HexOfFile(const std::string &path) {
  auto file = MappedFile::open(path);
  if (!file.ok())
    return file.status();
  return sha256Hex((*file)->data(), (*file)->size());
}

bool sha256Matches(const std::string &expected, const std::string &actualHex) {
  if (expected.size() != actualHex.size())
    return false;
  return std::equal(expected.begin(), expected.end(), actualHex.begin(),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) == b;
                    });
}

} // namespace weft::runtime
