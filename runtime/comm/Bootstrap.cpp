// The launcher's environment and the TCP rendezvous through rank 0.
#include "runtime/comm/Bootstrap.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include <netinet/in.h>

namespace weft::runtime::comm {

using namespace std::chrono_literals;

namespace {

/// "WEFT" and the rendezvous protocol's version: a process of another
/// program or weft version that connects is told apart.
constexpr uint32_t kMagic = 0x54464557, kVersion = 1;
/// Exchanges carry addresses and ids; a larger length means a corrupted
/// stream.
constexpr uint64_t kMaxBlob = uint64_t(1) << 30;

struct Hello {
  uint32_t magic, version, rank, size;
};

const char *env(const char *name) {
  const char *v = std::getenv(name);
  return v && *v ? v : nullptr;
}

/// The non-negative integer in variable `name`, none when unset.
Result<std::optional<uint32_t>> readCount(const char *name) {
  const char *text = env(name);
  if (!text)
    return std::optional<uint32_t>();
  uint32_t value = 0;
  size_t n = std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, text + n, value);
  if (ec != std::errc() || ptr != text + n)
    return errorStatus(std::string(name) + "='" + text +
                       "' is not a non-negative integer");
  return std::optional<uint32_t>(value);
}

/// Rank, size, local rank and local size from the variables named, checked;
/// none for a world of one process.
Result<std::optional<LaunchInfo>> readTcpLaunch(const char *rankVar,
                                                const char *sizeVar,
                                                const char *localRankVar,
                                                const char *localSizeVar) {
  auto rank = readCount(rankVar), size = readCount(sizeVar);
  if (!rank.ok())
    return rank.status();
  if (!size.ok())
    return size.status();
  if (!*rank || !*size)
    return errorStatus(std::string(*rank ? rankVar : sizeVar) + " is set but " +
                       (*rank ? sizeVar : rankVar) +
                       " is not: a launched rank needs both");
  LaunchInfo info;
  info.kind = LaunchInfo::Kind::Tcp;
  info.rank = **rank;
  info.size = **size;
  info.sizeSource = std::string(sizeVar) + "=" + std::to_string(info.size);
  if (info.size == 0)
    return errorStatus(info.sizeSource + " is not a positive number of ranks");
  if (info.rank >= info.size)
    return errorStatus(std::string(rankVar) + "=" + std::to_string(info.rank) +
                       " is out of range for " + info.sizeSource);
  if (info.size == 1)
    return std::optional<LaunchInfo>();
  auto localRank = readCount(localRankVar), localSize = readCount(localSizeVar);
  if (!localRank.ok())
    return localRank.status();
  if (!localSize.ok())
    return localSize.status();
  // Without them, assume one host.
  info.localRank = localRank->value_or(info.rank);
  info.localSize = std::max<uint32_t>(localSize->value_or(info.size), 1);
  const char *addr = env("MASTER_ADDR"), *port = env("MASTER_PORT");
  if (!addr || !port)
    return errorStatus(std::string(addr ? "MASTER_PORT" : "MASTER_ADDR") +
                       " is not set: with " + rankVar + " and " + sizeVar +
                       ", MASTER_ADDR and MASTER_PORT name rank 0's "
                       "rendezvous address (weft run --nproc sets them)");
  auto p = parsePort(port, "MASTER_PORT");
  if (!p.ok())
    return p.status();
  info.masterAddr = addr;
  info.masterPort = *p;
  return std::optional<LaunchInfo>(std::move(info));
}

} // namespace

