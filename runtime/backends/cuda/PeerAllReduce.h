// A one-shot all-reduce over the GPUs of one host, through peer memory:
// every member writes its input into a place of its own in every member's
// exchange buffer (over NVLink: writes, which the links carry better than
// reads), raises a flag in each of them, waits for every member's flag in
// its own buffer, and sums the copies there, from its own memory. One
// kernel and no proxy thread: for the small all-reduces of tensor
// parallelism at low batch (a layer's hidden state, a few MiB), where
// NCCL's ring pays its fixed cost per step, this is a few microseconds
// instead of tens.
//
// The launch is graph-capturable: the kernel's arguments never change, and
// the call number that tells one call's flags from the last's is kept per
// block in device memory. Calls alternate between two slots of the buffer,
// so a member that runs ahead into the next call never overwrites what a
// slower one still reads (it cannot get two calls ahead: the next call's
// flags wait for the slower member).
//
// Every member sums in group order, so that all of them hold bitwise the
// same result (tensor-parallel replicas must not drift apart).
//
// This header and PeerAllReduce.cu depend on the CUDA runtime only, so that
// weft-calibrate times the very kernel the runtime launches.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_PEERALLREDUCE_H
#define WEFT_RUNTIME_BACKENDS_CUDA_PEERALLREDUCE_H

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

namespace weft::runtime::cuda {

inline constexpr int kPeerMaxRanks = 8;
/// The blocks of every launch (the grid is fixed: a block's flags and call
/// counter belong to its index).
inline constexpr int kPeerBlocks = 128;
/// Bytes before the two slots of an exchange buffer: the flags, one per
/// block and member.
inline constexpr uint64_t kPeerFlagBytes = 4096;
static_assert(kPeerBlocks * kPeerMaxRanks * 4 <= kPeerFlagBytes);

/// The largest payload (bytes) the runtime gives the peer all-reduce by
/// default (WEFT_PEER_ALLREDUCE_MAX_BYTES lowers it): past a few MiB NCCL's
/// ring, which moves as much and pipelines it, is as fast.
inline constexpr uint64_t kPeerDefaultLimit = 8ull << 20;

/// The largest payload that goes in one shot over `ranks` GPUs (each member
/// sends ranks - 1 copies); above it, two shots (2 (ranks - 1) / ranks
/// copies, one more barrier). On two GPUs both send one copy.
inline uint64_t peerOneShotBytes(int ranks, uint64_t limit) {
  return ranks <= 2 ? limit : std::min<uint64_t>(limit, 512ull << 10);
}

inline uint64_t roundUp256(uint64_t bytes) { return (bytes + 255) / 256 * 256; }

/// One group's peer all-reduce as one member sees it. The exchange
/// buffers' flags start zeroed; so do the call counters.
struct PeerGroup {
  int self = 0, size = 0;
  /// Every member's exchange buffer (this member's own included), mapped
  /// into this process, in group order: the flags, then two slots.
  void *buffers[kPeerMaxRanks] = {};
  /// The largest payload; the largest one-shot payload (a member's place
  /// in a slot); the bytes of a slot (a place per member, or a two-shot
  /// payload and its gathered sums).
  uint64_t limit = 0, placeBytes = 0, slotBytes = 0;
  /// This member's call counters, kPeerBlocks u32 of device memory.
  uint32_t *epochs = nullptr;
  /// A u32 a launch sets to 1 when it waited longer than `timeoutNs` for a
  /// member (a device pointer to host-mapped memory, so that the host sees
  /// it while the stream is stuck).
  uint32_t *error = nullptr;
  uint64_t timeoutNs = 0;
};

/// Sets g.limit, g.placeBytes and g.slotBytes for payloads up to `limit`
/// bytes over g.size GPUs.
inline void setPeerLayout(PeerGroup &g, uint64_t limit) {
  g.limit = limit;
  g.placeBytes = roundUp256(peerOneShotBytes(g.size, limit));
  g.slotBytes =
      std::max(uint64_t(g.size) * g.placeBytes, 2 * roundUp256(limit));
}

/// One member's exchange buffer.
inline uint64_t peerBufferBytes(const PeerGroup &g) {
  return kPeerFlagBytes + 2 * g.slotBytes;
}

enum class PeerDType { F32, F16, BF16 };

/// Whether the group takes an all-reduce of `count` elements (else NCCL
/// must): up to g.limit bytes, in one shot, or in two where the payload
/// splits into g.size chunks of 16-byte vectors. The same on every member.
bool peerAllReduceTakes(const PeerGroup &g, PeerDType dtype, int64_t count);

/// Enqueues out = the sum over the group's members of `in` (`count`
/// elements of `dtype`) on `stream`; `in` may be `out`, and neither needs
/// any alignment. Needs peerAllReduceTakes(g, dtype, count) and every
/// member to make the same calls in the same order.
cudaError_t launchPeerAllReduce(const PeerGroup &g, PeerDType dtype,
                                const void *in, void *out, int64_t count,
                                cudaStream_t stream);

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_PEERALLREDUCE_H
