// Running the ranks of an artifact through sessions: one rank over a
// transport, or every rank as a thread of this process.
#ifndef WEFT_RUNTIME_SESSION_MULTIRANK_H
#define WEFT_RUNTIME_SESSION_MULTIRANK_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/comm/Transport.h"
#include "runtime/exec/Npz.h"
#include "runtime/session/Session.h"

#include <functional>
#include <optional>

#include <memory>
#include <span>
#include <vector>

namespace weft::runtime {

/// A rank's session, kept by the caller of runRank until no other rank
/// can still read this rank's memory (in-process collectives read their
/// inputs in place).
struct RankState {
  /// A transport over the rank's own that the session uses (one that times
  /// it, say), if any: declared first, so that it outlives the session.
  std::unique_ptr<comm::Transport> transport;
  std::unique_ptr<Session> session;
};

/// How a rank's plan runs. The default: on the CPU.
struct RankBackend {
  /// Makes the executor of the rank (BackendRegistry.h). Null: the CPU.
  BackendFactory create;
  /// This process's place among the processes of its host, as its launcher
  /// says (--nproc, torchrun, mpirun); unset where the ranks are threads of
  /// one process. A GPU backend picks its device by it (else by the rank).
  std::optional<uint32_t> localRank;
  /// Timing: after the run on the inputs, `warmup` untimed and then
  /// `iterations` timed runs of the whole batch (Session::time).
  unsigned warmup = 0, iterations = 0;
};

/// Runs `rank` of `artifact` (whose manifest is read) over `transport`
/// once, through a session (Session.h): opens it into `state`, runs the
/// entry "forward" on `inputs` (the manifest's whole inputs, in order;
/// chunk c of the outputs at rows [c * chunkRows, (c + 1) * chunkRows)),
/// then times it as `backend` asks. Collective over every rank of the
/// world. `threads` is the rank's worker thread count (0:
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

/// What one rank of a world does over its transport; `state` keeps its
/// session until every rank has ended.
using RankTask = std::function<Status(uint32_t rank, comm::Transport &transport,
                                      RankState &state)>;

/// Runs `task` for every rank of a world of `world` ranks, each as a thread
/// of this process over an in-process transport. On failure the error is
/// the first rank's to fail, as runLocalRanks reports it; `rankStatus`,
/// when given, receives every rank's own status.
Status runLocalRankTasks(uint32_t world, std::chrono::duration<double> timeout,
                         const RankTask &task,
                         std::vector<Status> *rankStatus = nullptr);

/// The default worker threads of each of `localRanks` ranks on this host.
unsigned threadsPerRank(uint32_t localRanks);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SESSION_MULTIRANK_H