Result<std::optional<LaunchInfo>> detectLaunch() {
  if (env("WEFT_RANK") || env("WEFT_WORLD_SIZE"))
    return readTcpLaunch("WEFT_RANK", "WEFT_WORLD_SIZE", "WEFT_LOCAL_RANK",
                         "WEFT_LOCAL_WORLD_SIZE");
  // torchrun sets RANK and WORLD_SIZE with MASTER_ADDR; some MPI launchers
  // set RANK and WORLD_SIZE alone.
  if (env("RANK") && env("WORLD_SIZE") && env("MASTER_ADDR") &&
      !env("OMPI_COMM_WORLD_SIZE") && !env("PMI_SIZE") &&
      !env("SLURM_STEP_NUM_TASKS"))
    return readTcpLaunch("RANK", "WORLD_SIZE", "LOCAL_RANK",
                         "LOCAL_WORLD_SIZE");
  static const char *const mpiVars[][2] = {
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMI_RANK", "PMI_SIZE"},
      {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS"},
      {"RANK", "WORLD_SIZE"},
  };
  for (auto [rankVar, sizeVar] : mpiVars) {
    auto rank = readCount(rankVar), size = readCount(sizeVar);
    if (!rank.ok() || !size.ok() || !*rank || !*size)
      continue;
    if (**size <= 1)
      return std::optional<LaunchInfo>();
    LaunchInfo info;
    info.kind = LaunchInfo::Kind::Mpi;
    info.rank = **rank;
    info.size = **size;
    info.sizeSource = std::string(sizeVar) + "=" + std::to_string(info.size);
    return std::optional<LaunchInfo>(std::move(info));
  }
  return std::optional<LaunchInfo>();
}

//===----------------------------------------------------------------------===//
// TransportBootstrap
//===----------------------------------------------------------------------===//

namespace {

Group worldOf(uint32_t size) {
  Group g(size);
  for (uint32_t r = 0; r < size; ++r)
    g[r] = r;
  return g;
}

/// The ranks r with present[r] == which, as "rank 3" or "ranks 1, 4-7, 9"
/// (the first 16 runs, then how many more ranks).
std::string describeRanks(const std::vector<bool> &present, bool which) {
  std::vector<std::pair<uint32_t, uint32_t>> runs;
  uint64_t count = 0;
  for (uint32_t r = 0; r < present.size(); ++r) {
    if (present[r] != which)
      continue;
    ++count;
    if (!runs.empty() && runs.back().second + 1 == r)
      runs.back().second = r;
    else
      runs.push_back({r, r});
  }
  std::string out = count == 1 ? "rank " : "ranks ";
  uint64_t listed = 0;
  for (size_t i = 0; i < runs.size() && i < 16; ++i) {
    auto [a, b] = runs[i];
    if (i)
      out += ", ";
    out += std::to_string(a);
    if (b > a) {
      out += '-';
      out += std::to_string(b);
    }
    listed += b - a + 1;
  }
  if (listed < count)
    out += " and " + std::to_string(count - listed) + " more";
  return out;
}

} // namespace

Result<std::vector<std::vector<std::byte>>>
TransportBootstrap::allGather(std::span<const std::byte> mine) {
  // Lengths first, then every blob padded to the longest.
  uint32_t size = transport.worldSize();
  Group world = worldOf(size);
  uint64_t length = mine.size();
  std::vector<uint64_t> lengths(size);
  if (Status s = transport.allGather(
          world, reinterpret_cast<const std::byte *>(&length), sizeof(length),
          reinterpret_cast<std::byte *>(lengths.data()));
      !s.ok())
    return s;
  uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (longest > kMaxBlob)
    return errorStatus("bootstrap all-gather: a blob of " +
                       std::to_string(longest) + " bytes");
  std::vector<std::byte> padded(longest), all(longest * size);
  std::copy(mine.begin(), mine.end(), padded.begin());
  if (Status s = transport.allGather(world, padded.data(), longest, all.data());
      !s.ok())
    return s;
  std::vector<std::vector<std::byte>> result(size);
  for (uint32_t r = 0; r < size; ++r)
    result[r].assign(all.begin() + r * longest,
                     all.begin() + r * longest + lengths[r]);
  return result;
}

Status TransportBootstrap::broadcast(std::vector<std::byte> &data) {
  auto all = allGather(transport.rank() == 0 ? std::span<const std::byte>(data)
                                             : std::span<const std::byte>());
  if (!all.ok())
    return all.status();
  data = std::move((*all)[0]);
  return okStatus();
}

Status TransportBootstrap::barrier() {
  std::byte mine{1};
  std::vector<std::byte> all(transport.worldSize());
  return transport.allGather(worldOf(transport.worldSize()), &mine, 1,
                             all.data());
}

//===----------------------------------------------------------------------===//
// TcpBootstrap
//===----------------------------------------------------------------------===//

TcpBootstrap::~TcpBootstrap() = default;

Result<std::unique_ptr<TcpBootstrap>>
TcpBootstrap::connect(const LaunchInfo &launch,
                      std::chrono::duration<double> timeout) {
  auto deadline = deadlineAfter(timeout);
  std::unique_ptr<TcpBootstrap> boot(new TcpBootstrap(launch, timeout));
  auto at = resolve(launch.masterAddr, launch.masterPort, "MASTER_ADDR");
  if (!at.ok())
    return at.status();
  boot->master = "MASTER_ADDR:MASTER_PORT (" + at->text + ")";
  if (launch.rank == 0) {
    // Every interface, as torchrun does: MASTER_ADDR may name this host by
    // an address it does not own (a hostname mapped to 127.0.1.1, NAT).
    Endpoint any = *at;
    if (any.addr.ss_family == AF_INET6)
      reinterpret_cast<sockaddr_in6 *>(&any.addr)->sin6_addr = in6addr_any;
    else
      reinterpret_cast<sockaddr_in *>(&any.addr)->sin_addr.s_addr =
          htonl(INADDR_ANY);
    auto listener = listenOn(any, static_cast<int>(launch.size));
    if (!listener.ok())
      return errorStatus("rank 0 cannot open the rendezvous at " +
                         boot->master + ": " + listener.message());
    boot->listener = std::move(*listener);
    if (Status s = boot->acceptPeers(deadline); !s.ok())
      return s;
    auto host = localHost(boot->peers[1]);
    if (!host.ok())
      return host.status();
    boot->selfHost = *host;
    return boot;
  }
  auto sock = connectBefore(*at, deadline,
                            "connecting to rank 0 at " + boot->master +
                                "; is rank 0 running, and is that its "
                                "address?");
  if (!sock.ok())
    return sock.status();
  Hello hello{kMagic, kVersion, launch.rank, launch.size};
  std::string what = "joining the rendezvous at " + boot->master;
  if (Status s = writeAll(sock->get(), &hello, sizeof(hello), deadline, what);
      !s.ok())
    return s;
  // Rank 0 answers once every rank has joined: 0, or an error's length
  // and text.
  // Rank 0 gives up at about the same time, then says which ranks never
  // joined: wait a little past the deadline to hear it.
  uint32_t answer = 0;
  auto answerBy = deadline + std::chrono::seconds(5);
  if (Status s = readAll(sock->get(), &answer, sizeof(answer), answerBy,
                         what + " (waiting for every rank to join)");
      !s.ok())
    return s;
  if (answer) {
    std::string text(std::min<uint32_t>(answer, 4096), '\0');
    if (!readAll(sock->get(), text.data(), text.size(), answerBy, what).ok())
      text = "(no reason given)";
    return errorStatus("rank 0 at " + boot->master + " refused rank " +
                       std::to_string(launch.rank) + ": " + text);
  }
  auto host = localHost(*sock);
  if (!host.ok())
    return host.status();
  boot->selfHost = *host;
  boot->peers.push_back(std::move(*sock));
  return boot;
}

Status TcpBootstrap::acceptPeers(Clock::time_point deadline) {
  peers.resize(info.size);
  uint32_t joined = 1;
  auto refuse = [&](Socket &s, const std::string &why) {
    uint32_t length = static_cast<uint32_t>(why.size());
    (void)writeAll(s.get(), &length, sizeof(length), deadlineAfter(1s), "");
    (void)writeAll(s.get(), why.data(), why.size(), deadlineAfter(1s), "");
    return errorStatus("rank 0: " + why);
  };
  while (joined < info.size) {
    auto sock = acceptBefore(
        listener, deadline,
        "at " + master + " waiting for " + std::to_string(info.size - joined) +
            " of " + std::to_string(info.size - 1) +
            " ranks to connect; are all started, with this address?");
    if (!sock.ok()) {
      // Name the ranks that never came, here and to every rank that did.
      std::vector<bool> present(info.size);
      present[0] = true;
      for (uint32_t r = 1; r < info.size; ++r)
        present[r] = peers[r].valid();
      std::string why = sock.message() +
                        " (never joined: " + describeRanks(present, false) +
                        ")";
      for (uint32_t r = 1; r < info.size; ++r)
        if (peers[r].valid())
          (void)refuse(peers[r], why);
      return errorStatus(why);
    }
    Hello hello{};
    if (Status s = readAll(sock->get(), &hello, sizeof(hello), deadline,
                           "reading a joining rank's greeting at " + master);
        !s.ok())
      return s;
    if (hello.magic != kMagic || hello.version != kVersion)
      return refuse(*sock, "a process that is not this weft version "
                           "connected to the rendezvous at " +
                               master);
    if (hello.size != info.size)
      return refuse(*sock,
                    "rank " + std::to_string(hello.rank) +
                        " says the world has " + std::to_string(hello.size) +
                        " ranks, rank 0 says " + std::to_string(info.size));
    if (hello.rank == 0 || hello.rank >= info.size || peers[hello.rank].valid())
      return refuse(*sock, "two processes joined as rank " +
                               std::to_string(hello.rank));
    peers[hello.rank] = std::move(*sock);
    ++joined;
  }
  uint32_t ok = 0;
  for (uint32_t r = 1; r < info.size; ++r)
    if (Status s = writeAll(peers[r].get(), &ok, sizeof(ok), deadline,
                            "answering rank " + std::to_string(r));
        !s.ok())
      return peerError(r, s);
  return okStatus();
}

Status TcpBootstrap::peerError(uint32_t peer, const Status &s) const {
  bool closed = s.message().find(kClosedText) != std::string::npos;
  if (info.rank != 0)
    return closed ? errorStatus("rank 0 failed: lost the connection to it at " +
                                master + " (" + s.message() + ")")
                  : s;
  return closed ? errorStatus("rank " + std::to_string(peer) +
                              " failed: lost the connection to it (" +
                              s.message() + ")")
                : s;
}

Status TcpBootstrap::sendBlob(int fd, std::span<const std::byte> blob,
                              Clock::time_point deadline,
                              const std::string &what) {
  uint64_t length = blob.size();
  if (Status s = writeAll(fd, &length, sizeof(length), deadline, what); !s.ok())
    return s;
  return writeAll(fd, blob.data(), blob.size(), deadline, what);
}

Result<std::vector<std::byte>>
TcpBootstrap::recvBlob(int fd, Clock::time_point deadline,
                       const std::string &what) {
  uint64_t length = 0;
  if (Status s = readAll(fd, &length, sizeof(length), deadline, what); !s.ok())
    return s;
  if (length > kMaxBlob)
    return errorStatus(what + ": a corrupted message of " +
                       std::to_string(length) + " bytes");
  std::vector<std::byte> blob(length);
  if (Status s = readAll(fd, blob.data(), length, deadline, what); !s.ok())
    return s;
  return blob;
}

Status TcpBootstrap::broadcast(std::vector<std::byte> &data) {
  auto deadline = deadlineAfter(timeout);
  if (info.rank != 0) {
    auto blob =
        recvBlob(peers[0].get(), deadline, "bootstrap broadcast from rank 0");
    if (!blob.ok())
      return peerError(0, blob.status());
    data = std::move(*blob);
    return okStatus();
  }
  for (uint32_t r = 1; r < info.size; ++r)
    if (Status s = sendBlob(peers[r].get(), data, deadline,
                            "bootstrap broadcast to rank " + std::to_string(r));
        !s.ok())
      return peerError(r, s);
  return okStatus();
}

Result<std::vector<std::vector<std::byte>>>
TcpBootstrap::allGather(std::span<const std::byte> mine) {
  auto deadline = deadlineAfter(timeout);
  std::vector<std::vector<std::byte>> all(info.size);
  if (info.rank != 0) {
    if (Status s =
            sendBlob(peers[0].get(), mine, deadline, "bootstrap all-gather");
        !s.ok())
      return peerError(0, s);
    for (uint32_t r = 0; r < info.size; ++r) {
      auto blob = recvBlob(peers[0].get(), deadline,
                           "bootstrap all-gather (waiting for rank 0)");
      if (!blob.ok())
        return peerError(0, blob.status());
      all[r] = std::move(*blob);
    }
    return all;
  }
  all[0].assign(mine.begin(), mine.end());
  for (uint32_t r = 1; r < info.size; ++r) {
    auto blob =
        recvBlob(peers[r].get(), deadline,
                 "bootstrap all-gather, waiting for rank " + std::to_string(r));
    if (!blob.ok())
      return peerError(r, blob.status());
    all[r] = std::move(*blob);
  }
  for (uint32_t r = 1; r < info.size; ++r)
    for (const std::vector<std::byte> &blob : all)
      if (Status s =
              sendBlob(peers[r].get(), blob, deadline,
                       "bootstrap all-gather to rank " + std::to_string(r));
          !s.ok())
        return peerError(r, s);
  return all;
}

Status TcpBootstrap::barrier() {
  auto all = allGather({});
  return all.ok() ? okStatus() : all.status();
}

} // namespace weft::runtime::comm
