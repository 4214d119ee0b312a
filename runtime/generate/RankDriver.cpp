// Rank 0 sends each step's entry and inputs to the other ranks: a header
// (kind, payload bytes) and the payload, the arrays in a flat encoding
// both ends of one build share.
#include "runtime/generate/RankDriver.h"

#include "runtime/artifact/DType.h"

#include <chrono>
#include <cstring>

#include <sys/socket.h>

namespace weft::runtime::generate {

namespace {

/// The tags of the steps' messages, apart from the plans' tags, the
/// session's output gather and the sampled ids'.
constexpr int64_t kHeaderTag = 32764, kPayloadTag = 32765, kReportTag = 32763;

enum MessageKind : int64_t {
  kStep = 1,
  kKeepAlive = 2,
  kStop = 3,
  kReport = 4,
  /// A remote replica's rank 0 to the serving process: its ranks are up.
  kReady = 5
};

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A report on the wire: steps, step seconds, collective seconds, and the
/// size of the hardware samples that follow (as a second message).
struct ReportMessage {
  double steps, stepSeconds, collectiveSeconds;
  uint64_t hardwareBytes;
};

/// The largest hardware report taken (a host's ports and one GPU need a
/// few KiB).
constexpr uint64_t kMaxHardwareBytes = 1 << 20;

class Writer {
public:
  std::vector<std::byte> bytes;
  template <typename T> void put(T value) { append(&value, sizeof(T)); }
  void put(const std::string &s) {
    put(static_cast<uint64_t>(s.size()));
    append(s.data(), s.size());
  }
  void append(const void *data, size_t size) {
    const auto *p = static_cast<const std::byte *>(data);
    bytes.insert(bytes.end(), p, p + size);
  }
};

class Reader {
public:
  explicit Reader(std::span<const std::byte> bytes) : bytes(bytes) {}
  template <typename T> bool get(T &value) { return take(&value, sizeof(T)); }
  bool get(std::string &s) {
    uint64_t size = 0;
    if (!get(size) || size > bytes.size() - at)
      return false;
    s.assign(reinterpret_cast<const char *>(bytes.data() + at), size);
    at += size;
    return true;
  }
  bool take(void *out, size_t size) {
    if (size > bytes.size() - at)
      return false;
    std::memcpy(out, bytes.data() + at, size);
    at += size;
    return true;
  }
  bool done() const { return at == bytes.size(); }

private:
  std::span<const std::byte> bytes;
  size_t at = 0;
};

std::vector<std::byte> encodeStep(const std::string &entry,
                                  std::span<const NpyArray *const> inputs) {
  Writer w;
  w.put(entry);
  w.put(static_cast<uint64_t>(inputs.size()));
  for (const NpyArray *a : inputs) {
    w.put(a->name);
    w.put(static_cast<int32_t>(a->dtype));
    w.put(static_cast<uint64_t>(a->shape.size()));
    for (int64_t d : a->shape)
      w.put(d);
    w.put(static_cast<uint64_t>(a->data.size()));
    w.append(a->data.data(), a->data.size());
  }
  return std::move(w.bytes);
}

Status decodeStep(std::span<const std::byte> payload, std::string &entry,
                  std::vector<NpyArray> &arrays) {
  Reader r(payload);
  uint64_t count = 0;
  if (!r.get(entry) || !r.get(count) || count > payload.size())
    return errorStatus("a malformed step from rank 0");
  arrays.resize(count);
  for (NpyArray &a : arrays) {
    int32_t dtype = 0;
    uint64_t rank = 0, bytes = 0;
    if (!r.get(a.name) || !r.get(dtype) || !r.get(rank) || rank > 16)
      return errorStatus("a malformed step from rank 0");
    a.dtype = static_cast<DType>(dtype);
    a.shape.resize(rank);
    for (int64_t &d : a.shape)
      if (!r.get(d))
        return errorStatus("a malformed step from rank 0");
    if (!r.get(bytes) || bytes > payload.size())
      return errorStatus("a malformed step from rank 0");
    a.data.resize(bytes);
    if (!r.take(a.data.data(), bytes))
      return errorStatus("a malformed step from rank 0");
  }
  if (!r.done())
    return errorStatus("a malformed step from rank 0");
  return okStatus();
}

} // namespace

template <typename F> Status TimedTransport::timed(F &&call) {
  Clock::time_point start = Clock::now();
  Status s = call();
  total += secondsSince(start);
  return s;
}

Status TimedTransport::prepare(std::span<const comm::Group> groups) {
  return inner.prepare(groups);
}
Status TimedTransport::allReduceSum(const comm::Group &group, DType dtype,
                                    const std::byte *in, std::byte *out,
                                    int64_t count) {
  return timed(
      [&] { return inner.allReduceSum(group, dtype, in, out, count); });
}
Status TimedTransport::allGather(const comm::Group &group, const std::byte *in,
                                 uint64_t bytes, std::byte *out) {
  return timed([&] { return inner.allGather(group, in, bytes, out); });
}
Status TimedTransport::send(uint32_t peer, int64_t tag, const std::byte *data,
                            uint64_t bytes) {
  return timed([&] { return inner.send(peer, tag, data, bytes); });
}
Status TimedTransport::recv(uint32_t peer, int64_t tag, std::byte *data,
                            uint64_t bytes) {
  return timed([&] { return inner.recv(peer, tag, data, bytes); });
}
Status TimedTransport::flush() {
  return timed([&] { return inner.flush(); });
}

Status LeaderStepModel::sendAll(int64_t kind,
                                const std::vector<std::byte> &payload) {
  if (!transport)
    return okStatus();
  int64_t header[2] = {kind, static_cast<int64_t>(payload.size())};
  for (uint32_t r = 1; r < transport->worldSize(); ++r) {
    if (Status s = transport->send(r, kHeaderTag,
                                   reinterpret_cast<const std::byte *>(header),
                                   sizeof(header));
        !s.ok())
      return s;
    if (!payload.empty())
      if (Status s =
              transport->send(r, kPayloadTag, payload.data(), payload.size());
          !s.ok())
        return s;
  }
  return okStatus();
}

Result<std::vector<int32_t>>
LeaderStepModel::runStep(const std::string &entry,
                         std::span<const NpyArray *const> inputs) {
  if (transport && transport->worldSize() > 1)
    if (Status s = sendAll(kStep, encodeStep(entry, inputs)); !s.ok())
      return s.withPrefix("sending the step to the other ranks: ");
  Clock::time_point start = Clock::now();
  auto ids = local.runStep(entry, inputs);
  ++own.steps;
  own.stepSeconds += secondsSince(start);
  return ids;
}

namespace {

std::vector<std::byte>
encodeSamples(const std::vector<monitor::MetricSample> &samples) {
  Writer w;
  w.put(static_cast<uint64_t>(samples.size()));
  for (const monitor::MetricSample &m : samples) {
    w.put(m.name);
    w.put(m.labels);
    w.put(m.value);
  }
  return std::move(w.bytes);
}

Result<std::vector<monitor::MetricSample>>
decodeSamples(std::span<const std::byte> bytes, uint32_t rank) {
  Reader r(bytes);
  uint64_t count = 0;
  std::vector<monitor::MetricSample> out;
  bool ok = r.get(count) && count <= bytes.size();
  for (uint64_t i = 0; ok && i < count; ++i) {
    monitor::MetricSample m;
    ok = r.get(m.name) && r.get(m.labels) && r.get(m.value);
    out.push_back(std::move(m));
  }
  if (!ok || !r.done())
    return errorStatus("a malformed report from rank " + std::to_string(rank));
  return out;
}

} // namespace

Result<std::vector<RankCounters>> LeaderStepModel::report() {
  uint32_t world = transport ? transport->worldSize() : 1;
  std::vector<RankCounters> all(world);
  all[0] = own;
  if (timed)
    all[0].collectiveSeconds = timed->seconds();
  if (sampler)
    all[0].hardware = sampler();
  if (world == 1)
    return all;
  if (Status s = sendAll(kReport, {}); !s.ok())
    return s;
  for (uint32_t r = 1; r < world; ++r) {
    ReportMessage m{};
    if (Status s = transport->recv(
            r, kReportTag, reinterpret_cast<std::byte *>(&m), sizeof(m));
        !s.ok())
      return s.withPrefix("receiving rank " + std::to_string(r) +
                          "'s report: ");
    all[r].steps = static_cast<uint64_t>(m.steps);
    all[r].stepSeconds = m.stepSeconds;
    all[r].collectiveSeconds = m.collectiveSeconds;
    if (m.hardwareBytes > kMaxHardwareBytes)
      return errorStatus("a malformed report from rank " + std::to_string(r));
    if (!m.hardwareBytes)
      continue;
    std::vector<std::byte> bytes(m.hardwareBytes);
    if (Status s = transport->recv(r, kReportTag, bytes.data(), bytes.size());
        !s.ok())
      return s.withPrefix("receiving rank " + std::to_string(r) +
                          "'s report: ");
    auto samples = decodeSamples(bytes, r);
    if (!samples.ok())
      return samples.status();
    all[r].hardware = std::move(*samples);
  }
  return all;
}

Status LeaderStepModel::keepAlive() { return sendAll(kKeepAlive, {}); }

Status LeaderStepModel::stop() {
  if (Status s = sendAll(kStop, {}); !s.ok())
    return s;
  return transport ? transport->flush() : okStatus();
}

Status followSteps(SessionStepModel &local, comm::Transport &transport,
                   const TimedTransport *timed,
                   const monitor::RankSampler &sampler) {
  RankCounters own;
  std::vector<std::byte> payload;
  std::vector<NpyArray> arrays;
  std::string entry;
  while (true) {
    int64_t header[2] = {0, 0};
    if (Status s =
            transport.recv(0, kHeaderTag, reinterpret_cast<std::byte *>(header),
                           sizeof(header));
        !s.ok())
      return s.withPrefix("waiting for rank 0's next step: ");
    if (header[0] == kStop)
      return okStatus();
    if (header[0] == kKeepAlive)
      continue;
    if (header[0] == kReport) {
      std::vector<std::byte> hardware;
      if (sampler)
        if (auto samples = sampler(); !samples.empty())
          hardware = encodeSamples(samples);
      if (hardware.size() > kMaxHardwareBytes)
        hardware.clear();
      ReportMessage m{static_cast<double>(own.steps), own.stepSeconds,
                      timed ? timed->seconds() : 0, hardware.size()};
      Status s = transport.send(
          0, kReportTag, reinterpret_cast<const std::byte *>(&m), sizeof(m));
      if (s.ok() && !hardware.empty())
        s = transport.send(0, kReportTag, hardware.data(), hardware.size());
      if (!s.ok())
        return s.withPrefix("sending the report to rank 0: ");
      continue;
    }
    if (header[0] != kStep || header[1] <= 0 || header[1] > (1ll << 40))
      return errorStatus("a malformed message from rank 0");
    payload.resize(static_cast<size_t>(header[1]));
    if (Status s =
            transport.recv(0, kPayloadTag, payload.data(), payload.size());
        !s.ok())
      return s.withPrefix("receiving rank 0's step: ");
    if (Status s = decodeStep(payload, entry, arrays); !s.ok())
      return s;
    std::vector<const NpyArray *> inputs;
    for (const NpyArray &a : arrays)
      inputs.push_back(&a);
    Clock::time_point start = Clock::now();
    auto ids = local.runStep(entry, inputs);
    if (!ids.ok())
      return ids.status().withPrefix(entry + ": ");
    ++own.steps;
    own.stepSeconds += secondsSince(start);
  }
}

//===----------------------------------------------------------------------===//
// Replicas over a link
//===----------------------------------------------------------------------===//

namespace {

/// The largest message on a replica link (a step's inputs are a few MiB at
/// most; 1 TiB is the followers' bound too).
constexpr uint64_t kMaxLinkBytes = 1ull << 40;

/// A frame on a replica link: two int64s (kind or status, payload bytes),
/// then the payload.
Status writeFrame(int fd, int64_t kind, std::span<const std::byte> payload,
                  std::chrono::duration<double> timeout,
                  const std::string &what) {
  comm::Clock::time_point deadline = comm::deadlineAfter(timeout);
  int64_t header[2] = {kind, static_cast<int64_t>(payload.size())};
  if (Status s = comm::writeAll(fd, header, sizeof(header), deadline, what);
      !s.ok())
    return s;
  return payload.empty() ? okStatus()
                         : comm::writeAll(fd, payload.data(), payload.size(),
                                          deadline, what);
}

Status readFrame(int fd, int64_t &kind, std::vector<std::byte> &payload,
                 std::chrono::duration<double> timeout,
                 const std::string &what) {
  comm::Clock::time_point deadline = comm::deadlineAfter(timeout);
  int64_t header[2] = {0, 0};
  if (Status s = comm::readAll(fd, header, sizeof(header), deadline, what);
      !s.ok())
    return s;
  if (header[1] < 0 || static_cast<uint64_t>(header[1]) > kMaxLinkBytes)
    return errorStatus(what + ": a malformed frame");
  kind = header[0];
  payload.resize(static_cast<size_t>(header[1]));
  return payload.empty() ? okStatus()
                         : comm::readAll(fd, payload.data(), payload.size(),
                                         comm::deadlineAfter(timeout), what);
}

std::span<const std::byte> textBytes(const std::string &text) {
  return {reinterpret_cast<const std::byte *>(text.data()), text.size()};
}

std::vector<std::byte> encodeCounters(const std::vector<RankCounters> &all) {
  Writer w;
  w.put(static_cast<uint64_t>(all.size()));
  for (const RankCounters &c : all) {
    w.put(static_cast<double>(c.steps));
    w.put(c.stepSeconds);
    w.put(c.collectiveSeconds);
    std::vector<std::byte> samples = encodeSamples(c.hardware);
    w.put(static_cast<uint64_t>(samples.size()));
    w.append(samples.data(), samples.size());
  }
  return std::move(w.bytes);
}

Result<std::vector<RankCounters>>
decodeCounters(std::span<const std::byte> bytes) {
  Reader r(bytes);
  uint64_t count = 0;
  if (!r.get(count) || count > bytes.size())
    return errorStatus("a malformed report from the replica");
  std::vector<RankCounters> all(count);
  for (uint32_t rank = 0; rank < count; ++rank) {
    RankCounters &c = all[rank];
    double steps = 0;
    uint64_t size = 0;
    if (!r.get(steps) || !r.get(c.stepSeconds) || !r.get(c.collectiveSeconds) ||
        !r.get(size) || size > bytes.size())
      return errorStatus("a malformed report from the replica");
    c.steps = static_cast<uint64_t>(steps);
    std::vector<std::byte> samples(size);
    if (!r.take(samples.data(), size))
      return errorStatus("a malformed report from the replica");
    auto decoded = decodeSamples(samples, rank);
    if (!decoded.ok())
      return decoded.status();
    c.hardware = std::move(*decoded);
  }
  if (!r.done())
    return errorStatus("a malformed report from the replica");
  return all;
}

constexpr int64_t kReplyOk = 0, kReplyError = 1;

} // namespace

Result<std::vector<std::byte>>
ReplicaLink::call(int64_t kind, const std::vector<std::byte> &payload) {
  if (Status s =
          writeFrame(link.get(), kind, payload, timeout, "sending to " + peer);
      !s.ok())
    return s;
  int64_t status = 0;
  std::vector<std::byte> reply;
  if (Status s =
          readFrame(link.get(), status, reply, timeout, "waiting for " + peer);
      !s.ok())
    return s;
  if (status == kReplyError)
    return errorStatus(std::string(reinterpret_cast<const char *>(reply.data()),
                                   reply.size()));
  if (status != kReplyOk)
    return errorStatus("a malformed answer from " + peer);
  return reply;
}

Status ReplicaLink::waitReady() {
  int64_t kind = 0;
  std::vector<std::byte> payload;
  if (Status s =
          readFrame(link.get(), kind, payload, timeout,
                    "waiting for " + peer + " and its ranks to load the model");
      !s.ok())
    return s;
  if (kind != kReady || !payload.empty())
    return errorStatus("a malformed message from " + peer);
  return okStatus();
}

Result<std::vector<int32_t>>
ReplicaLink::runStep(const std::string &entry,
                     std::span<const NpyArray *const> inputs) {
  auto reply = call(kStep, encodeStep(entry, inputs));
  if (!reply.ok())
    return reply.status();
  if (reply->size() % sizeof(int32_t))
    return errorStatus("a malformed answer from " + peer);
  std::vector<int32_t> ids(reply->size() / sizeof(int32_t));
  if (!ids.empty())
    std::memcpy(ids.data(), reply->data(), reply->size());
  return ids;
}

Status ReplicaLink::keepAlive() { return call(kKeepAlive, {}).status(); }

Result<std::vector<RankCounters>> ReplicaLink::report() {
  auto reply = call(kReport, {});
  if (!reply.ok())
    return reply.status();
  return decodeCounters(*reply);
}

Status ReplicaLink::stop() { return call(kStop, {}).status(); }

void ReplicaLink::abort() {
  if (link.valid())
    ::shutdown(link.get(), SHUT_RDWR);
}

Status serveReplicaLink(StepDriver &driver, comm::Socket &link,
                        std::chrono::duration<double> timeout, bool *linkLost) {
  const std::string what = "the link to the serving process (rank 0)";
  int fd = link.get();
  auto lost = [&](Status s) {
    if (linkLost)
      *linkLost = true;
    return s;
  };
  auto answer = [&](const Status &s,
                    std::span<const std::byte> payload = {}) -> Status {
    Status sent = s.ok() ? writeFrame(fd, kReplyOk, payload, timeout, what)
                         : writeFrame(fd, kReplyError, textBytes(s.message()),
                                      timeout, what);
    // The serving process hears of a failure first; this rank then fails.
    return s.ok() ? (sent.ok() ? sent : lost(sent)) : s;
  };
  if (Status s = writeFrame(fd, kReady, {}, timeout, what); !s.ok())
    return lost(s);
  std::vector<std::byte> payload;
  std::vector<NpyArray> arrays;
  std::string entry;
  while (true) {
    int64_t kind = 0;
    if (Status s = readFrame(fd, kind, payload, timeout,
                             "waiting for the serving process (rank 0)");
        !s.ok())
      return lost(s);
    switch (kind) {
    case kStep: {
      if (Status s = decodeStep(payload, entry, arrays); !s.ok())
        return lost(s);
      std::vector<const NpyArray *> inputs;
      for (const NpyArray &a : arrays)
        inputs.push_back(&a);
      auto ids = driver.runStep(entry, inputs);
      if (!ids.ok())
        return answer(ids.status());
      if (Status s = answer(okStatus(),
                            {reinterpret_cast<const std::byte *>(ids->data()),
                             ids->size() * sizeof(int32_t)});
          !s.ok())
        return s;
      break;
    }
    case kKeepAlive:
      if (Status s = answer(driver.keepAlive()); !s.ok())
        return s;
      break;
    case kReport: {
      auto counters = driver.report();
      if (!counters.ok())
        return answer(counters.status());
      if (Status s = answer(okStatus(), encodeCounters(*counters)); !s.ok())
        return s;
      break;
    }
    case kStop:
      return answer(driver.stop());
    default:
      return lost(errorStatus("a malformed message from the serving process"));
    }
  }
}

} // namespace weft::runtime::generate
