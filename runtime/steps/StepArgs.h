// A plan step with its operands bound: what every backend's checks and
// kernels read (backend-neutral: no thread pool, no transport).
#ifndef WEFT_RUNTIME_STEPS_STEPARGS_H
#define WEFT_RUNTIME_STEPS_STEPARGS_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/steps/Tensor.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace weft::runtime::steps {

/// Where the rank that runs a step sits among the ranks of its world.
struct RankPlace {
  uint32_t rank = 0;
  uint32_t worldSize = 1;
};

/// A step with its operands bound. Outputs never overlap inputs (executors
/// stage an overlapping output elsewhere).
struct StepArgs {
  const artifact::Step &step;
  std::span<const InTensor> inputs;
  std::span<const OutTensor> outputs;
  /// Known when the step is bound to a rank of a world: COLLECTIVE, SEND and
  /// RECV then check their group and peer against it.
  std::optional<RankPlace> place = std::nullopt;
};

/// Checks arity, dtypes, shapes and attributes without touching data: the
/// one definition of what a valid step is, for every backend.
Status checkStep(const StepArgs &args);

/// Every step of `plan` (forward and entry points) checked as checkStep
/// does when an executor binds it, from the buffers' dtypes and shapes
/// alone, for the rank at `place`: what `weft inspect` checks without
/// running anything.
Status checkPlanSteps(const artifact::Plan &plan, RankPlace place);

/// The prefix of an error in step `index` of a plan: "step 3 'linear'
/// (GEMM, /model/layers.0/mlp/MatMul): ".
std::string stepWhere(int index, const artifact::Step &step);

} // namespace weft::runtime::steps

#endif // WEFT_RUNTIME_STEPS_STEPARGS_H
