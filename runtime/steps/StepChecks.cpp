// checkStep: dispatch from a step's kind to its check.
#include "runtime/steps/StepChecks.h"

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

std::string stepWhere(int index, const Step &step) {
  std::string where = "step " + std::to_string(index) + " '" + step.name() +
                      "' (" + Step::Kind_Name(step.kind());
  if (!step.location().empty())
    where += ", " + step.location();
  return where + "): ";
}

} // namespace weft::runtime::steps
