// The generation engine over sessions: steps run on every rank, the
// sampled ids shared from the rank that holds them.
#include "runtime/generate/SessionModel.h"

#include <algorithm>
#include <cstring>

namespace weft::runtime::generate {

namespace {

/// The tag of the sampled ids' messages, apart from the plans' tags and
/// the session's output gather.
constexpr int64_t kNextIdsTag = 32766;

const NpyArray *findArray(std::span<const NpyArray *const> arrays,
                          const std::string &name) {
  for (const NpyArray *a : arrays)
    if (a && a->name == name)
      return a;
  return nullptr;
}

/// An array of `shape` whose every element is 1.
Result<NpyArray> onesLike(const std::string &name, DType dtype,
                          const Shape &shape) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  NpyArray array{name, dtype, shape, {}};
  array.data.resize(count * dtypeSize(dtype));
  auto fill = [&](auto one) {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(array.data.data() + i * sizeof(one), &one, sizeof(one));
  };
  switch (dtype) {
  case DType::I64:
    fill(int64_t{1});
    break;
  case DType::I32:
    fill(int32_t{1});
    break;
  case DType::BOOL:
  case DType::U8:
  case DType::I8:
    fill(uint8_t{1});
    break;
  case DType::F32:
    fill(1.0f);
    break;
  default:
    return errorStatus("cannot fill the model input '" + name + "' of dtype " +
                       dtypeName(dtype) + " (only ids, masks and f32)");
  }
  return array;
}

} // namespace

Result<std::vector<NpyArray>>
SessionStepModel::fillMissing(const std::string &entry,
                              std::span<const NpyArray *const> inputs) const {
  std::vector<NpyArray> filled;
  const artifact::Plan &plan = session.plan().plan;
  for (const artifact::EntryPoint &ep : plan.entry_points()) {
    if (ep.name() != entry)
      continue;
    for (uint32_t id : ep.inputs()) {
      if (id >= static_cast<uint32_t>(plan.buffers_size()))
        continue;
      const artifact::Buffer &buffer = plan.buffers(id);
      if (findArray(inputs, buffer.name()))
        continue;
      Shape shape = toShape(buffer.shape());
      const NpyArray *positions = findArray(inputs, kPositions);
      if (buffer.name().find("position") != std::string::npos && positions &&
          buffer.dtype() == DType::I64 && shape == positions->shape) {
        NpyArray copy = *positions;
        copy.name = buffer.name();
        filled.push_back(std::move(copy));
        continue;
      }
      auto ones = onesLike(buffer.name(), buffer.dtype(), shape);
      if (!ones.ok())
        return ones.status();
      filled.push_back(std::move(*ones));
    }
  }
  return filled;
}

Result<uint32_t> SessionStepModel::sourceRank(bool holdsIds) {
  if (source)
    return *source;
  if (!transport) {
    if (!holdsIds)
      return errorStatus("the rank's plan gives no " + std::string(kNextIds));
    source = session.rank();
    return *source;
  }
  uint32_t world = transport->worldSize();
  comm::Group all(world);
  for (uint32_t r = 0; r < world; ++r)
    all[r] = r;
  std::byte mine{holdsIds};
  std::vector<std::byte> holders(world);
  if (Status s = transport->allGather(all, &mine, 1, holders.data()); !s.ok())
    return s;
  auto first = std::find(holders.begin(), holders.end(), std::byte{1});
  if (first == holders.end())
    return errorStatus("no rank's plan gives " + std::string(kNextIds));
  source = static_cast<uint32_t>(first - holders.begin());
  return *source;
}

