// One rank of a job whose processes another launcher started (weft run
// --nproc, torchrun, mpirun, srun): connecting to the other ranks over TCP
// or MPI and reporting a failure so that the whole job ends. Shared by the
// commands that run ranks (weft run, weft generate).
#ifndef WEFT_TOOLS_COMMON_LAUNCHEDRANK_H
#define WEFT_TOOLS_COMMON_LAUNCHEDRANK_H

#include "runtime/comm/Bootstrap.h"
#include "runtime/comm/Transport.h"
#include "runtime/support/Status.h"

#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime {

/// Where a launched rank runs: its transport and its place on its host.
struct LaunchedRank {
  comm::Transport &transport;
  uint32_t rank;
  uint32_t localRank, localSize;
  /// Where a failing task names the rank whose failure caused its own
  /// when the transport did not see it (a link of its own closing), so
  /// that the launcher names that rank.
  std::optional<uint32_t> *causedBy = nullptr;
};

/// What a launched rank does once connected to the others.
using LaunchedRankTask = std::function<Status(const LaunchedRank &)>;

/// Reports an error of a launched rank: to the `--nproc` launcher that
/// started it, else on stderr as "weft: error: rank N: MESSAGE".
/// `failedPeer`: the rank whose failure caused this one, if another's.
/// Returns the exit status, 1.
int rankError(uint32_t rank, const std::string &message,
              std::optional<uint32_t> failedPeer = std::nullopt);

/// The job's size must be the artifact's world size; `command` names the
/// command that launches the right number ("weft run").
std::optional<std::string> checkJobSize(const comm::LaunchInfo &launch,
                                        uint32_t world,
                                        const std::string &command);

/// Runs `task` as this process's rank of a launched job of `world` ranks:
/// over MPI under mpirun or srun, else over TCP. A failure is reported as
/// "weft: error: rank N: MESSAGE" (to the --nproc launcher when it
/// started this process) and ends the other ranks; `command` as for
/// checkJobSize.
/// Returns the exit status (0, or 1 on failure).
int runLaunchedRank(const comm::LaunchInfo &launch, uint32_t world,
                    std::chrono::duration<double> timeout,
                    const LaunchedRankTask &task, const std::string &command);

/// The command line of each child of `--nproc`: this process's own, less
/// the options named in `drop` (each with its value, as "--name V" or
/// "--name=V"). argv is the command's (argv[0] its name, as runMain
/// gets it).
Result<std::vector<std::string>>
childCommandLine(int argc, char **argv, std::span<const std::string> drop);

/// `--nproc N` of a command over an artifact of `world` ranks: N must be
/// `world`, and this command line, less --nproc, runs as N children
/// (launchLocalRanks; with `forwardTerminationToRank0`, SIGTERM and SIGINT
/// go to rank 0 alone). Returns the exit status: 2 after "weft: error:
/// ...\nRun 'PREFIX --help' for usage." for a wrong N; the failing rank's
/// (1 when the children cannot start) after "weft: error: MESSAGE".
///
/// With `slice`, this host runs one node's share of a job of several
/// (weft serve --nnodes): N times the nodes must be `world`, and the
/// children are ranks nodeRank * N .. nodeRank * N + N - 1, meeting rank 0
/// at the slice's master address.
struct NodeSlice {
  uint32_t nodes = 1, nodeRank = 0;
  std::string masterAddr;
  uint16_t masterPort = 29500;
};
int runChildRanks(const std::string &prefix, uint32_t nproc, uint32_t world,
                  int argc, char **argv, bool forwardTerminationToRank0 = false,
                  const NodeSlice *slice = nullptr);

} // namespace weft::runtime

#endif // WEFT_TOOLS_COMMON_LAUNCHEDRANK_H
