// Ranks as processes connected by TCP: framed messages over nonblocking
// sockets, moved by whichever call waits.
#include "runtime/comm/TcpTransport.h"

#include "runtime/steps/ElementValues.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace weft::runtime::comm {

using namespace std::chrono_literals;

namespace {

constexpr uint32_t kMagic = 0x54464557; // "WEFT"
/// A payload larger than this means a corrupted stream.
constexpr uint64_t kMaxPayload = uint64_t(1) << 42;
/// How much longer a wait for several ranks' parts lasts past its timeout,
/// for one of them to report the rank it waits for in turn.
constexpr auto kMissingRanksGrace = 1s;

enum FrameType : uint32_t {
  kData = 1,       // send(): key = tag
  kCollective = 2, // key = the group's hash, seq = call number, info = kind
  kFail = 3,       // key = the failed rank, payload = its message
  kBye = 4,        // the sender finished and will send nothing more
};

enum Kind : uint32_t { kAllReduce = 1, kAllGather = 2 };

const char *kindName(uint32_t kind) {
  return kind == kAllReduce ? "all-reduce" : "all-gather";
}

struct Hello {
  uint32_t magic, rank, size, pad;
};

/// The same on every rank for the same group, whatever the process.
int64_t groupKey(const Group &group) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(group.size());
  for (uint32_t r : group)
    mix(r);
  return static_cast<int64_t>(h);
}

bool overlaps(const std::byte *a, uint64_t aBytes, const std::byte *b,
              uint64_t bBytes) {
  return aBytes && bBytes && a < b + bBytes && b < a + aBytes;
}

std::string ranksString(const std::vector<uint32_t> &ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

} // namespace

struct TcpTransport::Frame {
  uint32_t type = 0;
  uint32_t info = 0; // collectives: kind << 8 | dtype
  int64_t key = 0;
  uint64_t seq = 0;
  uint64_t bytes = 0;
};

struct TcpTransport::Peer {
  struct Out {
    Frame frame;
    std::shared_ptr<const std::vector<std::byte>> data;
  };
  Socket sock;
  std::deque<Out> out;
  uint64_t outOffset = 0; // bytes of out.front() (frame, then data) written
  uint64_t queued = 0, written = 0; // frames
  Frame in;
  uint64_t inGot = 0;
  bool inFrameDone = false;
  std::vector<std::byte> payload;
  bool finished = false; // said goodbye
};

TcpTransport::TcpTransport(uint32_t rank, uint32_t size,
                           std::chrono::duration<double> timeout)
    : self(rank), size(size), timeout(timeout) {}

Result<std::unique_ptr<TcpTransport>>
TcpTransport::create(Bootstrap &boot, const std::string &host,
                     std::chrono::duration<double> timeout) {
  uint32_t rank = boot.rank(), size = boot.worldSize();
  std::unique_ptr<TcpTransport> t(new TcpTransport(rank, size, timeout));
  t->peers.resize(size);
  if (Status s = t->connectMesh(boot, host); !s.ok()) {
    // No goodbyes: the peers learn of it from the closed connections.
    t->aborted = true;
    return s;
  }
  return t;
}

