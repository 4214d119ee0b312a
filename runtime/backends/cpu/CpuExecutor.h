// Runs one rank's plan on the CPU: binds buffers, then runs the steps
// (exchanging data with the other ranks over a transport, if any).
#ifndef WEFT_RUNTIME_BACKENDS_CPU_CPUEXECUTOR_H
#define WEFT_RUNTIME_BACKENDS_CPU_CPUEXECUTOR_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/backends/RankExecutor.h"
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

struct CpuExecutorOptions {
  unsigned threads = 0;   // 0: one per hardware thread
  uint32_t worldSize = 1; // of the artifact (the transport's, when given)
  /// How COLLECTIVE, SEND and RECV steps reach the other ranks; it must
  /// outlive the executor. Null: the rank runs alone, and plans with such
  /// steps are refused.
  comm::Transport *transport = nullptr;
};

class CpuExecutor final : public RankExecutor {
public:
  /// Binds every buffer of `rank` (whose weights must be loaded) and checks
  /// every step. `rank` must outlive the executor.
  static Result<std::unique_ptr<CpuExecutor>>
  create(const RankPlan &rank, const CpuExecutorOptions &options = {});

  std::vector<std::string> entryPoints() const override;
  Status selectEntry(const std::string &entry) override;

  size_t numInputs() const override { return entry().inputs.size(); }
  size_t numOutputs() const override { return entry().outputs.size(); }
  /// Graph input/output i of the selected entry (plan order), bound to its
  /// place in the arena.
  const OutTensor &input(size_t i) const { return entry().inputs[i]; }
  InTensor output(size_t i) const override { return entry().outputs[i]; }
  const std::string &inputName(size_t i) const override;
  const std::string &outputName(size_t i) const override;

  /// Copies graph input i's bytes into the arena.
  Status setInput(size_t i, std::span<const std::byte> bytes) override;
  /// Runs every step of the selected entry in order; the error names the
  /// step. Run once per set of inputs, by the thread that owns the
  /// transport.
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

  /// An entry point with its steps and graph buffers bound.
  struct BoundEntry {
    std::string name;
    std::vector<BoundStep> steps;
    std::vector<uint32_t> inputIds, outputIds;
    std::vector<OutTensor> inputs;
    std::vector<InTensor> outputs;
  };

  explicit CpuExecutor(const RankPlan &rank, const CpuExecutorOptions &options);
  const BoundEntry &entry() const { return entries[current]; }
  Status bindBuffers();
  Status bindEntries();
  Result<BoundEntry>
  bindEntry(const std::string &name,
            const google::protobuf::RepeatedPtrField<artifact::Step> &steps,
            const google::protobuf::RepeatedField<uint32_t> &inputIds,
            const google::protobuf::RepeatedField<uint32_t> &outputIds);
  Result<BoundStep> bindStep(const artifact::Step &step, int index);
  void stageOverlaps(BoundStep &bound);
  /// The zeroed storage of a state buffer; a paged KV cache gets the
  /// session's number of blocks, which `shape` then holds as its dim 0.
  Result<std::unique_ptr<AlignedBuffer>>
  allocateState(const artifact::Buffer &buf, Shape &shape);
  /// A weight buffer's bytes, converted when stored in another float type.
  const std::byte *weightData(const artifact::Buffer &buf);
  /// A writable view of an arena buffer (graph input, output, intermediate)
  /// or of a state buffer.
  OutTensor writableTensor(uint32_t id);

  const RankPlan &rank;
  CpuExecutorOptions options;
  AlignedBuffer arena;
  std::vector<std::unique_ptr<AlignedBuffer>> constants;
  std::map<std::pair<uint32_t, int>, std::unique_ptr<AlignedBuffer>> converted;
  std::unordered_map<uint32_t, InTensor> buffers;
  std::unordered_map<uint32_t, const artifact::Buffer *> places;
  /// State buffers: allocated (zeroed) once, kept across runs.
  std::unordered_map<uint32_t, std::unique_ptr<AlignedBuffer>> states;
  /// "forward" first, then the plan's entry_points.
  std::vector<BoundEntry> entries;
  size_t current = 0;
  std::unique_ptr<ThreadPool> pool;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_BACKENDS_CPU_CPUEXECUTOR_H
