// `--backend cuda`: each rank on its own GPU, NCCL between them.
#include "runtime/backends/cuda/CudaBackend.h"

#include "runtime/backends/BackendRegistry.h"
#include "runtime/backends/cuda/CudaExecutor.h"
#include "runtime/backends/cuda/NcclComm.h"
#include "runtime/comm/Bootstrap.h"

namespace weft::runtime::cuda {

namespace {

/// The device collectives of the CUDA executor, through NCCL.
class NcclDeviceComm final : public DeviceComm {
public:
  explicit NcclDeviceComm(std::unique_ptr<NcclCollectives> nccl)
      : nccl(std::move(nccl)) {}
  Status allReduceSum(const comm::Group &group, DType dtype, const void *in,
                      void *out, int64_t count, cudaStream_t stream) override {
    return nccl->allReduceSum(group, dtype, in, out, count, stream);
  }
  Status allGather(const comm::Group &group, const void *in, uint64_t bytes,
                   void *out, cudaStream_t stream) override {
    return nccl->allGather(group, in, bytes, out, stream);
  }
  Status send(uint32_t peer, const void *data, uint64_t bytes,
              cudaStream_t stream) override {
    return nccl->send(peer, data, bytes, stream);
  }
  Status recv(uint32_t peer, void *data, uint64_t bytes,
              cudaStream_t stream) override {
    return nccl->recv(peer, data, bytes, stream);
  }
  Status synchronize(cudaStream_t stream) override {
    return nccl->synchronize(stream);
  }

private:
  std::unique_ptr<NcclCollectives> nccl;
};

/// A rank on its GPU: the communicators outlive the executor.
class CudaRank final : public RankExecutor {
public:
  CudaRank(std::unique_ptr<DeviceComm> comm, std::unique_ptr<CudaExecutor> exec)
      : comm(std::move(comm)), exec(std::move(exec)) {}
  ~CudaRank() override { exec.reset(); }
  std::vector<std::string> entryPoints() const override {
    return exec->entryPoints();
  }
  Status selectEntry(const std::string &entry) override {
    return exec->selectEntry(entry);
  }
  size_t numInputs() const override { return exec->numInputs(); }
  size_t numOutputs() const override { return exec->numOutputs(); }
  const std::string &inputName(size_t i) const override {
    return exec->inputName(i);
  }
  const std::string &outputName(size_t i) const override {
    return exec->outputName(i);
  }
  Status setInput(size_t i, std::span<const std::byte> bytes) override {
    return exec->setInput(i, bytes);
  }
  Status run() override { return exec->run(); }
  Status runTimed() override { return exec->runTimed(); }
  InTensor output(size_t i) const override { return exec->output(i); }

private:
  std::unique_ptr<DeviceComm> comm;
  std::unique_ptr<CudaExecutor> exec;
};

Result<std::unique_ptr<RankExecutor>>
makeCudaRank(const Artifact &artifact, RankPlan &rankPlan,
             comm::Transport *transport, unsigned threads,
             std::optional<uint32_t> localRank) {
  if (!transport)
    return errorStatus("the cuda backend runs every rank of the artifact "
                       "(a rank alone runs on the cpu)");
  uint32_t rank = transport->rank(), world = transport->worldSize();
  int devices = 0;
  if (cudaError_t err = cudaGetDeviceCount(&devices); err != cudaSuccess)
    return errorStatus("rank " + std::to_string(rank) +
                       ": no usable GPU: " + cudaErrorString(err));
  // Launched processes by their place on the host; rank threads by rank.
  uint32_t local = localRank.value_or(rank);
  if (local >= static_cast<uint32_t>(devices))
    return errorStatus(
        "rank " + std::to_string(rank) + " needs GPU " + std::to_string(local) +
        " of its host, which has " + std::to_string(devices) +
        (localRank ? std::string()
                   : " (ranks run as threads here, one GPU each)"));
  int device = static_cast<int>(local);
  if (Status s = cudaStatus(cudaSetDevice(device), "selecting the GPU");
      !s.ok())
    return s;
  std::unique_ptr<DeviceComm> comm;
  if (world > 1) {
    comm::TransportBootstrap boot(*transport);
    auto groups = comm::planGroups(rankPlan.plan, world);
    auto nccl =
        NcclCollectives::create(boot, groups, device, comm::kDefaultTimeout);
    if (!nccl.ok())
      return nccl.status();
    comm = std::make_unique<NcclDeviceComm>(std::move(*nccl));
  }
  CudaExecutorOptions options;
  options.device = device;
  options.comm = comm.get();
  options.worldSize = world;
  auto exec = CudaExecutor::create(artifact, rankPlan, options);
  if (!exec.ok())
    return exec.status();
  return std::unique_ptr<RankExecutor>(
      new CudaRank(std::move(comm), std::move(*exec)));
}

} // namespace

void registerCudaBackend() { registerBackend("cuda", makeCudaRank); }

} // namespace weft::runtime::cuda
