// Binding of the library steps to the CUDA kernels: the step is checked by
// the step library's checks (one definition of what a valid step is),
// then turned into the launch parameters of its kernel. Refusals never call
// the CUDA runtime, so they work without a GPU.
#include "runtime/backends/cuda/CudaStep.h"
#include "runtime/backends/cuda/kernels/Kernels.h"
#include "runtime/steps/StepChecks.h"

#include <climits>
#include <cstdlib>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace weft::runtime::cuda {

using artifact::Step;
namespace k = kernels;

namespace {

using Launch = std::function<cudaError_t(cudaStream_t)>;

/// A step run by one or more kernel launches.
class LibraryStep final : public BoundStep {
public:
  LibraryStep(std::string what, std::vector<Launch> launches)
      : what(std::move(what)), launches(std::move(launches)) {}

  Status launch(cudaStream_t stream) override {
    for (const Launch &l : launches)
      if (cudaError_t err = l(stream); err != cudaSuccess)
        return cudaStatus(err, what);
    return okStatus();
  }

private:
  std::string what;
  std::vector<Launch> launches;
};

using Bound = Result<std::unique_ptr<BoundStep>>;

/// What binding knows of a step: the step, its operands (device pointers
/// as the CPU checks' views) and a name for messages.
struct Binding {
  const Step &step;
  std::span<const DeviceTensor> in, out;
  std::string what; // "ATTENTION step 'name'"

  Bound bind(std::vector<Launch> launches) const {
    return std::unique_ptr<BoundStep>(
        new LibraryStep("launching " + what, std::move(launches)));
  }
  Status refuse(const std::string &why) const {
    return errorStatus(what + ": " + why);
  }
};

int typeOf(const DeviceTensor &t) { return static_cast<int>(t.dtype); }

/// Position-to-offset map over `shape` with element `strides`, size-1 dims
/// dropped and dims that are contiguous in the strides merged.
Result<k::IndexMap> indexMap(const Shape &shape, const Shape &strides) {
  Shape dims, st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1)
      continue;
    if (!dims.empty() && st.back() == strides[d] * shape[d]) {
      dims.back() *= shape[d];
      st.back() = strides[d];
      continue;
    }
    dims.push_back(shape[d]);
    st.push_back(strides[d]);
  }
  if (dims.size() > static_cast<size_t>(k::kMaxRank))
    return errorStatus("an index map of rank " + std::to_string(dims.size()) +
                       " exceeds the kernels' limit of " +
                       std::to_string(k::kMaxRank));
  k::IndexMap m;
  m.rank = static_cast<int>(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    m.shape[d] = dims[d];
    m.stride[d] = st[d];
  }
  return m;
}

/// One dim of a strided copy.
struct CopyDim {
  int64_t size, src, dst, modulo;
};

