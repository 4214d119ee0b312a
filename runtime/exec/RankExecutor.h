// What runs one rank's plan: the CPU executor (Executor.h) or a GPU backend
// (backends/cuda). The multi-rank driver (MultiRank.h) sees only this.
#ifndef WEFT_RUNTIME_EXEC_RANKEXECUTOR_H
#define WEFT_RUNTIME_EXEC_RANKEXECUTOR_H

#include "runtime/steps/StepArgs.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <span>
#include <string>

namespace weft::runtime {

using steps::stepWhere;

class RankExecutor {
public:
  virtual ~RankExecutor() = default;

  virtual size_t numInputs() const = 0;
  virtual size_t numOutputs() const = 0;
  /// Graph input/output i, in plan order.
  virtual const std::string &inputName(size_t i) const = 0;
  virtual const std::string &outputName(size_t i) const = 0;
  /// Sets graph input i from host bytes (exactly its size).
  virtual Status setInput(size_t i, std::span<const std::byte> bytes) = 0;
  /// Runs every step once; the error names the step. The state it keeps
  /// (arena, weights) persists from one run to the next.
  virtual Status run() = 0;
  /// A run as timed by `weft run --bench-iters`: as run(), but a backend
  /// may leave the outputs where they are computed (on the GPU), as a
  /// serving loop would.
  virtual Status runTimed() { return run(); }
  /// Graph output i of the last run, in host memory.
  virtual InTensor output(size_t i) const = 0;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_RANKEXECUTOR_H
