// Running the ranks of an artifact: one rank over a transport, or every
// rank as a thread of this process.
#include "runtime/exec/MultiRank.h"

#include "runtime/comm/InProcessTransport.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <system_error>
#include <thread>

namespace weft::runtime {

namespace {

comm::Group worldGroup(uint32_t worldSize) {
  comm::Group g(worldSize);
  for (uint32_t r = 0; r < worldSize; ++r)
    g[r] = r;
  return g;
}

/// Sets the graph inputs of `exec` to chunk `chunk` of the whole inputs
/// (the manifest's, in order): its rows of dim 0, one of `chunks`.
Status setInputs(RankExecutor &exec, const artifact::Manifest &manifest,
                 std::span<const NpyArray *const> inputs, uint64_t chunk,
                 uint64_t chunks) {
  for (size_t i = 0; i < exec.numInputs(); ++i) {
    const std::string &name = exec.inputName(i);
    const NpyArray *array = nullptr;
    for (int k = 0; k < manifest.inputs_size(); ++k)
      if (manifest.inputs(k).name() == name &&
          static_cast<size_t>(k) < inputs.size())
        array = inputs[k];
    if (!array)
      return errorStatus("no data for graph input '" + name + "'");
    std::span<const std::byte> bytes = array->data;
    if (chunks > 1) {
      if (bytes.size() % chunks != 0)
        return errorStatus(
            "graph input '" + name + "' of " + std::to_string(bytes.size()) +
            " bytes cannot be cut into " + std::to_string(chunks) + " chunks");
      uint64_t size = bytes.size() / chunks;
      bytes = bytes.subspan(chunk * size, size);
    }
    if (Status s = exec.setInput(i, bytes); !s.ok())
      return s;
  }
  return okStatus();
}

/// Which ranks' plans list outputs, agreed on by every rank.
Result<std::vector<bool>> agreeOnOutputRanks(const RankExecutor &exec,
                                             uint32_t world,
                                             comm::Transport &transport) {
  std::byte mine{exec.numOutputs() > 0};
  std::vector<std::byte> listed(world);
  if (Status s =
          transport.allGather(worldGroup(world), &mine, 1, listed.data());
      !s.ok())
    return s;
  std::vector<bool> result(world);
  for (uint32_t r = 0; r < world; ++r)
    result[r] = listed[r] != std::byte{0};
  return result;
}

/// Each replica's output rank: its lowest rank whose plan lists outputs
/// (rank 0 of each when the graph has no outputs).
Result<std::vector<uint32_t>>
replicaOutputRanks(const std::vector<bool> &listed, const Layout &layout,
                   const artifact::Manifest &manifest) {
  uint32_t perReplica = layout.tp * layout.pp;
  std::vector<uint32_t> ranks;
  for (uint32_t d = 0; d < layout.dp; ++d) {
    uint32_t first = d * perReplica, found = first;
    while (found < first + perReplica && !listed[found])
      ++found;
    if (found == first + perReplica) {
      if (manifest.outputs_size() > 0)
        return errorStatus(layout.dp > 1
                               ? "no rank of data-parallel replica " +
                                     std::to_string(d) + " (ranks " +
                                     std::to_string(first) + " to " +
                                     std::to_string(first + perReplica - 1) +
                                     ") lists the graph outputs"
                               : std::string("no rank's plan lists the graph "
                                             "outputs"));
      found = first;
    }
    ranks.push_back(found);
  }
  return ranks;
}

/// A tag the output gather uses: messages with a plan's tags between the
/// same ranks are all received before (sends and receives are in order
/// per sender, receiver and tag).
constexpr int64_t kGatherTag = 32767;

/// Runs the replica's chunks `warmup` times untimed, then `iterations`
/// times timed: each run starts on every rank at once (a barrier) and its
/// time is the slowest rank's wall clock, from the barrier to the end of
/// the rank's last chunk (see RankExecutor::runTimed).
Result<std::vector<double>> timeRuns(RankExecutor &ex,
                                     const artifact::Manifest &manifest,
                                     std::span<const NpyArray *const> inputs,
                                     uint32_t replica, const Layout &layout,
                                     comm::Transport &transport,
                                     unsigned warmup, unsigned iterations) {
  std::vector<double> times;
  uint32_t world = manifest.world_size();
  comm::Group all = worldGroup(world);
  for (unsigned it = 0; it < warmup + iterations; ++it) {
    std::byte token{1};
    std::vector<std::byte> tokens(world);
    if (Status s = transport.allGather(all, &token, 1, tokens.data()); !s.ok())
      return s;
    auto start = std::chrono::steady_clock::now();
    for (uint64_t u = 0; u < layout.microbatches; ++u) {
      uint64_t chunk = replica * layout.microbatches + u;
      if (Status s = setInputs(ex, manifest, inputs, chunk, layout.chunks());
          !s.ok())
        return s;
      if (Status s = ex.runTimed(); !s.ok())
        return s;
    }
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    std::vector<double> allMs(world);
    if (Status s = transport.allGather(
            all, reinterpret_cast<const std::byte *>(&ms), sizeof(ms),
            reinterpret_cast<std::byte *>(allMs.data()));
        !s.ok())
      return s;
    if (it >= warmup)
      times.push_back(*std::max_element(allMs.begin(), allMs.end()));
  }
  return times;
}

} // namespace

unsigned threadsPerRank(uint32_t localRanks) {
  unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, hardware / std::max(1u, localRanks));
}