Status TcpTransport::connectMesh(Bootstrap &boot, const std::string &host) {
  uint32_t rank = self;
  if (size == 1)
    return okStatus();
  auto deadline = deadlineAfter(timeout);
  auto at = resolve(host, 0, "this rank's address");
  if (!at.ok())
    return at.status();
  auto listener = listenOn(*at, static_cast<int>(size));
  if (!listener.ok())
    return listener.status();
  auto port = localPort(*listener);
  if (!port.ok())
    return port.status();
  std::string mine = host + " " + std::to_string(*port);
  auto all = boot.allGather(
      std::span(reinterpret_cast<const std::byte *>(mine.data()), mine.size()));
  if (!all.ok())
    return all.status().withPrefix("exchanging the ranks' addresses: ");

  // The higher rank of each pair connects and introduces itself.
  for (uint32_t r = 0; r < rank; ++r) {
    std::string text(reinterpret_cast<const char *>((*all)[r].data()),
                     (*all)[r].size());
    size_t space = text.rfind(' ');
    auto peerPort =
        space == std::string::npos
            ? Result<uint16_t>(errorStatus("no port"))
            : parsePort(text.substr(space + 1), "rank " + std::to_string(r));
    if (!peerPort.ok())
      return errorStatus("rank " + std::to_string(r) +
                         " published a bad address '" + text + "'");
    auto to = resolve(text.substr(0, space), *peerPort,
                      "rank " + std::to_string(r) + "'s address");
    if (!to.ok())
      return to.status();
    auto sock = connectBefore(*to, deadline,
                              "connecting to rank " + std::to_string(r) +
                                  " at " + to->text);
    if (!sock.ok())
      return sock.status();
    Hello hello{kMagic, rank, size, 0};
    if (Status s = writeAll(sock->get(), &hello, sizeof(hello), deadline,
                            "greeting rank " + std::to_string(r));
        !s.ok())
      return s;
    peers[r] = std::make_unique<Peer>();
    peers[r]->sock = std::move(*sock);
  }
  for (uint32_t joined = rank + 1; joined < size; ++joined) {
    auto sock = acceptBefore(*listener, deadline,
                             "waiting for " + std::to_string(size - joined) +
                                 " higher rank(s) to connect to rank " +
                                 std::to_string(rank));
    if (!sock.ok())
      return sock.status();
    Hello hello{};
    if (Status s = readAll(sock->get(), &hello, sizeof(hello), deadline,
                           "reading a connecting rank's greeting");
        !s.ok())
      return s;
    if (hello.magic != kMagic || hello.size != size || hello.rank <= rank ||
        hello.rank >= size || peers[hello.rank])
      return errorStatus("rank " + std::to_string(rank) +
                         ": an unexpected process connected (rank " +
                         std::to_string(hello.rank) + " of " +
                         std::to_string(hello.size) + ")");
    peers[hello.rank] = std::make_unique<Peer>();
    peers[hello.rank]->sock = std::move(*sock);
  }
  return okStatus();
}

TcpTransport::~TcpTransport() {
  if (aborted)
    return;
  // A graceful close: goodbye after everything queued, then wait for each
  // peer to close its end, so no data in flight is cut off by a reset.
  auto deadline = deadlineAfter(std::min<std::chrono::duration<double>>(
      timeout, std::chrono::duration<double>(30)));
  for (uint32_t r = 0; r < size; ++r)
    if (peers[r] && peers[r]->sock.valid())
      enqueue(r, Frame{kBye, 0, 0, 0, 0}, nullptr);
  drain(deadline);
  for (auto &p : peers)
    if (p && p->sock.valid())
      ::shutdown(p->sock.get(), SHUT_WR);
  auto open = [&] {
    return std::any_of(peers.begin(), peers.end(),
                       [](const auto &p) { return p && p->sock.valid(); });
  };
  while (open() && Clock::now() < deadline)
    pump(pollMillis(deadline, 100));
}

uint64_t
TcpTransport::enqueue(uint32_t peer, const Frame &frame,
                      std::shared_ptr<const std::vector<std::byte>> data) {
  Peer &p = *peers[peer];
  p.out.push_back(Peer::Out{frame, std::move(data)});
  return ++p.queued;
}

void TcpTransport::lose(uint32_t peer, const std::string &why) {
  Peer &p = *peers[peer];
  p.sock.reset();
  p.out.clear();
  if (!p.finished && !failed)
    failed.emplace(peer, why);
}

void TcpTransport::writeTo(uint32_t peer) {
  Peer &p = *peers[peer];
  while (!p.out.empty() && p.sock.valid()) {
    Peer::Out &o = p.out.front();
    uint64_t dataBytes = o.data ? o.data->size() : 0;
    uint64_t total = sizeof(Frame) + dataBytes;
    iovec parts[2];
    int n = 0;
    if (p.outOffset < sizeof(Frame))
      parts[n++] = {reinterpret_cast<char *>(&o.frame) + p.outOffset,
                    sizeof(Frame) - p.outOffset};
    uint64_t dataDone =
        p.outOffset > sizeof(Frame) ? p.outOffset - sizeof(Frame) : 0;
    if (dataBytes > dataDone)
      parts[n++] = {const_cast<std::byte *>(o.data->data()) + dataDone,
                    dataBytes - dataDone};
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = n;
    ssize_t sent = ::sendmsg(p.sock.get(), &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      lose(peer, std::string("the connection to it broke (") +
                     std::strerror(errno) +
                     "; its process exited or was killed)");
      return;
    }
    p.outOffset += sent;
    if (p.outOffset == total) {
      p.out.pop_front();
      p.outOffset = 0;
      ++p.written;
    }
  }
}

