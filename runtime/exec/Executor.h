// Runs one rank's plan on the CPU: binds buffers, then runs the steps
// (exchanging data with the other ranks over a transport, if any).
#ifndef WEFT_RUNTIME_EXEC_EXECUTOR_H
#define WEFT_RUNTIME_EXEC_EXECUTOR_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/exec/RankExecutor.h"
#include "runtime/steps/Tensor.h"
#include "runtime/support/AlignedBuffer.h"
#include "runtime/support/Status.h"
#include "runtime/support/ThreadPool.h"

#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

namespace weft::runtime {

namespace comm {
class Transport;
} // namespace comm

struct ExecutorOptions {
  unsigned threads = 0;   // 0: one per hardware thread
  uint32_t worldSize = 1; // of the artifact (the transport's, when given)
  /// How COLLECTIVE, SEND and RECV steps reach the other ranks; it must
  /// outlive the executor. Null: the rank runs alone, and plans with such
  /// steps are refused.
  comm::Transport *transport = nullptr;
};

class Executor final : public RankExecutor {
public:
  /// Binds every buffer of `rank` (whose weights must be loaded) and checks
  /// every step. `rank` must outlive the executor.
  static Result<std::unique_ptr<Executor>>
  create(const RankPlan &rank, const ExecutorOptions &options = {});

  size_t numInputs() const override { return inputs.size(); }
  size_t numOutputs() const override { return outputs.size(); }
  /// Graph input/output i (plan order), bound to its place in the arena.
  const OutTensor &input(size_t i) const { return inputs[i]; }
  InTensor output(size_t i) const override { return outputs[i]; }
  const std::string &inputName(size_t i) const override;
  const std::string &outputName(size_t i) const override;

  /// Copies graph input i's bytes into the arena.
  Status setInput(size_t i, std::span<const std::byte> bytes) override;
  /// Runs every step in order; the error names the step. Run once per
  /// set of inputs, by the thread that owns the transport.
  Status run() override;

private:
  struct BoundStep {
    const artifact::Step *step = nullptr;
    std::string where;
    std::vector<InTensor> inputs;
    std::vector<OutTensor> outputs;
    /// Outputs staged apart from inputs they overlap: (index, staging).
    std::vector<std::pair<size_t, std::unique_ptr<AlignedBuffer>>> staged;
  };

  explicit Executor(const RankPlan &rank, const ExecutorOptions &options);
  Status bindBuffers();
  Status bindSteps();
  Result<BoundStep> bindStep(int index);
  void stageOverlaps(BoundStep &bound);
  /// A weight buffer's bytes, converted when stored in another float type.
  const std::byte *weightData(const artifact::Buffer &buf);
  /// A writable view of an arena buffer (graph input, output, intermediate).
  OutTensor arenaTensor(uint32_t id);

  const RankPlan &rank;
  ExecutorOptions options;
  AlignedBuffer arena;
  std::vector<std::unique_ptr<AlignedBuffer>> constants;
  std::map<std::pair<uint32_t, int>, std::unique_ptr<AlignedBuffer>> converted;
  std::unordered_map<uint32_t, InTensor> buffers;
  std::unordered_map<uint32_t, const artifact::Buffer *> places;
  std::vector<BoundStep> steps;
  std::vector<OutTensor> inputs;
  std::vector<InTensor> outputs;
  std::unique_ptr<ThreadPool> pool;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_EXECUTOR_H
