// The CUDA backend's collectives: NCCL communicators for the world and for
// each group of a plan, made through a comm::Bootstrap, and for the small
// all-reduces of a group whose GPUs share a host, the one-shot all-reduce
// through peer memory (PeerAllReduce.h).
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_NCCLCOMM_H
#define WEFT_RUNTIME_BACKENDS_CUDA_NCCLCOMM_H

#include "runtime/artifact/DType.h"
#include "runtime/backends/cuda/PeerAllReduce.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/support/Status.h"

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

typedef struct ncclComm *ncclComm_t;

namespace weft::runtime::cuda {

/// One rank's NCCL communicators. They are nonblocking (NCCL's config
/// blocking = 0), so that creating and aborting them never hangs on a peer
/// that died: every NCCL call that answers "in progress" is polled until
/// done, failed or the timeout. The enqueueing calls (allReduceSum,
/// allGather, send, recv, groupStart, groupEnd) never wait for the GPU, so
/// they may be captured into a CUDA graph; synchronize() is where a rank
/// waits, and learns of failures.
class NcclCollectives {
public:
  /// A world communicator (rank 0's unique id broadcast through `boot`),
  /// then one split from it per group of any rank (every rank's `groups`
  /// are gathered through `boot`, so each rank passes only its own), on
  /// CUDA device `device`. Collective over the world.
  static Result<std::unique_ptr<NcclCollectives>>
  create(comm::Bootstrap &boot, std::span<const comm::Group> groups, int device,
         std::chrono::duration<double> timeout);
  /// Finalizes and destroys the communicators (aborts them if that fails
  /// or takes longer than the timeout), unless abort() ran.
  ~NcclCollectives();
  NcclCollectives(const NcclCollectives &) = delete;
  NcclCollectives &operator=(const NcclCollectives &) = delete;

  uint32_t rank() const { return self; }
  uint32_t worldSize() const { return size; }
  int device() const { return dev; }

  /// out = the element-wise sum over `g` of `in` (`count` elements): f32,
  /// f16, bf16, f64, i32, i64, i8, u8, and BOOL as the maximum of bytes (a
  /// logical or of 0/1 values). f32, f16 and bf16 payloads up to
  /// peerAllReduceLimit(g) bytes take the peer all-reduce where
  /// peerAllReduceTakes() says so.
  Status allReduceSum(const comm::Group &g, DType dtype, const void *in,
                      void *out, int64_t count, cudaStream_t s);
  /// out = every member's `bytes` bytes of `in`, in group order.
  Status allGather(const comm::Group &g, const void *in, uint64_t bytes,
                   void *out, cudaStream_t s);
  /// Point to point with `peer` (a global rank), over the world
  /// communicator. A send waits on the GPU for its receive: two ranks that
  /// exchange both ways put theirs between groupStart() and groupEnd().
  Status send(uint32_t peer, const void *data, uint64_t bytes, cudaStream_t s);
  Status recv(uint32_t peer, void *data, uint64_t bytes, cudaStream_t s);
  /// ncclGroupStart / ncclGroupEnd around calls that must progress
  /// together. An all-reduce that takes the peer path is enqueued at once,
  /// not at groupEnd: keep such all-reduces out of groups.
  Status groupStart();
  Status groupEnd();

  /// Waits for `s`, polling every communicator for an asynchronous error
  /// (a peer that died, a network error) and the deadline; on an error or
  /// at the timeout aborts every communicator and returns an error naming
  /// this rank and the cause.
  Status synchronize(cudaStream_t s);
  /// Aborts every communicator (ncclCommAbort): work in flight ends, and
  /// nothing may be called afterwards but the destructor.
  void abort();

  /// The largest all-reduce (bytes) over `g` that may take the peer path
  /// (PeerAllReduce.h); 0 where the group has none (not one host, no peer
  /// access, a size over kPeerMaxRanks, or WEFT_PEER_ALLREDUCE_MAX_BYTES=0 on a
  /// member). Every member of a group sees the same value.
  uint64_t peerAllReduceLimit(const comm::Group &g) const;

private:
  NcclCollectives(uint32_t rank, uint32_t size, int device,
                  std::chrono::duration<double> timeout)
      : self(rank), size(size), dev(device), timeout(timeout) {}
  /// Polls `c` until its last operation is no longer in progress.
  Status waitReady(ncclComm_t c, const std::string &what);
  Result<ncclComm_t> commFor(const comm::Group &g, const std::string &what);
  /// Checks what an enqueueing call returned, waiting for "in progress".
  Status enqueued(int result, ncclComm_t c, const std::string &what);
  std::string prefix() const;
  /// Sets up the peer all-reduce of each group in `everyone` that holds
  /// this rank (two all-gathers over the world, made by every rank).
  /// `limit`: WEFT_PEER_ALLREDUCE_MAX_BYTES (~0 when unset).
  Status setUpPeers(comm::Bootstrap &boot,
                    const std::vector<comm::Group> &everyone, uint64_t limit);
  /// The error a one-shot all-reduce raised, or "".
  std::string peerFailure() const;
  /// Send and receive: `peer` is another rank, and nothing was aborted.
  Status checkPeer(uint32_t peer, const std::string &what) const;

  uint32_t self, size;
  int dev;
  std::chrono::duration<double> timeout;
  ncclComm_t world = nullptr;
  std::map<comm::Group, ncclComm_t> groups; // those holding this rank
  bool aborted = false;

  /// One group's peer all-reduce: the mapped buffers, and what to release.
  struct Peers {
    PeerGroup view;
    void *own = nullptr;        // this rank's exchange buffer
    std::vector<void *> opened; // other processes' buffers, mapped
  };
  std::map<comm::Group, Peers> peers; // the groups that use it
  /// Host-mapped: set by a one-shot all-reduce that timed out.
  uint32_t *peerErrorHost = nullptr;
  uint32_t *peerErrorDevice = nullptr;
};

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_NCCLCOMM_H
