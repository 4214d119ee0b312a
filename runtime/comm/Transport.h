// How the ranks of a multi-rank plan exchange data: all-reduce, all-gather,
// send and receive over groups of ranks. Implementations: ranks as threads
// of one process (InProcessTransport.h) and ranks as MPI processes
// (MpiTransport.h).
#ifndef WEFT_RUNTIME_COMM_TRANSPORT_H
#define WEFT_RUNTIME_COMM_TRANSPORT_H

#include "runtime/artifact/DType.h"
#include "runtime/support/Status.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime::comm {

/// The ranks taking part in a collective, in order (a plan's `group`).
using Group = std::vector<uint32_t>;

/// How long a blocking wait lasts before it fails, unless told otherwise.
constexpr std::chrono::seconds kDefaultTimeout{300};

/// "[0, 1, 3]".
std::string groupString(const Group &group);
/// A duration in seconds for messages: "300 s", "0.25 s".
std::string secondsString(std::chrono::duration<double> d);

/// One rank's end of the exchanges. Every rank of a group calls the same
/// collectives on that group in the same order. Each call blocks until it
/// is done, another rank has failed (the error says "rank N failed: ..."),
/// or the timeout has passed. A transport is used from one thread.
class Transport {
public:
  virtual ~Transport() = default;

  virtual uint32_t rank() const = 0;
  virtual uint32_t worldSize() const = 0;

  /// Readies the groups this rank takes part in (plus the whole world).
  /// Collective over every rank of the world, before any other call.
  virtual Status prepare(std::span<const Group> groups) { return okStatus(); }

  /// out = the element-wise sum of every group member's `in` (`count`
  /// elements of `dtype`). Integers wrap; BOOL is a logical or.
  virtual Status allReduceSum(const Group &group, DType dtype,
                              const std::byte *in, std::byte *out,
                              int64_t count) = 0;

  /// out = every group member's `bytes` bytes of `in`, one after another in
  /// group order (group.size() * bytes in all).
  virtual Status allGather(const Group &group, const std::byte *in,
                           uint64_t bytes, std::byte *out) = 0;

  /// Sends `bytes` bytes to `peer`; returns once they are copied out, so
  /// `data` may change afterwards (sends never wait for the receiver).
  virtual Status send(uint32_t peer, int64_t tag, const std::byte *data,
                      uint64_t bytes) = 0;

  /// Receives the next message from `peer` with `tag`, which must hold
  /// exactly `bytes` bytes.
  virtual Status recv(uint32_t peer, int64_t tag, std::byte *data,
                      uint64_t bytes) = 0;

  /// Waits until every message this rank sent has been delivered.
  virtual Status flush() { return okStatus(); }
};

/// Ranks [first, first + size) of another transport's world as a world of
/// their own, numbered from 0: a data-parallel replica's ranks within a job
/// of several replicas (weft serve --dp over processes). Groups and peers
/// are translated; what fails names the job's ranks.
class SliceTransport final : public Transport {
public:
  SliceTransport(Transport &inner, uint32_t first, uint32_t size)
      : inner(inner), first(first), size(size) {}

  uint32_t rank() const override { return inner.rank() - first; }
  uint32_t worldSize() const override { return size; }
  Status prepare(std::span<const Group> groups) override;
  Status allReduceSum(const Group &group, DType dtype, const std::byte *in,
                      std::byte *out, int64_t count) override;
  Status allGather(const Group &group, const std::byte *in, uint64_t bytes,
                   std::byte *out) override;
  Status send(uint32_t peer, int64_t tag, const std::byte *data,
              uint64_t bytes) override;
  Status recv(uint32_t peer, int64_t tag, std::byte *data,
              uint64_t bytes) override;
  Status flush() override { return inner.flush(); }

private:
  Group outer(const Group &group) const;

  Transport &inner;
  uint32_t first, size;
};

/// Copies a received message into a receive's `bytes` bytes at `data`;
/// a message of another size is an error naming `where` (the receive).
Status deliverMessage(std::span<const std::byte> message, std::byte *data,
                      uint64_t bytes, const std::string &where);

/// The groups of a plan's COLLECTIVE steps (each once, in first use order)
/// followed by the whole world [0, worldSize).
std::vector<Group> planGroups(const artifact::Plan &plan, uint32_t worldSize);

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_TRANSPORT_H
