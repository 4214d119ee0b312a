// A session: one rank of an artifact opened once (plan read, weights
// loaded, backend bound, state buffers allocated), whose entry points then
// run many times. What `weft run`, `weft-run` and a serving loop build on.
#ifndef WEFT_RUNTIME_SESSION_SESSION_H
#define WEFT_RUNTIME_SESSION_SESSION_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/backends/BackendRegistry.h"
#include "runtime/backends/RankExecutor.h"
#include "runtime/comm/Transport.h"
#include "runtime/exec/Npz.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime {

/// How a session's rank runs.
struct SessionOptions {
  /// Worker threads of the rank (0: the hardware threads).
  unsigned threads = 0;
  /// What runs the plan; null: the CPU executor.
  BackendFactory backend;
  /// This process's place among the processes of its host (see
  /// BackendFactory); unset where the ranks are threads of one process.
  std::optional<uint32_t> localRank;
  /// Blocks of the paged KV cache of a generation artifact, the same on
  /// every rank (0: an artifact without one).
  uint64_t kvCacheBlocks = 0;
};

/// What a run of an entry gives back.
struct RankOutcome {
  /// The rank that gathers the graph's outputs: the first data-parallel
  /// replica's lowest rank whose plan lists outputs (rank 0 when the graph
  /// has no outputs).
  uint32_t outputRank = 0;
  /// The whole graph outputs (manifest order and shapes), on the output
  /// rank only.
  std::vector<NpyArray> outputs;
  /// The timed runs' wall-clock milliseconds, slowest rank's, on the
  /// output rank (see Session::time).
  std::vector<double> timesMs;
};

class Session {
public:
  /// Opens `rank` of `artifact` (whose manifest is read) over `transport`:
  /// reads the rank's plan, readies its groups, loads its weights, binds
  /// the backend (which allocates the arena and the zeroed state buffers)
  /// and agrees with the other ranks on the output ranks. Collective over
  /// every rank of the world. A null `transport`: the rank runs alone
  /// (plans with COLLECTIVE, SEND or RECV steps are refused), as the
  /// output rank of its unchunked batch. `artifact` and `transport` must
  /// outlive the session; the session must outlive any other rank's reads
  /// of this rank's memory (in-process collectives read inputs in place).
  static Result<std::unique_ptr<Session>> open(const Artifact &artifact,
                                               uint32_t rank,
                                               comm::Transport *transport,
                                               const SessionOptions &options);

  /// The plan's entry points, "forward" first.
  std::vector<std::string> entryPoints() const;

  /// Runs entry `entry` once. For "forward", the batch (dim 0 of every
  /// input, `inputs` holding the manifest's whole inputs in order) is cut
  /// into dp * microbatches chunks; the rank runs its plan once per chunk
  /// of its replica, its graph inputs set from that chunk's rows. Each
  /// replica's lowest rank whose plan lists outputs keeps its chunks'
  /// outputs and sends them to the output rank, which assembles the whole
  /// outputs. Other entries run once, their inputs found by name among
  /// `inputs`, and give back this rank's own outputs. State buffers keep
  /// what the run wrote. Collective over every rank; an unknown entry is
  /// refused before any rank communicates. `only`, if not empty, names the
  /// outputs an entry other than "forward" gives back, of those this rank's
  /// plan has (a GPU leaves the others on the device: a pipeline stage
  /// before the last has no sampled ids, and gives back nothing).
  Result<RankOutcome> run(const std::string &entry,
                          std::span<const NpyArray *const> inputs,
                          std::span<const std::string> only = {});

  /// After a run of "forward" on `inputs`: `warmup` untimed and then
  /// `iterations` timed runs of the whole batch, each started together on
  /// every rank (a barrier) and lasting until the slowest rank is done.
  /// The milliseconds of each timed run, on every rank. Needs a transport.
  Result<std::vector<double>> time(std::span<const NpyArray *const> inputs,
                                   unsigned warmup, unsigned iterations);

  uint32_t rank() const { return rankIndex; }
  const RankPlan &plan() const { return rankPlan; }
  RankExecutor &executor() { return *exec; }

private:
  Session(const Artifact &artifact, uint32_t rank, comm::Transport *transport)
      : artifact(artifact), rankIndex(rank), transport(transport) {}
  Result<RankOutcome> runForward(std::span<const NpyArray *const> inputs);
  Result<RankOutcome> runEntry(std::span<const NpyArray *const> inputs,
                               std::span<const std::string> only);

  const Artifact &artifact;
  uint32_t rankIndex;
  comm::Transport *transport; // null: the rank runs alone
  RankPlan rankPlan;
  std::unique_ptr<RankExecutor> exec;
  /// Each data-parallel replica's output rank, agreed when opened.
  std::vector<uint32_t> outputRanks;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SESSION_SESSION_H
