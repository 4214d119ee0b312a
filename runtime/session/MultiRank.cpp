// Running the ranks of an artifact: one rank over a transport, or every
// rank as a thread of this process.
#include "runtime/session/MultiRank.h"

#include "runtime/comm/InProcessTransport.h"

#include <algorithm>
#include <exception>
#include <new>
#include <optional>
#include <system_error>
#include <thread>

namespace weft::runtime {

unsigned threadsPerRank(uint32_t localRanks) {
  unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, hardware / std::max(1u, localRanks));
}

Result<RankOutcome> runRank(const Artifact &artifact, uint32_t rank,
                            comm::Transport &transport,
                            std::span<const NpyArray *const> inputs,
                            unsigned threads, RankState &state,
                            const RankBackend &backend) {
  SessionOptions options;
  options.threads = threads;
  options.backend = backend.create;
  options.localRank = backend.localRank;
  auto session = Session::open(artifact, rank, &transport, options);
  if (!session.ok())
    return session.status();
  state.session = std::move(*session);
  auto outcome = state.session->run(kForwardEntry, inputs);
  if (!outcome.ok() || backend.warmup + backend.iterations == 0)
    return outcome;
  auto times = state.session->time(inputs, backend.warmup, backend.iterations);
  if (!times.ok())
    return times.status();
  if (rank == outcome->outputRank)
    outcome->timesMs = std::move(*times);
  return outcome;
}

Status runLocalRankTasks(uint32_t world, std::chrono::duration<double> timeout,
                         const RankTask &task,
                         std::vector<Status> *rankStatus) {
  // Declared before what the rank threads use, so it is destroyed last;
  // every rank's memory stays until all threads have ended.
  comm::InProcessWorld rendezvous(world, timeout);
  std::vector<std::unique_ptr<comm::Transport>> transports;
  for (uint32_t r = 0; r < world; ++r)
    transports.push_back(rendezvous.transport(r));
  std::vector<RankState> states(world);
  std::vector<Status> statuses(world);

  auto runOne = [&](uint32_t r) {
    Status failure;
    try {
      failure = task(r, *transports[r], states[r]);
      if (failure.ok()) {
        rendezvous.finish(r);
        return;
      }
    } catch (const std::bad_alloc &) {
      failure = errorStatus("out of memory");
    } catch (const std::exception &e) {
      failure = errorStatus(std::string("internal error: ") + e.what());
    }
    statuses[r] = failure;
    rendezvous.fail(r, failure.message());
  };
  std::vector<std::thread> rankThreads;
  for (uint32_t r = 0; r < world; ++r) {
    try {
      rankThreads.emplace_back(runOne, r);
    } catch (const std::system_error &e) {
      statuses[r] =
          errorStatus(std::string("cannot start its thread: ") + e.what());
      rendezvous.fail(r, statuses[r].message());
      break;
    }
  }
  for (std::thread &t : rankThreads)
    t.join();

  if (rankStatus)
    *rankStatus = statuses;
  if (auto failed = rendezvous.failure())
    return errorStatus(
        (world > 1 ? "rank " + std::to_string(failed->first) + ": " : "") +
        failed->second);
  return okStatus();
}

Result<std::vector<NpyArray>>
runLocalRanks(const Artifact &artifact, std::span<const NpyArray *const> inputs,
              const LocalRunOptions &options, std::vector<Status> *rankStatus) {
  uint32_t world = artifact.manifest.world_size();
  unsigned threads =
      options.threadsPerRank ? options.threadsPerRank : threadsPerRank(world);
  std::vector<std::optional<RankOutcome>> outcomes(world);
  auto task = [&](uint32_t r, comm::Transport &transport,
                  RankState &state) -> Status {
    auto outcome = runRank(artifact, r, transport, inputs, threads, state,
                           options.backend);
    if (!outcome.ok())
      return outcome.status();
    outcomes[r] = std::move(*outcome);
    return okStatus();
  };
  if (Status s = runLocalRankTasks(world, options.timeout, task, rankStatus);
      !s.ok())
    return s;
  uint32_t outputRank = outcomes[0]->outputRank;
  if (options.timesMs)
    *options.timesMs = std::move(outcomes[outputRank]->timesMs);
  return std::move(outcomes[outputRank]->outputs);
}

} // namespace weft::runtime
