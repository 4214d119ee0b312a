// Runs one rank's plan on a CUDA GPU.
#include "runtime/backends/cuda/CudaExecutor.h"

#include "runtime/artifact/Sha256.h"
#include "runtime/backends/cuda/CudaConvert.h"
#include "runtime/backends/cuda/CudaGemm.h"
#include "runtime/backends/cuda/StepGroups.h"
#include "runtime/backends/cuda/kernels/Kernels.h"
#include "runtime/steps/StepChecks.h"
#include "runtime/support/SafeFile.h"

#include <cuda.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace weft::runtime::cuda {

using artifact::Buffer;

namespace {

constexpr uint64_t kDeviceAlignment = 256;
constexpr uint64_t kStagingBytes = 64ull << 20;
constexpr unsigned kElementwiseBlock = 256;

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/// The driver API calls the executor makes (modules, launches), found
/// through the CUDA runtime: the binaries do not link libcuda, so that they
/// start (and run on the CPU backend) on machines without a GPU driver.
struct DriverApi {
  CUresult (*getErrorName)(CUresult, const char **) = nullptr;
  CUresult (*getErrorString)(CUresult, const char **) = nullptr;
  CUresult (*moduleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*moduleUnload)(CUmodule) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *) = nullptr;
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, unsigned, CUstream, void **,
                           void **) = nullptr;
};

template <typename Fn> Status entryPoint(const char *name, Fn &fn) {
  void *p = nullptr;
  cudaDriverEntryPointQueryResult found;
  cudaError_t err = cudaGetDriverEntryPointByVersion(name, &p, CUDA_VERSION,
                                                     cudaEnableDefault, &found);
  if (err != cudaSuccess || found != cudaDriverEntryPointSuccess || !p)
    return errorStatus(std::string("the CUDA driver has no ") + name +
                       (err != cudaSuccess ? " (" + cudaErrorString(err) + ")"
                                           : std::string()));
  fn = reinterpret_cast<Fn>(p);
  return okStatus();
}

Result<const DriverApi *> driverApi() {
  static DriverApi api;
  static Status status = [] {
    for (Status s : {entryPoint("cuGetErrorName", api.getErrorName),
                     entryPoint("cuGetErrorString", api.getErrorString),
                     entryPoint("cuModuleLoadData", api.moduleLoadData),
                     entryPoint("cuModuleUnload", api.moduleUnload),
                     entryPoint("cuModuleGetFunction", api.moduleGetFunction),
                     entryPoint("cuLaunchKernel", api.launchKernel)})
      if (!s.ok())
        return s;
    return okStatus();
  }();
  if (!status.ok())
    return status;
  return &api;
}

std::string driverError(CUresult r) {
  const char *name = nullptr, *text = nullptr;
  if (auto api = driverApi(); api.ok()) {
    (*api)->getErrorName(r, &name);
    (*api)->getErrorString(r, &text);
  }
  return std::string(name ? name : "CUDA_ERROR") + ": " + (text ? text : "");
}

bool envFlag(const char *name, bool fallback) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return fallback;
  return std::string(v) != "0";
}

Result<std::string> readFile(const std::string &path) {
  return readRegularFile(path); // the file rules of SafeFile.h
}

/// A generated kernel: out, in0, in1, ... by pointer (the ABI of the
/// artifact's kernel module), a grid-stride loop over the output.
class ElementwiseStep final : public BoundStep {
public:
  ElementwiseStep(const DriverApi &api, CUfunction fn,
                  std::vector<void *> pointers, int64_t numel)
      : api(api), fn(fn), pointers(std::move(pointers)) {
    for (void *&p : this->pointers)
      params.push_back(&p);
    int64_t blocks =
        (numel + 4 * kElementwiseBlock - 1) / (4 * kElementwiseBlock);
    grid = static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 65535));
  }
  Status launch(cudaStream_t stream) override {
    CUresult r = api.launchKernel(fn, grid, 1, 1, kElementwiseBlock, 1, 1, 0,
                                  stream, params.data(), nullptr);
    if (r != CUDA_SUCCESS)
      return errorStatus("launching the generated kernel: " + driverError(r));
    return okStatus();
  }

private:
  const DriverApi &api;
  CUfunction fn;
  std::vector<void *> pointers;
  std::vector<void *> params;
  unsigned grid = 1;
};

class CopyStep final : public BoundStep {
public:
  CopyStep(void *dst, const void *src, uint64_t bytes)
      : dst(dst), src(src), bytes(bytes) {}
  Status launch(cudaStream_t stream) override {
    if (!bytes)
      return okStatus();
    return cudaStatus(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream),
        "copy");
  }

private:
  void *dst;
  const void *src;
  uint64_t bytes;
};

/// A step whose outputs overlap its inputs: it writes to staging memory,
/// copied to the real outputs afterwards.
class StagedStep final : public BoundStep {
public:
  StagedStep(std::unique_ptr<BoundStep> inner,
             std::vector<std::unique_ptr<BoundStep>> copies)
      : inner(std::move(inner)), copies(std::move(copies)) {}
  Status launch(cudaStream_t stream) override {
    if (Status s = inner->launch(stream); !s.ok())
      return s;
    for (auto &c : copies)
      if (Status s = c->launch(stream); !s.ok())
        return s;
    return okStatus();
  }

private:
  std::unique_ptr<BoundStep> inner;
  std::vector<std::unique_ptr<BoundStep>> copies;
};

