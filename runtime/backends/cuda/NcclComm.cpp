// NCCL communicators made through the Bootstrap, nonblocking and polled.
#include "runtime/backends/cuda/NcclComm.h"

#include <nccl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include <unistd.h>

namespace weft::runtime::cuda {

namespace {

using Clock = std::chrono::steady_clock;

std::string ncclText(ncclResult_t r, ncclComm_t c) {
  std::string text = ncclGetErrorString(r);
  const char *last = c ? ncclGetLastError(c) : nullptr;
  if (last && *last)
    text += std::string(" (") + last + ")";
  return text;
}

/// Waits between polls: only yields for the first 10 ms (a plan's run
/// usually ends within that, and a sleep oversleeps by the kernel's timer
/// slack, tens of microseconds, which a timed run would count), then sleeps
/// a little longer each time, up to a millisecond.
class Backoff {
public:
  void operator()() {
    if (Clock::now() - start < std::chrono::milliseconds(10)) {
      std::this_thread::yield();
      return;
    }
    sleepUs = std::min(sleepUs + 1, 1000);
    std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
  }

private:
  Clock::time_point start = Clock::now();
  int sleepUs = 0;
};

/// The limit this process asks for: WEFT_PEER_ALLREDUCE_MAX_BYTES (0 turns
/// the path off), else none of its own.
Result<uint64_t> configuredPeerLimit() {
  const char *text = std::getenv("WEFT_PEER_ALLREDUCE_MAX_BYTES");
  if (!text || !*text)
    return ~uint64_t(0);
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || *end || text[0] == '-')
    return errorStatus(std::string("WEFT_PEER_ALLREDUCE_MAX_BYTES='") + text +
                       "' is not a number of bytes");
  return uint64_t(v);
}

} // namespace

std::string NcclCollectives::prefix() const {
  return "rank " + std::to_string(self) + " (CUDA device " +
         std::to_string(dev) + "): ";
}

Status NcclCollectives::waitReady(ncclComm_t c, const std::string &what) {
  auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
  for (Backoff backoff;; backoff()) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(c, &state);
    if (r != ncclSuccess)
      return errorStatus(prefix() + what + ": " + ncclText(r, c));
    if (state == ncclSuccess)
      return okStatus();
    if (state != ncclInProgress)
      return errorStatus(prefix() + what + ": " + ncclText(state, c));
    if (Clock::now() >= deadline)
      return errorStatus(prefix() + "timed out after " +
                         comm::secondsString(timeout) + " in " + what +
                         " (another rank failed, hangs or was not started)");
  }
}

Status NcclCollectives::enqueued(int result, ncclComm_t c,
                                 const std::string &what) {
  auto r = static_cast<ncclResult_t>(result);
  if (r == ncclSuccess)
    return okStatus();
  if (r == ncclInProgress)
    return waitReady(c, what);
  return errorStatus(prefix() + what + ": " + ncclText(r, c));
}