/// A strided copy of `dims` (size-1 dims dropped, contiguous dims merged).
Result<k::StridedCopyParams> stridedCopy(const void *src, int64_t srcBase,
                                         void *dst, int64_t dstBase,
                                         int elemSize,
                                         const std::vector<CopyDim> &dims) {
  std::vector<CopyDim> merged;
  for (const CopyDim &d : dims) {
    if (d.size == 1)
      continue;
    if (!merged.empty()) {
      CopyDim &o = merged.back();
      if (o.modulo == 0 && d.modulo == 0 && o.src == d.src * d.size &&
          o.dst == d.dst * d.size) {
        o.size *= d.size;
        o.src = d.src;
        o.dst = d.dst;
        continue;
      }
    }
    merged.push_back(d);
  }
  if (merged.size() > static_cast<size_t>(k::kMaxRank))
    return errorStatus("a copy of rank " + std::to_string(merged.size()) +
                       " (after merging contiguous dims) exceeds the "
                       "kernels' limit of " +
                       std::to_string(k::kMaxRank));
  // Moves w elements at a time when the innermost dim is contiguous on both
  // sides and everything else (strides, bases, addresses) is a multiple of
  // w elements: most copies then move 16-byte words.
  for (int64_t w = 16 / elemSize; w > 1 && !merged.empty(); w /= 2) {
    CopyDim &inner = merged.back();
    bool fits = inner.src == 1 && inner.dst == 1 && inner.size % w == 0 &&
                inner.modulo % w == 0 && srcBase % w == 0 && dstBase % w == 0 &&
                reinterpret_cast<uintptr_t>(src) % (w * elemSize) == 0 &&
                reinterpret_cast<uintptr_t>(dst) % (w * elemSize) == 0;
    for (size_t d = 0; fits && d + 1 < merged.size(); ++d)
      fits = merged[d].src % w == 0 && merged[d].dst % w == 0;
    if (!fits)
      continue;
    inner.size /= w;
    inner.modulo /= w;
    for (size_t d = 0; d + 1 < merged.size(); ++d) {
      merged[d].src /= w;
      merged[d].dst /= w;
    }
    srcBase /= w;
    dstBase /= w;
    elemSize *= static_cast<int>(w);
    break;
  }
  k::StridedCopyParams p;
  p.src = src;
  p.dst = dst;
  p.srcBase = srcBase;
  p.dstBase = dstBase;
  p.elemSize = elemSize;
  p.rank = static_cast<int>(merged.size());
  for (size_t d = 0; d < merged.size(); ++d) {
    p.shape[d] = merged[d].size;
    p.srcStride[d] = merged[d].src;
    p.dstStride[d] = merged[d].dst;
    p.modulo[d] = merged[d].modulo;
  }
  return p;
}

/// Copies into a contiguous output of `outShape`, element i of which is
/// read at srcBase + sum(index[d] * srcStrides[d]).
Bound bindGatherCopy(const Binding &b, int64_t srcBase, const Shape &srcStrides,
                     const Shape &modulo = {}) {
  const DeviceTensor &in = b.in[0], &out = b.out[0];
  Shape dstStrides = steps::contiguousStrides(out.shape);
  std::vector<CopyDim> dims;
  for (size_t d = 0; d < out.shape.size(); ++d)
    dims.push_back({out.shape[d], srcStrides[d], dstStrides[d],
                    modulo.empty() ? 0 : modulo[d]});
  auto p = stridedCopy(in.data, srcBase, out.data, 0,
                       static_cast<int>(dtypeSize(in.dtype)), dims);
  if (!p.ok())
    return b.refuse(p.message());
  k::StridedCopyParams params = *p;
  return b.bind(
      {[params](cudaStream_t s) { return k::launchStridedCopy(params, s); }});
}

//===----------------------------------------------------------------------===//
// Per kind
//===----------------------------------------------------------------------===//

Bound bindAttention(const Binding &b) {
  const DeviceTensor &q = b.in[0], &kt = b.in[1], &v = b.in[2];
  k::AttentionParams p;
  p.q = q.data;
  p.k = kt.data;
  p.v = v.data;
  p.out = b.out[0].data;
  p.qType = typeOf(q);
  p.kType = typeOf(kt);
  p.vType = typeOf(v);
  p.outType = typeOf(b.out[0]);
  // [B, H, S, D], or [B, S, H, D] when seq_major.
  const bool seqMajor = b.step.attention().seq_major();
  const int hd = seqMajor ? 2 : 1, sd = seqMajor ? 1 : 2;
  p.b = q.shape[0];
  p.hq = q.shape[hd];
  p.s = q.shape[sd];
  p.d = q.shape[3];
  p.hkv = kt.shape[hd];
  p.t = kt.shape[sd];
  p.dv = v.shape[3];
  auto strides = [&](const DeviceTensor &x, int64_t(&st)[3]) {
    Shape rowMajor = steps::contiguousStrides(x.shape);
    st[0] = rowMajor[0];
    st[1] = rowMajor[hd];
    st[2] = rowMajor[sd];
  };
  strides(q, p.qStride);
  strides(kt, p.kStride);
  strides(v, p.vStride);
  strides(b.out[0], p.oStride);
  // A tuning knob for benchmarks: the tensor-core kernel's query rows per
  // block (64 or 128) instead of its choice by shape.
  if (const char *rows = std::getenv("WEFT_ATTENTION_BLOCK_ROWS"))
    p.blockRows = std::atoi(rows);
  p.scale = static_cast<float>(b.step.attention().scale());
  p.causal = b.step.attention().causal();
  if (b.in.size() == 4) {
    const DeviceTensor &mask = b.in[3];
    p.mask = mask.data;
    p.maskType = typeOf(mask);
    Shape st = steps::broadcastStrides(mask.shape, Shape{p.b, p.hq, p.s, p.t});
    for (int d = 0; d < 4; ++d)
      p.maskStride[d] = st[d];
  }
  if (!k::attentionUsesTensorCores(p) &&
      (p.d > k::kMaxRowKernelHeadDim || p.dv > k::kMaxRowKernelHeadDim))
    return b.refuse("head dims " + std::to_string(p.d) + " (q, k) and " +
                    std::to_string(p.dv) +
                    " (v) need the tensor-core kernel (f16 or bf16 "
                    "throughout, both 64 or both 128, 16-byte aligned) or "
                    "at most " +
                    std::to_string(k::kMaxRowKernelHeadDim));
  if (cudaError_t err = k::prepareAttention(p); err != cudaSuccess)
    return cudaStatus(err, "preparing " + b.what);
  return b.bind({[p](cudaStream_t s) { return k::launchAttention(p, s); }});
}

