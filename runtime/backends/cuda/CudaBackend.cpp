// `--backend cuda`: each rank on its own GPU, NCCL between them.
#include "runtime/backends/cuda/CudaBackend.h"

#include "runtime/backends/cuda/CudaExecutor.h"
#include "runtime/backends/cuda/NcclComm.h"
#include "runtime/exec/RunMain.h"

#include <cstdlib>

namespace weft::runtime::cuda {

namespace {

/// The host transport as a bootstrap: ranks that run as threads of one
/// process (or over MPI, or TCP) exchange NCCL's unique id through it.
class TransportBootstrap final : public comm::Bootstrap {
public:
  TransportBootstrap(comm::Transport &transport, uint32_t localRank,
                     uint32_t localSize)
      : transport(transport), local(localRank), locals(localSize) {
    for (uint32_t r = 0; r < transport.worldSize(); ++r)
      world.push_back(r);
  }
  uint32_t rank() const override { return transport.rank(); }
  uint32_t worldSize() const override { return transport.worldSize(); }
  uint32_t localRank() const override { return local; }
  uint32_t localSize() const override { return locals; }

  Status broadcast(std::vector<std::byte> &data) override {
    auto all = allGather(data);
    if (!all.ok())
      return all.status();
    data = (*all)[0];
    return okStatus();
  }

  Result<std::vector<std::vector<std::byte>>>
  allGather(std::span<const std::byte> mine) override {
    // Lengths first, then every blob padded to the longest.
    uint64_t size = mine.size();
    std::vector<uint64_t> sizes(world.size());
    if (Status s = transport.allGather(
            world, reinterpret_cast<const std::byte *>(&size), sizeof(size),
            reinterpret_cast<std::byte *>(sizes.data()));
        !s.ok())
      return s;
    uint64_t longest = 0;
    for (uint64_t s : sizes)
      longest = std::max(longest, s);
    std::vector<std::byte> padded(longest), all(longest * world.size());
    std::copy(mine.begin(), mine.end(), padded.begin());
    if (longest)
      if (Status s = transport.allGather(world, padded.data(), longest,
                                         all.data());
          !s.ok())
        return s;
    std::vector<std::vector<std::byte>> out;
    for (size_t r = 0; r < world.size(); ++r)
      out.emplace_back(all.begin() + r * longest,
                       all.begin() + r * longest + sizes[r]);
    return out;
  }

  Status barrier() override { return allGather({}).status(); }

private:
  comm::Transport &transport;
  comm::Group world;
  uint32_t local, locals;
};

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
  CudaRank(std::unique_ptr<DeviceComm> comm,
           std::unique_ptr<CudaExecutor> exec)
      : comm(std::move(comm)), exec(std::move(exec)) {}
  ~CudaRank() override { exec.reset(); }
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
  InTensor output(size_t i) const override { return exec->output(i); }

private:
  std::unique_ptr<DeviceComm> comm;
  std::unique_ptr<CudaExecutor> exec;
};

/// This process's place among the ranks of its host, from the launcher's
/// environment; none for ranks that run as threads of one process.
std::optional<std::pair<uint32_t, uint32_t>> launchedLocalRank() {
  static const char *const vars[][2] = {
      {"WEFT_LOCAL_RANK", "WEFT_LOCAL_WORLD_SIZE"},
      {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
      {"SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
      {"LOCAL_RANK", "LOCAL_WORLD_SIZE"},
  };
  for (auto [rankVar, sizeVar] : vars) {
    const char *r = std::getenv(rankVar);
    if (!r || !*r)
      continue;
    const char *s = std::getenv(sizeVar);
    uint32_t rank = static_cast<uint32_t>(std::strtoul(r, nullptr, 10));
    uint32_t size =
        s && *s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 0;
    return std::make_pair(rank, size);
  }
  return std::nullopt;
}

Result<std::unique_ptr<RankExecutor>>
makeCudaRank(const Artifact &artifact, RankState &state,
             comm::Transport &transport, unsigned threads) {
  uint32_t rank = transport.rank(), world = transport.worldSize();
  int devices = 0;
  if (cudaError_t err = cudaGetDeviceCount(&devices); err != cudaSuccess)
    return errorStatus("rank " + std::to_string(rank) +
                       ": no usable GPU: " + cudaErrorString(err));
  auto launched = launchedLocalRank();
  uint32_t local = launched ? launched->first : rank;
  uint32_t locals = launched ? launched->second : world;
  if (local >= static_cast<uint32_t>(devices))
    return errorStatus(
        "rank " + std::to_string(rank) + " needs GPU " + std::to_string(local) +
        " of its host, which has " + std::to_string(devices) +
        (launched ? std::string() : " (ranks run as threads here, one GPU each)"));
  int device = static_cast<int>(local);
  if (Status s = cudaStatus(cudaSetDevice(device), "selecting the GPU");
      !s.ok())
    return s;
  std::unique_ptr<DeviceComm> comm;
  if (world > 1) {
    TransportBootstrap boot(transport, local, locals ? locals : world);
    auto groups = comm::planGroups(state.rank.plan, world);
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
  auto exec = CudaExecutor::create(artifact, state.rank, options);
  if (!exec.ok())
    return exec.status();
  return std::unique_ptr<RankExecutor>(
      new CudaRank(std::move(comm), std::move(*exec)));
}

} // namespace

void registerCudaBackend() { registerBackend("cuda", makeCudaRank); }

} // namespace weft::runtime::cuda
