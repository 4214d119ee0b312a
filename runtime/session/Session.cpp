// A session: one rank of an artifact opened once, its entry points run
// many times over the same arena, weights and state buffers.
#include "runtime/session/Session.h"

#include "runtime/backends/cpu/CpuExecutor.h"

#include <algorithm>
#include <chrono>
#include <cstring>

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
    // An entry's own inputs (not the manifest's): by the array's name.
    for (size_t k = 0; !array && k < inputs.size(); ++k)
      if (inputs[k] && inputs[k]->name == name)
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

/// The default backend: the rank on the CPU, over the transport (if any).
Result<std::unique_ptr<RankExecutor>>
makeCpuRank(const Artifact &artifact, RankPlan &rank,
            comm::Transport *transport, unsigned threads,
            std::optional<uint32_t> /*localRank*/) {
  auto exec = CpuExecutor::create(
      rank, {threads, artifact.manifest.world_size(), transport});
  if (!exec.ok())
    return exec.status();
  return std::unique_ptr<RankExecutor>(std::move(*exec));
}

} // namespace

Result<std::unique_ptr<Session>> Session::open(const Artifact &artifact,
                                               uint32_t rank,
                                               comm::Transport *transport,
                                               const SessionOptions &options) {
  const artifact::Manifest &manifest = artifact.manifest;
  uint32_t world = manifest.world_size();
  if (transport &&
      (transport->worldSize() != world || transport->rank() != rank))
    return errorStatus(
        "the transport is rank " + std::to_string(transport->rank()) + " of " +
        std::to_string(transport->worldSize()) + ", the artifact's rank " +
        std::to_string(rank) + " of " + std::to_string(world));
  std::unique_ptr<Session> session(new Session(artifact, rank, transport));
  auto plan = readRankPlan(artifact, rank);
  if (!plan.ok())
    return plan.status();
  session->rankPlan = std::move(*plan);
  RankPlan &rankPlan = session->rankPlan;
  rankPlan.kvCacheBlocks = options.kvCacheBlocks;
  if (transport)
    if (Status s = transport->prepare(comm::planGroups(rankPlan.plan, world));
        !s.ok())
      return s;
  if (Status s = loadWeights(artifact, rankPlan); !s.ok())
    return s;
  auto exec = options.backend
                  ? options.backend(artifact, rankPlan, transport,
                                    options.threads, options.localRank)
                  : makeCpuRank(artifact, rankPlan, transport, options.threads,
                                options.localRank);
  if (!exec.ok())
    return exec.status();
  session->exec = std::move(*exec);
  if (!transport) {
    // Alone: this rank yields its own outputs.
    session->outputRanks.assign(layoutOf(manifest).dp, rank);
    return session;
  }
  auto listed = agreeOnOutputRanks(*session->exec, world, *transport);
  if (!listed.ok())
    return listed.status();
  auto outputRanks = replicaOutputRanks(*listed, layoutOf(manifest), manifest);
  if (!outputRanks.ok())
    return outputRanks.status();
  session->outputRanks = std::move(*outputRanks);
  return session;
}

std::vector<std::string> Session::entryPoints() const {
  return exec->entryPoints();
}

Result<RankOutcome> Session::run(const std::string &entry,
                                 std::span<const NpyArray *const> inputs,
                                 std::span<const std::string> only) {
  std::vector<std::string> entries = exec->entryPoints();
  if (std::find(entries.begin(), entries.end(), entry) == entries.end()) {
    std::string known;
    for (const std::string &name : entries)
      known += (known.empty() ? "" : ", ") + name;
    return errorStatus("the artifact has no entry point '" + entry +
                       "' (it has: " + known + ")");
  }
  if (Status s = exec->selectEntry(entry); !s.ok())
    return s;
  return entry == kForwardEntry ? runForward(inputs) : runEntry(inputs, only);
}

Result<RankOutcome> Session::runEntry(std::span<const NpyArray *const> inputs,
                                      std::span<const std::string> only) {
  RankExecutor &ex = *exec;
  std::vector<bool> fetch(ex.numOutputs(), only.empty());
  for (size_t i = 0; i < ex.numOutputs(); ++i)
    if (std::find(only.begin(), only.end(), ex.outputName(i)) != only.end())
      fetch[i] = true;
  // No manifest to match: the entry's inputs are found by name.
  if (Status s = setInputs(ex, artifact::Manifest(), inputs, 0, 1); !s.ok())
    return s;
  if (Status s = ex.runFetching(fetch); !s.ok())
    return s;
  RankOutcome outcome;
  outcome.outputRank = rankIndex;
  for (size_t i = 0; i < ex.numOutputs(); ++i) {
    if (!fetch[i])
      continue;
    InTensor t = ex.output(i);
    NpyArray array{ex.outputName(i), t.dtype, t.shape,
                   std::vector<std::byte>(t.data, t.data + t.bytes())};
    outcome.outputs.push_back(std::move(array));
  }
  return outcome;
}

Result<RankOutcome>
Session::runForward(std::span<const NpyArray *const> inputs) {
  const artifact::Manifest &manifest = artifact.manifest;
  uint32_t world = manifest.world_size(), rank = rankIndex;
  RankExecutor &ex = *exec;
  Layout layout = layoutOf(manifest);
  uint32_t replica = layout.dpIndex(rank);
  bool yields = outputRanks[replica] == rank;
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

  // The replicas' outputs go to the first replica's output rank.
  uint32_t outputRank = outputRanks[0];
  if (yields && rank != outputRank)
    for (const std::vector<std::byte> &bytes : mine)
      if (Status s = transport->send(outputRank, kGatherTag, bytes.data(),
                                     bytes.size());
          !s.ok())
        return s.withPrefix("sending the outputs: ");
  RankOutcome outcome;
  outcome.outputRank = outputRank;
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
        if (Status s = transport->recv(outputRanks[d], kGatherTag,
                                       whole.data.data() + d * replicaBytes,
                                       replicaBytes);
            !s.ok())
          return s.withPrefix("gathering the outputs of replica " +
                              std::to_string(d) + ": ");
      }
  }
  if (!transport)
    return outcome;
  if (Status s = transport->flush(); !s.ok())
    return s;
  // Every rank has succeeded once each gets here.
  std::byte done{1};
  std::vector<std::byte> allDone(world);
  if (Status s =
          transport->allGather(worldGroup(world), &done, 1, allDone.data());
      !s.ok())
    return s;
  return outcome;
}

Result<std::vector<double>>
Session::time(std::span<const NpyArray *const> inputs, unsigned warmup,
              unsigned iterations) {
  if (!transport)
    return errorStatus("timing runs needs a transport (a rank alone has "
                       "none)");
  if (Status s = exec->selectEntry(kForwardEntry); !s.ok())
    return s;
  Layout layout = layoutOf(artifact.manifest);
  return timeRuns(*exec, artifact.manifest, inputs, layout.dpIndex(rankIndex),
                  layout, *transport, warmup, iterations);
}

} // namespace weft::runtime