Result<std::unique_ptr<NcclCollectives>>
NcclCollectives::create(comm::Bootstrap &boot,
                        std::span<const comm::Group> groups, int device,
                        std::chrono::duration<double> timeout) {
  uint32_t rank = boot.rank(), size = boot.worldSize();
  std::unique_ptr<NcclCollectives> nc(
      new NcclCollectives(rank, size, device, timeout));
  // Refused before anything collective: every rank reads the same setting.
  auto peerLimit = configuredPeerLimit();
  if (!peerLimit.ok())
    return peerLimit.status().withPrefix(nc->prefix());
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess)
    return errorStatus(nc->prefix() +
                       "cannot use the device: " + cudaGetErrorString(e));

  // Rank 0's id; an empty one tells the others that it could not make it.
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  std::vector<std::byte> blob;
  std::string idError;
  if (rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
      idError = ncclText(r, nullptr);
    else
      blob.assign(reinterpret_cast<std::byte *>(&id),
                  reinterpret_cast<std::byte *>(&id) + sizeof(id));
  }
  if (Status s = boot.broadcast(blob); !s.ok())
    return s.withPrefix(nc->prefix() + "sharing the NCCL id: ");
  if (!idError.empty())
    return errorStatus(nc->prefix() + "ncclGetUniqueId: " + idError);
  if (blob.size() != sizeof(id))
    return errorStatus(nc->prefix() + "rank 0 could not make the NCCL id");
  std::memcpy(&id, blob.data(), sizeof(id));

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&nc->world, static_cast<int>(size),
                                          id, static_cast<int>(rank), &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    nc->world = nullptr;
    return errorStatus(nc->prefix() + "creating the world communicator: " +
                       ncclText(r, nullptr));
  }
  if (Status s = nc->waitReady(nc->world, "creating the world communicator");
      !s.ok()) {
    nc->abort();
    return s;
  }

  // Every rank's groups, so that all split the same communicators in the
  // same order: [size, ranks...] per group.
  std::vector<uint32_t> mine;
  for (const comm::Group &g : groups) {
    mine.push_back(static_cast<uint32_t>(g.size()));
    mine.insert(mine.end(), g.begin(), g.end());
  }
  auto all = boot.allGather(std::span(
      reinterpret_cast<const std::byte *>(mine.data()), mine.size() * 4));
  if (!all.ok()) {
    nc->abort();
    return all.status().withPrefix(nc->prefix() + "exchanging groups: ");
  }
  std::set<comm::Group> everyone;
  for (const std::vector<std::byte> &theirs : *all) {
    std::vector<uint32_t> v(theirs.size() / 4);
    std::memcpy(v.data(), theirs.data(), v.size() * 4);
    for (size_t i = 0; i < v.size();) {
      size_t n = v[i++];
      if (i + n > v.size()) {
        nc->abort();
        return errorStatus(nc->prefix() + "a malformed group list");
      }
      everyone.insert(comm::Group(v.begin() + i, v.begin() + i + n));
      i += n;
    }
  }
  comm::Group worldGroup(size);
  for (uint32_t q = 0; q < size; ++q)
    worldGroup[q] = q;
  // std::set iterates in the same order on every rank.
  for (const comm::Group &g : everyone) {
    if (g == worldGroup)
      continue;
    for (uint32_t q : g)
      if (q >= size) {
        nc->abort();
        return errorStatus(nc->prefix() + "group " + comm::groupString(g) +
                           " has a rank outside the world of " +
                           std::to_string(size));
      }
    auto member = std::find(g.begin(), g.end(), rank);
    int color = member == g.end() ? NCCL_SPLIT_NOCOLOR : 0;
    int key = static_cast<int>(member - g.begin());
    ncclComm_t comm = nullptr;
    ncclConfig_t splitConfig = NCCL_CONFIG_INITIALIZER;
    splitConfig.blocking = 0;
    std::string what =
        "creating the communicator of ranks " + comm::groupString(g);
    r = ncclCommSplit(nc->world, color, key, &comm, &splitConfig);
    if (r != ncclSuccess && r != ncclInProgress) {
      nc->abort();
      return errorStatus(nc->prefix() + what + ": " + ncclText(r, nc->world));
    }
    Status s = nc->waitReady(nc->world, what);
    if (s.ok() && comm)
      s = nc->waitReady(comm, what);
    if (comm)
      nc->groups[g] = comm;
    if (!s.ok()) {
      nc->abort();
      return s;
    }
  }
  if (Status s = nc->setUpPeers(
          boot, std::vector<comm::Group>(everyone.begin(), everyone.end()),
          *peerLimit);
      !s.ok()) {
    nc->abort();
    return s;
  }
  return nc;
}

NcclCollectives::~NcclCollectives() {
  // After an abort a one-shot all-reduce may still spin on the GPU (until
  // its own timeout): its buffers stay mapped until the process ends.
  if (!aborted) {
    for (auto &[g, p] : peers) {
      for (void *ptr : p.opened)
        cudaIpcCloseMemHandle(ptr);
      cudaFree(p.own);
      cudaFree(p.view.epochs);
    }
    if (peerErrorHost)
      cudaFreeHost(peerErrorHost);
  }
  if (aborted || !world)
    return;
  // Finalize flushes what is in flight; a peer that died makes it fail or
  // hang, and then the communicators are aborted instead.
  std::vector<ncclComm_t> comms;
  for (auto &[g, c] : groups)
    comms.push_back(c);
  comms.push_back(world);
  bool ok = true;
  for (ncclComm_t c : comms) {
    ncclResult_t r = ncclCommFinalize(c);
    ok = ok && (r == ncclSuccess || r == ncclInProgress) &&
         waitReady(c, "finalizing a communicator").ok();
  }
  if (!ok) {
    abort();
    return;
  }
  for (ncclComm_t c : comms)
    ncclCommDestroy(c);
}