void TcpTransport::readFrom(uint32_t peer) {
  Peer &p = *peers[peer];
  while (p.sock.valid()) {
    ssize_t n;
    if (!p.inFrameDone)
      n = ::recv(p.sock.get(), reinterpret_cast<char *>(&p.in) + p.inGot,
                 sizeof(Frame) - p.inGot, 0);
    else
      n = ::recv(p.sock.get(), p.payload.data() + p.inGot,
                 p.payload.size() - p.inGot, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      lose(peer, "its connection closed unexpectedly (its process exited "
                 "or was killed)");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        lose(peer, std::string("the connection to it broke (") +
                       std::strerror(errno) + ")");
      return;
    }
    p.inGot += n;
    if (!p.inFrameDone) {
      if (p.inGot < sizeof(Frame))
        continue;
      if (p.in.bytes > kMaxPayload) {
        lose(peer, "it sent a corrupted message");
        return;
      }
      p.inFrameDone = true;
      p.inGot = 0;
      p.payload.assign(p.in.bytes, std::byte{0});
    }
    if (p.inGot < p.payload.size())
      continue;
    Frame frame = p.in;
    p.inFrameDone = false;
    p.inGot = 0;
    deliver(peer, frame, std::move(p.payload));
    p.payload = {};
  }
}

void TcpTransport::deliver(uint32_t peer, const Frame &frame,
                           std::vector<std::byte> data) {
  switch (frame.type) {
  case kData:
    messages[{peer, frame.key}].push_back(std::move(data));
    return;
  case kCollective:
    contributions[{peer, frame.key, frame.seq}] =
        Contribution{frame.info, std::move(data)};
    return;
  case kFail:
    if (!failed)
      failed.emplace(frame.key >= 0 && frame.key < size
                         ? static_cast<uint32_t>(frame.key)
                         : peer,
                     std::string(reinterpret_cast<const char *>(data.data()),
                                 data.size()));
    return;
  case kBye:
    peers[peer]->finished = true;
    return;
  default:
    lose(peer, "it sent a corrupted message");
  }
}

void TcpTransport::pump(int millis) {
  std::vector<pollfd> fds;
  std::vector<uint32_t> ranks;
  for (uint32_t r = 0; r < size; ++r) {
    if (!peers[r] || !peers[r]->sock.valid())
      continue;
    short events = POLLIN;
    if (!peers[r]->out.empty())
      events |= POLLOUT;
    fds.push_back({peers[r]->sock.get(), events, 0});
    ranks.push_back(r);
  }
  if (fds.empty()) {
    // Nothing to wait on (every connection closed): no busy loop.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(millis, 10)));
    return;
  }
  if (::poll(fds.data(), fds.size(), millis) <= 0)
    return;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents & POLLOUT)
      writeTo(ranks[i]);
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
      readFrom(ranks[i]);
  }
}

void TcpTransport::drain(Clock::time_point deadline) {
  auto queued = [&] {
    return std::any_of(peers.begin(), peers.end(), [](const auto &p) {
      return p && p->sock.valid() && !p->out.empty();
    });
  };
  while (queued() && Clock::now() < deadline)
    pump(pollMillis(deadline, 100));
}

Status
TcpTransport::waitUntil(const std::function<bool()> &ready,
                        const std::function<std::vector<uint32_t>()> &needed,
                        const std::function<std::string()> &what) {
  auto deadline = deadlineAfter(timeout);
  bool grace = false;
  while (true) {
    // What is done is done, even once another rank has failed.
    if (ready())
      return okStatus();
    if (failed)
      return errorStatus("rank " + std::to_string(failed->first) +
                         " failed: " + failed->second);
    for (uint32_t r : needed())
      if (!peers[r]->sock.valid() || peers[r]->finished)
        return errorStatus(what() + ": rank " + std::to_string(r) +
                           " has finished (the ranks' plans do not match)");
    // Several ranks missing: one may be stuck behind another that hangs
    // (waiting for its part of an earlier call) and report that at its own
    // timeout, which can fall a moment after this one; that report names
    // the rank that hangs, so it is waited for a little longer.
    if (Clock::now() >= deadline && !grace && needed().size() > 1) {
      grace = true;
      deadline = deadlineAfter(kMissingRanksGrace);
    }
    if (Clock::now() >= deadline)
      return errorStatus("timed out after " + secondsString(timeout) + " in " +
                         what() +
                         " (another rank failed, hangs or runs a different "
                         "plan)");
    pump(pollMillis(deadline, 200));
  }
}

