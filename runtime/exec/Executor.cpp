// Runs one rank's plan on the CPU: binds buffers, then runs the steps.
#include "runtime/exec/Executor.h"

#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/comm/Transport.h"
#include "runtime/steps/ElementValues.h"

#include <cstring>
#include <new>

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

Executor::Executor(const RankPlan &rank, const ExecutorOptions &options)
    : rank(rank), options(options) {}

Result<std::unique_ptr<Executor>>
Executor::create(const RankPlan &rank, const ExecutorOptions &options) {
  ExecutorOptions opts = options;
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
  std::unique_ptr<Executor> exec(new Executor(rank, opts));
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
  if (Status s = exec->bindSteps(); !s.ok())
    return s;
  exec->pool = std::make_unique<ThreadPool>(options.threads);
  return exec;
}

Status Executor::bindBuffers() {
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
    default:
      t.data = arena.data() + buf.offset();
    }
    buffers[buf.id()] = t;
    places[buf.id()] = &buf;
  }
  for (uint32_t id : rank.plan.inputs())
    inputs.push_back(arenaTensor(id));
  for (uint32_t id : rank.plan.outputs())
    outputs.push_back(buffers[id]);
  return okStatus();
}

const std::byte *Executor::weightData(const Buffer &buf) {
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

OutTensor Executor::arenaTensor(uint32_t id) {
  const Buffer &buf = *places.at(id);
  return OutTensor{buf.dtype(), toShape(buf.shape()),
                   arena.data() + buf.offset()};
}

Result<Executor::BoundStep> Executor::bindStep(int index) {
  const Step &step = rank.plan.steps(index);
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
    bound.outputs.push_back(arenaTensor(id));
  cpu::StepArgs args{step, bound.inputs, bound.outputs, nullptr,
                     options.transport};
  if (Status s = steps::checkStep(args); !s.ok())
    return s.withPrefix(planWhere);
  stageOverlaps(bound);
  return bound;
}

void Executor::stageOverlaps(BoundStep &bound) {
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

Status Executor::bindSteps() {
  for (int i = 0; i < rank.plan.steps_size(); ++i) {
    auto bound = bindStep(i);
    if (!bound.ok())
      return bound.status();
    steps.push_back(std::move(*bound));
  }
  return okStatus();
}

const std::string &Executor::inputName(size_t i) const {
  return places.at(rank.plan.inputs(i))->name();
}

const std::string &Executor::outputName(size_t i) const {
  return places.at(rank.plan.outputs(i))->name();
}

Status Executor::setInput(size_t i, std::span<const std::byte> bytes) {
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

Status Executor::run() {
  for (BoundStep &bound : steps) {
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
