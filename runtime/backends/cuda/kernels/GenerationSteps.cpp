// Binding of the generation steps (PAGED_ATTENTION, SAMPLE) to their
// kernels: operand checks, the launch plan for the static shapes, and the
// device workspace of the split context. Refusals never call the CUDA
// runtime.
#include "runtime/backends/cuda/CudaStep.h"
#include "runtime/backends/cuda/kernels/Kernels.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <tuple>

namespace weft::runtime::cuda {

using artifact::Step;
namespace k = kernels;

namespace {

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

/// A step of one or two launches owning a device workspace.
template <typename Params> class WorkspaceStep final : public BoundStep {
public:
  using Launch = cudaError_t (*)(const Params &, cudaStream_t);
  WorkspaceStep(std::string what, Params params, Launch fn, void *workspace)
      : what(std::move(what)), params(params), fn(fn), workspace(workspace) {}
  ~WorkspaceStep() override {
    if (workspace)
      cudaFree(workspace);
  }
  Status launch(cudaStream_t stream) override {
    return cudaStatus(fn(params, stream), what);
  }

private:
  std::string what;
  Params params;
  Launch fn;
  void *workspace;
};

Result<int> multiprocessors() {
  int device = 0, sms = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess)
    return cudaStatus(err, "finding the GPU");
  if (cudaError_t err =
          cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
      err != cudaSuccess)
    return cudaStatus(err, "reading the GPU's multiprocessor count");
  return sms;
}

Result<float *> allocateFloats(int64_t count, const std::string &what) {
  void *p = nullptr;
  if (count == 0)
    return static_cast<float *>(nullptr);
  if (cudaError_t err = cudaMalloc(&p, count * sizeof(float));
      err != cudaSuccess)
    return cudaStatus(err, "allocating the workspace of " + what);
  return static_cast<float *>(p);
}

std::string stepName(const Step &step) {
  return Step::Kind_Name(step.kind()) + " step '" + step.name() + "'";
}

/// Whether paged attention may take its one-launch decode kernel
/// (WEFT_PAGED_DECODE=0 keeps the store, attention and merge launches, for
/// comparison).
bool decodeKernelAllowed() {
  const char *v = std::getenv("WEFT_PAGED_DECODE");
  return !(v && std::string_view(v) == "0");
}

/// The dims of a [1, T, H, D] (or [T, H, D]) operand.
bool tokenHeads(const DeviceTensor &t, int64_t &tokens, int64_t &heads,
                int64_t &dim) {
  if (t.rank() == 4 && t.shape[0] != 1)
    return false;
  if (t.rank() != 3 && t.rank() != 4)
    return false;
  tokens = t.shape[t.rank() - 3];
  heads = t.shape[t.rank() - 2];
  dim = t.shape[t.rank() - 1];
  return true;
}

/// bindPagedAttention, with `rotary` bindPagedAttentionRotary.
Result<std::unique_ptr<BoundStep>>
bindPaged(const Step &step, std::span<const DeviceTensor> inputs,
          std::span<const DeviceTensor> outputs, const PagedRotary *rotary) {
  std::string what = stepName(step);
  auto refuse = [&](const std::string &why) {
    return errorStatus(what + ": " + why);
  };
  if (inputs.size() != 8 || outputs.size() != 1)
    return refuse("takes 8 inputs (q, k, v, k_cache, v_cache, positions, "
                  "token_seq, block_tables) and 1 output, has " +
                  std::to_string(inputs.size()) + " and " +
                  std::to_string(outputs.size()));
  const DeviceTensor &q = inputs[0], &kt = inputs[1], &v = inputs[2];
  const DeviceTensor &kc = inputs[3], &vc = inputs[4];
  const DeviceTensor &pos = inputs[5], &seq = inputs[6], &table = inputs[7];
  const DeviceTensor &out = outputs[0];
  DType dt = q.dtype;
  if (!isFloat(dt))
    return refuse("q is " + dtypeName(dt) + ", not f32, f16 or bf16");
  for (const DeviceTensor *t : {&kt, &v, &kc, &vc, &out})
    if (t->dtype != dt)
      return refuse("q, k, v, the caches and the output need one dtype, "
                    "have " +
                    dtypeName(dt) + " and " + dtypeName(t->dtype));
  int64_t tokens, hq, d, kTokens, hkv, kd, vTokens, vHeads, dv, oTokens, oHeads,
      od;
  if (!tokenHeads(q, tokens, hq, d) || !tokenHeads(kt, kTokens, hkv, kd) ||
      !tokenHeads(v, vTokens, vHeads, dv) ||
      !tokenHeads(out, oTokens, oHeads, od))
    return refuse("q, k, v and the output must be [1, T, heads, dim]");
  if (kTokens != tokens || vTokens != tokens || oTokens != tokens || kd != d ||
      vHeads != hkv || oHeads != hq || od != dv)
    return refuse("q " + shapeString(q.shape) + ", k " + shapeString(kt.shape) +
                  ", v " + shapeString(v.shape) + " and output " +
                  shapeString(out.shape) + " do not agree");
  if (hkv == 0 || hq % hkv != 0)
    return refuse(std::to_string(hq) + " query heads do not share " +
                  std::to_string(hkv) + " kv heads evenly");
  if (d > 256 || dv > 256)
    return refuse("head dims above 256 are not supported");
  if (kc.rank() != 4 || vc.rank() != 4 || kc.shape[2] != hkv ||
      kc.shape[3] != d || vc.shape[2] != hkv || vc.shape[3] != dv ||
      vc.shape[0] != kc.shape[0] || vc.shape[1] != kc.shape[1])
    return refuse("the caches " + shapeString(kc.shape) + " and " +
                  shapeString(vc.shape) +
                  " must be [blocks, block_size, kv heads, dim]");
  int64_t blockSize = kc.shape[1];
  if (step.paged_attention().block_size() != 0 &&
      step.paged_attention().block_size() != blockSize)
    return refuse("block_size " +
                  std::to_string(step.paged_attention().block_size()) +
                  " does not match the cache's " + std::to_string(blockSize));
  if (kc.shape[0] == 0 || blockSize <= 0)
    return refuse("the KV cache has no blocks (the session chose none)");
  if (pos.dtype != DType::I64 || pos.numElements() != tokens)
    return refuse("positions must be i64 of " + std::to_string(tokens) +
                  " elements");
  if (seq.dtype != DType::I32 || seq.numElements() != tokens)
    return refuse("token_seq must be i32 of " + std::to_string(tokens) +
                  " elements");
  if (table.dtype != DType::I32 || table.rank() != 2)
    return refuse("block_tables must be i32 [rows, blocks_per_seq]");

  k::PagedAttentionParams p;
  p.q = q.data;
  p.k = kt.data;
  p.v = v.data;
  p.kCache = kc.data;
  p.vCache = vc.data;
  p.out = out.data;
  p.positions = static_cast<const int64_t *>(pos.data);
  p.tokenSeq = static_cast<const int32_t *>(seq.data);
  p.blockTables = static_cast<const int32_t *>(table.data);
  p.dataType = static_cast<int>(dt);
  p.tokens = tokens;
  p.hq = hq;
  p.hkv = hkv;
  p.d = d;
  p.dv = dv;
  p.blocks = kc.shape[0];
  p.blockSize = blockSize;
  p.rows = table.shape[0];
  p.blocksPerSeq = table.shape[1];
  p.scale = static_cast<float>(step.paged_attention().scale());

  auto aligned = [](const DeviceTensor &t) {
    return reinterpret_cast<uintptr_t>(t.data) % 16 == 0;
  };
  p.decodeKernel = decodeKernelAllowed() &&
                   std::all_of(inputs.begin(), inputs.begin() + 5, aligned) &&
                   aligned(out);

  auto sms = multiprocessors();
  if (!sms.ok())
    return sms.status();
  int64_t floats = k::planPagedAttention(p, *sms);
  if (rotary) {
    // Declined (null) unless the decode kernel runs and rotates whole
    // heads of q's and k's own dtype.
    std::unique_ptr<BoundStep> declined;
    if (!p.decodeKernel || rotary->qStep->rotary().interleaved() !=
                               rotary->kStep->rotary().interleaved())
      return declined;
    for (auto [x, cos, sin, heads] :
         {std::tuple{&rotary->qx, &rotary->qCos, &rotary->qSin, &q},
          std::tuple{&rotary->kx, &rotary->kCos, &rotary->kSin, &kt}})
      if (x->dtype != dt || x->numElements() != heads->numElements() ||
          x->numElements() / d > UINT32_MAX || // 32-bit rotary rows
          x->shape.empty() || x->shape.back() != d || cos->shape.empty() ||
          cos->shape.back() != d || sin->shape.empty() ||
          sin->shape.back() != d || !isFloat(cos->dtype) ||
          !isFloat(sin->dtype))
        return declined;
    auto qTables = rotaryTables(rotary->qx, rotary->qCos, rotary->qSin);
    auto kTables = rotaryTables(rotary->kx, rotary->kCos, rotary->kSin);
    if (!qTables.ok() || !kTables.ok())
      return declined;
    p.rotary = true;
    p.interleaved = rotary->qStep->rotary().interleaved();
    p.qRotary = *qTables;
    p.kRotary = *kTables;
  }
  // The decode kernel's split counters after the partials (ints, as wide
  // as floats), zero before the first launch.
  int64_t counters = p.decodeKernel && p.splits > 1 ? tokens * hkv : 0;
  auto partials = allocateFloats(floats + counters, what);
  if (!partials.ok())
    return partials.status();
  p.partials = *partials;
  if (counters > 0) {
    p.counters = reinterpret_cast<int *>(p.partials + floats);
    cudaError_t err = cudaMemset(p.counters, 0, counters * sizeof(int));
    if (err == cudaSuccess)
      err = cudaStreamSynchronize(cudaStreamLegacy);
    if (err != cudaSuccess) {
      cudaFree(p.partials);
      return cudaStatus(err, "clearing the split counters of " + what);
    }
  }
  if (cudaError_t err = k::preparePagedAttention(p); err != cudaSuccess) {
    cudaFree(p.partials);
    return cudaStatus(err, "preparing " + what);
  }
  return std::unique_ptr<BoundStep>(new WorkspaceStep<k::PagedAttentionParams>(
      "launching " + what, p, k::launchPagedAttention, p.partials));
}

} // namespace