/// Whether a broadcast operand of a norm gives element i of every row
/// element i (its strides over x are 0 before `axis` and row-major after).
bool byColumn(const Shape &x, const Shape &strides, int64_t axis) {
  Shape rowMajor = steps::contiguousStrides(x);
  for (size_t d = 0; d < x.size(); ++d) {
    if (x[d] == 1)
      continue;
    int64_t want = static_cast<int64_t>(d) < axis ? 0 : rowMajor[d];
    if (strides[d] != want)
      return false;
  }
  return true;
}

Bound bindNorm(const Binding &b, bool rms) {
  const DeviceTensor &x = b.in[0];
  int64_t axis = *steps::normalizeAxis(b.step.norm().axis(), x.rank());
  k::NormParams p;
  p.x = x.data;
  p.out = b.out[0].data;
  p.xType = typeOf(x);
  p.outType = typeOf(b.out[0]);
  p.inner = steps::product(x.shape, axis, x.shape.size());
  p.rows = p.inner ? x.numElements() / p.inner : 0;
  p.epsilon = static_cast<float>(b.step.norm().epsilon());
  p.rms = rms;
  if (p.rows > INT_MAX)
    return b.refuse(std::to_string(p.rows) + " rows exceed a grid's " +
                    std::to_string(INT_MAX));
  for (size_t i = 1; i < b.in.size(); ++i) {
    Shape st = steps::broadcastStrides(b.in[i].shape, x.shape);
    bool column = byColumn(x.shape, st, axis);
    auto map = indexMap(x.shape, st);
    if (!column && !map.ok())
      return b.refuse((i == 1 ? "scale: " : "bias: ") + map.message());
    (i == 1 ? p.scale : p.bias) = b.in[i].data;
    (i == 1 ? p.scaleType : p.biasType) = typeOf(b.in[i]);
    (i == 1 ? p.scaleByColumn : p.biasByColumn) = column;
    if (!column)
      (i == 1 ? p.scaleMap : p.biasMap) = *map;
  }
  return b.bind({[p](cudaStream_t s) { return k::launchNorm(p, s); }});
}

Bound bindSoftmax(const Binding &b) {
  const DeviceTensor &x = b.in[0];
  int64_t axis = *steps::normalizeAxis(b.step.softmax().axis(), x.rank());
  k::SoftmaxParams p;
  p.x = x.data;
  p.out = b.out[0].data;
  p.xType = typeOf(x);
  p.outType = typeOf(b.out[0]);
  p.len = x.shape[axis];
  p.inner = steps::product(x.shape, axis + 1, x.shape.size());
  p.outer = p.len && p.inner ? x.numElements() / (p.len * p.inner) : 0;
  if (p.inner == 1 && p.outer > INT_MAX)
    return b.refuse(std::to_string(p.outer) + " rows exceed a grid's " +
                    std::to_string(INT_MAX));
  return b.bind({[p](cudaStream_t s) { return k::launchSoftmax(p, s); }});
}

