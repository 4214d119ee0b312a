// Reads and checks a weft artifact: manifest, per-rank plans and weights.
#ifndef WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H
#define WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H

#include "runtime/artifact/DType.h"
#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace weft::runtime {

/// The artifact format version this runtime reads.
constexpr uint32_t kArtifactFormatVersion = 1;

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
};

struct Artifact {
  std::string dir;
  artifact::Manifest manifest;
  std::vector<RankPlan> ranks; // indexed by rank
};

/// Reads DIR/manifest.pb and every rank's plan, checking versions, hashes,
/// buffer ids and sizes. Weights are not read (see loadRankWeights). Errors
/// name the file and the field at fault.
Result<Artifact> readArtifact(const std::string &dir);

/// Maps (or copies) every weight of `rank`'s plan, checking ranges and
/// hashes.
Status loadRankWeights(Artifact &artifact, uint32_t rank);

/// Checks a plan on its own: version, buffers (ids, kinds, sizes, arena
/// bounds), steps' buffer references, inputs/outputs and weight references.
/// `where` (the plan's file) prefixes errors.
Status validatePlan(const artifact::Plan &plan, const std::string &where);

/// Bytes a rank holds of a weight: its slice, or the whole tensor.
Result<uint64_t> heldWeightBytes(const artifact::WeightRef &ref);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_ARTIFACTREADER_H
