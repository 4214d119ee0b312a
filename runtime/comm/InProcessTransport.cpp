// Ranks as threads of one process: a shared rendezvous with condition
// variables.
#include "runtime/comm/InProcessTransport.h"

#include "runtime/steps/ElementValues.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace weft::runtime::comm {

namespace {

std::string ranksString(const std::vector<uint32_t> &ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

bool overlaps(const std::byte *a, uint64_t aBytes, const std::byte *b,
              uint64_t bBytes) {
  return aBytes && bBytes && a < b + bBytes && b < a + aBytes;
}

} // namespace

/// One collective call of a group: the members' inputs, who has arrived
/// and who has finished reading them.
struct InProcessWorld::Collective {
  std::string kind;
  DType dtype = DType::DTYPE_UNSPECIFIED;
  uint64_t bytes = 0;
  uint32_t firstRank = 0;
  Group group;
  std::vector<const std::byte *> inputs;
  std::vector<bool> arrived, left;
  size_t numArrived = 0, numLeft = 0;

  std::string missing(const std::vector<bool> &done) const {
    std::vector<uint32_t> ranks;
    for (size_t i = 0; i < group.size(); ++i)
      if (!done[i])
        ranks.push_back(group[i]);
    return ranksString(ranks);
  }
};

//===----------------------------------------------------------------------===//
// InProcessTransport
//===----------------------------------------------------------------------===//

class InProcessTransport final : public Transport {
public:
  InProcessTransport(InProcessWorld &world, uint32_t rank)
      : world(world), self(rank) {}

  uint32_t rank() const override { return self; }
  uint32_t worldSize() const override { return world.worldSize(); }

  Status allReduceSum(const Group &group, DType dtype, const std::byte *in,
                      std::byte *out, int64_t count) override {
    uint64_t bytes = count * dtypeSize(dtype);
    if (overlaps(in, bytes, out, bytes))
      return errorStatus("all-reduce: the input and output overlap");
    // Sum in ascending rank order, whatever the group's order.
    std::vector<size_t> order(group.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return group[a] < group[b]; });
    return world.collective(self, group, nextSeq(group), "all-reduce", dtype,
                            bytes, in,
                            [&](const InProcessWorld::Collective &c) {
                              std::vector<const std::byte *> parts;
                              for (size_t pos : order)
                                parts.push_back(c.inputs[pos]);
                              steps::sumElements(dtype, parts, out, count);
                            });
  }

  Status allGather(const Group &group, const std::byte *in, uint64_t bytes,
                   std::byte *out) override {
    if (overlaps(in, bytes, out, bytes * group.size()))
      return errorStatus("all-gather: the input and output overlap");
    return world.collective(
        self, group, nextSeq(group), "all-gather", DType::U8, bytes, in,
        [&](const InProcessWorld::Collective &c) {
          for (size_t i = 0; i < c.inputs.size(); ++i)
            if (bytes)
              std::memcpy(out + i * bytes, c.inputs[i], bytes);
        });
  }

  Status send(uint32_t peer, int64_t tag, const std::byte *data,
              uint64_t bytes) override {
    return world.send(self, peer, tag, data, bytes);
  }

  Status recv(uint32_t peer, int64_t tag, std::byte *data,
              uint64_t bytes) override {
    return world.recv(self, peer, tag, data, bytes);
  }

private:
  uint64_t nextSeq(const Group &group) { return seqs[group]++; }

  InProcessWorld &world;
  uint32_t self;
  std::map<Group, uint64_t> seqs;
};

//===----------------------------------------------------------------------===//
// InProcessWorld
//===----------------------------------------------------------------------===//

InProcessWorld::InProcessWorld(uint32_t worldSize,
                               std::chrono::duration<double> timeout)
    : world(worldSize), timeout(timeout), finished(worldSize, false),
      waiters(worldSize) {}

InProcessWorld::~InProcessWorld() = default;

std::unique_ptr<Transport> InProcessWorld::transport(uint32_t rank) {
  return std::make_unique<InProcessTransport>(*this, rank);
}

void InProcessWorld::fail(uint32_t rank, const std::string &message) {
  std::lock_guard<std::mutex> lock(mutex);
  failLocked(rank, message);
}

void InProcessWorld::failLocked(uint32_t rank, const std::string &message) {
  if (!failed)
    failed.emplace(rank, message);
  changed.notify_all();
}

void InProcessWorld::finish(uint32_t rank) {
  std::lock_guard<std::mutex> lock(mutex);
  if (rank < world)
    finished[rank] = true;
  changed.notify_all();
}

std::optional<std::pair<uint32_t, std::string>>
InProcessWorld::failure() const {
  std::lock_guard<std::mutex> lock(mutex);
  return failed;
}

Status InProcessWorld::failedStatus() const {
  return errorStatus("rank " + std::to_string(failed->first) +
                     " failed: " + failed->second);
}

bool InProcessWorld::deadlocked() const {
  for (uint32_t r = 0; r < world; ++r) {
    if (finished[r])
      continue;
    if (!waiters[r] || (*waiters[r]->ready)())
      return false;
  }
  return true;
}

std::string InProcessWorld::deadlockMessage() const {
  std::string msg = "deadlock: no rank can go on (";
  for (uint32_t r = 0; r < world; ++r) {
    msg += r ? "; rank " : "rank ";
    msg += std::to_string(r) +
           (finished[r] ? " has finished" : " is in " + waiters[r]->what());
  }
  return msg + "); the ranks' plans do not match";
}