Bound bindRotary(const Binding &b) {
  const DeviceTensor &x = b.in[0];
  k::RotaryParams p;
  p.x = x.data;
  p.out = b.out[0].data;
  p.xType = typeOf(x);
  p.outType = typeOf(b.out[0]);
  p.width = x.shape.back();
  p.rows = p.width ? x.numElements() / p.width : 0;
  p.rotaryDim = b.in[1].shape.back();
  p.interleaved = b.step.rotary().interleaved();
  auto tables = rotaryTables(x, b.in[1], b.in[2]);
  if (!tables.ok())
    return b.refuse(tables.message());
  p.cos = tables->cos;
  p.sin = tables->sin;
  p.cosType = tables->cosType;
  p.sinType = tables->sinType;
  p.cosRows = tables->cosRows;
  p.sinRows = tables->sinRows;
  return b.bind({[p](cudaStream_t s) { return k::launchRotary(p, s); }});
}

Bound bindSwiglu(const Binding &b) {
  k::SwigluParams p;
  p.gate = b.in[0].data;
  p.up = b.in[1].data;
  p.out = b.out[0].data;
  p.gateType = typeOf(b.in[0]);
  p.upType = typeOf(b.in[1]);
  p.outType = typeOf(b.out[0]);
  p.n = b.out[0].numElements();
  return b.bind({[p](cudaStream_t s) { return k::launchSwiglu(p, s); }});
}

Bound bindEmbedding(const Binding &b) {
  const DeviceTensor &table = b.in[0], &ids = b.in[1];
  k::GatherParams p;
  p.data = table.data;
  p.indices = ids.data;
  p.out = b.out[0].data;
  p.indexType = typeOf(ids);
  p.outer = 1;
  p.dim = table.shape[0];
  p.count = ids.numElements();
  p.chunkBytes = steps::product(table.shape, 1, table.shape.size()) *
                 dtypeSize(table.dtype);
  p.shard = b.step.embedding().has_vocab_start();
  p.vocabStart = b.step.embedding().vocab_start();
  p.wrap = false;
  return b.bind({[p](cudaStream_t s) { return k::launchGather(p, s); }});
}

Bound bindGather(const Binding &b) {
  const DeviceTensor &data = b.in[0], &idx = b.in[1];
  int64_t axis = *steps::normalizeAxis(b.step.gather().axis(), data.rank());
  k::GatherParams p;
  p.data = data.data;
  p.indices = idx.data;
  p.out = b.out[0].data;
  p.indexType = typeOf(idx);
  p.outer = steps::product(data.shape, 0, axis);
  p.dim = data.shape[axis];
  p.count = idx.numElements();
  p.chunkBytes = steps::product(data.shape, axis + 1, data.shape.size()) *
                 dtypeSize(data.dtype);
  p.wrap = true;
  return b.bind({[p](cudaStream_t s) { return k::launchGather(p, s); }});
}

Bound bindGatherNd(const Binding &b) {
  const DeviceTensor &data = b.in[0], &idx = b.in[1];
  int64_t batchDims = b.step.gather().batch_dims();
  int64_t depth = idx.shape.back();
  if (depth > k::kMaxRank)
    return b.refuse("index depth " + std::to_string(depth) +
                    " exceeds the kernel's limit of " +
                    std::to_string(k::kMaxRank));
  Shape strides = steps::contiguousStrides(data.shape);
  k::GatherNdParams p;
  p.data = data.data;
  p.indices = idx.data;
  p.out = b.out[0].data;
  p.indexType = typeOf(idx);
  p.elemSize = static_cast<int>(dtypeSize(data.dtype));
  p.batches = steps::product(data.shape, 0, batchDims);
  p.batchStride = steps::product(data.shape, batchDims, data.shape.size());
  p.tuples = steps::product(idx.shape, batchDims, idx.shape.size() - 1);
  p.depth = depth;
  p.chunk = steps::product(data.shape, batchDims + depth, data.shape.size());
  for (int64_t i = 0; i < depth; ++i) {
    p.dataDim[i] = data.shape[batchDims + i];
    p.dataStride[i] = strides[batchDims + i];
  }
  return b.bind({[p](cudaStream_t s) { return k::launchGatherNd(p, s); }});
}

