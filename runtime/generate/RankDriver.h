// Serving over several ranks: rank 0 decides every step (its engine
// schedules the requests) and sends it to the other ranks, which run what
// they are sent until rank 0 says stop. While idle, rank 0 sends
// keep-alives, so that the others' waits end only when it has failed.
#ifndef WEFT_RUNTIME_GENERATE_RANKDRIVER_H
#define WEFT_RUNTIME_GENERATE_RANKDRIVER_H

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

/// Rank 0's model: each step goes to every other rank, then runs here.
class LeaderStepModel : public StepModel {
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
  /// Tells the other ranks that rank 0 is alive and idle.
  Status keepAlive();
  /// Every rank's counters, by rank (a round trip to each other rank).
  Result<std::vector<RankCounters>> report();
  /// Tells the other ranks to stop following (followSteps returns).
  Status stop();

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

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_RANKDRIVER_H