class CollectiveStep final : public BoundStep {
public:
  enum Op { AllReduce, AllGather, Send, Recv };
  CollectiveStep(DeviceComm &comm, Op op, comm::Group group, DType dtype,
                 const void *in, void *out, int64_t count, uint64_t bytes,
                 uint32_t peer, std::unique_ptr<BoundStep> after)
      : comm(comm), op(op), group(std::move(group)), dtype(dtype), in(in),
        out(out), count(count), bytes(bytes), peer(peer),
        after(std::move(after)) {}
  Status launch(cudaStream_t stream) override {
    Status s;
    switch (op) {
    case AllReduce:
      s = comm.allReduceSum(group, dtype, in, out, count, stream);
      break;
    case AllGather:
      s = comm.allGather(group, in, bytes, out, stream);
      break;
    case Send:
      s = comm.send(peer, in, bytes, stream);
      break;
    case Recv:
      s = comm.recv(peer, out, bytes, stream);
      break;
    }
    if (!s.ok() || !after)
      return s;
    return after->launch(stream);
  }

private:
  DeviceComm &comm;
  Op op;
  comm::Group group;
  DType dtype;
  const void *in;
  void *out;
  int64_t count;
  uint64_t bytes;
  uint32_t peer;
  std::unique_ptr<BoundStep> after; // reorders an all-gather along an axis
};

bool overlaps(const DeviceTensor &a, const DeviceTensor &b) {
  auto *pa = static_cast<const std::byte *>(a.data);
  auto *pb = static_cast<const std::byte *>(b.data);
  return a.bytes() && b.bytes() && pa < pb + b.bytes() && pb < pa + a.bytes();
}

} // namespace

/// The artifact's generated kernels, loaded into the current context.
class KernelModule {
public:
  static Result<std::unique_ptr<KernelModule>> load(const Artifact &artifact) {
    const artifact::KernelModule &km = artifact.manifest.kernels();
    if (km.cubin_file().empty() && km.ptx_file().empty())
      return errorStatus(
          "the artifact has no GPU kernels (compiled for target '" +
          artifact.manifest.target() +
          "'); compile it for a GPU target, e.g. weft compile --target sm_90a");
    auto api = driverApi();
    if (!api.ok())
      return api.status();
    std::unique_ptr<KernelModule> m(new KernelModule(**api));
    std::string firstError;
    // The machine code first; the PTX when the GPU is another architecture.
    for (auto [file, sha] : {std::pair{km.cubin_file(), km.cubin_sha256()},
                             {km.ptx_file(), km.ptx_sha256()}}) {
      if (file.empty())
        continue;
      std::string path = artifact.dir + "/" + file;
      auto bytes = readFile(path);
      if (!bytes.ok())
        return bytes.status();
      std::string digest = sha256Hex(bytes->data(), bytes->size());
      if (!sha.empty() && !sha256Matches(sha, digest))
        return errorStatus(path + ": sha256 mismatch (manifest says " + sha +
                           ", file has " + digest + ")");
      if (file == km.ptx_file())
        bytes->push_back('\0');
      CUresult r = m->api.moduleLoadData(&m->module, bytes->data());
      if (r == CUDA_SUCCESS)
        return m;
      if (firstError.empty())
        firstError = path + ": " + driverError(r);
    }
    return errorStatus("cannot load the kernel module (" + km.arch() +
                       "): " + firstError);
  }
  ~KernelModule() {
    if (module)
      api.moduleUnload(module);
  }
  const DriverApi &driver() const { return api; }
  Result<CUfunction> function(const std::string &name) {
    auto it = functions.find(name);
    if (it != functions.end())
      return it->second;
    CUfunction fn;
    CUresult r = api.moduleGetFunction(&fn, module, name.c_str());
    if (r != CUDA_SUCCESS)
      return errorStatus("kernel '" + name +
                         "' is not in the module: " + driverError(r));
    functions.emplace(name, fn);
    return fn;
  }

private:
  explicit KernelModule(const DriverApi &api) : api(api) {}
  const DriverApi &api;
  CUmodule module = nullptr;
  std::map<std::string, CUfunction> functions;
};

CudaExecutor::CudaExecutor(const RankPlan &rank,
                           const CudaExecutorOptions &options)
    : rank(rank), options(options) {}

CudaExecutor::~CudaExecutor() {
  cudaSetDevice(options.device);
  if (stream)
    cudaStreamSynchronize(stream);
  for (Entry &e : entries) {
    e.steps.clear();
    if (e.graphExec)
      cudaGraphExecDestroy(e.graphExec);
    if (e.graph)
      cudaGraphDestroy(e.graph);
  }
  gemm.reset();
  module.reset();
  for (void *p : allocations)
    cudaFree(p);
  if (stream)
    cudaStreamDestroy(stream);
}

