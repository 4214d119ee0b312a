// Runs one rank's plan on a CUDA GPU: one device arena from the static
// memory plan, the rank's weight slices streamed to the device once, every
// step of every entry point bound once (generated kernels from the
// artifact's module, cuBLASLt GEMMs, the runtime's kernels, NCCL), state
// buffers (the KV cache) kept on the device across runs, and each entry's
// steps captured into a CUDA graph of its own that each run replays.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDAEXECUTOR_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDAEXECUTOR_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/backends/RankExecutor.h"
#include "runtime/backends/cuda/CudaStep.h"
#include "runtime/backends/cuda/DeviceComm.h"

#include <cuda_runtime.h>

#include <memory>
#include <unordered_map>
#include <vector>

namespace weft::runtime::cuda {

class KernelModule;
class GemmContext;

struct CudaExecutorOptions {
  int device = 0;
  /// Collectives and send/receive with the other ranks; must outlive the
  /// executor. Null: the rank runs alone (plans that need others are
  /// refused).
  DeviceComm *comm = nullptr;
  uint32_t worldSize = 1;
  /// Replay the plan as one CUDA graph (else launch step by step).
  bool graph = true;
};

class CudaExecutor final : public RankExecutor {
public:
  /// Binds `rank` (read, weights loaded on the host) of `artifact`: uploads
  /// the weights (then drops the host copies), loads the artifact's kernel
  /// module, binds every step. `rank` must outlive the executor.
  static Result<std::unique_ptr<CudaExecutor>>
  create(const Artifact &artifact, RankPlan &rank,
         const CudaExecutorOptions &options);
  ~CudaExecutor() override;

  std::vector<std::string> entryPoints() const override;
  Status selectEntry(const std::string &entry) override;
  size_t numInputs() const override { return entry().inputIds.size(); }
  size_t numOutputs() const override { return entry().outputIds.size(); }
  const std::string &inputName(size_t i) const override;
  const std::string &outputName(size_t i) const override;
  Status setInput(size_t i, std::span<const std::byte> bytes) override;
  Status run() override { return runImpl(true); }
  /// Leaves the outputs on the GPU.
  Status runTimed() override { return runImpl(false); }
  /// Copies only the marked outputs to the host.
  Status runFetching(const std::vector<bool> &fetch) override {
    return runImpl(true, &fetch);
  }
  InTensor output(size_t i) const override;

  /// Device bytes this rank holds: arena, weights, constants, workspace.
  uint64_t deviceBytes() const { return allocated; }

private:
  struct Step {
    const artifact::Step *step = nullptr;
    std::string where;
    std::unique_ptr<BoundStep> bound;
    /// The profile's name of a group of steps launched as one.
    std::string label;
  };

  /// An entry point: its bound steps, graph buffers and CUDA graph
  /// (captured on its second run).
  struct Entry {
    std::string name;
    std::vector<Step> steps;
    std::vector<uint32_t> inputIds, outputIds;
    std::vector<std::vector<std::byte>> hostOutputs;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graphExec = nullptr;
    bool ranOnce = false;
    bool profiled = false;
  };

  CudaExecutor(const RankPlan &rank, const CudaExecutorOptions &options);
  Status allocate();
  Status uploadWeights(RankPlan &rank);
  Status uploadConstants();
  Status allocateState(const artifact::Buffer &buf);
  Status bindSteps(const Artifact &artifact);
  Result<Entry>
  bindEntry(const std::string &name,
            const google::protobuf::RepeatedPtrField<artifact::Step> &steps,
            const google::protobuf::RepeatedField<uint32_t> &inputIds,
            const google::protobuf::RepeatedField<uint32_t> &outputIds);
  /// Buffer `id`, or where `redirects` moved it.
  const DeviceTensor &
  bufferOf(uint32_t id,
           const std::unordered_map<uint32_t, DeviceTensor> &redirects) const;
  /// `redirects`: inputs read from elsewhere than their buffer.
  Result<std::unique_ptr<BoundStep>>
  bindStep(const artifact::Step &step,
           const std::unordered_map<uint32_t, DeviceTensor> &redirects = {});
  Entry &entry() { return entries[current]; }
  const Entry &entry() const { return entries[current]; }
  Status launchAll(Entry &e);
  /// `only`, if given, marks the outputs fetched (all when null).
  Status runImpl(bool fetchOutputs, const std::vector<bool> *only = nullptr);
  Status profile(Entry &e);
  Status capture(Entry &e);
  Result<void *> deviceAlloc(uint64_t bytes, const std::string &what);

  const RankPlan &rank;
  CudaExecutorOptions options;
  cudaStream_t stream = nullptr;
  std::vector<void *> allocations;
  uint64_t allocated = 0;
  std::byte *arena = nullptr;
  std::unordered_map<uint32_t, DeviceTensor> buffers;
  std::unordered_map<uint32_t, const artifact::Buffer *> places;
  std::unique_ptr<KernelModule> module;
  std::unique_ptr<GemmContext> gemm;
  /// "forward" first, then the plan's entry_points.
  std::vector<Entry> entries;
  size_t current = 0;
  bool syncEach = false;  // WEFT_CUDA_SYNC
  bool profiling = false; // WEFT_CUDA_PROFILE
};

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDAEXECUTOR_H
