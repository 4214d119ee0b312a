// checkStep: dispatch from a step's kind to its check.
#include "runtime/steps/StepChecks.h"

#include "runtime/artifact/ArtifactReader.h"

#include <unordered_map>
#include <vector>

namespace weft::runtime::steps {

using artifact::Step;

namespace {

using Check = Status (*)(const StepArgs &);

Result<Check> checkFor(int kind) {
  switch (kind) {
  case Step::ELEMENTWISE:
    return checkElementwise;
  case Step::GEMM:
    return checkGemm;
  case Step::ATTENTION:
    return checkAttention;
  case Step::COPY:
    return checkCopy;
  case Step::LAYER_NORM:
    return checkLayerNorm;
  case Step::RMS_NORM:
    return checkRmsNorm;
  case Step::ROTARY:
    return checkRotary;
  case Step::SOFTMAX:
    return checkSoftmax;
  case Step::EMBEDDING:
    return checkEmbedding;
  case Step::GATHER:
    return checkGather;
  case Step::GATHER_ND:
    return checkGatherNd;
  case Step::GATHER_ELEMENTS:
    return checkGatherElements;
  case Step::REDUCE:
    return checkReduce;
  case Step::TRANSPOSE:
    return checkTranspose;
  case Step::SLICE:
    return checkSlice;
  case Step::CONCAT:
    return checkConcat;
  case Step::CUMSUM:
    return checkCumsum;
  case Step::TRILU:
    return checkTrilu;
  case Step::TILE:
    return checkTile;
  case Step::BROADCAST:
    return checkBroadcast;
  case Step::SWIGLU:
    return checkSwiglu;
  case Step::COLLECTIVE:
    return checkCollective;
  case Step::SEND:
    return checkSend;
  case Step::RECV:
    return checkRecv;
  case Step::PAGED_ATTENTION:
    return checkPagedAttention;
  case Step::SAMPLE:
    return checkSample;
  default:
    return errorStatus("unknown step kind " + std::to_string(kind));
  }
}

Status checkOperands(const StepArgs &args) {
  for (size_t i = 0; i < args.inputs.size(); ++i)
    if (dtypeSize(args.inputs[i].dtype) == 0)
      return errorStatus("input " + std::to_string(i) + " has dtype " +
                         dtypeName(args.inputs[i].dtype));
  for (size_t i = 0; i < args.outputs.size(); ++i)
    if (dtypeSize(args.outputs[i].dtype) == 0)
      return errorStatus("output " + std::to_string(i) + " has dtype " +
                         dtypeName(args.outputs[i].dtype));
  return okStatus();
}

} // namespace

Status checkStep(const StepArgs &args) {
  auto check = checkFor(args.step.kind());
  if (!check.ok())
    return check.status();
  if (Status s = expectAttrs(args.step); !s.ok())
    return s;
  if (Status s = checkOperands(args); !s.ok())
    return s;
  return (*check)(args);
}

Status checkPlanSteps(const artifact::Plan &plan, RankPlace place) {
  // Each buffer as the steps see it, without its bytes: a paged cache with
  // one block (its number is chosen when a session opens).
  std::unordered_map<uint32_t, InTensor> views;
  for (const artifact::Buffer &buf : plan.buffers()) {
    InTensor t;
    t.dtype = buf.dtype();
    t.shape.assign(buf.shape().begin(), buf.shape().end());
    if (isPagedCache(buf) && !t.shape.empty())
      t.shape[0] = 1;
    views.emplace(buf.id(), std::move(t));
  }
  auto checkAll = [&](const google::protobuf::RepeatedPtrField<Step> &steps,
                      const std::string &field) -> Status {
    std::vector<InTensor> inputs;
    std::vector<OutTensor> outputs;
    for (int i = 0; i < steps.size(); ++i) {
      const Step &step = steps[i];
      inputs.clear();
      outputs.clear();
      for (uint32_t id : step.inputs()) {
        auto it = views.find(id);
        if (it == views.end())
          return errorStatus(field + stepWhere(i, step) + "input buffer " +
                             std::to_string(id) + " does not exist");
        inputs.push_back(it->second);
      }
      for (uint32_t id : step.outputs()) {
        auto it = views.find(id);
        if (it == views.end())
          return errorStatus(field + stepWhere(i, step) + "output buffer " +
                             std::to_string(id) + " does not exist");
        outputs.push_back(OutTensor{it->second.dtype, it->second.shape});
      }
      if (Status s = checkStep(StepArgs{step, inputs, outputs, place}); !s.ok())
        return s.withPrefix(field + stepWhere(i, step));
    }
    return okStatus();
  };
  if (Status s = checkAll(plan.steps(), ""); !s.ok())
    return s;
  for (const artifact::EntryPoint &e : plan.entry_points())
    if (Status s = checkAll(e.steps(), "entry '" + e.name() + "': "); !s.ok())
      return s;
  return okStatus();
}

std::string stepWhere(int index, const Step &step) {
  std::string where = "step " + std::to_string(index) + " '" + step.name() +
                      "' (" + Step::Kind_Name(step.kind());
  if (!step.location().empty())
    where += ", " + step.location();
  return where + "): ";
}

} // namespace weft::runtime::steps