Result<std::unique_ptr<CudaExecutor>>
CudaExecutor::create(const Artifact &artifact, RankPlan &rank,
                     const CudaExecutorOptions &options) {
  if (Status s = validatePlan(rank.plan, rank.planPath, options.worldSize);
      !s.ok())
    return s;
  if (rank.weights.size() != static_cast<size_t>(rank.plan.weights_size()))
    return errorStatus("the weights of rank " +
                       std::to_string(rank.entry.rank()) + " are not loaded");
  int devices = 0;
  if (Status s = cudaStatus(cudaGetDeviceCount(&devices), "finding GPUs");
      !s.ok())
    return s;
  if (options.device < 0 || options.device >= devices)
    return errorStatus("rank " + std::to_string(rank.entry.rank()) +
                       " needs GPU " + std::to_string(options.device) +
                       ", this machine has " + std::to_string(devices));
  std::unique_ptr<CudaExecutor> exec(new CudaExecutor(rank, options));
  exec->options.graph = options.graph && envFlag("WEFT_CUDA_GRAPH", true);
  exec->syncEach = envFlag("WEFT_CUDA_SYNC", false);
  exec->profiling = envFlag("WEFT_CUDA_PROFILE", false);
  if (Status s = cudaStatus(cudaSetDevice(options.device), "selecting the GPU");
      !s.ok())
    return s;
  if (Status s = cudaStatus(
          cudaStreamCreateWithFlags(&exec->stream, cudaStreamNonBlocking),
          "creating a stream");
      !s.ok())
    return s;
  if (Status s = exec->allocate(); !s.ok())
    return s;
  if (Status s = exec->uploadWeights(rank); !s.ok())
    return s;
  if (Status s = exec->uploadConstants(); !s.ok())
    return s;
  if (Status s = exec->bindSteps(artifact); !s.ok())
    return s;
  return exec;
}

Result<void *> CudaExecutor::deviceAlloc(uint64_t bytes,
                                         const std::string &what) {
  void *p = nullptr;
  cudaError_t err = cudaMalloc(&p, std::max<uint64_t>(bytes, 1));
  if (err != cudaSuccess) {
    size_t freeBytes = 0, total = 0;
    cudaGetLastError();
    cudaMemGetInfo(&freeBytes, &total);
    return errorStatus(
        "cannot allocate " + what + " of " + std::to_string(bytes) +
        " bytes on GPU " + std::to_string(options.device) + " (" +
        std::to_string(freeBytes) + " of " + std::to_string(total) +
        " bytes free): " + cudaErrorString(err));
  }
  allocations.push_back(p);
  allocated += bytes;
  return p;
}

Status CudaExecutor::allocate() {
  auto a = deviceAlloc(rank.plan.arena_bytes(), "the arena");
  if (!a.ok())
    return a.status();
  arena = static_cast<std::byte *>(*a);
  // Zeroed, so that the first run never reads garbage (say, as indices).
  if (Status s =
          cudaStatus(cudaMemsetAsync(arena, 0, rank.plan.arena_bytes(), stream),
                     "clearing the arena");
      !s.ok())
    return s;
  for (const Buffer &buf : rank.plan.buffers()) {
    places[buf.id()] = &buf;
    if (buf.kind() == Buffer::ARENA || buf.kind() == Buffer::INPUT ||
        buf.kind() == Buffer::OUTPUT)
      buffers[buf.id()] = {buf.dtype(), toShape(buf.shape()),
                           arena + buf.offset()};
    if (buf.kind() == Buffer::STATE)
      if (Status s = allocateState(buf); !s.ok())
        return s.withPrefix(rank.planPath + ": ");
  }
  return okStatus();
}

Status CudaExecutor::allocateState(const Buffer &buf) {
  // Outside the arena (its bytes outlive every run and every entry's
  // graph), zeroed once.
  Shape shape = toShape(buf.shape());
  uint64_t bytes = buf.bytes();
  std::string what = "state buffer '" + buf.name() + "'";
  if (!shape.empty() && shape[0] == 0) {
    // A KV cache: as many blocks as the session chose.
    Shape block(shape.begin() + 1, shape.end());
    uint64_t blockBytes = numElements(block) * dtypeSize(buf.dtype());
    if (buf.bytes() != 0 && buf.bytes() != blockBytes)
      return errorStatus(what + ": bytes " + std::to_string(buf.bytes()) +
                         " is not the size of one block of " +
                         shapeString(shape) + " (" +
                         std::to_string(blockBytes) + ")");
    if (rank.kvCacheBlocks == 0)
      return errorStatus(what +
                         " is a KV cache, but the session chose no cache "
                         "blocks (SessionOptions.kvCacheBlocks is 0)");
    if (blockBytes && rank.kvCacheBlocks > UINT64_MAX / blockBytes)
      return errorStatus(what + ": " + std::to_string(rank.kvCacheBlocks) +
                         " blocks of " + std::to_string(blockBytes) +
                         " bytes overflow");
    shape[0] = static_cast<int64_t>(rank.kvCacheBlocks);
    bytes = blockBytes * rank.kvCacheBlocks;
  }
  auto p = deviceAlloc(bytes, what);
  if (!p.ok())
    return p.status();
  if (Status s =
          cudaStatus(cudaMemsetAsync(*p, 0, bytes, stream), "clearing " + what);
      !s.ok())
    return s;
  buffers[buf.id()] = {buf.dtype(), shape, *p};
  return okStatus();
}

