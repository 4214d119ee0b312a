// The CPU reference kernels: one per plan step kind.
#ifndef WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
#define WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H

#include "runtime/steps/StepArgs.h"
#include "runtime/support/Status.h"
#include "runtime/support/ThreadPool.h"

#include <span>

namespace weft::runtime::comm {
class Transport;
} // namespace weft::runtime::comm

namespace weft::runtime::cpu {

/// A step bound for the CPU: the step library's view, plus the worker
/// threads and the transport the kernels use. Outputs never overlap inputs
/// (the executor stages an overlapping output elsewhere).
struct StepArgs : steps::StepArgs {
  /// `place` is taken from `comm`, when given.
  StepArgs(const artifact::Step &step, std::span<const InTensor> inputs,
           std::span<const OutTensor> outputs, ThreadPool *pool = nullptr,
           comm::Transport *comm = nullptr);

  ThreadPool *pool = nullptr;      // null: run serially
  comm::Transport *comm = nullptr; // COLLECTIVE, SEND, RECV; null: alone
};

/// Checks, then computes the step's outputs. Data-dependent errors (an
/// index out of range) are returned too.
Status runStep(const StepArgs &args);

} // namespace weft::runtime::cpu

#endif // WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