Result<std::vector<std::vector<std::byte>>>
TcpTransport::exchange(const Group &group, uint32_t kind, DType dtype,
                       const std::byte *in, uint64_t bytes,
                       const std::string &what) {
  if (aborted)
    return errorStatus(what + ": the transport was closed after a failure");
  auto member = std::find(group.begin(), group.end(), self);
  if (member == group.end())
    return errorStatus(what + ": rank " + std::to_string(self) +
                       " is not in the group");
  for (uint32_t r : group)
    if (r >= size)
      return errorStatus(what + ": rank " + std::to_string(r) +
                         " is outside the world of " + std::to_string(size));
  uint64_t seq = seqs[group]++;
  int64_t key = groupKey(group);
  uint32_t info = kind << 8 | static_cast<uint32_t>(dtype);
  auto data = std::make_shared<const std::vector<std::byte>>(in, in + bytes);
  std::vector<std::pair<uint32_t, uint64_t>> sent; // (peer, frame number)
  std::vector<uint32_t> others;
  for (uint32_t r : group)
    if (r != self) {
      others.push_back(r);
      if (peers[r]->sock.valid())
        sent.emplace_back(
            r, enqueue(r, Frame{kCollective, info, key, seq, bytes}, data));
    }
  std::function<bool()> ready = [&] {
    for (uint32_t r : others)
      if (!contributions.count({r, key, seq}))
        return false;
    // Ours are out too, so no peer waits on this rank's next call (a peer
    // whose connection closed has no use for them).
    for (auto [r, number] : sent)
      if (peers[r]->written < number && peers[r]->sock.valid())
        return false;
    return true;
  };
  // Only a member whose part is still missing can make this call fail by
  // finishing: one that sent its part may finish before this rank reads it.
  auto missingRanks = [&] {
    std::vector<uint32_t> ranks;
    for (uint32_t r : others)
      if (!contributions.count({r, key, seq}))
        ranks.push_back(r);
    return ranks;
  };
  auto missing = [&] {
    std::vector<uint32_t> ranks = missingRanks();
    return ranks.empty() ? what + ", sending this rank's part"
                         : what + ", waiting for " + ranksString(ranks);
  };
  if (Status s = waitUntil(ready, missingRanks, missing); !s.ok())
    return s;
  std::vector<std::vector<std::byte>> parts(group.size());
  for (size_t pos = 0; pos < group.size(); ++pos) {
    if (group[pos] == self)
      continue;
    auto it = contributions.find({group[pos], key, seq});
    Contribution c = std::move(it->second);
    contributions.erase(it);
    if (c.info != info || c.data.size() != bytes) {
      DType theirs = static_cast<DType>(c.info & 0xff);
      return errorStatus(
          what + " (call " + std::to_string(seq) + " of the group): rank " +
          std::to_string(self) + " calls " + kindName(kind) + " on " +
          std::to_string(bytes) + " bytes of " + dtypeName(dtype) + ", rank " +
          std::to_string(group[pos]) + " called " + kindName(c.info >> 8) +
          " on " + std::to_string(c.data.size()) + " bytes of " +
          dtypeName(theirs));
    }
    parts[pos] = std::move(c.data);
  }
  return parts;
}

Status TcpTransport::allReduceSum(const Group &group, DType dtype,
                                  const std::byte *in, std::byte *out,
                                  int64_t count) {
  uint64_t bytes = count * dtypeSize(dtype);
  if (overlaps(in, bytes, out, bytes))
    return errorStatus("all-reduce: the input and output overlap");
  auto parts = exchange(group, kAllReduce, dtype, in, bytes,
                        "all-reduce over ranks " + groupString(group));
  if (!parts.ok())
    return parts.status();
  // Sum in ascending rank order, whatever the group's order (as in-process).
  std::vector<size_t> order(group.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return group[a] < group[b]; });
  std::vector<const std::byte *> inputs;
  for (size_t pos : order)
    inputs.push_back(group[pos] == self ? in : (*parts)[pos].data());
  steps::sumElements(dtype, inputs, out, count);
  return okStatus();
}