Status CudaExecutor::uploadWeights(RankPlan &plan) {
  // One device block for every (weight, dtype) the plan reads.
  std::map<std::pair<uint32_t, int>, uint64_t> offsets;
  uint64_t total = 0;
  for (const Buffer &buf : rank.plan.buffers()) {
    if (buf.kind() != Buffer::WEIGHT)
      continue;
    auto key = std::make_pair(buf.weight(), static_cast<int>(buf.dtype()));
    if (offsets.count(key))
      continue;
    const artifact::WeightRef &ref = rank.plan.weights(buf.weight());
    uint64_t elems = plan.weights[buf.weight()].size / dtypeSize(ref.dtype());
    offsets[key] = total;
    total += alignUp(elems * dtypeSize(buf.dtype()), kDeviceAlignment);
  }
  auto block = deviceAlloc(total, "the weights");
  if (!block.ok())
    return block.status();
  auto *base = static_cast<std::byte *>(*block);

  // Streamed through two pinned staging buffers (and, for weights stored
  // in another float type, two device buffers converted from).
  void *pinned[2] = {nullptr, nullptr};
  std::byte *scratch = nullptr;
  cudaEvent_t done[2] = {nullptr, nullptr};
  auto cleanup = [&] {
    cudaStreamSynchronize(stream);
    for (int i = 0; i < 2; ++i) {
      if (pinned[i])
        cudaFreeHost(pinned[i]);
      if (done[i])
        cudaEventDestroy(done[i]);
    }
    if (scratch)
      cudaFree(scratch);
  };
  Status st;
  for (int i = 0; i < 2 && st.ok(); ++i) {
    st = cudaStatus(cudaHostAlloc(&pinned[i], kStagingBytes, 0),
                    "allocating pinned staging memory");
    if (st.ok())
      st =
          cudaStatus(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming),
                     "creating an event");
  }
  if (st.ok())
    st = cudaStatus(cudaMalloc(&scratch, 2 * kStagingBytes),
                    "allocating weight conversion memory");
  int slot = 0;
  for (auto &[key, offset] : offsets) {
    if (!st.ok())
      break;
    const artifact::WeightRef &ref = rank.plan.weights(key.first);
    const WeightBytes &src = plan.weights[key.first];
    DType from = ref.dtype(), to = static_cast<DType>(key.second);
    uint64_t fromSize = dtypeSize(from), toSize = dtypeSize(to);
    uint64_t chunk = kStagingBytes / fromSize * fromSize;
    for (uint64_t pos = 0; pos < src.size && st.ok(); pos += chunk) {
      uint64_t n = std::min(chunk, src.size - pos);
      st = cudaStatus(cudaEventSynchronize(done[slot]), "staging weights");
      if (!st.ok())
        break;
      std::memcpy(pinned[slot], src.data + pos, n);
      std::byte *dst = base + offset + pos / fromSize * toSize;
      if (from == to) {
        st = cudaStatus(cudaMemcpyAsync(dst, pinned[slot], n,
                                        cudaMemcpyHostToDevice, stream),
                        "uploading weight '" + ref.name() + "'");
      } else {
        std::byte *tmp = scratch + slot * kStagingBytes;
        st = cudaStatus(cudaMemcpyAsync(tmp, pinned[slot], n,
                                        cudaMemcpyHostToDevice, stream),
                        "uploading weight '" + ref.name() + "'");
        if (st.ok())
          st = convertOnDevice(from, tmp, to, dst, n / fromSize, stream);
      }
      if (st.ok())
        st = cudaStatus(cudaEventRecord(done[slot], stream), "staging weights");
      slot ^= 1;
    }
  }
  cleanup();
  if (!st.ok())
    return st;
  for (const Buffer &buf : rank.plan.buffers())
    if (buf.kind() == Buffer::WEIGHT)
      buffers[buf.id()] = {
          buf.dtype(), toShape(buf.shape()),
          base + offsets.at({buf.weight(), static_cast<int>(buf.dtype())})};
  // The device holds them now: the host copies (mapped or sliced) go.
  plan.weights.clear();
  return cudaStatus(cudaGetLastError(), "uploading the weights");
}

Status CudaExecutor::uploadConstants() {
  for (const Buffer &buf : rank.plan.buffers()) {
    if (buf.kind() != Buffer::CONSTANT)
      continue;
    auto p = deviceAlloc(buf.data().size(), "a constant");
    if (!p.ok())
      return p.status();
    if (Status s =
            cudaStatus(cudaMemcpy(*p, buf.data().data(), buf.data().size(),
                                  cudaMemcpyHostToDevice),
                       "uploading a constant");
        !s.ok())
      return s;
    buffers[buf.id()] = {buf.dtype(), toShape(buf.shape()), *p};
  }
  return okStatus();
}

const DeviceTensor &CudaExecutor::bufferOf(
    uint32_t id,
    const std::unordered_map<uint32_t, DeviceTensor> &redirects) const {
  auto moved = redirects.find(id);
  return moved != redirects.end() ? moved->second : buffers.at(id);
}

