// Writes a compiled module as an artifact directory: manifest, per-rank plans
// and weights by reference (or packed as safetensors).
#ifndef WEFT_COMPILER_ARTIFACT_ARTIFACTWRITER_H
#define WEFT_COMPILER_ARTIFACT_ARTIFACTWRITER_H

#include "runtime/artifact/artifact.pb.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

#include <string>
#include <utility>
#include <vector>

namespace mlir::weft {

struct Topology;

/// What writing an artifact did besides the plans (for the compile log).
struct ArtifactStats {
  size_t kernels = 0;          // generated GPU kernels
  size_t elementwiseSteps = 0; // the ELEMENTWISE steps they run, all ranks
  double nvrtcSeconds = 0;
};

struct ArtifactOptions {
  std::string output;    // the artifact directory to create
  std::string modelPath; // the compiled ONNX file
  bool packWeights = false;
  std::string target = "cpu";    // or a GPU architecture: kernels generated
  std::string topology = "host"; // the topology's name (manifest.topology)
  int64_t tp = 1;                // the module is a per-rank graph for tp ranks
  int64_t pp = 1;                // pipeline stages
  int64_t dp = 1;                // data-parallel replicas
  int64_t microbatches = 1;      // the module is compiled for one batch chunk
  const Topology *cluster = nullptr; // the loaded topology, when one was given
  llvm::StringMap<int64_t> dims;
  ArtifactStats *stats = nullptr; // filled in when given
  /// Tokenizer files to carry (name, contents), tokenizer.json first;
  /// each is stored with its SHA-256 in the manifest.
  std::vector<std::pair<std::string, std::string>> tokenizerFiles;
  /// `weft compile --generate`: the entry points (name, compiled module
  /// whose @main is the entry's graph), planned for every rank and merged
  /// into its plan over one KV cache; `generation` is stored in the
  /// manifest (its per-rank block bytes filled in). The module given to
  /// writeArtifact is then not planned itself.
  std::vector<std::pair<std::string, ModuleOp>> entries;
  ::weft::artifact::Generation generation;
};

/// Plans `module` (its @main) and writes the artifact atomically: into a
/// temporary directory beside `output`, renamed into place at the end, so a
/// failure leaves nothing behind. Errors are emitted as diagnostics.
LogicalResult writeArtifact(ModuleOp module, const ArtifactOptions &options);

} // namespace mlir::weft

#endif // WEFT_COMPILER_ARTIFACT_ARTIFACTWRITER_H
