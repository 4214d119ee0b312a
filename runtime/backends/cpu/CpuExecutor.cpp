// Runs one rank's plan on the CPU: binds buffers and entry points, then
// runs the steps of the selected entry.
#include "runtime/backends/cpu/CpuExecutor.h"

#include "runtime/artifact/PlanValidator.h"
#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/comm/Transport.h"
#include "runtime/steps/ElementValues.h"

#include <climits>
#include <cstring>
#include <new>
#include <stdexcept>

namespace weft::runtime {

using artifact::Buffer;
using artifact::Step;

namespace {

bool overlaps(const std::byte *a, uint64_t aBytes, const std::byte *b,
              uint64_t bBytes) {
  return aBytes && bBytes && a < b + bBytes && b < a + aBytes;
}

bool isMultiRank(int kind) {
  return kind == Step::COLLECTIVE || kind == Step::SEND || kind == Step::RECV;
}

} // namespace

CpuExecutor::CpuExecutor(const RankPlan &rank,
                         const CpuExecutorOptions &options)
    : rank(rank), options(options) {}

Result<std::unique_ptr<CpuExecutor>>
CpuExecutor::create(const RankPlan &rank, const CpuExecutorOptions &options) {
  CpuExecutorOptions opts = options;
  if (opts.transport) {
    opts.worldSize = opts.transport->worldSize();
    if (opts.transport->rank() != rank.plan.rank())
      return errorStatus(rank.planPath + ": the plan is for rank " +
                         std::to_string(rank.plan.rank()) +
                         ", the transport's rank is " +
                         std::to_string(opts.transport->rank()));
  }
  if (Status s = validatePlan(rank.plan, rank.planPath, opts.worldSize);
      !s.ok())
    return s;
  std::unique_ptr<CpuExecutor> exec(new CpuExecutor(rank, opts));
  if (rank.weights.size() != static_cast<size_t>(rank.plan.weights_size()))
    return errorStatus("the weights of rank " +
                       std::to_string(rank.entry.rank()) + " are not loaded");
  try {
    exec->arena.resize(rank.plan.arena_bytes());
  } catch (const std::bad_alloc &) {
    return errorStatus("cannot allocate the arena of " +
                       std::to_string(rank.plan.arena_bytes()) + " bytes");
  }
  if (Status s = exec->bindBuffers(); !s.ok())
    return s;
  if (Status s = exec->bindEntries(); !s.ok())
    return s;
  exec->pool = std::make_unique<ThreadPool>(options.threads);
  return exec;
}

Status CpuExecutor::bindBuffers() {
  for (const Buffer &buf : rank.plan.buffers()) {
    InTensor t{buf.dtype(), toShape(buf.shape()), nullptr};
    switch (buf.kind()) {
    case Buffer::WEIGHT:
      t.data = weightData(buf);
      break;
    case Buffer::CONSTANT: {
      // Copied to aligned storage: the protobuf string may be unaligned.
      auto copy = std::make_unique<AlignedBuffer>(buf.data().size());
      std::memcpy(copy->data(), buf.data().data(), buf.data().size());
      t.data = copy->data();
      constants.push_back(std::move(copy));
      break;
    }
    case Buffer::STATE: {
      auto state = allocateState(buf, t.shape);
      if (!state.ok())
        return state.status();
      t.data = (*state)->data();
      states[buf.id()] = std::move(*state);
      break;
    }
    default:
      t.data = arena.data() + buf.offset();
    }
    buffers[buf.id()] = t;
    places[buf.id()] = &buf;
  }
  return okStatus();
}

Result<std::unique_ptr<AlignedBuffer>>
CpuExecutor::allocateState(const Buffer &buf, Shape &shape) {
  // Outside the arena: its bytes outlive every run of the session.
  uint64_t bytes = buf.bytes();
  std::string what = "state buffer '" + buf.name() + "'";
  if (isPagedCache(buf)) {
    uint64_t blocks = rank.kvCacheBlocks;
    if (blocks == 0)
      return errorStatus((rank.planPath.empty() ? "" : rank.planPath + ": ") +
                         "the artifact has a paged KV cache (" + what +
                         "): give its number of blocks");
    if (blocks > static_cast<uint64_t>(INT64_MAX) ||
        (bytes && blocks > UINT64_MAX / bytes))
      return errorStatus(what + ": " + std::to_string(blocks) + " blocks of " +
                         std::to_string(bytes) + " bytes overflow");
    shape[0] = static_cast<int64_t>(blocks);
    bytes *= blocks;
    what += " (" + std::to_string(blocks) + " KV-cache blocks)";
  }
  std::string cannot =
      "cannot allocate " + what + " of " + std::to_string(bytes) + " bytes";
  // Beyond what this machine allows (its memory) the allocation is not
  // tried: it would fail, or succeed and fault pages in until none are left.
  if (auto limit = arenaLimitBytes(); limit.ok() && bytes > *limit)
    return errorStatus(cannot + ": more than this machine allows (" +
                       std::to_string(*limit) + " bytes)");
  try {
    return std::make_unique<AlignedBuffer>(bytes);
  } catch (const std::exception &) { // bad_alloc, or past max_size
    return errorStatus(cannot);
  }
}

const std::byte *CpuExecutor::weightData(const Buffer &buf) {
  const artifact::WeightRef &ref = rank.plan.weights(buf.weight());
  const WeightBytes &bytes = rank.weights[buf.weight()];
  if (ref.dtype() == buf.dtype())
    return bytes.data;
  // Stored in another float type: converted once per (weight, dtype).
  auto key = std::make_pair(buf.weight(), static_cast<int>(buf.dtype()));
  auto it = converted.find(key);
  if (it != converted.end())
    return it->second->data();
  int64_t n = bytes.size / dtypeSize(ref.dtype());
  auto copy = std::make_unique<AlignedBuffer>(n * dtypeSize(buf.dtype()));
  steps::convertElements(ref.dtype(), bytes.data, buf.dtype(), copy->data(), n);
  const std::byte *data = copy->data();
  converted.emplace(key, std::move(copy));
  return data;
}

OutTensor CpuExecutor::writableTensor(uint32_t id) {
  const Buffer &buf = *places.at(id);
  auto state = states.find(id);
  return OutTensor{buf.dtype(), buffers.at(id).shape,
                   state != states.end() ? state->second->data()
                                         : arena.data() + buf.offset()};
}

Result<CpuExecutor::BoundStep> CpuExecutor::bindStep(const Step &step,
                                                     int index) {
  BoundStep bound;
  bound.step = &step;
  bound.where = stepWhere(index, step);
  // Defects of the plan name its file too.
  std::string planWhere =
      (rank.planPath.empty() ? "" : rank.planPath + ": ") + bound.where;
  if (isMultiRank(step.kind()) && !options.transport)
    return errorStatus(planWhere + "needs " +
                       (options.worldSize > 1
                            ? std::to_string(options.worldSize) + " ranks"
                            : std::string("several ranks")) +
                       ", but this rank runs alone (without a transport to "
                       "the others)");
  for (uint32_t id : step.inputs())
    bound.inputs.push_back(buffers.at(id));
  for (uint32_t id : step.outputs())
    bound.outputs.push_back(writableTensor(id));
  cpu::StepArgs args{step, bound.inputs, bound.outputs, nullptr,
                     options.transport};
  if (Status s = steps::checkStep(args); !s.ok())
    return s.withPrefix(planWhere);
  stageOverlaps(bound);
  return bound;
}

void CpuExecutor::stageOverlaps(BoundStep &bound) {
  for (size_t o = 0; o < bound.outputs.size(); ++o) {
    OutTensor &out = bound.outputs[o];
    bool clash = false;
    for (const InTensor &in : bound.inputs)
      clash |= overlaps(out.data, out.bytes(), in.data, in.bytes());
    if (!clash)
      continue;
    auto staging = std::make_unique<AlignedBuffer>(out.bytes());
    bound.staged.emplace_back(o, std::move(staging));
  }
}

Result<CpuExecutor::BoundEntry> CpuExecutor::bindEntry(
    const std::string &name,
    const google::protobuf::RepeatedPtrField<Step> &entrySteps,
    const google::protobuf::RepeatedField<uint32_t> &inputIds,
    const google::protobuf::RepeatedField<uint32_t> &outputIds) {
  BoundEntry bound;
  bound.name = name;
  bound.inputIds.assign(inputIds.begin(), inputIds.end());
  bound.outputIds.assign(outputIds.begin(), outputIds.end());
  for (uint32_t id : inputIds)
    bound.inputs.push_back(writableTensor(id));
  for (uint32_t id : outputIds)
    bound.outputs.push_back(buffers.at(id));
  for (int i = 0; i < entrySteps.size(); ++i) {
    auto step = bindStep(entrySteps[i], i);
    if (!step.ok())
      return step.status();
    bound.steps.push_back(std::move(*step));
  }
  return bound;
}

Status CpuExecutor::bindEntries() {
  auto forward = bindEntry(kForwardEntry, rank.plan.steps(), rank.plan.inputs(),
                           rank.plan.outputs());
  if (!forward.ok())
    return forward.status();
  entries.push_back(std::move(*forward));
  for (const artifact::EntryPoint &e : rank.plan.entry_points()) {
    auto bound = bindEntry(e.name(), e.steps(), e.inputs(), e.outputs());
    if (!bound.ok())
      return bound.status().withPrefix("entry point '" + e.name() + "': ");
    entries.push_back(std::move(*bound));
  }
  return okStatus();
}

std::vector<std::string> CpuExecutor::entryPoints() const {
  std::vector<std::string> names;
  for (const BoundEntry &e : entries)
    names.push_back(e.name);
  return names;
}

Status CpuExecutor::selectEntry(const std::string &name) {
  for (size_t e = 0; e < entries.size(); ++e)
    if (entries[e].name == name) {
      current = e;
      return okStatus();
    }
  return errorStatus("no entry point '" + name + "'");
}

const std::string &CpuExecutor::inputName(size_t i) const {
  return places.at(entry().inputIds[i])->name();
}

const std::string &CpuExecutor::outputName(size_t i) const {
  return places.at(entry().outputIds[i])->name();
}

Status CpuExecutor::setInput(size_t i, std::span<const std::byte> bytes) {
  const std::vector<OutTensor> &inputs = entry().inputs;
  if (i >= inputs.size())
    return errorStatus("no graph input " + std::to_string(i));
  if (bytes.size() != inputs[i].bytes())
    return errorStatus("input '" + inputName(i) + "' needs " +
                       std::to_string(inputs[i].bytes()) + " bytes, got " +
                       std::to_string(bytes.size()));
  if (!bytes.empty())
    std::memcpy(inputs[i].data, bytes.data(), bytes.size());
  return okStatus();
}

Status CpuExecutor::run() {
  for (BoundStep &bound : entries[current].steps) {
    std::vector<OutTensor> outs = bound.outputs;
    for (auto &[o, staging] : bound.staged)
      outs[o].data = staging->data();
    cpu::StepArgs args{*bound.step, bound.inputs, outs, pool.get(),
                       options.transport};
    if (Status s = cpu::runStep(args); !s.ok())
      return s.withPrefix(bound.where);
    for (auto &[o, staging] : bound.staged)
      std::memcpy(bound.outputs[o].data, staging->data(), staging->size());
  }
  return okStatus();
}

} // namespace weft::runtime