Result<std::unique_ptr<BoundStep>> CudaExecutor::bindStep(
    const artifact::Step &step,
    const std::unordered_map<uint32_t, DeviceTensor> &redirects) {
  std::vector<DeviceTensor> ins, outs;
  for (uint32_t id : step.inputs())
    ins.push_back(bufferOf(id, redirects));
  for (uint32_t id : step.outputs())
    outs.push_back(buffers.at(id));

  // Outputs that overlap an input are written elsewhere first.
  std::vector<std::unique_ptr<BoundStep>> copies;
  if (step.kind() != artifact::Step::COPY &&
      step.kind() != artifact::Step::COLLECTIVE)
    for (DeviceTensor &out : outs) {
      bool clash = std::any_of(ins.begin(), ins.end(),
                               [&](auto &in) { return overlaps(out, in); });
      if (!clash)
        continue;
      auto staging = deviceAlloc(out.bytes(), "staging for an in-place step");
      if (!staging.ok())
        return staging.status();
      copies.push_back(
          std::make_unique<CopyStep>(out.data, *staging, out.bytes()));
      out.data = *staging;
    }

  std::unique_ptr<BoundStep> bound;
  switch (step.kind()) {
  case artifact::Step::ELEMENTWISE: {
    if (step.kernel().empty())
      return errorStatus("has no generated kernel (compile the artifact for "
                         "a GPU target)");
    if (outs.size() != 1)
      return errorStatus("a generated kernel has one output, the step has " +
                         std::to_string(outs.size()));
    auto fn = module->function(step.kernel());
    if (!fn.ok())
      return fn.status();
    std::vector<void *> pointers{outs[0].data};
    for (const DeviceTensor &in : ins)
      pointers.push_back(in.data);
    bound = std::make_unique<ElementwiseStep>(
        module->driver(), *fn, std::move(pointers), outs[0].numElements());
    break;
  }
  case artifact::Step::GEMM: {
    auto g = gemm->bind(step, ins, outs, stream);
    if (!g.ok())
      return g.status();
    bound = std::move(*g);
    break;
  }
  case artifact::Step::COPY: {
    if (ins.size() != 1 || outs.size() != 1 ||
        ins[0].bytes() != outs[0].bytes())
      return errorStatus("COPY takes one input and one output of the same "
                         "size");
    bound =
        std::make_unique<CopyStep>(outs[0].data, ins[0].data, ins[0].bytes());
    break;
  }
  case artifact::Step::COLLECTIVE:
  case artifact::Step::SEND:
  case artifact::Step::RECV: {
    if (!options.comm)
      return errorStatus(
          "needs the other ranks, but this rank runs alone (without a "
          "communicator)");
    // The CPU backend's checks hold for the shapes and attributes.
    std::vector<InTensor> cin;
    std::vector<OutTensor> cout;
    for (auto &t : ins)
      cin.push_back({t.dtype, t.shape, static_cast<std::byte *>(t.data)});
    for (auto &t : outs)
      cout.push_back({t.dtype, t.shape, static_cast<std::byte *>(t.data)});
    // (Ranks and peers were checked against the world by validatePlan.)
    steps::StepArgs args{step, cin, cout};
    if (Status s = steps::checkStep(args); !s.ok())
      return s;
    if (step.kind() == artifact::Step::SEND) {
      bound = std::make_unique<CollectiveStep>(
          *options.comm, CollectiveStep::Send, comm::Group{}, ins[0].dtype,
          ins[0].data, nullptr, 0, ins[0].bytes(),
          static_cast<uint32_t>(step.send_recv().peer()), nullptr);
      break;
    }
    if (step.kind() == artifact::Step::RECV) {
      bound = std::make_unique<CollectiveStep>(
          *options.comm, CollectiveStep::Recv, comm::Group{}, outs[0].dtype,
          nullptr, outs[0].data, 0, outs[0].bytes(),
          static_cast<uint32_t>(step.send_recv().peer()), nullptr);
      break;
    }
    const artifact::CollectiveAttrs &attrs = step.collective();
    comm::Group group(attrs.group().begin(), attrs.group().end());
    if (attrs.op() == steps::kAllReduce) {
      bound = std::make_unique<CollectiveStep>(
          *options.comm, CollectiveStep::AllReduce, group, ins[0].dtype,
          ins[0].data, outs[0].data, ins[0].numElements(), 0, 0, nullptr);
      break;
    }
    // All-gather along `axis`: NCCL stacks the members' blocks, [g, outer,
    // len * inner]; a transpose puts them at the axis, [outer, g, ...].
    int64_t axis = attrs.axis();
    if (axis < 0)
      axis += ins[0].rank();
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < ins[0].rank(); ++d)
      (d < axis ? outer : inner) *= ins[0].shape[d];
    std::unique_ptr<BoundStep> after;
    void *gathered = outs[0].data;
    if (outer > 1) {
      auto tmp = deviceAlloc(outs[0].bytes(), "all-gather staging");
      if (!tmp.ok())
        return tmp.status();
      gathered = *tmp;
      artifact::Step t;
      t.set_kind(artifact::Step::TRANSPOSE);
      t.set_name(step.name() + "_reorder");
      for (int64_t p : {1, 0, 2})
        t.mutable_transpose()->add_perm(p);
      int64_t g = static_cast<int64_t>(group.size());
      DeviceTensor src{outs[0].dtype, {g, outer, inner}, gathered};
      DeviceTensor dst{outs[0].dtype, {outer, g, inner}, outs[0].data};
      auto tb = bindLibraryStep(t, std::span(&src, 1), std::span(&dst, 1));
      if (!tb.ok())
        return tb.status().withPrefix("reordering the all-gather: ");
      after = std::move(*tb);
    }
    bound = std::make_unique<CollectiveStep>(
        *options.comm, CollectiveStep::AllGather, group, ins[0].dtype,
        ins[0].data, gathered, 0, ins[0].bytes(), 0, std::move(after));
    break;
  }
  default: {
    auto lib = bindLibraryStep(step, ins, outs);
    if (!lib.ok())
      return lib.status();
    bound = std::move(*lib);
  }
  }
  if (!copies.empty())
    bound = std::make_unique<StagedStep>(std::move(bound), std::move(copies));
  return bound;
}

