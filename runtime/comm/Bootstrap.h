// How the processes of a launched job find each other: this process's place
// in the job (from the launcher's environment) and a Bootstrap that
// exchanges small byte strings among them (addresses, an NCCL unique id,
// each rank's groups). Implementations: a TCP rendezvous at
// MASTER_ADDR:MASTER_PORT (TcpBootstrap, below) and MPI (MpiTransport.h).
#ifndef WEFT_RUNTIME_COMM_BOOTSTRAP_H
#define WEFT_RUNTIME_COMM_BOOTSTRAP_H

#include "runtime/comm/Socket.h"
#include "runtime/comm/Transport.h"

#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace weft::runtime::comm {

/// Small exchanges among every process of the job. Every call is
/// collective over the whole world (each rank calls the same ones in the
/// same order) and fails once the timeout given at creation passes or a
/// process it waits for has gone ("rank N failed: ...").
class Bootstrap {
public:
  virtual ~Bootstrap() = default;

  virtual uint32_t rank() const = 0;
  virtual uint32_t worldSize() const = 0;
  /// This process's index among the job's processes on its host (its GPU),
  /// and their number.
  virtual uint32_t localRank() const = 0;
  virtual uint32_t localSize() const = 0;

  /// Rank 0's `data` replaces every other rank's.
  virtual Status broadcast(std::vector<std::byte> &data) = 0;
  /// Every rank's `mine`, in rank order (lengths may differ).
  virtual Result<std::vector<std::vector<std::byte>>>
  allGather(std::span<const std::byte> mine) = 0;
  /// Returns once every rank has called it.
  virtual Status barrier() = 0;
};

/// A Bootstrap over a Transport's world all-gathers: for ranks that
/// already have one, such as the threads of one process (every rank on this
/// host: the local rank is the rank). Its exchanges are collectives of the
/// transport, so every rank must make them at the same point of its run.
class TransportBootstrap final : public Bootstrap {
public:
  explicit TransportBootstrap(Transport &transport) : transport(transport) {}

  uint32_t rank() const override { return transport.rank(); }
  uint32_t worldSize() const override { return transport.worldSize(); }
  uint32_t localRank() const override { return transport.rank(); }
  uint32_t localSize() const override { return transport.worldSize(); }

  Status broadcast(std::vector<std::byte> &data) override;
  Result<std::vector<std::vector<std::byte>>>
  allGather(std::span<const std::byte> mine) override;
  Status barrier() override;

private:
  Transport &transport;
};

/// Where this process stands in a job started by a launcher.
struct LaunchInfo {
  enum class Kind {
    /// WEFT_RANK/WEFT_WORLD_SIZE (weft run --nproc) or torchrun's
    /// RANK/WORLD_SIZE with MASTER_ADDR: a TCP rendezvous.
    Tcp,
    /// mpirun or srun: MPI.
    Mpi,
  };
  Kind kind = Kind::Tcp;
  uint32_t rank = 0, size = 1, localRank = 0, localSize = 1;
  /// The variable the size was read from, for messages: "WEFT_WORLD_SIZE=2".
  std::string sizeSource;
  /// Kind::Tcp: rank 0's rendezvous address (MASTER_ADDR, MASTER_PORT).
  std::string masterAddr;
  uint16_t masterPort = 0;
};

/// Reads the launcher's environment: WEFT_RANK and WEFT_WORLD_SIZE (with
/// WEFT_LOCAL_RANK, WEFT_LOCAL_WORLD_SIZE), else those of Open MPI, PMI or
/// Slurm, else RANK and WORLD_SIZE (torchrun's when MASTER_ADDR is set,
/// with LOCAL_RANK, LOCAL_WORLD_SIZE). None when no launcher set them or
/// the job has one process. Values that do not parse, a rank outside the
/// world and a missing or bad MASTER_ADDR / MASTER_PORT are errors naming
/// the variable.
Result<std::optional<LaunchInfo>> detectLaunch();

/// The TCP rendezvous: rank 0 listens on MASTER_PORT (every interface) and
/// every other rank connects to it at MASTER_ADDR (retrying until the
/// timeout, since rank 0 may start later); exchanges go through rank 0.
/// connect() returns once the whole world has connected.
class TcpBootstrap final : public Bootstrap {
public:
  static Result<std::unique_ptr<TcpBootstrap>>
  connect(const LaunchInfo &launch, std::chrono::duration<double> timeout);
  ~TcpBootstrap() override;

  uint32_t rank() const override { return info.rank; }
  uint32_t worldSize() const override { return info.size; }
  uint32_t localRank() const override { return info.localRank; }
  uint32_t localSize() const override { return info.localSize; }

  Status broadcast(std::vector<std::byte> &data) override;
  Result<std::vector<std::vector<std::byte>>>
  allGather(std::span<const std::byte> mine) override;
  Status barrier() override;

  /// The address by which other ranks reach this process: that of this end
  /// of its connection to rank 0 (rank 0: the one its peers connected to).
  const std::string &host() const { return selfHost; }

private:
  TcpBootstrap(const LaunchInfo &info, std::chrono::duration<double> timeout)
      : info(info), timeout(timeout) {}
  Status acceptPeers(Clock::time_point deadline);
  Status sendBlob(int fd, std::span<const std::byte> blob,
                  Clock::time_point deadline, const std::string &what);
  Result<std::vector<std::byte>> recvBlob(int fd, Clock::time_point deadline,
                                          const std::string &what);
  /// The error for a failed exchange with `peer` (rank 0 for the others).
  Status peerError(uint32_t peer, const Status &s) const;

  LaunchInfo info;
  std::chrono::duration<double> timeout;
  std::string master; // "MASTER_ADDR:MASTER_PORT = host:port"
  std::string selfHost;
  Socket listener;           // rank 0
  std::vector<Socket> peers; // rank 0: by rank (peers[0] unused); else [0]
};

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_BOOTSTRAP_H