Result<RankOutcome> runRank(const Artifact &artifact, uint32_t rank,
                            comm::Transport &transport,
                            std::span<const NpyArray *const> inputs,
                            unsigned threads, RankState &state,
                            const RankBackend &backend) {
  const artifact::Manifest &manifest = artifact.manifest;
  uint32_t world = manifest.world_size();
  if (transport.worldSize() != world || transport.rank() != rank)
    return errorStatus(
        "the transport is rank " + std::to_string(transport.rank()) + " of " +
        std::to_string(transport.worldSize()) + ", the artifact's rank " +
        std::to_string(rank) + " of " + std::to_string(world));
  auto plan = readRankPlan(artifact, rank);
  if (!plan.ok())
    return plan.status();
  state.rank = std::move(*plan);
  if (Status s = transport.prepare(comm::planGroups(state.rank.plan, world));
      !s.ok())
    return s;
  if (Status s = loadWeights(artifact, state.rank); !s.ok())
    return s;
  if (backend.create) {
    auto exec =
        backend.create(artifact, state, transport, threads, backend.localRank);
    if (!exec.ok())
      return exec.status();
    state.executor = std::move(*exec);
  } else {
    auto exec = Executor::create(state.rank, {threads, world, &transport});
    if (!exec.ok())
      return exec.status();
    state.executor = std::move(*exec);
  }
  RankExecutor &ex = *state.executor;
  Layout layout = layoutOf(manifest);
  auto listed = agreeOnOutputRanks(ex, world, transport);
  if (!listed.ok())
    return listed.status();
  auto outputRanks = replicaOutputRanks(*listed, layout, manifest);
  if (!outputRanks.ok())
    return outputRanks.status();
  uint32_t replica = layout.dpIndex(rank);
  bool yields = (*outputRanks)[replica] == rank;
  uint64_t chunks = layout.chunks(), perReplica = layout.microbatches;

  // This replica's outputs: its chunks, one after another.
  std::vector<std::vector<std::byte>> mine;
  if (yields)
    for (size_t i = 0; i < ex.numOutputs(); ++i)
      mine.emplace_back(ex.output(i).bytes() * perReplica);
  for (uint64_t u = 0; u < perReplica; ++u) {
    uint64_t chunk = replica * perReplica + u;
    if (Status s = setInputs(ex, manifest, inputs, chunk, chunks); !s.ok())
      return chunks > 1 ? s.withPrefix("chunk " + std::to_string(chunk) + ": ")
                        : s;
    if (Status s = ex.run(); !s.ok())
      return chunks > 1 ? s.withPrefix("chunk " + std::to_string(chunk) + ": ")
                        : s;
    if (yields)
      for (size_t i = 0; i < ex.numOutputs(); ++i) {
        InTensor t = ex.output(i);
        if (t.bytes())
          std::memcpy(mine[i].data() + u * t.bytes(), t.data, t.bytes());
      }
  }
  auto times = timeRuns(ex, manifest, inputs, replica, layout, transport,
                        backend.warmup, backend.iterations);
  if (!times.ok())
    return times.status();

  // The replicas' outputs go to the first replica's output rank.
  uint32_t outputRank = (*outputRanks)[0];
  if (yields && rank != outputRank)
    for (const std::vector<std::byte> &bytes : mine)
      if (Status s = transport.send(outputRank, kGatherTag, bytes.data(),
                                    bytes.size());
          !s.ok())
        return s.withPrefix("sending the outputs: ");
  RankOutcome outcome;
  outcome.outputRank = outputRank;
  if (rank == outputRank)
    outcome.timesMs = std::move(*times);
  if (rank == outputRank) {
    for (size_t i = 0; i < ex.numOutputs(); ++i) {
      const artifact::TensorSpec &spec = manifest.outputs(i);
      NpyArray whole{spec.name(), spec.dtype(), toShape(spec.shape()),
                     std::move(mine[i])};
      whole.data.resize(whole.data.size() * layout.dp);
      outcome.outputs.push_back(std::move(whole));
    }
    for (uint32_t d = 1; d < layout.dp; ++d)
      for (NpyArray &whole : outcome.outputs) {
        uint64_t replicaBytes = whole.data.size() / layout.dp;
        if (Status s = transport.recv((*outputRanks)[d], kGatherTag,
                                      whole.data.data() + d * replicaBytes,
                                      replicaBytes);
            !s.ok())
          return s.withPrefix("gathering the outputs of replica " +
                              std::to_string(d) + ": ");
      }
  }
  if (Status s = transport.flush(); !s.ok())
    return s;
  // Every rank has succeeded once each gets here.
  std::byte done{1};
  std::vector<std::byte> allDone(world);
  if (Status s =
          transport.allGather(worldGroup(world), &done, 1, allDone.data());
      !s.ok())
    return s;
  return outcome;
}