Status CudaExecutor::bindSteps(const Artifact &artifact) {
  bool anyElementwise = false;
  for (const artifact::Step &step : rank.plan.steps())
    anyElementwise |= step.kind() == artifact::Step::ELEMENTWISE;
  for (const artifact::EntryPoint &e : rank.plan.entry_points())
    for (const artifact::Step &step : e.steps())
      anyElementwise |= step.kind() == artifact::Step::ELEMENTWISE;
  if (anyElementwise) {
    auto m = KernelModule::load(artifact);
    if (!m.ok())
      return m.status();
    module = std::move(*m);
  }
  auto g = GemmContext::create(envFlag("WEFT_GEMM_TUNE", true));
  if (!g.ok())
    return g.status();
  gemm = std::move(*g);
  allocated += gemm->workspaceBytes();
  auto forward = bindEntry(kForwardEntry, rank.plan.steps(), rank.plan.inputs(),
                           rank.plan.outputs());
  if (!forward.ok())
    return forward.status();
  entries.push_back(std::move(*forward));
  for (const artifact::EntryPoint &e : rank.plan.entry_points()) {
    auto bound = bindEntry(e.name(), e.steps(), e.inputs(), e.outputs());
    if (!bound.ok())
      return bound.status().withPrefix("entry point '" + e.name() + "': ");
    entries.push_back(std::move(*bound));
  }
  return cudaStatus(cudaStreamSynchronize(stream), "binding the steps");
}

Result<CudaExecutor::Entry> CudaExecutor::bindEntry(
    const std::string &name,
    const google::protobuf::RepeatedPtrField<artifact::Step> &entrySteps,
    const google::protobuf::RepeatedField<uint32_t> &inputs,
    const google::protobuf::RepeatedField<uint32_t> &outputs) {
  Entry e;
  e.name = name;
  e.inputIds.assign(inputs.begin(), inputs.end());
  e.outputIds.assign(outputs.begin(), outputs.end());
  for (uint32_t id : e.outputIds)
    e.hostOutputs.emplace_back(buffers.at(id).bytes());
  std::vector<const artifact::Step *> list;
  for (const artifact::Step &step : entrySteps)
    list.push_back(&step);
  // Buffers a group's product moved to (StepGroup::productInto), for the
  // steps that read it.
  std::unordered_map<uint32_t, DeviceTensor> redirects;
  auto tensors = [&](const google::protobuf::RepeatedField<uint32_t> &ids) {
    std::vector<DeviceTensor> out;
    for (uint32_t id : ids)
      out.push_back(bufferOf(id, redirects));
    return out;
  };
  // Steps launched as one (StepGroups.h); WEFT_GROUP_STEPS=0 keeps every
  // step its own launch.
  auto region = [&](uint32_t id) {
    const DeviceTensor &t = buffers.at(id);
    return Region{t.data, t.bytes()};
  };
  std::vector<StepGroup> groups;
  if (envFlag("WEFT_GROUP_STEPS", true)) {
    auto groupable = [&](size_t i, size_t j) {
      std::vector<DeviceTensor> ai = tensors(list[i]->inputs()),
                                ao = tensors(list[i]->outputs()),
                                bi = tensors(list[j]->inputs()),
                                bo = tensors(list[j]->outputs());
      return GemmContext::groupable(*list[i], ai, ao, *list[j], bi, bo);
    };
    auto normable = [&](size_t r, size_t i) {
      std::vector<DeviceTensor> ni = tensors(list[r]->inputs()),
                                no = tensors(list[r]->outputs()),
                                mi = tensors(list[i]->inputs()),
                                mo = tensors(list[i]->outputs());
      return GemmContext::normable(*list[r], ni, no, *list[i], mi, mo);
    };
    groups = findStepGroups(list, region, groupable, normable, e.outputIds,
                            kernels::kGemvMaxSegments);
  }
  std::vector<int> groupAt(list.size(), -1);
  std::vector<bool> moved(list.size(), false), grouped(list.size(), false);
  for (size_t g = 0; g < groups.size(); ++g) {
    groupAt[groups[g].at] = static_cast<int>(g);
    grouped[groups[g].at] = true;
    for (size_t m : groups[g].members) {
      moved[m] = m != groups[g].at;
      grouped[m] = true;
    }
    if (groups[g].norm)
      moved[*groups[g].norm] = grouped[*groups[g].norm] = true;
  }
  // ROTARY steps applied by the paged attention after them (StepGroups.h),
  // where no group reaches into the span and the attention's launch takes
  // the shape; bound when the span starts, so that the redirects then are
  // the attention's. WEFT_FUSE_ROTARY=0 runs them apart.
  std::vector<RotaryFusion> fusions;
  if (envFlag("WEFT_GROUP_STEPS", true) && envFlag("WEFT_FUSE_ROTARY", true))
    for (const RotaryFusion &f : findRotaryFusions(list, region, e.outputIds)) {
      // Spans disjoint from the groups' and from each other.
      size_t lo = std::min(f.rotaryQ, f.rotaryK);
      if (std::none_of(grouped.begin() + lo, grouped.begin() + f.attention + 1,
                       [](bool g) { return g; }) &&
          (fusions.empty() || fusions.back().attention < lo))
        fusions.push_back(f);
    }
  std::unordered_map<size_t, const RotaryFusion *> fusionFrom;
  for (const RotaryFusion &f : fusions)
    fusionFrom[std::min(f.rotaryQ, f.rotaryK)] = &f;
  std::unordered_map<size_t, std::pair<std::unique_ptr<BoundStep>,
                                       std::string>>
      fused; // by attention step
  for (int i = 0; i < entrySteps.size(); ++i) {
    const artifact::Step &step = entrySteps[i];
    if (auto f = fusionFrom.find(i); f != fusionFrom.end()) {
      const RotaryFusion &rf = *f->second;
      const artifact::Step &rq = *list[rf.rotaryQ], &rk = *list[rf.rotaryK],
                           &att = *list[rf.attention];
      std::vector<DeviceTensor> qIn = tensors(rq.inputs()),
                                kIn = tensors(rk.inputs()),
                                ins = tensors(att.inputs()),
                                outs = tensors(att.outputs());
      ins[0].data = qIn[0].data;
      ins[1].data = kIn[0].data;
      PagedRotary rotary{&rq,    &rk,    qIn[0], qIn[1],
                         qIn[2], kIn[0], kIn[1], kIn[2]};
      std::string where = "steps " + std::to_string(rf.rotaryQ) + " ('" +
                          rq.name() + "'), " + std::to_string(rf.rotaryK) +
                          " ('" + rk.name() + "') and " +
                          std::to_string(rf.attention) + " ('" + att.name() +
                          "'), one launch: ";
      auto bound = bindPagedAttentionRotary(att, ins, outs, rotary);
      if (!bound.ok())
        return bound.status().withPrefix(rank.planPath + ": " + where);
      if (*bound) {
        moved[rf.rotaryQ] = moved[rf.rotaryK] = true;
        fused[rf.attention] = {std::move(*bound), where};
      }
    }
    if (moved[i])
      continue;
    if (auto f = fused.find(i); f != fused.end()) {
      e.steps.push_back({&step, f->second.second, std::move(f->second.first),
                         "ROTARY q, k + PAGED_ATTENTION -> " +
                             shapeString(buffers.at(step.outputs(0)).shape)});
      continue;
    }
    if (groupAt[i] < 0) {
      std::string where = stepWhere(i, step);
      auto bound = bindStep(step, redirects);
      if (!bound.ok())
        return bound.status().withPrefix(rank.planPath + ": " + where);
      e.steps.push_back({&step, where, std::move(*bound), ""});
      continue;
    }
    const StepGroup &group = groups[groupAt[i]];
    std::vector<std::vector<DeviceTensor>> ins, outs;
    std::vector<GemmContext::GemvMember> members;
    std::string where = "steps",
                label = "GEMV x" + std::to_string(group.members.size());
    for (size_t m : group.members) {
      ins.push_back(tensors(list[m]->inputs()));
      outs.push_back(tensors(list[m]->outputs()));
      where.append(" ").append(std::to_string(m));
      where.append(" ('").append(list[m]->name()).append("')");
    }
    for (size_t m = 0; m < group.members.size(); ++m)
      members.push_back({list[group.members[m]], ins[m], outs[m]});
    std::optional<DeviceTensor> product;
    if (group.swiglu) {
      product = buffers.at(step.outputs(0));
      if (group.productInto >= 0) {
        product->data = outs[group.productInto][0].data;
        redirects[step.outputs(0)] = *product;
      }
      where.append(" and ").append(std::to_string(i));
      where.append(" ('").append(step.name()).append("')");
      label += " + swiglu";
    }
    std::optional<GemmContext::GemvNorm> norm;
    if (group.norm) {
      const artifact::Step &r = *list[*group.norm];
      norm = GemmContext::GemvNorm{buffers.at(r.inputs(0)),
                                   buffers.at(r.inputs(1)),
                                   static_cast<float>(r.norm().epsilon())};
      where.append(" after ").append(std::to_string(*group.norm));
      where.append(" ('").append(r.name()).append("')");
      label = "RMS_NORM + " + label;
    }
    where += ", one launch: ";
    auto bound = gemm->bindGemvGroup(members, product ? &*product : nullptr,
                                     norm ? &*norm : nullptr);
    if (!bound.ok())
      return bound.status().withPrefix(rank.planPath + ": " + where);
    e.steps.push_back({&step, where, std::move(*bound),
                       label + " -> " + shapeString(outs.back()[0].shape)});
  }
  return e;
}