Bound bindGatherElements(const Binding &b) {
  const DeviceTensor &data = b.in[0], &idx = b.in[1];
  int64_t axis = *steps::normalizeAxis(b.step.gather().axis(), data.rank());
  Shape strides = steps::contiguousStrides(data.shape), offStrides = strides;
  offStrides[axis] = 0;
  auto map = indexMap(idx.shape, offStrides);
  if (!map.ok())
    return b.refuse(map.message());
  k::GatherElementsParams p;
  p.data = data.data;
  p.indices = idx.data;
  p.out = b.out[0].data;
  p.indexType = typeOf(idx);
  p.elemSize = static_cast<int>(dtypeSize(data.dtype));
  p.n = idx.numElements();
  p.axisDim = data.shape[axis];
  p.axisStride = strides[axis];
  p.offMap = *map;
  return b.bind(
      {[p](cudaStream_t s) { return k::launchGatherElements(p, s); }});
}

Bound bindReduce(const Binding &b) {
  const DeviceTensor &x = b.in[0];
  Shape axes = toShape(b.step.reduce().axes());
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t a : axes)
    reduced[a] = true;
  Shape strides = steps::contiguousStrides(x.shape);
  Shape keptShape, keptStrides, redShape, redStrides;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    (reduced[d] ? redShape : keptShape).push_back(x.shape[d]);
    (reduced[d] ? redStrides : keptStrides).push_back(strides[d]);
  }
  auto kept = indexMap(keptShape, keptStrides);
  auto red = indexMap(redShape, redStrides);
  if (!kept.ok() || !red.ok())
    return b.refuse(kept.ok() ? red.message() : kept.message());
  k::ReduceParams p;
  p.x = x.data;
  p.out = b.out[0].data;
  p.type = typeOf(x);
  p.op = static_cast<int>(b.step.reduce().kind());
  p.outN = b.out[0].numElements();
  p.count = runtime::numElements(redShape);
  p.keptMap = *kept;
  p.reducedMap = *red;
  return b.bind({[p](cudaStream_t s) { return k::launchReduce(p, s); }});
}

Bound bindCumsum(const Binding &b) {
  const DeviceTensor &x = b.in[0];
  int64_t axis = *steps::normalizeAxis(b.step.cumsum().axis(), x.rank());
  k::CumsumParams p;
  p.x = x.data;
  p.out = b.out[0].data;
  p.type = typeOf(x);
  p.len = x.shape[axis];
  p.inner = steps::product(x.shape, axis + 1, x.shape.size());
  p.lines = p.len && p.inner ? x.numElements() / p.len : 0;
  p.exclusive = b.step.cumsum().exclusive();
  p.reverse = b.step.cumsum().reverse();
  return b.bind({[p](cudaStream_t s) { return k::launchCumsum(p, s); }});
}

/// The tiled form of a transpose that moves the innermost dim, when its
/// merged copy has one: the output's innermost dim `b` read with a stride,
/// and another dim `a` read contiguously.
std::optional<k::TransposeParams>
tiledTranspose(const k::StridedCopyParams &c) {
  int last = c.rank - 1;
  if (c.rank < 2 || c.dstStride[last] != 1 || c.srcStride[last] == 1 ||
      c.elemSize > 8)
    return std::nullopt;
  int a = -1;
  for (int d = 0; d < last; ++d)
    if (c.srcStride[d] == 1)
      a = d;
  int64_t tilesA = a < 0 ? 0 : (c.shape[a] + 31) / 32;
  if (a < 0 || tilesA > 65535)
    return std::nullopt;
  k::TransposeParams t;
  t.src = c.src;
  t.dst = c.dst;
  t.elemSize = c.elemSize;
  t.a = c.shape[a];
  t.b = c.shape[last];
  t.srcStrideB = c.srcStride[last];
  t.dstStrideA = c.dstStride[a];
  t.batches = 1;
  for (int d = 0; d < last; ++d) {
    if (d == a)
      continue;
    k::IndexMap *maps[] = {&t.srcBatch, &t.dstBatch};
    for (int m = 0; m < 2; ++m) {
      maps[m]->shape[maps[m]->rank] = c.shape[d];
      maps[m]->stride[maps[m]->rank] = m ? c.dstStride[d] : c.srcStride[d];
      ++maps[m]->rank;
    }
    t.batches *= c.shape[d];
  }
  // The merged copy's bases are 0 for a transpose.
  return t;
}

