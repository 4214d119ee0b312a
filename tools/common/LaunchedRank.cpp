// One rank of a launched job over TCP or MPI, with its failures reported
// so that the whole job ends.
#include "tools/common/LaunchedRank.h"

#include "runtime/comm/MpiTransport.h"
#include "runtime/comm/TcpTransport.h"
#include "runtime/exec/Launcher.h"

#include <iostream>
#include <new>

namespace weft::runtime {

namespace {

constexpr int kExitData = 1;

/// Each message goes out in one write: under mpirun the processes' lines
/// would otherwise interleave.
int printError(const std::string &message) {
  std::cerr << "weft: error: " + message + "\n";
  return kExitData;
}

/// Runs `task`, turning what escapes it into an error: nothing may escape
/// past a session, whose destructor would wait for ranks that wait for
/// this one.
Status runGuarded(const LaunchedRankTask &task, const LaunchedRank &rank) {
  try {
    return task(rank);
  } catch (const std::bad_alloc &) {
    return errorStatus("out of memory");
  } catch (const std::exception &e) {
    return errorStatus(std::string("internal error: ") + e.what());
  }
}

int runMpiRank(const comm::LaunchInfo &launch, uint32_t world,
               std::chrono::duration<double> timeout,
               const LaunchedRankTask &task) {
  std::string self = "rank " + std::to_string(launch.rank) + ": ";
  auto session = comm::MpiSession::init(timeout);
  if (!session.ok())
    return printError(self + session.message());
  comm::MpiSession &mpi = **session;
  if (mpi.worldSize() != world)
    return printError(self + "the launcher says this job has " +
                      std::to_string(launch.size) + " processes (" +
                      launch.sizeSource + "), but MPI sees " +
                      std::to_string(mpi.worldSize()) +
                      " (was it started by an MPI launcher such "
                      "as mpirun or srun?)");
  Status s = runGuarded(task, {mpi.transport(), mpi.rank(),
                               mpi.bootstrap().localRank(), mpi.localSize()});
  if (!s.ok()) {
    // The other ranks may be waiting on this one: end the whole job.
    printError("rank " + std::to_string(mpi.rank()) + ": " + s.message());
    std::cerr.flush();
    mpi.abort(kExitData);
  }
  return 0;
}

int runTcpRank(const comm::LaunchInfo &launch,
               std::chrono::duration<double> timeout,
               const LaunchedRankTask &task) {
  auto boot = comm::TcpBootstrap::connect(launch, timeout);
  if (!boot.ok())
    return rankError(launch.rank, boot.message());
  auto transport = comm::TcpTransport::create(**boot, (*boot)->host(), timeout);
  if (!transport.ok())
    return rankError(launch.rank, transport.message());
  comm::TcpTransport &tcp = **transport;
  std::optional<uint32_t> causedBy;
  Status s = runGuarded(
      task, {tcp, launch.rank, launch.localRank, launch.localSize, &causedBy});
  if (s.ok())
    return 0;
  // The launcher hears first, so that it names this rank rather than one
  // that learns of the failure from it.
  auto peer = tcp.peerFailure();
  int code = rankError(launch.rank, s.message(),
                       peer ? std::optional<uint32_t>(peer->first) : causedBy);
  tcp.fail(s.message());
  return code;
}

} // namespace

int rankError(uint32_t rank, const std::string &message,
              std::optional<uint32_t> failedPeer) {
  if (!reportToLauncher(message, failedPeer))
    printError("rank " + std::to_string(rank) + ": " + message);
  return kExitData;
}

std::optional<std::string> checkJobSize(const comm::LaunchInfo &launch,
                                        uint32_t world,
                                        const std::string &command) {
  if (launch.size == world)
    return std::nullopt;
  return "the artifact has world_size " + std::to_string(world) +
         ", but this job has " + std::to_string(launch.size) + " processes (" +
         launch.sizeSource + "); launch exactly " + std::to_string(world) +
         (launch.kind == comm::LaunchInfo::Kind::Mpi
              ? " (e.g. mpirun -np " + std::to_string(world) + ")"
              : " (e.g. " + command + " --nproc " + std::to_string(world) +
                    ")");
}

int runLaunchedRank(const comm::LaunchInfo &launch, uint32_t world,
                    std::chrono::duration<double> timeout,
                    const LaunchedRankTask &task, const std::string &command) {
  bool mpi = launch.kind == comm::LaunchInfo::Kind::Mpi;
  if (auto err = checkJobSize(launch, world, command))
    return mpi ? printError(*err) : rankError(launch.rank, *err);
  return mpi ? runMpiRank(launch, world, timeout, task)
             : runTcpRank(launch, timeout, task);
}

Result<std::vector<std::string>>
childCommandLine(int argc, char **argv, std::span<const std::string> drop) {
  auto all = ownCommandLine();
  if (!all.ok())
    return all.status();
  // What precedes the command's own arguments: "weft run" or "weft-run".
  if (all->size() < static_cast<size_t>(argc))
    return errorStatus("cannot tell this process's command line apart");
  std::vector<std::string> args(all->begin(),
                                all->begin() + (all->size() - (argc - 1)));
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool dropped = false;
    for (const std::string &name : drop) {
      if (arg == name) {
        ++i;
        dropped = true;
      } else if (arg.rfind(name + "=", 0) == 0) {
        dropped = true;
      }
    }
    if (!dropped)
      args.push_back(arg);
  }
  return args;
}

int runChildRanks(const std::string &prefix, uint32_t nproc, uint32_t world,
                  int argc, char **argv, bool forwardTerminationToRank0,
                  const NodeSlice *slice) {
  uint32_t nodes = slice ? slice->nodes : 1;
  if (uint64_t{nproc} * nodes != world) {
    std::cerr << "weft: error: --nproc " << nproc;
    if (slice)
      std::cerr << " x --nnodes " << nodes;
    std::cerr << " does not match the artifact's world size " << world;
    if (!slice)
      std::cerr << " (use --nproc " << world << ")";
    std::cerr << "\nRun '" << prefix << " --help' for usage.\n";
    return 2;
  }
  auto fail = [&](const std::string &message) {
    std::cerr << "weft: error: " + message + "\n";
    return 1;
  };
  const std::string drop[] = {"--nproc", "--nnodes", "--node-rank",
                              "--master-addr", "--master-port"};
  auto args = childCommandLine(argc, argv, drop);
  if (!args.ok())
    return fail(args.message());
  LocalLaunch launch;
  launch.nproc = nproc;
  launch.args = std::move(*args);
  launch.forwardTerminationToRank0 = forwardTerminationToRank0;
  if (slice) {
    launch.worldSize = world;
    launch.firstRank = slice->nodeRank * nproc;
    launch.masterAddr = slice->masterAddr;
    launch.masterPort = slice->masterPort;
  }
  auto outcome = launchLocalRanks(launch);
  if (!outcome.ok())
    return fail(outcome.message());
  if (outcome->exitCode != 0)
    std::cerr << "weft: error: " + outcome->message + "\n";
  return outcome->exitCode;
}

} // namespace weft::runtime
