// libFuzzer target: the topology YAML parser and its validation on
// arbitrary text, as `--topology FILE` would meet it.
#include "compiler/topology/Topology.h"

#include <cstdint>

// The presets are generated at build time; the parser does not need them.
llvm::ArrayRef<mlir::weft::TopologyPreset> mlir::weft::topologyPresets() {
  return {};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<mlir::weft::Topology> topology =
      mlir::weft::parseTopology(text, "fuzz.yaml");
  if (!topology)
    llvm::consumeError(topology.takeError());
  return 0;
}