Result<std::vector<int32_t>>
SessionStepModel::runStep(const std::string &entry,
                          std::span<const NpyArray *const> inputs) {
  auto extra = fillMissing(entry, inputs);
  if (!extra.ok())
    return extra.status();
  std::vector<const NpyArray *> all(inputs.begin(), inputs.end());
  for (const NpyArray &a : *extra)
    all.push_back(&a);
  // Only the sampled ids leave the device: the logits ([rows, vocab]) stay.
  static const std::string kWanted[] = {kNextIds};
  auto outcome = session.run(entry, all, kWanted);
  if (!outcome.ok())
    return outcome.status();
  const NpyArray *ids = nullptr;
  for (const NpyArray &a : outcome->outputs)
    if (a.name == kNextIds)
      ids = &a;
  auto from = sourceRank(ids != nullptr);
  if (!from.ok())
    return from.status();

  const NpyArray *rowsInput = findArray(inputs, kLogitRows);
  if (!rowsInput || rowsInput->shape.size() != 1)
    return errorStatus("the step has no " + std::string(kLogitRows) +
                       " input to size " + kNextIds + " by");
  std::vector<int32_t> next(rowsInput->shape[0]);
  uint64_t bytes = next.size() * sizeof(int32_t);
  uint32_t self = session.rank();
  if (self == *from) {
    if (ids->dtype != DType::I32 || ids->data.size() != bytes)
      return errorStatus(std::string(kNextIds) + " is " +
                         dtypeName(ids->dtype) + " " + shapeString(ids->shape) +
                         ", expected i32 [" + std::to_string(next.size()) +
                         "]");
    std::memcpy(next.data(), ids->data.data(), bytes);
    if (transport)
      for (uint32_t r = 0; r < transport->worldSize(); ++r)
        if (r != self)
          if (Status s = transport->send(
                  r, kNextIdsTag,
                  reinterpret_cast<const std::byte *>(next.data()), bytes);
              !s.ok())
            return s.withPrefix("sending the sampled ids: ");
    return next;
  }
  if (Status s =
          transport->recv(*from, kNextIdsTag,
                          reinterpret_cast<std::byte *>(next.data()), bytes);
      !s.ok())
    return s.withPrefix("receiving the sampled ids: ");
  return next;
}

Result<std::vector<SequenceResult>>
generateOnRank(const Artifact &artifact, uint32_t rank,
               comm::Transport *transport, const std::vector<Request> &requests,
               const RankGenerateOptions &options, RankState &state) {
  const artifact::Manifest &manifest = artifact.manifest;
  if (!manifest.has_generation())
    return errorStatus("the artifact has no generation entry points (compile "
                       "it with `weft compile --generate`)");
  SessionOptions sessionOptions;
  sessionOptions.threads = options.threads;
  sessionOptions.backend = options.backend.create;
  sessionOptions.localRank = options.backend.localRank;
  sessionOptions.kvCacheBlocks = options.engine.kvCacheBlocks;
  auto session = Session::open(artifact, rank, transport, sessionOptions);
  if (!session.ok())
    return session.status();
  state.session = std::move(*session);
  SessionStepModel model(*state.session, transport);
  auto results =
      runGeneration(manifest.generation(), model, requests, options.engine);
  if (!results.ok())
    return results.status();
  if (transport)
    if (Status s = transport->flush(); !s.ok())
      return s;
  return results;
}

Result<std::vector<SequenceResult>> generateLocalRanks(
    const Artifact &artifact, const std::vector<Request> &requests,
    const RankGenerateOptions &options, std::chrono::duration<double> timeout) {
  uint32_t world = artifact.manifest.world_size();
  RankGenerateOptions perRank = options;
  if (!perRank.threads)
    perRank.threads = threadsPerRank(world);
  // Only rank 0 streams: every rank decodes the same text.
  RankGenerateOptions quiet = perRank;
  quiet.engine.onText = nullptr;
  std::vector<SequenceResult> results;
  auto task = [&](uint32_t r, comm::Transport &transport,
                  RankState &state) -> Status {
    auto mine = generateOnRank(artifact, r, &transport, requests,
                               r == 0 ? perRank : quiet, state);
    if (!mine.ok())
      return mine.status();
    if (r == 0)
      results = std::move(*mine);
    return okStatus();
  };
  if (Status s = runLocalRankTasks(world, timeout, task); !s.ok())
    return s;
  return results;
}

} // namespace weft::runtime::generate
