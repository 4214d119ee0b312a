// Starting the ranks of a job as processes of this host (weft run --nproc):
// each is this executable again, told its place by WEFT_RANK,
// WEFT_WORLD_SIZE, WEFT_LOCAL_RANK, WEFT_LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT, and reports its error back through a pipe.
#ifndef WEFT_RUNTIME_EXEC_LAUNCHER_H
#define WEFT_RUNTIME_EXEC_LAUNCHER_H

#include "runtime/support/Status.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weft::runtime {

struct LocalLaunch {
  uint32_t nproc = 1;
  /// Every child's argv, argv[0] first; the program run is this executable
  /// (/proc/self/exe).
  std::vector<std::string> args;
  /// How long the other children get to exit after SIGTERM, once one has
  /// failed, before SIGKILL.
  std::chrono::duration<double> grace = std::chrono::seconds(5);
  /// SIGTERM and SIGINT sent to this process go to rank 0 alone (a server
  /// that shuts down gracefully and stops the other ranks itself), instead
  /// of ending this process.
  bool forwardTerminationToRank0 = false;
  /// One node's slice of a job of several nodes: these children are ranks
  /// `firstRank` .. `firstRank + nproc - 1` of `worldSize`, and rank 0
  /// listens at `masterAddr`:`masterPort`. Empty `masterAddr`: the whole job
  /// is here (worldSize nproc, rank 0 at 127.0.0.1 on a free port).
  uint32_t worldSize = 0, firstRank = 0;
  std::string masterAddr;
  uint16_t masterPort = 0;
};

/// How the children ended: exit status 0 when all succeeded; otherwise
/// that of the rank whose failure came first (1 when it was killed), and
/// `message` says which rank and why ("rank 1: MESSAGE", "rank 1 was killed
/// by signal 9 (Killed)").
struct LaunchOutcome {
  int exitCode = 0;
  std::string message;
};

/// Starts `launch.nproc` children (rank r with WEFT_RANK=r, MASTER_ADDR
/// 127.0.0.1 and a free MASTER_PORT, or the slice's ranks and rank 0's
/// address; NCCL_NVLS_ENABLE=0 unless set) and
/// waits for all. Once one exits with a non-zero status or is killed, the
/// others are ended (SIGTERM, then SIGKILL after the grace period); a child
/// also dies with this process. An error when the children cannot start.
Result<LaunchOutcome> launchLocalRanks(const LocalLaunch &launch);

/// The variable naming the pipe a child reports its error on.
constexpr const char *kStatusFdVar = "WEFT_STATUS_FD";

/// In a child of launchLocalRanks: hands this rank's error to the launcher,
/// which reports the failure that came first. `failedPeer` is the rank
/// whose failure caused this one, if another's. False when this process
/// was not started so (the caller then prints the error itself).
bool reportToLauncher(const std::string &message,
                      std::optional<uint32_t> failedPeer);

/// This process's command line (/proc/self/cmdline).
Result<std::vector<std::string>> ownCommandLine();

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_LAUNCHER_H
