// Reads and checks a weft artifact: manifest, per-rank plans and weights.
#ifndef WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H
#define WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H

#include "runtime/artifact/DType.h"
#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace weft::runtime {

/// The artifact format version this runtime reads.
constexpr uint32_t kArtifactFormatVersion = 2;

/// A weight's bytes: a view of a mapped file, or an owned copy (a slice, or
/// bytes moved to an aligned place). `owner` keeps them alive.
struct WeightBytes {
  const std::byte *data = nullptr;
  uint64_t size = 0;
  std::shared_ptr<const void> owner;
};

/// One rank: its manifest entry, its checked plan and, once loaded, the
/// bytes of each Plan.weights entry (same order).
struct RankPlan {
  artifact::RankEntry entry;
  std::string planPath;
  artifact::Plan plan;
  std::vector<WeightBytes> weights;
  /// Blocks of each KV-cache STATE buffer (those whose shape[0] is 0), as
  /// the session chose them; a backend allocates kvCacheBlocks times the
  /// buffer's `bytes` for each.
  uint64_t kvCacheBlocks = 0;
};

struct Artifact {
  std::string dir;
  artifact::Manifest manifest;
  std::vector<RankPlan> ranks; // indexed by rank (empty: readManifest)
};

/// The parallel layout of an artifact: rank = (dp_index * pp + pp_index) *
/// tp + tp_index; every degree at least 1. A manifest that sets none of tp,
/// pp and dp counts as tp = world_size.
struct Layout {
  uint32_t tp = 1, pp = 1, dp = 1;
  uint32_t microbatches = 1;

  /// Into how many chunks the batch (dim 0 of every input) is cut.
  uint64_t chunks() const { return uint64_t{dp} * microbatches; }
  uint32_t dpIndex(uint32_t rank) const { return rank / (tp * pp); }
  uint32_t ppIndex(uint32_t rank) const { return rank / tp % pp; }
  uint32_t tpIndex(uint32_t rank) const { return rank % tp; }
};

/// The layout of a checked manifest.
Layout layoutOf(const artifact::Manifest &manifest);

/// Reads DIR/manifest.pb and every rank's plan, checking versions, hashes,
/// buffer ids and sizes. Weights are not read (see loadRankWeights). Errors
/// name the file and the field at fault.
Result<Artifact> readArtifact(const std::string &dir);

/// Reads and checks DIR/manifest.pb alone (`ranks` stays empty): version,
/// world size, the rank entries (each rank of [0, world_size) once), the
/// layout (tp * pp * dp == world_size where set), inputs and outputs.
Result<Artifact> readManifest(const std::string &dir);

/// Reads and checks one rank's plan (as readArtifact does) from an
/// artifact whose manifest is read; the other ranks' plans are not read.
/// The tokenizer files of the artifact in `dir` (name -> contents), each
/// checked against the SHA-256 its manifest records; empty where it has
/// none.
Result<std::map<std::string, std::string>>
readArtifactTokenizerFiles(const std::string &dir);

Result<RankPlan> readRankPlan(const Artifact &artifact, uint32_t rank);

/// Maps (or copies) every weight of `rank`'s plan, checking ranges and
/// hashes.
Status loadRankWeights(Artifact &artifact, uint32_t rank);
/// The same for a rank read with readRankPlan.
Status loadWeights(const Artifact &artifact, RankPlan &rank);

/// Checks a plan on its own: version, buffers (ids, kinds, sizes, arena
/// bounds), steps' buffer references, inputs/outputs, weight references and
/// the attributes of multi-rank steps against `worldSize` (COLLECTIVE: op,
/// a group of distinct ranks of the world holding the plan's rank; SEND /
/// RECV: a peer that is another rank of the world; PAGED_ATTENTION: its KV
/// caches, inputs 3 and 4, STATE buffers). `where` (the plan's file)
/// prefixes errors.
Status validatePlan(const artifact::Plan &plan, const std::string &where,
                    uint32_t worldSize);

/// Whether `buf` is a paged KV cache: a STATE buffer whose shape[0] is 0,
/// its number of blocks chosen when a session opens (RankPlan's
/// kvCacheBlocks); its `bytes` are those of one block.
bool isPagedCache(const artifact::Buffer &buf);

/// Points the manifest's source_model into `dir`, same file name (`weft run
/// --model-dir`): weights referenced relative to the model are then read
/// from `dir`, and still checked against their recorded hashes. Refuses a
/// `dir` that is not a directory.
Status setSourceModelDir(artifact::Manifest &manifest, const std::string &dir);

/// Bytes a rank holds of a weight: its slice, or the whole tensor.
Result<uint64_t> heldWeightBytes(const artifact::WeightRef &ref);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H
