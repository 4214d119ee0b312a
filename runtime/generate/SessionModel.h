// The generation engine's model over a real session: one rank of an
// artifact, every rank running the same engine loop (SPMD), with the
// sampled ids sent from the rank that holds them to all the others.
#ifndef WEFT_RUNTIME_GENERATE_SESSIONMODEL_H
#define WEFT_RUNTIME_GENERATE_SESSIONMODEL_H

#include "runtime/generate/Engine.h"
#include "runtime/session/MultiRank.h"
#include "runtime/session/Session.h"

#include <map>
#include <optional>

namespace weft::runtime::generate {

/// Runs each step on one rank's session. Inputs an entry needs that the
/// engine does not give (attention_mask, position_ids of the model's own
/// export) are filled: ids named like positions get the positions, the
/// others ones.
class SessionStepModel : public StepModel {
public:
  /// `transport` null: the rank runs alone.
  SessionStepModel(Session &session, comm::Transport *transport)
      : session(session), transport(transport) {}

  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override;

private:
  Result<std::vector<NpyArray>>
  fillMissing(const std::string &entry,
              std::span<const NpyArray *const> inputs) const;
  /// Agrees once on the rank whose outputs hold weft.next_ids.
  Result<uint32_t> sourceRank(bool holdsIds);

  Session &session;
  comm::Transport *transport;
  std::optional<uint32_t> source;
};

/// How each rank generates.
struct RankGenerateOptions {
  /// Worker threads of the rank (0: the hardware threads).
  unsigned threads = 0;
  RankBackend backend;
  EngineOptions engine;
};

/// Opens `rank` of `artifact` (whose manifest is read, with a generation)
/// into `state` with options.engine.kvCacheBlocks blocks and runs the
/// engine over it. Collective over every rank; every rank returns the same
/// results.
Result<std::vector<SequenceResult>>
generateOnRank(const Artifact &artifact, uint32_t rank,
               comm::Transport *transport, const std::vector<Request> &requests,
               const RankGenerateOptions &options, RankState &state);

/// Every rank as a thread of this process (the rank-0 thread streams
/// text through options.engine.onText).
Result<std::vector<SequenceResult>> generateLocalRanks(
    const Artifact &artifact, const std::vector<Request> &requests,
    const RankGenerateOptions &options, std::chrono::duration<double> timeout);

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_SESSIONMODEL_H