void NcclCollectives::abort() {
  if (aborted)
    return;
  aborted = true;
  for (auto &[g, c] : groups)
    ncclCommAbort(c);
  groups.clear();
  if (world)
    ncclCommAbort(world);
  world = nullptr;
}

Result<ncclComm_t> NcclCollectives::commFor(const comm::Group &g,
                                            const std::string &what) {
  if (aborted)
    return errorStatus(prefix() + what +
                       ": the communicators were aborted after a failure");
  auto it = groups.find(g);
  if (it != groups.end())
    return it->second;
  bool isWorld = g.size() == size;
  for (uint32_t q = 0; isWorld && q < size; ++q)
    isWorld = g[q] == q;
  if (isWorld)
    return world;
  return errorStatus(prefix() + what +
                     ": the group was not given to create(), or does not "
                     "hold this rank");
}

Status NcclCollectives::allReduceSum(const comm::Group &g, DType dtype,
                                     const void *in, void *out, int64_t count,
                                     cudaStream_t s) {
  std::string what = "all-reduce over ranks " + comm::groupString(g);
  auto c = commFor(g, what);
  if (!c.ok())
    return c.status();
  ncclDataType_t type;
  ncclRedOp_t op = ncclSum;
  switch (dtype) {
  case DType::F32:
    type = ncclFloat32;
    break;
  case DType::F16:
    type = ncclFloat16;
    break;
  case DType::BF16:
    type = ncclBfloat16;
    break;
  case DType::F64:
    type = ncclFloat64;
    break;
  case DType::I32:
    type = ncclInt32;
    break;
  case DType::I64:
    type = ncclInt64;
    break;
  case DType::I8:
    type = ncclInt8;
    break;
  case DType::U8:
    type = ncclUint8;
    break;
  case DType::U32:
    type = ncclUint32;
    break;
  case DType::U64:
    type = ncclUint64;
    break;
  case DType::BOOL:
    type = ncclUint8;
    op = ncclMax;
    break;
  default:
    return errorStatus(prefix() + what + ": cannot sum " + dtypeName(dtype));
  }
  if (count < 0)
    return errorStatus(prefix() + what + ": a negative count");
  if (auto p = peers.find(g);
      p != peers.end() &&
      (type == ncclFloat32 || type == ncclFloat16 || type == ncclBfloat16)) {
    PeerDType peerType = type == ncclFloat32   ? PeerDType::F32
                         : type == ncclFloat16 ? PeerDType::F16
                                               : PeerDType::BF16;
    if (peerAllReduceTakes(p->second.view, peerType, count)) {
      if (cudaError_t e =
              launchPeerAllReduce(p->second.view, peerType, in, out, count, s);
          e != cudaSuccess)
        return errorStatus(prefix() + what +
                           " (through peer memory): " + cudaGetErrorString(e));
      return okStatus();
    }
  }
  return enqueued(
      ncclAllReduce(in, out, static_cast<size_t>(count), type, op, *c, s), *c,
      what);
}

Status NcclCollectives::allGather(const comm::Group &g, const void *in,
                                  uint64_t bytes, void *out, cudaStream_t s) {
  std::string what = "all-gather over ranks " + comm::groupString(g);
  auto c = commFor(g, what);
  if (!c.ok())
    return c.status();
  return enqueued(ncclAllGather(in, out, bytes, ncclUint8, *c, s), *c, what);
}

Status NcclCollectives::checkPeer(uint32_t peer,
                                  const std::string &what) const {
  if (peer >= size || peer == self)
    return errorStatus(prefix() + what + ": not another rank of the world of " +
                       std::to_string(size));
  if (aborted)
    return errorStatus(prefix() + what + ": the communicators were aborted");
  return okStatus();
}

