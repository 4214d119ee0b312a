// Ranks as the processes of an MPI job (mpirun, srun): this process's
// session, its Transport and its Bootstrap. Built only where CMake found MPI;
// elsewhere init() explains that the binary lacks it.
#ifndef WEFT_RUNTIME_COMM_MPITRANSPORT_H
#define WEFT_RUNTIME_COMM_MPITRANSPORT_H

#include "runtime/comm/Bootstrap.h"
#include "runtime/comm/Transport.h"

#include <memory>

namespace weft::runtime::comm {

/// MPI, initialized for this process (and finalized by the destructor).
/// The transport's groups are communicators split from MPI_COMM_WORLD
/// (prepare() creates them, collectively); all-reduce and all-gather are
/// MPI_Iallreduce / MPI_Iallgather and sends and receives MPI_Isend /
/// MPI_Irecv, each polled until done or the timeout. Sends are copied out
/// first, so they never wait for the receiver.
class MpiSession {
public:
  /// Whether this binary was built with MPI.
  static bool available();
  /// Initializes MPI (MPI_THREAD_FUNNELED: only this thread calls it).
  static Result<std::unique_ptr<MpiSession>>
  init(std::chrono::duration<double> timeout = kDefaultTimeout);
  ~MpiSession();
  MpiSession(const MpiSession &) = delete;
  MpiSession &operator=(const MpiSession &) = delete;

  uint32_t rank() const;
  uint32_t worldSize() const;
  /// The processes of this job on this host (for sizing thread pools).
  uint32_t localSize() const;
  Transport &transport();
  /// Small exchanges over MPI_COMM_WORLD (for NCCL's unique id).
  Bootstrap &bootstrap();

  /// Ends every process of the job (MPI_Abort) with exit status `code`:
  /// for an error on this rank that the others may be waiting on.
  [[noreturn]] void abort(int code);

  struct Impl;

private:
  explicit MpiSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_MPITRANSPORT_H