Status TcpTransport::allGather(const Group &group, const std::byte *in,
                               uint64_t bytes, std::byte *out) {
  if (overlaps(in, bytes, out, bytes * group.size()))
    return errorStatus("all-gather: the input and output overlap");
  auto parts = exchange(group, kAllGather, DType::U8, in, bytes,
                        "all-gather over ranks " + groupString(group));
  if (!parts.ok())
    return parts.status();
  for (size_t pos = 0; pos < group.size(); ++pos)
    if (bytes)
      std::memcpy(out + pos * bytes,
                  group[pos] == self ? in : (*parts)[pos].data(), bytes);
  return okStatus();
}

Status TcpTransport::send(uint32_t peer, int64_t tag, const std::byte *data,
                          uint64_t bytes) {
  if (peer >= size || peer == self)
    return errorStatus("send to rank " + std::to_string(peer) +
                       ": not another rank of the world of " +
                       std::to_string(size));
  if (aborted)
    return errorStatus("send: the transport was closed after a failure");
  if (failed)
    return errorStatus("rank " + std::to_string(failed->first) +
                       " failed: " + failed->second);
  if (!peers[peer]->sock.valid() || peers[peer]->finished)
    return errorStatus("send to rank " + std::to_string(peer) + " (tag " +
                       std::to_string(tag) + "): rank " + std::to_string(peer) +
                       " has finished");
  enqueue(peer, Frame{kData, 0, tag, 0, bytes},
          std::make_shared<const std::vector<std::byte>>(data, data + bytes));
  writeTo(peer);
  return okStatus();
}

Status TcpTransport::recv(uint32_t peer, int64_t tag, std::byte *data,
                          uint64_t bytes) {
  std::string where = "recv from rank " + std::to_string(peer) + " (tag " +
                      std::to_string(tag) + ")";
  if (peer >= size || peer == self)
    return errorStatus(where + ": not another rank of the world of " +
                       std::to_string(size));
  if (aborted)
    return errorStatus(where + ": the transport was closed after a failure");
  auto key = std::make_pair(peer, tag);
  std::function<bool()> arrived = [&] {
    auto it = messages.find(key);
    return it != messages.end() && !it->second.empty();
  };
  if (Status s = waitUntil(
          arrived, [&] { return std::vector<uint32_t>{peer}; },
          [&] { return where + ", waiting for the message"; });
      !s.ok())
    return s;
  auto &box = messages[key];
  std::vector<std::byte> message = std::move(box.front());
  box.pop_front();
  return deliverMessage(message, data, bytes, where);
}

Status TcpTransport::flush() {
  if (aborted)
    return errorStatus("flush: the transport was closed after a failure");
  std::vector<uint32_t> waiting;
  for (uint32_t r = 0; r < size; ++r)
    if (peers[r] && !peers[r]->out.empty())
      waiting.push_back(r);
  std::function<bool()> sent = [&] {
    for (uint32_t r : waiting)
      if (peers[r]->sock.valid() && !peers[r]->out.empty())
        return false;
    return true;
  };
  // A peer that finished still reads until its connection closes.
  return waitUntil(
      sent, [] { return std::vector<uint32_t>(); },
      [&] { return std::string("delivering this rank's messages"); });
}

void TcpTransport::fail(const std::string &message) {
  if (aborted)
    return;
  uint32_t who = failed ? failed->first : self;
  std::string text = failed ? failed->second : message;
  auto payload = std::make_shared<const std::vector<std::byte>>(
      reinterpret_cast<const std::byte *>(text.data()),
      reinterpret_cast<const std::byte *>(text.data()) + text.size());
  for (uint32_t r = 0; r < size; ++r) {
    if (!peers[r] || !peers[r]->sock.valid())
      continue;
    Peer &p = *peers[r];
    // A frame partly written must be finished, or the stream breaks.
    while (p.out.size() > (p.outOffset ? 1u : 0u))
      p.out.pop_back();
    enqueue(r, Frame{kFail, 0, static_cast<int64_t>(who), 0, text.size()},
            payload);
  }
  aborted = true;
  drain(deadlineAfter(2s));
  // Close after the peers have read the news: closing with unread input
  // would reset the connection and could discard it.
  for (auto &p : peers)
    if (p && p->sock.valid())
      ::shutdown(p->sock.get(), SHUT_WR);
  auto deadline = deadlineAfter(500ms);
  while (Clock::now() < deadline &&
         std::any_of(peers.begin(), peers.end(),
                     [](const auto &p) { return p && p->sock.valid(); }))
    pump(pollMillis(deadline, 50));
  for (auto &p : peers)
    if (p)
      p->sock.reset();
}

} // namespace weft::runtime::comm
