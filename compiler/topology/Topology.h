// The cluster a model is compiled for: GPUs, links and node count, read from
// a versioned YAML file or an embedded preset (docs/topology.md).
#ifndef WEFT_COMPILER_TOPOLOGY_TOPOLOGY_H
#define WEFT_COMPILER_TOPOLOGY_TOPOLOGY_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mlir::weft {

/// A described GPU cluster: `nodes` identical nodes of `gpusPerNode` GPUs.
/// Units are in the field names, as in the YAML format (GB = 1e9 bytes,
/// TB = 1e12 bytes, GiB = 2^30 bytes, Gbit = 1e9 bits).
struct Topology {
  enum class IntraNodeKind { None, NVLink, NVSwitch, PCIe };
  enum class InterNodeKind { None, InfiniBand, Ethernet };

  /// Dense (no sparsity) peak throughput per GPU, in TFLOP/s.
  struct PeakTflops {
    double fp32 = 0, tf32 = 0, bf16 = 0, fp16 = 0, fp8 = 0;
  };
  struct Gpu {
    std::string type; // e.g. H100-SXM-80GB
    double memoryGib = 0;
    double hbmTbPerS = 0;
    PeakTflops peakTflops;
    std::string smArch; // e.g. sm_90a
  };
  /// The GPU-to-GPU fabric inside a node. `gbPerSPerDirection` is one GPU's
  /// bandwidth into the fabric, one direction; 0 for kind None.
  struct IntraNode {
    IntraNodeKind kind = IntraNodeKind::None;
    double gbPerSPerDirection = 0;
    double latencyUs = 0;
  };
  /// The network between nodes; every field 0 for kind None.
  struct InterNode {
    InterNodeKind kind = InterNodeKind::None;
    int64_t nicsPerNode = 0; // nics_per_gpu in the file is multiplied out
    double gbitPerSPerNic = 0;
    double latencyUs = 0;
  };

  int64_t version = 1;
  std::string name;
  Gpu gpu;
  int64_t gpusPerNode = 1;
  IntraNode intraNode;
  InterNode interNode;
  int64_t nodes = 1;

  /// The number of GPUs: gpusPerNode * nodes.
  int64_t worldSize() const { return gpusPerNode * nodes; }
};

/// The YAML spelling of a link kind (`nvswitch`, `infiniband`, `none`...).
llvm::StringRef toString(Topology::IntraNodeKind kind);
llvm::StringRef toString(Topology::InterNodeKind kind);

/// A preset embedded in the binary from compiler/topology/presets/NAME.yaml.
struct TopologyPreset {
  llvm::StringRef name;
  llvm::StringRef path; // the source file, relative to the repository
  llvm::StringRef text;
};

/// Every preset, sorted by name (generated at build time from the YAML files).
llvm::ArrayRef<TopologyPreset> topologyPresets();

/// Parses and validates a topology file's text. Errors read
/// `FILE:LINE: FIELD: what is wrong` (e.g. `my.yaml:7: gpu.memory_gib: must be
/// a positive number, got 'abc'`).
llvm::Expected<Topology> parseTopology(llvm::StringRef text,
                                       llvm::StringRef fileName);

/// The error of loadTopology for a name that is neither a preset nor a file.
class UnknownTopologyError : public llvm::ErrorInfo<UnknownTopologyError> {
public:
  static char ID;
  explicit UnknownTopologyError(std::string name) : name(std::move(name)) {}
  void log(llvm::raw_ostream &os) const override;
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  std::string name;
};

/// A preset by name or, if `nameOrPath` names no preset, the file at that
/// path. Fails with UnknownTopologyError when it is neither (a name with no
/// path separator and no .yaml/.yml suffix that is no existing file), and
/// with a `FILE:LINE: ...` message for a file that is unreadable or invalid.
llvm::Expected<Topology> loadTopology(llvm::StringRef nameOrPath);

} // namespace mlir::weft

#endif // WEFT_COMPILER_TOPOLOGY_TOPOLOGY_H