Result<std::unique_ptr<BoundStep>>
bindPagedAttention(const Step &step, std::span<const DeviceTensor> inputs,
                   std::span<const DeviceTensor> outputs) {
  return bindPaged(step, inputs, outputs, nullptr);
}

Result<std::unique_ptr<BoundStep>>
bindPagedAttentionRotary(const Step &step, std::span<const DeviceTensor> inputs,
                         std::span<const DeviceTensor> outputs,
                         const PagedRotary &rotary) {
  return bindPaged(step, inputs, outputs, &rotary);
}

Result<std::unique_ptr<BoundStep>>
bindSample(const Step &step, std::span<const DeviceTensor> inputs,
           std::span<const DeviceTensor> outputs) {
  std::string what = stepName(step);
  auto refuse = [&](const std::string &why) {
    return errorStatus(what + ": " + why);
  };
  if (inputs.size() != 3 || outputs.size() != 1)
    return refuse("takes 3 inputs (logits, params, seeds) and 1 output");
  const DeviceTensor &logits = inputs[0], &params = inputs[1],
                     &seeds = inputs[2], &ids = outputs[0];
  if (!isFloat(logits.dtype))
    return refuse("logits are " + dtypeName(logits.dtype) +
                  ", not f32, f16 or bf16");
  if (!(logits.rank() == 2 || (logits.rank() == 3 && logits.shape[0] == 1)))
    return refuse("logits must be [rows, vocab] or [1, rows, vocab], are " +
                  shapeString(logits.shape));
  int64_t rows = logits.shape[logits.rank() - 2];
  int64_t vocab = logits.shape[logits.rank() - 1];
  if (params.dtype != DType::F32 || params.numElements() != rows * 3)
    return refuse("params must be f32 [" + std::to_string(rows) + ", 3]");
  if (seeds.dtype != DType::I64 || seeds.numElements() != rows * 2)
    return refuse("seeds must be i64 [" + std::to_string(rows) + ", 2]");
  if (ids.dtype != DType::I32 || ids.numElements() != rows)
    return refuse("ids must be i32 [" + std::to_string(rows) + "]");
  if (vocab <= 0 || vocab > INT32_MAX)
    return refuse("a vocabulary of " + std::to_string(vocab) +
                  " tokens is outside (0, 2^31)");
  k::SampleParams p;
  p.logits = logits.data;
  p.params = static_cast<const float *>(params.data);
  p.seeds = static_cast<const int64_t *>(seeds.data);
  p.ids = static_cast<int32_t *>(ids.data);
  p.logitsType = static_cast<int>(logits.dtype);
  p.rows = rows;
  p.vocab = vocab;
  return std::unique_ptr<BoundStep>(new WorkspaceStep<k::SampleParams>(
      "launching " + what, p, k::launchSample, nullptr));
}

} // namespace weft::runtime::cuda