Result<std::vector<NpyArray>>
runLocalRanks(const Artifact &artifact, std::span<const NpyArray *const> inputs,
              const LocalRunOptions &options, std::vector<Status> *rankStatus) {
  uint32_t world = artifact.manifest.world_size();
  unsigned threads =
      options.threadsPerRank ? options.threadsPerRank : threadsPerRank(world);
  // Declared before what the rank threads use, so it is destroyed last;
  // every rank's memory stays until all threads have ended.
  comm::InProcessWorld rendezvous(world, options.timeout);
  std::vector<std::unique_ptr<comm::Transport>> transports;
  for (uint32_t r = 0; r < world; ++r)
    transports.push_back(rendezvous.transport(r));
  std::vector<RankState> states(world);
  std::vector<Status> statuses(world);
  std::vector<std::optional<RankOutcome>> outcomes(world);

  auto runOne = [&](uint32_t r) {
    Status failure;
    try {
      auto outcome = runRank(artifact, r, *transports[r], inputs, threads,
                             states[r], options.backend);
      if (outcome.ok()) {
        outcomes[r] = std::move(*outcome);
        rendezvous.finish(r);
        return;
      }
      failure = outcome.status();
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
  uint32_t outputRank = outcomes[0]->outputRank;
  if (options.timesMs)
    *options.timesMs = std::move(outcomes[outputRank]->timesMs);
  return std::move(outcomes[outputRank]->outputs);
}

} // namespace weft::runtime