Bound bindTranspose(const Binding &b) {
  Shape perm = toShape(b.step.transpose().perm());
  const DeviceTensor &in = b.in[0], &out = b.out[0];
  Shape inStrides = steps::contiguousStrides(in.shape);
  Shape outStrides = steps::contiguousStrides(out.shape);
  std::vector<CopyDim> dims;
  for (size_t d = 0; d < perm.size(); ++d)
    dims.push_back({out.shape[d], inStrides[perm[d]], outStrides[d], 0});
  auto p = stridedCopy(in.data, 0, out.data, 0,
                       static_cast<int>(dtypeSize(in.dtype)), dims);
  if (!p.ok())
    return b.refuse(p.message());
  if (auto tiled = tiledTranspose(*p))
    return b.bind(
        {[t = *tiled](cudaStream_t s) { return k::launchTranspose(t, s); }});
  k::StridedCopyParams params = *p;
  return b.bind(
      {[params](cudaStream_t s) { return k::launchStridedCopy(params, s); }});
}

Bound bindSlice(const Binding &b) {
  Shape starts = toShape(b.step.slice().starts());
  Shape sliceSteps = toShape(b.step.slice().steps());
  const Shape &outShape = b.out[0].shape;
  Shape inStrides = runtime::steps::contiguousStrides(b.in[0].shape), strides;
  int64_t base = 0;
  for (size_t d = 0; d < inStrides.size(); ++d) {
    // An empty dim may start at `dim`; nothing is read there.
    if (outShape[d] > 0)
      base += starts[d] * inStrides[d];
    strides.push_back(sliceSteps[d] * inStrides[d]);
  }
  return bindGatherCopy(b, base, strides);
}

Bound bindTile(const Binding &b) {
  const Shape &in = b.in[0].shape, &out = b.out[0].shape;
  Shape modulo(in.size(), 0);
  for (size_t d = 0; d < in.size(); ++d)
    if (out[d] != in[d])
      modulo[d] = in[d];
  return bindGatherCopy(b, 0, steps::contiguousStrides(in), modulo);
}

Bound bindBroadcast(const Binding &b) {
  return bindGatherCopy(b, 0,
                        steps::broadcastStrides(b.in[0].shape, b.out[0].shape));
}

Bound bindConcat(const Binding &b) {
  const DeviceTensor &out = b.out[0];
  int64_t axis = *steps::normalizeAxis(b.step.concat().axis(), out.rank());
  int64_t outer = steps::product(out.shape, 0, axis);
  int64_t outChunk = steps::product(out.shape, axis, out.shape.size());
  int elemSize = static_cast<int>(dtypeSize(out.dtype));
  std::vector<Launch> launches;
  int64_t at = 0;
  for (const DeviceTensor &in : b.in) {
    int64_t chunk = steps::product(in.shape, axis, in.shape.size());
    auto p = stridedCopy(in.data, 0, out.data, at, elemSize,
                         {{outer, chunk, outChunk, 0}, {chunk, 1, 1, 0}});
    if (!p.ok())
      return b.refuse(p.message());
    k::StridedCopyParams params = *p;
    launches.push_back(
        [params](cudaStream_t s) { return k::launchStridedCopy(params, s); });
    at += chunk;
  }
  return b.bind(std::move(launches));
}

Bound bindTrilu(const Binding &b) {
  const DeviceTensor &in = b.in[0];
  k::TriluParams p;
  p.src = in.data;
  p.dst = b.out[0].data;
  p.elemSize = static_cast<int>(dtypeSize(in.dtype));
  p.rows = in.shape[in.rank() - 2];
  p.cols = in.shape[in.rank() - 1];
  p.mats = p.rows > 0 && p.cols > 0 ? in.numElements() / (p.rows * p.cols) : 0;
  p.k = b.step.trilu().k();
  p.upper = b.step.trilu().upper();
  return b.bind({[p](cudaStream_t s) { return k::launchTrilu(p, s); }});
}

} // namespace

