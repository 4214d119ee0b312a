// Ranks as threads of one process: a shared rendezvous (InProcessWorld)
// and one Transport per rank thread.
#ifndef WEFT_RUNTIME_COMM_INPROCESSTRANSPORT_H
#define WEFT_RUNTIME_COMM_INPROCESSTRANSPORT_H

#include "runtime/comm/Transport.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

namespace weft::runtime::comm {

/// The rendezvous of `worldSize` rank threads. Collectives meet by (group,
/// sequence number in that group); an all-reduce sums the members' inputs
/// in ascending rank order, so results do not depend on timing. Sends are
/// buffered (copied) and never wait.
///
/// A wait ends with an error when:
///   - a rank has failed (fail()): "rank N failed: MESSAGE";
///   - every rank still running waits and none can go on: a deadlock,
///     reported with what each rank waits for;
///   - the timeout passes.
/// The rank that first detects a deadlock or a timeout fails with it, so
/// the others then end with "rank N failed: ...".
class InProcessWorld {
public:
  InProcessWorld(uint32_t worldSize,
                 std::chrono::duration<double> timeout = kDefaultTimeout);
  ~InProcessWorld();
  InProcessWorld(const InProcessWorld &) = delete;
  InProcessWorld &operator=(const InProcessWorld &) = delete;

  uint32_t worldSize() const { return world; }

  /// The transport of `rank` (one per rank, used by its thread); it must
  /// not outlive the world.
  std::unique_ptr<Transport> transport(uint32_t rank);

  /// Records that `rank` failed (the first failure is kept) and wakes every
  /// waiting rank.
  void fail(uint32_t rank, const std::string &message);
  /// Records that `rank` is done: it will take part in nothing more.
  void finish(uint32_t rank);
  /// The first failure: (rank, message).
  std::optional<std::pair<uint32_t, std::string>> failure() const;

private:
  friend class InProcessTransport;
  struct Collective;
  struct Waiter {
    const std::function<bool()> *ready = nullptr;
    std::function<std::string()> what;
  };

  /// Waits (with `lock` held on `mutex`) until ready(); `what` describes
  /// the wait for errors ("all-reduce over ranks [0, 1] (waiting for rank
  /// 1)").
  Status waitUntil(std::unique_lock<std::mutex> &lock, uint32_t rank,
                   const std::function<bool()> &ready,
                   const std::function<std::string()> &what);
  Status failedStatus() const;
  void failLocked(uint32_t rank, const std::string &message);
  bool deadlocked() const;
  std::string deadlockMessage() const;

  Status collective(uint32_t rank, const Group &group, uint64_t seq,
                    const char *kind, DType dtype, uint64_t bytes,
                    const std::byte *in,
                    const std::function<void(const Collective &)> &compute);
  Status send(uint32_t from, uint32_t to, int64_t tag, const std::byte *data,
              uint64_t bytes);
  Status recv(uint32_t to, uint32_t from, int64_t tag, std::byte *data,
              uint64_t bytes);

  const uint32_t world;
  const std::chrono::duration<double> timeout;
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::optional<std::pair<uint32_t, std::string>> failed;
  std::vector<bool> finished;
  std::vector<std::optional<Waiter>> waiters; // by rank, while blocked
  std::map<std::pair<Group, uint64_t>, std::shared_ptr<Collective>> collectives;
  std::map<std::tuple<uint32_t, uint32_t, int64_t>,
           std::deque<std::vector<std::byte>>>
      mailboxes; // (from, to, tag) -> messages in send order
};

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_INPROCESSTRANSPORT_H
