// libFuzzer target: the artifact reader's checks of a plan, of a manifest
// and of a packed safetensors file, on arbitrary bytes.
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/Safetensors.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace weft::runtime;
  // A small arena limit: a fuzzed plan must never make the checks allocate.
  ::setenv("WEFT_MAX_ARENA_BYTES", "1048576", 1);
  weft::artifact::Plan plan;
  if (plan.ParseFromArray(data, int(size)))
    for (uint32_t world : {1u, 4u})
      (void)validatePlan(plan, "fuzz", world);
  // The same bytes as manifest.pb of an artifact directory.
  static const std::string dir =
      "/tmp/weft-fuzz-artifact-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  if (std::FILE *f = std::fopen((dir + "/manifest.pb").c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    (void)readManifest(dir);
  }
  (void)parseSafetensors(reinterpret_cast<const std::byte *>(data), size,
                         "fuzz.safetensors");
  return 0;
}