Status InProcessWorld::waitUntil(std::unique_lock<std::mutex> &lock,
                                 uint32_t rank,
                                 const std::function<bool()> &ready,
                                 const std::function<std::string()> &what) {
  auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  while (true) {
    // What is done is done, even once another rank has failed: the next
    // wait reports the failure.
    if (ready())
      return okStatus();
    if (failed)
      return failed->first == rank ? errorStatus(failed->second)
                                   : failedStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string msg =
          "timed out after " + secondsString(timeout) + " in " + what();
      failLocked(rank, msg);
      return errorStatus(msg);
    }
    waiters[rank] = Waiter{&ready, what};
    if (deadlocked()) {
      std::string msg = deadlockMessage();
      waiters[rank].reset();
      failLocked(rank, msg);
      return errorStatus(msg);
    }
    changed.wait_until(lock, deadline);
    waiters[rank].reset();
  }
}

Status InProcessWorld::collective(
    uint32_t rank, const Group &group, uint64_t seq, const char *kind,
    DType dtype, uint64_t bytes, const std::byte *in,
    const std::function<void(const Collective &)> &compute) {
  std::string where = std::string(kind) + " over ranks " + groupString(group);
  auto member = std::find(group.begin(), group.end(), rank);
  if (member == group.end() || rank >= world)
    return errorStatus(where + ": rank " + std::to_string(rank) +
                       " is not in the group");
  for (uint32_t r : group)
    if (r >= world)
      return errorStatus(where + ": rank " + std::to_string(r) +
                         " is outside the world of " + std::to_string(world));
  size_t pos = member - group.begin(), n = group.size();

  std::unique_lock<std::mutex> lock(mutex);
  if (failed)
    return failed->first == rank ? errorStatus(failed->second) : failedStatus();
  std::shared_ptr<Collective> &slot = collectives[{group, seq}];
  if (!slot) {
    slot = std::make_shared<Collective>();
    slot->kind = kind;
    slot->dtype = dtype;
    slot->bytes = bytes;
    slot->firstRank = rank;
    slot->group = group;
    slot->inputs.resize(n);
    slot->arrived.resize(n);
    slot->left.resize(n);
  }
  std::shared_ptr<Collective> c = slot;
  if (c->kind != kind || c->dtype != dtype || c->bytes != bytes) {
    std::string msg =
        where + " (call " + std::to_string(seq) + " of the group): rank " +
        std::to_string(rank) + " calls " + kind + " on " +
        std::to_string(bytes) + " bytes of " + dtypeName(dtype) + ", rank " +
        std::to_string(c->firstRank) + " called " + c->kind + " on " +
        std::to_string(c->bytes) + " bytes of " + dtypeName(c->dtype);
    failLocked(rank, msg);
    return errorStatus(msg);
  }
  c->inputs[pos] = in;
  c->arrived[pos] = true;
  ++c->numArrived;
  changed.notify_all();

  std::function<bool()> allArrived = [&] { return c->numArrived == n; };
  if (Status s = waitUntil(
          lock, rank, allArrived,
          [&] { return where + ", waiting for " + c->missing(c->arrived); });
      !s.ok())
    return s;
  lock.unlock();
  compute(*c);
  lock.lock();

  // Inputs stay in place until every member has read them.
  c->left[pos] = true;
  if (++c->numLeft == n) {
    collectives.erase({group, seq});
    changed.notify_all();
    return okStatus();
  }
  std::function<bool()> allLeft = [&] { return c->numLeft == n; };
  return waitUntil(lock, rank, allLeft, [&] {
    return where + ", waiting for " + c->missing(c->left) + " to finish";
  });
}

Status InProcessWorld::send(uint32_t from, uint32_t to, int64_t tag,
                            const std::byte *data, uint64_t bytes) {
  if (to >= world || to == from)
    return errorStatus("send to rank " + std::to_string(to) +
                       ": not another rank of the world of " +
                       std::to_string(world));
  std::vector<std::byte> message(data, data + bytes);
  std::lock_guard<std::mutex> lock(mutex);
  if (failed)
    return failed->first == from ? errorStatus(failed->second) : failedStatus();
  mailboxes[{from, to, tag}].push_back(std::move(message));
  changed.notify_all();
  return okStatus();
}

Status InProcessWorld::recv(uint32_t to, uint32_t from, int64_t tag,
                            std::byte *data, uint64_t bytes) {
  std::string where = "recv from rank " + std::to_string(from) + " (tag " +
                      std::to_string(tag) + ")";
  if (from >= world || to == from)
    return errorStatus(where + ": not another rank of the world of " +
                       std::to_string(world));
  std::unique_lock<std::mutex> lock(mutex);
  auto &box = mailboxes[{from, to, tag}];
  std::function<bool()> arrived = [&] { return !box.empty(); };
  if (Status s = waitUntil(lock, to, arrived,
                           [&] { return where + ", waiting for the message"; });
      !s.ok())
    return s;
  std::vector<std::byte> message = std::move(box.front());
  box.pop_front();
  lock.unlock();
  return deliverMessage(message, data, bytes, where);
}

} // namespace weft::runtime::comm