std::vector<std::string> CudaExecutor::entryPoints() const {
  std::vector<std::string> names;
  for (const Entry &e : entries)
    names.push_back(e.name);
  return names;
}

Status CudaExecutor::selectEntry(const std::string &name) {
  for (size_t e = 0; e < entries.size(); ++e)
    if (entries[e].name == name) {
      current = e;
      return okStatus();
    }
  return errorStatus("no entry point '" + name + "'");
}

const std::string &CudaExecutor::inputName(size_t i) const {
  return places.at(entry().inputIds[i])->name();
}

const std::string &CudaExecutor::outputName(size_t i) const {
  return places.at(entry().outputIds[i])->name();
}

Status CudaExecutor::setInput(size_t i, std::span<const std::byte> bytes) {
  if (i >= entry().inputIds.size())
    return errorStatus("no graph input " + std::to_string(i));
  const DeviceTensor &t = buffers.at(entry().inputIds[i]);
  if (bytes.size() != t.bytes())
    return errorStatus("input '" + inputName(i) + "' needs " +
                       std::to_string(t.bytes()) + " bytes, got " +
                       std::to_string(bytes.size()));
  cudaSetDevice(options.device);
  if (bytes.empty())
    return okStatus();
  return cudaStatus(cudaMemcpyAsync(t.data, bytes.data(), bytes.size(),
                                    cudaMemcpyHostToDevice, stream),
                    "copying input '" + inputName(i) + "' to the GPU");
}

Status CudaExecutor::launchAll(Entry &e) {
  // WEFT_CUDA_SYNC=1 waits after each step, so a fault names its step.
  for (Step &s : e.steps) {
    if (Status st = s.bound->launch(stream); !st.ok())
      return st.withPrefix(s.where);
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess)
      return errorStatus(s.where + "launch failed: " + cudaErrorString(err));
    if (syncEach)
      if (Status st = options.comm ? options.comm->synchronize(stream)
                                   : cudaStatus(cudaStreamSynchronize(stream),
                                                "running");
          !st.ok())
        return st.withPrefix(s.where);
  }
  return okStatus();
}