Result<k::RotaryTables> rotaryTables(const DeviceTensor &x,
                                     const DeviceTensor &cos,
                                     const DeviceTensor &sin) {
  k::RotaryTables t;
  t.cos = cos.data;
  t.sin = sin.data;
  t.cosType = typeOf(cos);
  t.sinType = typeOf(sin);
  Shape rowShape(x.shape.begin(), x.shape.end() - 1), rotated = x.shape;
  rotated.back() = cos.shape.back();
  for (int i = 1; i <= 2; ++i) {
    Shape st = steps::broadcastStrides((i == 1 ? cos : sin).shape, rotated);
    st.pop_back();
    auto map = indexMap(rowShape, st);
    if (!map.ok())
      return errorStatus((i == 1 ? "cos: " : "sin: ") + map.message());
    (i == 1 ? t.cosRows : t.sinRows) = *map;
  }
  return t;
}

Result<std::unique_ptr<BoundStep>>
bindLibraryStep(const Step &step, std::span<const DeviceTensor> inputs,
                std::span<const DeviceTensor> outputs) {
  std::string kind = Step::Kind_IsValid(step.kind())
                         ? Step::Kind_Name(step.kind())
                         : "kind " + std::to_string(step.kind());
  Binding b{step, inputs, outputs, kind + " step '" + step.name() + "'"};
  switch (step.kind()) {
  case Step::ELEMENTWISE:
  case Step::GEMM:
  case Step::COPY:
  case Step::COLLECTIVE:
  case Step::SEND:
  case Step::RECV:
    return b.refuse("not a library step (the CUDA executor runs " + kind +
                    " itself)");
  case Step::PAGED_ATTENTION:
    return bindPagedAttention(step, inputs, outputs);
  case Step::SAMPLE:
    return bindSample(step, inputs, outputs);
  default:
    break;
  }
  // The CPU checks see the device pointers but never read through them.
  std::vector<InTensor> in;
  std::vector<OutTensor> out;
  for (const DeviceTensor &t : inputs)
    in.push_back({t.dtype, t.shape, static_cast<const std::byte *>(t.data)});
  for (const DeviceTensor &t : outputs)
    out.push_back({t.dtype, t.shape, static_cast<std::byte *>(t.data)});
  if (Status s = steps::checkStep(steps::StepArgs{step, in, out}); !s.ok())
    return b.refuse(s.message());
  for (const DeviceTensor &t : outputs)
    if (t.numElements() > 0 && !t.data)
      return b.refuse("an output has no device memory");

  switch (step.kind()) {
  case Step::ATTENTION:
    return bindAttention(b);
  case Step::LAYER_NORM:
    return bindNorm(b, /*rms=*/false);
  case Step::RMS_NORM:
    return bindNorm(b, /*rms=*/true);
  case Step::SOFTMAX:
    return bindSoftmax(b);
  case Step::ROTARY:
    return bindRotary(b);
  case Step::SWIGLU:
    return bindSwiglu(b);
  case Step::EMBEDDING:
    return bindEmbedding(b);
  case Step::GATHER:
    return bindGather(b);
  case Step::GATHER_ND:
    return bindGatherNd(b);
  case Step::GATHER_ELEMENTS:
    return bindGatherElements(b);
  case Step::REDUCE:
    return bindReduce(b);
  case Step::CUMSUM:
    return bindCumsum(b);
  case Step::TRANSPOSE:
    return bindTranspose(b);
  case Step::SLICE:
    return bindSlice(b);
  case Step::CONCAT:
    return bindConcat(b);
  case Step::TILE:
    return bindTile(b);
  case Step::BROADCAST:
    return bindBroadcast(b);
  case Step::TRILU:
    return bindTrilu(b);
  default:
    return b.refuse("no CUDA kernel for this kind");
  }
}

} // namespace weft::runtime::cuda
