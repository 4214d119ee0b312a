// Running the ranks of an artifact: one rank over a transport, or every
// rank as a thread of this process.
#ifndef WEFT_RUNTIME_EXEC_MULTIRANK_H
#define WEFT_RUNTIME_EXEC_MULTIRANK_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/comm/Transport.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/Npz.h"
#include "runtime/exec/RankExecutor.h"

#include <functional>
#include <optional>

#include <memory>
#include <span>
#include <vector>

namespace weft::runtime {

/// A rank's plan and executor, kept by the caller of runRank until no
/// other rank can still read this rank's memory (in-process collectives
/// read their inputs in place).
struct RankState {
  RankPlan rank;
  std::unique_ptr<RankExecutor> executor;
};

/// How a rank's plan runs. The default: on the CPU.
struct RankBackend {
  /// Makes the executor of `state.rank` (read, weights loaded) over
  /// `transport`, with `threads` worker threads; `localRank` is the rank's
  /// place among its host's processes (see below). Null: the CPU executor.
  std::function<Result<std::unique_ptr<RankExecutor>>(
      const Artifact &artifact, RankState &state, comm::Transport &transport,
      unsigned threads, std::optional<uint32_t> localRank)>
      create;
  /// This process's place among the processes of its host, as its launcher
  /// says (--nproc, torchrun, mpirun); unset where the ranks are threads of
  /// one process. A GPU backend picks its device by it (else by the rank).
  std::optional<uint32_t> localRank;
  /// Timing: after the run on the inputs, `warmup` untimed and then
  /// `iterations` timed runs of the whole batch, each started together on
  /// every rank (a barrier) and lasting until the slowest rank is done.
  unsigned warmup = 0, iterations = 0;
};

/// What a rank's run gives back.
struct RankOutcome {
  /// The rank that gathers the graph's outputs: the first data-parallel
  /// replica's lowest rank whose plan lists outputs (rank 0 when the graph
  /// has no outputs).
  uint32_t outputRank = 0;
  /// The whole graph outputs (manifest order and shapes), on the output
  /// rank only.
  std::vector<NpyArray> outputs;
  /// The timed runs' wall-clock milliseconds, slowest rank's (see
  /// RankBackend::iterations), on the output rank.
  std::vector<double> timesMs;
};

/// Runs `rank` of `artifact` (whose manifest is read) over `transport`:
/// reads the rank's plan, readies its groups, loads its weights, binds it
/// and agrees with the other ranks on the output ranks. The batch (dim 0
/// of every input, `inputs` holding the manifest's whole inputs in order)
/// is cut into dp * microbatches chunks; the rank runs its plan once per
/// chunk of its replica, in order, its graph inputs set from that chunk's
/// rows. Each replica's lowest rank whose plan lists outputs keeps its
/// chunks' outputs and sends them to the output rank, which assembles the
/// whole outputs (chunk c at rows [c * chunkRows, (c + 1) * chunkRows)).
/// Then it waits until every rank has succeeded. Collective over every
/// rank of the world. `threads` is the rank's worker thread count (0:
/// hardware threads); `backend` says what runs the plan.
Result<RankOutcome> runRank(const Artifact &artifact, uint32_t rank,
                            comm::Transport &transport,
                            std::span<const NpyArray *const> inputs,
                            unsigned threads, RankState &state,
                            const RankBackend &backend = {});

struct LocalRunOptions {
  /// Worker threads per rank; 0: the hardware threads divided among the
  /// ranks (at least 1).
  unsigned threadsPerRank = 0;
  /// How long a rank waits for the others before failing.
  std::chrono::duration<double> timeout = comm::kDefaultTimeout;
  /// How each rank runs (default: the CPU).
  RankBackend backend;
  /// Receives the timed runs' milliseconds when backend.iterations > 0.
  std::vector<double> *timesMs = nullptr;
};

/// Runs every rank of `artifact` (whose manifest is read) as a thread of
/// this process over an in-process transport; each thread reads only its
/// own plan and weights, and all get the same whole `inputs` (see runRank).
/// Returns the whole outputs. On failure the error is the first rank's to fail,
/// "rank N: MESSAGE" (without the prefix for a single-rank artifact); the
/// other ranks end with "rank N failed: ...". `rankStatus`, when given,
/// receives every rank's own status.
Result<std::vector<NpyArray>>
runLocalRanks(const Artifact &artifact, std::span<const NpyArray *const> inputs,
              const LocalRunOptions &options = {},
              std::vector<Status> *rankStatus = nullptr);

/// The default worker threads of each of `localRanks` ranks on this host.
unsigned threadsPerRank(uint32_t localRanks);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_MULTIRANK_H
