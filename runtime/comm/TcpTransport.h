// Ranks as processes connected by TCP (weft run --nproc, torchrun): a full
// mesh of connections set up through a Bootstrap.
#ifndef WEFT_RUNTIME_COMM_TCPTRANSPORT_H
#define WEFT_RUNTIME_COMM_TCPTRANSPORT_H

#include "runtime/comm/Bootstrap.h"

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

namespace weft::runtime::comm {

/// One connection per pair of ranks. A collective sends this rank's input
/// to every other member and waits for theirs; an all-reduce then sums the
/// members' inputs in ascending rank order, exactly as InProcessWorld does,
/// so both give the same bits. Sends are copied and queued, never waiting
/// for the receiver. There is no background thread: every blocking call
/// moves all queued data both ways while it waits, so ranks that wait on
/// each other always make progress.
///
/// A wait fails when a peer reports its failure (fail()) or its connection
/// drops before it said goodbye ("rank N failed: ..."), when the peer it
/// needs has finished, or when the timeout passes.
class TcpTransport final : public Transport {
public:
  /// Listens on `host` (the address other ranks reach this process by),
  /// exchanges addresses through `boot` and connects every pair of ranks
  /// (the higher rank connects). Collective over the world.
  static Result<std::unique_ptr<TcpTransport>>
  create(Bootstrap &boot, const std::string &host,
         std::chrono::duration<double> timeout);
  /// Says goodbye to every peer, delivers what is queued and waits (up to
  /// the timeout) for the peers to close their ends, unless fail() ran.
  ~TcpTransport() override;

  uint32_t rank() const override { return self; }
  uint32_t worldSize() const override { return size; }

  Status allReduceSum(const Group &group, DType dtype, const std::byte *in,
                      std::byte *out, int64_t count) override;
  Status allGather(const Group &group, const std::byte *in, uint64_t bytes,
                   std::byte *out) override;
  Status send(uint32_t peer, int64_t tag, const std::byte *data,
              uint64_t bytes) override;
  Status recv(uint32_t peer, int64_t tag, std::byte *data,
              uint64_t bytes) override;
  Status flush() override;

  /// Tells every peer that this rank failed with `message` (or, when this
  /// rank learned of another's failure, passes that one on), then closes
  /// every connection. Nothing else may be called afterwards.
  void fail(const std::string &message);
  /// The first failure of another rank this rank learned of: (rank,
  /// message).
  std::optional<std::pair<uint32_t, std::string>> peerFailure() const {
    return failed;
  }

  struct Frame;
  struct Peer;

private:
  TcpTransport(uint32_t rank, uint32_t size,
               std::chrono::duration<double> timeout);

  /// Listens, publishes the address through `boot` and connects every pair
  /// of ranks.
  Status connectMesh(Bootstrap &boot, const std::string &host);
  /// Sends this rank's `bytes` of `in` to the other members and waits for
  /// theirs: returns them by position in `group` (this rank's left empty).
  Result<std::vector<std::vector<std::byte>>>
  exchange(const Group &group, uint32_t kind, DType dtype, const std::byte *in,
           uint64_t bytes, const std::string &what);
  /// Queues a frame to `peer`; returns its number among the peer's frames.
  uint64_t enqueue(uint32_t peer, const Frame &frame,
                   std::shared_ptr<const std::vector<std::byte>> data);
  /// Moves queued and arriving data, waiting up to `millis` for any.
  void pump(int millis);
  void readFrom(uint32_t peer);
  void writeTo(uint32_t peer);
  void deliver(uint32_t peer, const Frame &frame, std::vector<std::byte> data);
  void lose(uint32_t peer, const std::string &why);
  /// Pumps until `ready()`, a failure, one of the peers `needed()` (those
  /// it still waits for) gone, or the timeout.
  Status waitUntil(const std::function<bool()> &ready,
                   const std::function<std::vector<uint32_t>()> &needed,
                   const std::function<std::string()> &what);
  /// Pumps until nothing is queued or `deadline` passes.
  void drain(Clock::time_point deadline);

  uint32_t self, size;
  std::chrono::duration<double> timeout;
  std::vector<std::unique_ptr<Peer>> peers; // by rank; null for this rank
  std::optional<std::pair<uint32_t, std::string>> failed;
  bool aborted = false;
  std::map<Group, uint64_t> seqs;
  std::map<std::pair<uint32_t, int64_t>, std::deque<std::vector<std::byte>>>
      messages; // (from, tag) -> messages in send order
  struct Contribution {
    uint32_t info;
    std::vector<std::byte> data;
  };
  std::map<std::tuple<uint32_t, int64_t, uint64_t>, Contribution>
      contributions; // (from, group key, call number)
};

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_TCPTRANSPORT_H
