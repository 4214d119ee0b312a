// Serving over several ranks: rank 0 decides every step (its engine
// schedules the requests) and sends it to the other ranks, which run what
// they are sent until rank 0 says stop. While idle, rank 0 sends
// keep-alives, so that the others' waits end only when it has failed.
#ifndef WEFT_RUNTIME_GENERATE_RANKDRIVER_H
#define WEFT_RUNTIME_GENERATE_RANKDRIVER_H

#include "runtime/comm/Transport.h"
#include "runtime/generate/SessionModel.h"

#include <chrono>

namespace weft::runtime::generate {

/// How often an idle rank 0 tells the others it is alive; their waits for
/// the next step time out after the transport's timeout, which must be
/// longer.
inline constexpr std::chrono::milliseconds kKeepAliveInterval{1000};

/// Rank 0's model: each step goes to every other rank, then runs here.
class LeaderStepModel : public StepModel {
public:
  /// `transport` null: a world of one rank, nothing is sent.
  LeaderStepModel(SessionStepModel &local, comm::Transport *transport)
      : local(local), transport(transport) {}

  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override;
  /// Tells the other ranks that rank 0 is alive and idle.
  Status keepAlive();
  /// Tells the other ranks to stop following (followSteps returns).
  Status stop();

private:
  Status sendAll(int64_t kind, const std::vector<std::byte> &payload);

  SessionStepModel &local;
  comm::Transport *transport;
};

/// A rank other than 0: runs each step rank 0 sends, on `local`, until
/// rank 0 says stop; fails if rank 0 (or a step) fails or goes silent
/// for the transport's timeout.
Status followSteps(SessionStepModel &local, comm::Transport &transport);

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_RANKDRIVER_H
