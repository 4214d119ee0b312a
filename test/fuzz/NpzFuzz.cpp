// libFuzzer target: the npz reader (zip directory, deflate, npy headers) on
// arbitrary bytes, as `weft run --inputs` would meet them.
#include "runtime/exec/Npz.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // readNpz takes a path (it maps the file): one temporary file per process.
  static const std::string path =
      "/tmp/weft-fuzz-npz-" + std::to_string(::getpid()) + ".npz";
  if (std::FILE *f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    (void)weft::runtime::readNpz(path);
  }
  // The npy parser alone as well, on the same bytes.
  (void)weft::runtime::parseNpy(
      std::span<const std::byte>(reinterpret_cast<const std::byte *>(data),
                                 size),
      "fuzz");
  return 0;
}
