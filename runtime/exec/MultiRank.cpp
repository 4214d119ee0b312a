// Running the ranks of an artifact: one rank over a transport, or every
// rank as a thread of this process.
#include "runtime/exec/MultiRank.h"

#include "runtime/comm/InProcessTransport.h"

#include <algorithm>
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

Status setInputs(Executor &exec, const artifact::Manifest &manifest,
                 std::span<const NpyArray *const> inputs) {
  for (size_t i = 0; i < exec.numInputs(); ++i) {
    const std::string &name = exec.inputName(i);
    const NpyArray *array = nullptr;
    for (int k = 0; k < manifest.inputs_size(); ++k)
      if (manifest.inputs(k).name() == name &&
          static_cast<size_t>(k) < inputs.size())
        array = inputs[k];
    if (!array)
      return errorStatus("no data for graph input '" + name + "'");
    if (Status s = exec.setInput(i, array->data); !s.ok())
      return s;
  }
  return okStatus();
}

/// The first rank whose plan lists outputs, agreed on by every rank.
Result<uint32_t> agreeOnOutputRank(const Executor &exec,
                                   const artifact::Manifest &manifest,
                                   comm::Transport &transport) {
  uint32_t world = manifest.world_size();
  std::byte mine{exec.numOutputs() > 0};
  std::vector<std::byte> listed(world);
  if (Status s =
          transport.allGather(worldGroup(world), &mine, 1, listed.data());
      !s.ok())
    return s;
  for (uint32_t r = 0; r < world; ++r)
    if (listed[r] != std::byte{0})
      return r;
  if (manifest.outputs_size() > 0)
    return errorStatus("no rank's plan lists the graph outputs");
  return 0u;
}

} // namespace

unsigned threadsPerRank(uint32_t localRanks) {
  unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, hardware / std::max(1u, localRanks));
}

Result<RankOutcome> runRank(const Artifact &artifact, uint32_t rank,
                            comm::Transport &transport,
                            std::span<const NpyArray *const> inputs,
                            unsigned threads, RankState &state) {
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
  auto exec = Executor::create(state.rank, {threads, world, &transport});
  if (!exec.ok())
    return exec.status();
  state.executor = std::move(*exec);
  Executor &ex = *state.executor;
  if (Status s = setInputs(ex, manifest, inputs); !s.ok())
    return s;
  auto outputRank = agreeOnOutputRank(ex, manifest, transport);
  if (!outputRank.ok())
    return outputRank.status();

  if (Status s = ex.run(); !s.ok())
    return s;
  if (Status s = transport.flush(); !s.ok())
    return s;
  // Every rank has succeeded once each gets here.
  std::byte done{1};
  std::vector<std::byte> allDone(world);
  if (Status s =
          transport.allGather(worldGroup(world), &done, 1, allDone.data());
      !s.ok())
    return s;

  RankOutcome outcome;
  outcome.outputRank = *outputRank;
  if (rank != *outputRank)
    return outcome;
  for (size_t i = 0; i < ex.numOutputs(); ++i) {
    const InTensor &t = ex.output(i);
    outcome.outputs.push_back(
        NpyArray{manifest.outputs(i).name(), t.dtype, t.shape,
                 std::vector<std::byte>(t.data, t.data + t.bytes())});
  }
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
      auto outcome =
          runRank(artifact, r, *transports[r], inputs, threads, states[r]);
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
  return std::move(outcomes[outputRank]->outputs);
}

} // namespace weft::runtime