Status NcclCollectives::send(uint32_t peer, const void *data, uint64_t bytes,
                             cudaStream_t s) {
  std::string what = "send to rank " + std::to_string(peer);
  if (Status st = checkPeer(peer, what); !st.ok())
    return st;
  return enqueued(
      ncclSend(data, bytes, ncclUint8, static_cast<int>(peer), world, s), world,
      what);
}

Status NcclCollectives::recv(uint32_t peer, void *data, uint64_t bytes,
                             cudaStream_t s) {
  std::string what = "recv from rank " + std::to_string(peer);
  if (Status st = checkPeer(peer, what); !st.ok())
    return st;
  return enqueued(
      ncclRecv(data, bytes, ncclUint8, static_cast<int>(peer), world, s), world,
      what);
}

Status NcclCollectives::groupStart() {
  if (ncclResult_t r = ncclGroupStart(); r != ncclSuccess)
    return errorStatus(prefix() + "ncclGroupStart: " + ncclText(r, nullptr));
  return okStatus();
}

Status NcclCollectives::groupEnd() {
  ncclResult_t r = ncclGroupEnd();
  if (r == ncclSuccess)
    return okStatus();
  if (r != ncclInProgress)
    return errorStatus(prefix() + "ncclGroupEnd: " + ncclText(r, nullptr));
  // Nonblocking: every communicator of the group finishes enqueueing.
  if (Status s = waitReady(world, "a group of NCCL calls"); !s.ok())
    return s;
  for (auto &[g, c] : groups)
    if (Status s = waitReady(c, "a group of NCCL calls"); !s.ok())
      return s;
  return okStatus();
}

Status NcclCollectives::synchronize(cudaStream_t s) {
  auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
  for (Backoff backoff;; backoff()) {
    cudaError_t e = cudaStreamQuery(s);
    // A one-shot all-reduce that gave up ends its kernel, so the stream
    // completes: its flag is checked first.
    if (std::string failure = peerFailure(); !failure.empty()) {
      abort();
      return errorStatus(prefix() + failure);
    }
    if (e == cudaSuccess)
      return okStatus();
    if (e != cudaErrorNotReady) {
      abort();
      return errorStatus(prefix() +
                         "the GPU stream failed: " + cudaGetErrorString(e));
    }
    if (aborted)
      return errorStatus(prefix() +
                         "the communicators were aborted after a failure");
    // A peer that died or a broken link shows as an asynchronous error.
    auto check = [&](ncclComm_t c, const std::string &name) {
      ncclResult_t state = ncclSuccess;
      ncclResult_t r = ncclCommGetAsyncError(c, &state);
      if (r != ncclSuccess)
        state = r;
      if (state == ncclSuccess || state == ncclInProgress)
        return std::string();
      return "NCCL error on the communicator of " + name + ": " +
             ncclText(state, c);
    };
    std::string failure = check(world, "the world");
    for (auto it = groups.begin(); failure.empty() && it != groups.end(); ++it)
      failure = check(it->second, "ranks " + comm::groupString(it->first));
    if (!failure.empty()) {
      abort();
      return errorStatus(prefix() + failure +
                         " (another rank failed or a link broke); aborted "
                         "every communicator");
    }
    if (Clock::now() >= deadline) {
      abort();
      return errorStatus(prefix() + "timed out after " +
                         comm::secondsString(timeout) +
                         " waiting for the GPU stream's collectives (another "
                         "rank failed, hangs or runs a different plan); "
                         "aborted every communicator");
    }
  }
}

//===----------------------------------------------------------------------===//
// The one-shot all-reduce through peer memory
//===----------------------------------------------------------------------===//

