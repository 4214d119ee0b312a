// Serving over several ranks: rank 0 decides every step (its engine
// schedules the requests) and sends it to the other ranks, which run what
// they are sent until rank 0 says stop. While idle, rank 0 sends
// keep-alives, so that the others' waits end only when it has failed.
//
// With data-parallel replicas over processes (weft serve --dp with --nproc
// or a launcher), the serving process runs every replica's scheduler; a
// replica whose ranks are other processes is driven over a link to its
// rank 0 (ReplicaLink), which passes each call to its own ranks.
#ifndef WEFT_RUNTIME_GENERATE_RANKDRIVER_H
#define WEFT_RUNTIME_GENERATE_RANKDRIVER_H

#include "runtime/comm/Socket.h"
#include "runtime/comm/Transport.h"
#include "runtime/generate/SessionModel.h"
#include "runtime/monitor/Telemetry.h"

#include <chrono>

namespace weft::runtime::generate {

/// How often an idle rank 0 tells the others it is alive; their waits for
/// the next step time out after the transport's timeout, which must be
/// longer.
inline constexpr std::chrono::milliseconds kKeepAliveInterval{1000};

/// A transport that counts the time its calls take: a rank's time in
/// collectives and messages (of the collectives this transport carries: on
/// GPUs NCCL runs them inside the step, and they count as step time).
class TimedTransport : public comm::Transport {
public:
  explicit TimedTransport(comm::Transport &inner) : inner(inner) {}
  uint32_t rank() const override { return inner.rank(); }
  uint32_t worldSize() const override { return inner.worldSize(); }
  Status prepare(std::span<const comm::Group> groups) override;
  Status allReduceSum(const comm::Group &group, DType dtype,
                      const std::byte *in, std::byte *out,
                      int64_t count) override;
  Status allGather(const comm::Group &group, const std::byte *in,
                   uint64_t bytes, std::byte *out) override;
  Status send(uint32_t peer, int64_t tag, const std::byte *data,
              uint64_t bytes) override;
  Status recv(uint32_t peer, int64_t tag, std::byte *data,
              uint64_t bytes) override;
  Status flush() override;
  double seconds() const { return total; }

private:
  template <typename F> Status timed(F &&call);
  comm::Transport &inner;
  double total = 0;
};

/// What a rank has spent: steps run, their seconds, and the seconds of
/// its transport's calls within them.
struct RankCounters {
  uint64_t steps = 0;
  double stepSeconds = 0, collectiveSeconds = 0;
  /// The rank's hardware metrics at the report (its sampler's).
  std::vector<monitor::MetricSample> hardware;
};

/// What a replica's scheduler drives: its steps, and its ranks'
/// keep-alives, reports and stop.
class StepDriver : public StepModel {
public:
  /// Tells the other ranks that rank 0 is alive and idle.
  virtual Status keepAlive() = 0;
  /// Every rank's counters, by rank (a round trip to each other rank).
  virtual Result<std::vector<RankCounters>> report() = 0;
  /// Tells the other ranks to stop following (followSteps returns).
  virtual Status stop() = 0;
};

/// Rank 0's model: each step goes to every other rank, then runs here.
class LeaderStepModel : public StepDriver {
public:
  /// `transport` null: a world of one rank, nothing is sent. `timed`, if
  /// given, is the transport the session's collectives go through.
  /// `sampler`, if set, adds this rank's hardware metrics to reports.
  LeaderStepModel(SessionStepModel &local, comm::Transport *transport,
                  const TimedTransport *timed = nullptr,
                  monitor::RankSampler sampler = {})
      : local(local), transport(transport), timed(timed),
        sampler(std::move(sampler)) {}

  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override;
  Status keepAlive() override;
  Result<std::vector<RankCounters>> report() override;
  Status stop() override;

private:
  Status sendAll(int64_t kind, const std::vector<std::byte> &payload);

  SessionStepModel &local;
  comm::Transport *transport;
  const TimedTransport *timed;
  monitor::RankSampler sampler;
  RankCounters own;
};

/// A rank other than 0: runs each step rank 0 sends, on `local`, until
/// rank 0 says stop, and answers its reports (`timed`, if given, is the
/// transport the session's collectives go through; `sampler`, if set,
/// adds this rank's hardware metrics); fails if rank 0 (or a step) fails or
/// goes silent for the transport's timeout.
Status followSteps(SessionStepModel &local, comm::Transport &transport,
                   const TimedTransport *timed = nullptr,
                   const monitor::RankSampler &sampler = {});

/// The serving process's end of the link to a replica whose ranks are
/// other processes: every call is sent to the replica's rank 0, which makes
/// it on its ranks (serveReplicaLink) and answers. A call fails when the
/// link closes or no answer comes within the timeout.
class ReplicaLink : public StepDriver {
public:
  /// `firstRank`: the job's rank of the replica's rank 0, for messages.
  ReplicaLink(comm::Socket link, std::chrono::duration<double> timeout,
              uint32_t firstRank)
      : link(std::move(link)), timeout(timeout),
        peer("rank " + std::to_string(firstRank) + " (the replica's rank 0)") {}

  /// Waits until the replica's ranks have loaded the model.
  Status waitReady();
  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override;
  Status keepAlive() override;
  Result<std::vector<RankCounters>> report() override;
  Status stop() override;
  /// Ends the link from another thread: a call waiting fails at once.
  void abort();

private:
  Result<std::vector<std::byte>> call(int64_t kind,
                                      const std::vector<std::byte> &payload);

  comm::Socket link;
  std::chrono::duration<double> timeout;
  std::string peer;
};

/// A remote replica's rank 0: says it is ready, then makes each call that
/// comes over `link` on `driver` (its ranks) and answers, until told to
/// stop (ok). Fails if the link closes, nothing comes within `timeout`
/// (the serving process keeps an idle replica alive every second), or the
/// driver fails (the serving process hears why first). `linkLost`, if
/// given, tells the two apart: true when the link failed.
Status serveReplicaLink(StepDriver &driver, comm::Socket &link,
                        std::chrono::duration<double> timeout,
                        bool *linkLost = nullptr);

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_RANKDRIVER_H
