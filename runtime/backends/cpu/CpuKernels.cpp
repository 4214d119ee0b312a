// The CPU reference kernels: dispatch from a step's kind to its kernel.
#include "runtime/backends/cpu/CpuKernels.h"

#include "runtime/backends/cpu/CpuSupport.h"
#include "runtime/comm/Transport.h"

namespace weft::runtime::cpu {

using artifact::Step;

namespace {

using Kernel = Status (*)(const StepArgs &);

Result<Kernel> kernelFor(int kind) {
  switch (kind) {
  case Step::ELEMENTWISE:
    return runElementwise;
  case Step::GEMM:
    return runGemm;
  case Step::ATTENTION:
    return runAttention;
  case Step::COPY:
    return runCopy;
  case Step::LAYER_NORM:
    return runLayerNorm;
  case Step::RMS_NORM:
    return runRmsNorm;
  case Step::ROTARY:
    return runRotary;
  case Step::SOFTMAX:
    return runSoftmax;
  case Step::EMBEDDING:
    return runEmbedding;
  case Step::GATHER:
    return runGather;
  case Step::GATHER_ND:
    return runGatherNd;
  case Step::GATHER_ELEMENTS:
    return runGatherElements;
  case Step::REDUCE:
    return runReduce;
  case Step::TRANSPOSE:
    return runTranspose;
  case Step::SLICE:
    return runSlice;
  case Step::CONCAT:
    return runConcat;
  case Step::CUMSUM:
    return runCumsum;
  case Step::TRILU:
    return runTrilu;
  case Step::TILE:
    return runTile;
  case Step::BROADCAST:
    return runBroadcast;
  case Step::SWIGLU:
    return runSwiglu;
  case Step::COLLECTIVE:
    return runCollective;
  case Step::SEND:
    return runSend;
  case Step::RECV:
    return runRecv;
  case Step::PAGED_ATTENTION:
    return runPagedAttention;
  case Step::SAMPLE:
    return runSample;
  default:
    return errorStatus("unknown step kind " + std::to_string(kind));
  }
}

} // namespace

StepArgs::StepArgs(const Step &step, std::span<const InTensor> inputs,
                   std::span<const OutTensor> outputs, ThreadPool *pool,
                   comm::Transport *comm)
    : steps::StepArgs{step, inputs, outputs}, pool(pool), comm(comm) {
  if (comm)
    place = steps::RankPlace{comm->rank(), comm->worldSize()};
}

Status runStep(const StepArgs &args) {
  if (Status s = steps::checkStep(args); !s.ok())
    return s;
  return (*kernelFor(args.step.kind()))(args);
}

} // namespace weft::runtime::cpu