namespace {

/// What each rank tells the others before they map its buffers.
struct PeerHeader {
  char host[192];  // host name and boot id: the same host
  char busId[32];  // the GPU's PCI bus id
  int64_t pid;     // the same process: no IPC
  uint64_t limit;  // WEFT_PEER_ALLREDUCE_MAX_BYTES, or ~0
  uint32_t groups; // PeerEntry records that follow
};

/// One group of the rank's: its exchange buffer.
struct PeerEntry {
  uint32_t groupIndex; // in the sorted list every rank shares
  uint64_t slotBytes;  // 0: none (could not allocate)
  uint64_t pointer;    // for a rank of the same process
  cudaIpcMemHandle_t handle;
};

std::string hostIdentity() {
  char name[128] = {};
  gethostname(name, sizeof(name) - 1);
  std::string id = name;
  if (std::FILE *f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char boot[64] = {};
    if (std::fgets(boot, sizeof(boot), f))
      id += std::string("/") + boot;
    std::fclose(f);
  }
  return id;
}

template <typename T> void append(std::vector<std::byte> &out, const T &v) {
  auto *p = reinterpret_cast<const std::byte *>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

} // namespace

Status NcclCollectives::setUpPeers(comm::Bootstrap &boot,
                                   const std::vector<comm::Group> &everyone,
                                   uint64_t limit) {
  // Errors from here on only turn the path off for a group: NCCL remains.
  PeerHeader header{};
  std::string host = hostIdentity();
  std::strncpy(header.host, host.c_str(), sizeof(header.host) - 1);
  if (cudaDeviceGetPCIBusId(header.busId, sizeof(header.busId), dev) !=
      cudaSuccess)
    header.busId[0] = 0;
  header.pid = getpid();
  header.limit = limit;
  if (cudaHostAlloc(reinterpret_cast<void **>(&peerErrorHost), 4,
                    cudaHostAllocMapped) != cudaSuccess ||
      cudaHostGetDevicePointer(reinterpret_cast<void **>(&peerErrorDevice),
                               peerErrorHost, 0) != cudaSuccess) {
    peerErrorHost = nullptr;
    header.limit = 0;
  } else {
    *peerErrorHost = 0;
  }
  std::vector<PeerEntry> mine;
  std::map<uint32_t, Peers> candidates;
  for (uint32_t gi = 0; gi < everyone.size() && header.limit; ++gi) {
    const comm::Group &g = everyone[gi];
    if (g.size() < 2 || g.size() > kPeerMaxRanks ||
        std::find(g.begin(), g.end(), self) == g.end())
      continue;
    PeerEntry entry{};
    entry.groupIndex = gi;
    Peers p;
    p.view.size = static_cast<int>(g.size());
    setPeerLayout(p.view, std::min(header.limit, kPeerDefaultLimit));
    if (p.view.limit >= 16 &&
        cudaMalloc(&p.own, peerBufferBytes(p.view)) == cudaSuccess &&
        cudaMemset(p.own, 0, kPeerFlagBytes) == cudaSuccess &&
        cudaMalloc(reinterpret_cast<void **>(&p.view.epochs),
                   kPeerBlocks * 4) == cudaSuccess &&
        cudaMemset(p.view.epochs, 0, kPeerBlocks * 4) == cudaSuccess &&
        cudaDeviceSynchronize() == cudaSuccess &&
        cudaIpcGetMemHandle(&entry.handle, p.own) == cudaSuccess) {
      entry.slotBytes = p.view.slotBytes;
      entry.pointer = reinterpret_cast<uint64_t>(p.own);
    }
    cudaGetLastError(); // a failure above only turns the path off
    candidates[gi] = std::move(p);
    mine.push_back(entry);
  }
  header.groups = static_cast<uint32_t>(mine.size());
  std::vector<std::byte> blob;
  append(blob, header);
  for (const PeerEntry &e : mine)
    append(blob, e);
  auto all = boot.allGather(blob);
  if (!all.ok())
    return all.status().withPrefix(prefix() + "exchanging peer buffers: ");
  std::vector<PeerHeader> headers(size);
  // The entries by rank and group index.
  std::map<std::pair<uint32_t, uint32_t>, PeerEntry> entries;
  for (uint32_t q = 0; q < size; ++q) {
    const std::vector<std::byte> &theirs = (*all)[q];
    if (theirs.size() < sizeof(PeerHeader))
      return errorStatus(prefix() + "a malformed peer record from rank " +
                         std::to_string(q));
    std::memcpy(&headers[q], theirs.data(), sizeof(PeerHeader));
    if (theirs.size() !=
        sizeof(PeerHeader) + headers[q].groups * sizeof(PeerEntry))
      return errorStatus(prefix() + "a malformed peer record from rank " +
                         std::to_string(q));
    for (uint32_t i = 0; i < headers[q].groups; ++i) {
      PeerEntry e;
      std::memcpy(&e,
                  theirs.data() + sizeof(PeerHeader) + i * sizeof(PeerEntry),
                  sizeof(PeerEntry));
      entries[{q, e.groupIndex}] = e;
    }
  }

  // Map every member's buffer; a group is usable here if all of them map.
  std::vector<uint32_t> usable;
  for (auto &[gi, p] : candidates) {
    const comm::Group &g = everyone[gi];
    bool ok = true;
    for (size_t m = 0; m < g.size() && ok; ++m) {
      uint32_t q = g[m];
      auto it = entries.find({q, gi});
      const PeerHeader &h = headers[q];
      // The same layout everywhere (the same WEFT_PEER_ALLREDUCE_MAX_BYTES).
      ok = it != entries.end() && it->second.slotBytes == p.view.slotBytes &&
           std::min(h.limit, kPeerDefaultLimit) == p.view.limit &&
           std::strncmp(h.host, header.host, sizeof(h.host)) == 0;
      if (!ok)
        break;
      if (q == self) {
        p.view.self = static_cast<int>(m);
        p.view.buffers[m] = p.own;
        continue;
      }
      int theirDevice = -1, access = 0;
      ok = cudaDeviceGetByPCIBusId(&theirDevice, h.busId) == cudaSuccess &&
           theirDevice != dev &&
           cudaDeviceCanAccessPeer(&access, dev, theirDevice) == cudaSuccess &&
           access;
      if (ok && h.pid == header.pid) {
        // A rank thread of this process: its pointer, with peer access.
        cudaError_t e = cudaDeviceEnablePeerAccess(theirDevice, 0);
        ok = e == cudaSuccess || e == cudaErrorPeerAccessAlreadyEnabled;
        p.view.buffers[m] = reinterpret_cast<void *>(it->second.pointer);
      } else if (ok) {
        void *mapped = nullptr;
        ok =
            cudaIpcOpenMemHandle(&mapped, it->second.handle,
                                 cudaIpcMemLazyEnablePeerAccess) == cudaSuccess;
        if (ok) {
          p.opened.push_back(mapped);
          p.view.buffers[m] = mapped;
        }
      }
    }
    cudaGetLastError();
    if (ok) {
      p.view.error = peerErrorDevice;
      p.view.timeoutNs = static_cast<uint64_t>(timeout.count() * 1e9);
      usable.push_back(gi);
    }
  }

  // Every member must take the same path: use a group only where all of
  // them could.
  std::vector<std::byte> verdict;
  for (uint32_t gi : usable)
    append(verdict, gi);
  auto verdicts = boot.allGather(verdict);
  if (!verdicts.ok())
    return verdicts.status().withPrefix(prefix() +
                                        "agreeing on peer all-reduces: ");
  std::vector<std::set<uint32_t>> agreed(size);
  for (uint32_t q = 0; q < size; ++q) {
    const std::vector<std::byte> &v = (*verdicts)[q];
    for (size_t i = 0; i + 4 <= v.size(); i += 4) {
      uint32_t gi;
      std::memcpy(&gi, v.data() + i, 4);
      agreed[q].insert(gi);
    }
  }
  for (auto &[gi, p] : candidates) {
    const comm::Group &g = everyone[gi];
    bool all = std::all_of(g.begin(), g.end(),
                           [&](uint32_t q) { return agreed[q].count(gi); });
    if (all) {
      peers[g] = std::move(p);
      continue;
    }
    for (void *ptr : p.opened)
      cudaIpcCloseMemHandle(ptr);
    cudaFree(p.own);
    cudaFree(p.view.epochs);
  }
  cudaGetLastError();
  return okStatus();
}

uint64_t NcclCollectives::peerAllReduceLimit(const comm::Group &g) const {
  auto it = peers.find(g);
  return it == peers.end() ? 0 : it->second.view.limit;
}

std::string NcclCollectives::peerFailure() const {
  if (!peerErrorHost || !*reinterpret_cast<volatile uint32_t *>(peerErrorHost))
    return "";
  return "an all-reduce through peer memory waited more than " +
         comm::secondsString(timeout) +
         " for another rank (it failed, hangs or runs a different plan); "
         "aborted every communicator";
}

} // namespace weft::runtime::cuda
