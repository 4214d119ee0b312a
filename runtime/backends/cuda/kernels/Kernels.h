// The CUDA kernels of the library steps, as plain launch functions: the
// binding code (LibraryStep.cpp) checks a step and fills these parameter
// blocks; the .cu files know nothing of the artifact format.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_KERNELS_H
#define WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_KERNELS_H

#include <cuda_runtime.h>

#include <cstdint>

namespace weft::runtime::cuda::kernels {

/// Element type codes: the values of artifact::DType.
enum ElemType : int {
  kF32 = 1,
  kF16 = 2,
  kBF16 = 3,
  kF64 = 4,
  kI64 = 5,
  kI32 = 6,
  kI16 = 7,
  kI8 = 8,
  kU8 = 9,
  kBool = 10,
  kU16 = 11,
  kU32 = 12,
  kU64 = 13,
};

/// Dims of the index maps below; higher ranks are refused at bind.
constexpr int kMaxRank = 8;

/// Maps a row-major position in `shape` to the element offset
/// sum(index[d] * stride[d]) (stride 0 on broadcast dims). Rank 0 maps
/// everything to 0.
struct IndexMap {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t stride[kMaxRank] = {};
};

//===----------------------------------------------------------------------===//
// ATTENTION
//===----------------------------------------------------------------------===//

struct AttentionParams {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  void *out = nullptr;
  int qType = kF32, kType = kF32, vType = kF32, maskType = kF32, outType = kF32;
  int64_t b = 0, hq = 0, hkv = 0, s = 0, t = 0, d = 0, dv = 0;
  /// Element strides of the mask over [b, hq, s, t] (0 on broadcast dims).
  int64_t maskStride[4] = {};
  /// Element strides of q, k, v and out over (batch, head, position); the
  /// head dim is contiguous. [B, H, S, D] or [B, S, H, D] (seq_major).
  int64_t qStride[3] = {}, kStride[3] = {}, vStride[3] = {}, oStride[3] = {};
  float scale = 1;
  bool causal = false;
  /// Query rows per block of the tensor-core kernel: 32, 64 or 128 (0:
  /// chosen by shape).
  int blockRows = 0;
};

/// Whether the tensor-core kernel runs this shape (f16/bf16 throughout,
/// head dims 64 or 128, 16-byte aligned operands); otherwise a slower
/// kernel of one warp per query row runs it.
bool attentionUsesTensorCores(const AttentionParams &p);
/// Head dims the row kernel takes (d and dv at most this).
constexpr int64_t kMaxRowKernelHeadDim = 256;
/// Raises the dynamic shared memory limit of the kernel `p` uses (once per
/// process and kernel; no stream work).
cudaError_t prepareAttention(const AttentionParams &p);
cudaError_t launchAttention(const AttentionParams &p, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Row-wise float kernels
//===----------------------------------------------------------------------===//

/// LAYER_NORM and RMS_NORM over rows of `inner` elements. `scaleMap` and
/// `biasMap` map an element's position in x to its scale and bias element,
/// or are unused when `scaleByColumn` / `biasByColumn` (element i of the
/// row takes element i).
struct NormParams {
  const void *x = nullptr, *scale = nullptr, *bias = nullptr;
  void *out = nullptr;
  int xType = kF32, scaleType = kF32, biasType = kF32, outType = kF32;
  int64_t rows = 0, inner = 0;
  float epsilon = 0;
  bool rms = false;
  bool scaleByColumn = false, biasByColumn = false;
  IndexMap scaleMap, biasMap;
};
cudaError_t launchNorm(const NormParams &p, cudaStream_t stream);

/// SOFTMAX along an axis of `len` elements `inner` apart.
struct SoftmaxParams {
  const void *x = nullptr;
  void *out = nullptr;
  int xType = kF32, outType = kF32;
  int64_t outer = 0, len = 0, inner = 0;
};
cudaError_t launchSoftmax(const SoftmaxParams &p, cudaStream_t stream);

/// ROTARY over rows of `width` elements, the first `rotaryDim` rotated.
/// cosRows / sinRows map a row's index to its first cos / sin element.
struct RotaryParams {
  const void *x = nullptr, *cos = nullptr, *sin = nullptr;
  void *out = nullptr;
  int xType = kF32, cosType = kF32, sinType = kF32, outType = kF32;
  int64_t rows = 0, width = 0, rotaryDim = 0;
  bool interleaved = false;
  IndexMap cosRows, sinRows;
};
cudaError_t launchRotary(const RotaryParams &p, cudaStream_t stream);

/// SWIGLU: out = gate * sigmoid(gate) * up, elementwise.
struct SwigluParams {
  const void *gate = nullptr, *up = nullptr;
  void *out = nullptr;
  int gateType = kF32, upType = kF32, outType = kF32;
  int64_t n = 0;
};
cudaError_t launchSwiglu(const SwigluParams &p, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Data movement (by element size)
//===----------------------------------------------------------------------===//

/// dst[dstBase + dstMap(i)] = src[srcBase + srcMap(i)] for every position i
/// of `shape`; `modulo[d]` > 0 takes the source index of dim d modulo it
/// (TILE). Both maps share `shape`.
struct StridedCopyParams {
  const void *src = nullptr;
  void *dst = nullptr;
  int elemSize = 1;
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t srcStride[kMaxRank] = {};
  int64_t dstStride[kMaxRank] = {};
  int64_t modulo[kMaxRank] = {};
  int64_t srcBase = 0, dstBase = 0;
};
cudaError_t launchStridedCopy(const StridedCopyParams &p, cudaStream_t stream);

/// A copy whose innermost output dim is not the input's: tiles of
/// [a, b] go through shared memory so that both the reads (contiguous along
/// a in the input) and the writes (along b in the output) are coalesced.
/// dst[dstBatch(n) + i * dstStrideA + j] =
///     src[srcBatch(n) + i + j * srcStrideB].
struct TransposeParams {
  const void *src = nullptr;
  void *dst = nullptr;
  int elemSize = 1;
  int64_t a = 0, b = 0, srcStrideB = 0, dstStrideA = 0, batches = 0;
  IndexMap srcBatch, dstBatch;
};
cudaError_t launchTranspose(const TransposeParams &p, cudaStream_t stream);

/// TRILU over matrices of rows x cols: keeps element (i, j) where
/// j - i >= k (upper) or j - i <= k (lower), else zero.
struct TriluParams {
  const void *src = nullptr;
  void *dst = nullptr;
  int elemSize = 1;
  int64_t mats = 0, rows = 0, cols = 0, k = 0;
  bool upper = false;
};
cudaError_t launchTrilu(const TriluParams &p, cudaStream_t stream);

/// GATHER along an axis and EMBEDDING: out[o, i, :] = data[o, idx(i), :]
/// with chunks of `chunkBytes`. EMBEDDING (`shard`): idx(i) = ids[i] -
/// vocabStart, zero rows outside [0, dim). GATHER: negative indices wrap.
/// Out-of-range indices give zero chunks (the CPU kernels report them).
struct GatherParams {
  const void *data = nullptr, *indices = nullptr;
  void *out = nullptr;
  int indexType = kI64;
  int64_t outer = 0, dim = 0, count = 0, chunkBytes = 0;
  bool shard = false, wrap = true;
  int64_t vocabStart = 0;
};
cudaError_t launchGather(const GatherParams &p, cudaStream_t stream);

/// GATHER_ND: for batch n and tuple t, the chunk at
/// n * batchStride + sum(idx[k] * dataStride[k]) (indices wrapped).
struct GatherNdParams {
  const void *data = nullptr, *indices = nullptr;
  void *out = nullptr;
  int indexType = kI64;
  int elemSize = 1;
  int64_t batches = 0, tuples = 0, depth = 0, chunk = 0, batchStride = 0;
  int64_t dataDim[kMaxRank] = {}, dataStride[kMaxRank] = {};
};
cudaError_t launchGatherNd(const GatherNdParams &p, cudaStream_t stream);

/// GATHER_ELEMENTS: out[i] = data[offMap(i) + idx[i] * axisStride].
struct GatherElementsParams {
  const void *data = nullptr, *indices = nullptr;
  void *out = nullptr;
  int indexType = kI64;
  int elemSize = 1;
  int64_t n = 0, axisDim = 0, axisStride = 0;
  IndexMap offMap;
};
cudaError_t launchGatherElements(const GatherElementsParams &p,
                                 cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

enum ReduceOp : int { kSum = 0, kMean = 1, kMax = 2, kMin = 3, kProd = 4 };

/// REDUCE: output element o combines the input elements at
/// keptMap(o) + reducedMap(r) for r in [0, count). Floats accumulate in
/// double, integers (and BOOL) in int64, like the CPU kernel.
struct ReduceParams {
  const void *x = nullptr;
  void *out = nullptr;
  int type = kF32;
  int op = kSum;
  int64_t outN = 0, count = 0;
  IndexMap keptMap, reducedMap;
};
cudaError_t launchReduce(const ReduceParams &p, cudaStream_t stream);

/// CUMSUM along an axis of `len` elements `inner` apart.
struct CumsumParams {
  const void *x = nullptr;
  void *out = nullptr;
  int type = kF32;
  int64_t lines = 0, len = 0, inner = 0;
  bool exclusive = false, reverse = false;
};
cudaError_t launchCumsum(const CumsumParams &p, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Generation: PAGED_ATTENTION, SAMPLE
//===----------------------------------------------------------------------===//

/// A ROTARY step's cos and sin: a rotary row (the leading dims of its x)
/// to the first element of its cos and of its sin.
struct RotaryTables {
  const void *cos = nullptr, *sin = nullptr;
  int cosType = kF32, sinType = kF32;
  IndexMap cosRows, sinRows;
};

/// PAGED_ATTENTION: q [T, hq, d], k [T, hkv, d], v [T, hkv, dv] and the
/// caches [blocks, blockSize, hkv, d | dv] (all of `dataType`); positions
/// i64 [T], tokenSeq i32 [T], blockTables i32 [rows, blocksPerSeq]. Each
/// kernel block takes `tileTokens` consecutive tokens and one kv head, and
/// split s of `splits` takes the chunks of kPagedChunk positions s, s +
/// splits, s + 2 * splits, ... (so a short context still spreads over the
/// splits that max_seq fixed); with several splits the partial results
/// (partials) are merged by the decode kernel's last split, or by a second
/// kernel. `splitLen` is the positions a
/// split covers at most, ceil(longest context / splits) rounded up to
/// chunks.
struct PagedAttentionParams {
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  void *kCache = nullptr, *vCache = nullptr, *out = nullptr;
  const int64_t *positions = nullptr;
  const int32_t *tokenSeq = nullptr, *blockTables = nullptr;
  int dataType = kF32;
  int64_t tokens = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  int64_t blocks = 0, blockSize = 0, rows = 0, blocksPerSeq = 0;
  float scale = 1;
  int tileTokens = 1, splits = 1;
  int64_t splitLen = 0;
  /// [tokens, hq, splits, dv + 2] floats (the running max and sum last);
  /// needed when splits > 1.
  float *partials = nullptr;
  /// The one-launch decode kernel: set by the caller where it may run (the
  /// operands 16-byte aligned), kept by planPagedAttention where it takes
  /// the shape. It needs `counters`, [tokens, hkv] ints, zero before the
  /// first launch (each launch leaves them zero), when splits > 1.
  bool decodeKernel = false;
  int *counters = nullptr;
  /// Only with decodeKernel: q and k arrive unrotated, and the kernel
  /// applies ROTARY to them (the whole head, RotaryParams's arithmetic,
  /// rounded to dataType), as the ROTARY steps it stands in for would
  /// have: q's rotary rows are token * hq + head, k's token * hkv + head.
  bool rotary = false, interleaved = false;
  RotaryTables qRotary, kRotary;
};

/// Positions one pass of the attention kernel stages in shared memory.
constexpr int kPagedChunk = 32;
/// Chooses tileTokens, splits and splitLen for `p` (tokens, heads, the
/// longest context blocksPerSeq * blockSize) on a GPU of `sms`
/// multiprocessors; returns the floats of partials it needs (0: none).
int64_t planPagedAttention(PagedAttentionParams &p, int sms);
/// Raises the kernel's dynamic shared memory limit for `p` (no stream work).
cudaError_t preparePagedAttention(const PagedAttentionParams &p);
cudaError_t launchPagedAttention(const PagedAttentionParams &p,
                                 cudaStream_t stream);

/// SAMPLE over `rows` rows of `vocab` logits (f32, f16 or bf16): params f32
/// [rows, 3] (temperature, top_k, top_p), seeds i64 [rows, 2] (seed,
/// position); ids i32 [rows].
struct SampleParams {
  const void *logits = nullptr;
  const float *params = nullptr;
  const int64_t *seeds = nullptr;
  int32_t *ids = nullptr;
  int logitsType = kF32;
  int64_t rows = 0, vocab = 0;
};
cudaError_t launchSample(const SampleParams &p, cudaStream_t stream);

//===----------------------------------------------------------------------===//
// Skinny GEMM (decode projections)
//===----------------------------------------------------------------------===//

/// out[m, n] = sum_k a[m, k] w[n, k] (+ bias[n]) (gelu) (+ residual[m, n])
/// for a few rows m <= kGemvMaxRows (w as a Linear's weight). a, w, bias
/// and residual are of `type` (f16 or bf16), out of `outType` (type or
/// f32).
///
/// One launch may compute several such products of the same a
/// (`segments`: the q, k and v projections), or (`swiglu`) the pair
/// gate = a w0^T, up = a w1^T of equal n, storing only silu(gate) * up
/// with gate, up and silu(gate) each rounded to `type` first, as the
/// separate steps would. `partials` holds splitK * m * n floats where the
/// chosen split needs it (one segment, without `swiglu` or a norm, only).
struct GemvSegment {
  const void *w = nullptr, *bias = nullptr, *residual = nullptr;
  void *out = nullptr;
  int64_t n = 0;
};
constexpr int kGemvMaxSegments = 3;
struct GemvParams {
  const void *a = nullptr;
  GemvSegment seg[kGemvMaxSegments];
  int segments = 1;
  int type = kBF16, outType = kBF16;
  int64_t m = 0, k = 0;
  bool gelu = false, swiglu = false;
  // With normX: a = RMS_NORM(normX) * normW (normW [k]), computed by every
  // block into shared memory as the norm step computes it (f32, one
  // rounding to `type`), instead of read.
  const void *normX = nullptr, *normW = nullptr;
  float normEps = 0;
  // Launched as a programmatic dependent of the kernel before it (Hopper
  // and later): its blocks start while that kernel drains, prefetch the
  // first bytes of their weight rows into the L2, and only then wait for
  // its results.
  bool dependent = false;
  // Chosen by planGemv: the split of k and the columns a warp takes.
  int splitK = 1, warpCols = 1;
  float *partials = nullptr;
};
/// The skinny GEMM takes products of at most this many rows: at 8 rows
/// cuBLASLt read the weight at 2749 GB/s back to back where it read 2087
/// (H100, k 4096, n 14336), and a grouped launch that normalizes 8 rows in
/// every block lost to separate launches (docs/perf.md); at 4 they were
/// even.
constexpr int64_t kGemvMaxRows = 4;
/// Chooses splitK and warpCols for `p` on `sms` multiprocessors with at
/// most `maxPartials` floats of partial sums; the floats it needs (0:
/// none).
int64_t planGemv(GemvParams &p, int sms, int64_t maxPartials);
/// Shared memory a block of `p`'s launch needs beyond the static limit is
/// allowed (once per kernel, before a launch or a capture).
cudaError_t prepareGemv(const GemvParams &p);
/// The most shared memory a normalizing launch may take (m x k 16-bit
/// activations): under an H100's 227 KiB a block, leaving room for two.
constexpr int64_t kGemvNormMaxBytes = 96 << 10;
cudaError_t launchGemv(const GemvParams &p, cudaStream_t stream);

} // namespace weft::runtime::cuda::kernels

#endif // WEFT_RUNTIME_BACKENDS_CUDA_KERNELS_KERNELS_H