Status CudaExecutor::capture(Entry &e) {
  if (Status s = cudaStatus(
          cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
          "starting the CUDA graph capture");
      !s.ok())
    return s;
  Status launched = launchAll(e);
  cudaError_t end = cudaStreamEndCapture(stream, &e.graph);
  if (!launched.ok())
    return launched.withPrefix("capturing the CUDA graph: ");
  if (Status s = cudaStatus(end, "ending the CUDA graph capture"); !s.ok())
    return s;
  return cudaStatus(cudaGraphInstantiate(&e.graphExec, e.graph, 0),
                    "instantiating the CUDA graph");
}

/// WEFT_CUDA_PROFILE=1: once, on the second run, every step is launched
/// alone between two events; the time per step kind and kernel name goes to
/// stderr, heaviest first ("weft-profile rank R: ...").
Status CudaExecutor::profile(Entry &e) {
  const std::vector<Step> &steps = e.steps;
  std::vector<cudaEvent_t> events(steps.size() + 1);
  for (cudaEvent_t &e : events)
    if (Status s = cudaStatus(cudaEventCreate(&e), "profiling"); !s.ok())
      return s;
  Status launched = cudaStatus(cudaEventRecord(events[0], stream), "profiling");
  for (size_t i = 0; i < steps.size() && launched.ok(); ++i) {
    launched = steps[i].bound->launch(stream);
    if (launched.ok())
      launched =
          cudaStatus(cudaEventRecord(events[i + 1], stream), "profiling");
  }
  Status synced = options.comm
                      ? options.comm->synchronize(stream)
                      : cudaStatus(cudaStreamSynchronize(stream), "profiling");
  std::map<std::string, std::pair<double, int>> byName;
  double total = 0;
  for (size_t i = 0; launched.ok() && synced.ok() && i < steps.size(); ++i) {
    float ms = 0;
    cudaEventElapsedTime(&ms, events[i], events[i + 1]);
    const artifact::Step &step = *steps[i].step;
    std::string key = steps[i].label;
    if (key.empty()) {
      key = artifact::Step::Kind_Name(step.kind()) + " " + step.name();
      if (step.outputs_size())
        key += " -> " + shapeString(buffers.at(step.outputs(0)).shape);
    }
    auto &entry = byName[key];
    entry.first += ms;
    entry.second += 1;
    total += ms;
  }
  for (cudaEvent_t e : events)
    cudaEventDestroy(e);
  if (!launched.ok())
    return launched;
  if (!synced.ok())
    return synced;
  std::vector<std::pair<double, std::string>> rows;
  for (auto &[name, v] : byName) {
    char line[200];
    std::snprintf(line, sizeof(line), "%9.3f ms %5.1f%% %5d x %s", v.first,
                  total > 0 ? 100 * v.first / total : 0.0, v.second,
                  name.c_str());
    rows.push_back({v.first, line});
  }
  std::sort(rows.rbegin(), rows.rend());
  std::string out = "weft-profile rank " + std::to_string(rank.plan.rank()) +
                    " entry '" + e.name + "': " + std::to_string(steps.size()) +
                    " steps, " + std::to_string(total) +
                    " ms launched one by one\n";
  for (auto &[ms, line] : rows)
    out += "weft-profile   " + line + "\n";
  std::fputs(out.c_str(), stderr);
  return okStatus();
}

Status CudaExecutor::runImpl(bool fetchOutputs, const std::vector<bool> *only) {
  cudaSetDevice(options.device);
  Entry &e = entry();
  if (e.ranOnce && profiling && !e.profiled) {
    e.profiled = true;
    if (Status s = profile(e); !s.ok())
      return s.withPrefix("profiling: ");
  }
  // An entry's first run launches step by step (faults name their step);
  // later ones replay its steps captured once as a CUDA graph. The inputs
  // were copied in on the same stream before.
  Status launched;
  if (e.ranOnce && options.graph && !e.graphExec)
    launched = capture(e);
  if (launched.ok())
    launched = e.graphExec ? cudaStatus(cudaGraphLaunch(e.graphExec, stream),
                                        "launching the CUDA graph")
                           : launchAll(e);
  for (size_t i = 0; fetchOutputs && i < e.outputIds.size() && launched.ok();
       ++i)
    if (!e.hostOutputs[i].empty() &&
        (!only || (i < only->size() && (*only)[i])))
      launched =
          cudaStatus(cudaMemcpyAsync(e.hostOutputs[i].data(),
                                     buffers.at(e.outputIds[i]).data,
                                     e.hostOutputs[i].size(),
                                     cudaMemcpyDeviceToHost, stream),
                     "copying output '" + outputName(i) + "' to the host");
  Status synced = options.comm ? options.comm->synchronize(stream)
                               : cudaStatus(cudaStreamSynchronize(stream),
                                            "running the plan");
  if (!launched.ok())
    return launched;
  if (!synced.ok())
    return synced;
  e.ranOnce = true;
  return okStatus();
}

InTensor CudaExecutor::output(size_t i) const {
  const DeviceTensor &t = buffers.at(entry().outputIds[i]);
  return InTensor{t.dtype, t.shape, entry().hostOutputs[i].data()};
}

} // namespace weft::runtime::cuda
