// What runs one rank's plan: the CPU executor (cpu/CpuExecutor.h) or a GPU
// backend (cuda/). A session (runtime/session) sees only this.
#ifndef WEFT_RUNTIME_BACKENDS_RANKEXECUTOR_H
#define WEFT_RUNTIME_BACKENDS_RANKEXECUTOR_H

#include "runtime/steps/StepArgs.h"
#include "runtime/steps/Tensor.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime {

using steps::stepWhere;

/// The entry point every plan has: its own steps, inputs and outputs.
inline constexpr const char *kForwardEntry = "forward";

class RankExecutor {
public:
  virtual ~RankExecutor() = default;

  /// The plan's entry points, "forward" first.
  virtual std::vector<std::string> entryPoints() const {
    return {kForwardEntry};
  }
  /// Makes `entry` the one that the calls below (inputs, outputs, run)
  /// address; refuses an entry the plan does not have.
  virtual Status selectEntry(const std::string &entry) {
    if (entry == kForwardEntry)
      return okStatus();
    return errorStatus("no entry point '" + entry + "'");
  }

  virtual size_t numInputs() const = 0;
  virtual size_t numOutputs() const = 0;
  /// Graph input/output i of the selected entry, in plan order.
  virtual const std::string &inputName(size_t i) const = 0;
  virtual const std::string &outputName(size_t i) const = 0;
  /// Sets graph input i from host bytes (exactly its size).
  virtual Status setInput(size_t i, std::span<const std::byte> bytes) = 0;
  /// Runs every step of the selected entry once; the error names the step.
  /// The state it keeps (arena, weights, state buffers) persists from one
  /// run to the next.
  virtual Status run() = 0;
  /// A run as timed by `weft run --bench-iters`: as run(), but a backend
  /// may leave the outputs where they are computed (on the GPU), as a
  /// serving loop would.
  virtual Status runTimed() { return run(); }
  /// As run(), but only the outputs `fetch` marks (one flag per output of
  /// the selected entry) need be readable by output() afterwards: a backend
  /// may leave the others where they were computed, as the generation
  /// steps need the sampled ids and not the logits.
  virtual Status runFetching(const std::vector<bool> &fetch) { return run(); }
  /// Graph output i of the last run, in host memory.
  virtual InTensor output(size_t i) const = 0;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_BACKENDS_RANKEXECUTOR_H
