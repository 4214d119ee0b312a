// The CPU reference kernels: dispatch from a step's kind to its kernel.
#include "runtime/backends/cpu/CpuKernels.h"

#include "runtime/backends/cpu/CpuSupport.h"

namespace weft::runtime::cpu {

using artifact::Step;

namespace {

struct Kernel {
  Status (*check)(const StepArgs &);
  Status (*run)(const StepArgs &);
};

Result<Kernel> kernelFor(int kind) {
  switch (kind) {
  case Step::ELEMENTWISE:
    return Kernel{checkElementwise, runElementwise};
  case Step::GEMM:
    return Kernel{checkGemm, runGemm};
  case Step::ATTENTION:
    return Kernel{checkAttention, runAttention};
  case Step::COPY:
    return Kernel{checkCopy, runCopy};
  case Step::LAYER_NORM:
    return Kernel{checkLayerNorm, runLayerNorm};
  case Step::RMS_NORM:
    return Kernel{checkRmsNorm, runRmsNorm};
  case Step::ROTARY:
    return Kernel{checkRotary, runRotary};
  case Step::SOFTMAX:
    return Kernel{checkSoftmax, runSoftmax};
  case Step::EMBEDDING:
    return Kernel{checkEmbedding, runEmbedding};
  case Step::GATHER:
    return Kernel{checkGather, runGather};
  case Step::GATHER_ND:
    return Kernel{checkGatherNd, runGatherNd};
  case Step::GATHER_ELEMENTS:
    return Kernel{checkGatherElements, runGatherElements};
  case Step::REDUCE:
    return Kernel{checkReduce, runReduce};
  case Step::TRANSPOSE:
    return Kernel{checkTranspose, runTranspose};
  case Step::SLICE:
    return Kernel{checkSlice, runSlice};
  case Step::CONCAT:
    return Kernel{checkConcat, runConcat};
  case Step::CUMSUM:
    return Kernel{checkCumsum, runCumsum};
  case Step::TRILU:
    return Kernel{checkTrilu, runTrilu};
  case Step::TILE:
    return Kernel{checkTile, runTile};
  case Step::BROADCAST:
    return Kernel{checkBroadcast, runBroadcast};
  case Step::SWIGLU:
    return Kernel{checkSwiglu, runSwiglu};
  case Step::COLLECTIVE:
    return Kernel{checkCollective, runCollective};
  case Step::SEND:
    return Kernel{checkSend, runSend};
  case Step::RECV:
    return Kernel{checkRecv, runRecv};
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
  auto kernel = kernelFor(args.step.kind());
  if (!kernel.ok())
    return kernel.status();
  if (Status s = checkOperands(args); !s.ok())
    return s;
  return kernel->check(args);
}

Status runStep(const StepArgs &args) {
  if (Status s = checkStep(args); !s.ok())
    return s;
  return kernelFor(args.step.kind())->run(args);
}

} // namespace weft::runtime::cpu
