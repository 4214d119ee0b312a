// The step library's checks, one per step kind, and the shapes they derive
// that the backends' kernels read too.
#ifndef WEFT_RUNTIME_STEPS_STEPCHECKS_H
#define WEFT_RUNTIME_STEPS_STEPCHECKS_H

#include "runtime/steps/StepSupport.h"

namespace weft::runtime::steps {

/// The shapes of one GEMM step: out = op(a) @ op(b) (+ bias); batch dims
/// broadcast (numpy rules), a 1-D `a` is a row vector.
struct GemmShape {
  bool transA = false, transB = false, vectorA = false;
  int64_t m = 0, n = 0, k = 0;
  Shape batchA, batchB, batch, out;
};

/// The shapes of GEMM step `args` (its attributes and operand shapes).
Result<GemmShape> gemmShape(const StepArgs &args);

/// Linear batch index -> offsets of a's and b's matrices (in matrices).
struct BatchMap {
  explicit BatchMap(const GemmShape &g)
      : batch(g.batch), stridesA(broadcastStrides(g.batchA, g.batch)),
        stridesB(broadcastStrides(g.batchB, g.batch)) {}
  std::pair<int64_t, int64_t> operator()(int64_t linear) const {
    int64_t oa = 0, ob = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t i = linear % batch[d];
      linear /= batch[d];
      oa += i * stridesA[d];
      ob += i * stridesB[d];
    }
    return {oa, ob};
  }
  Shape batch, stridesA, stridesB;
};

/// The shapes of GEMM step `args` (its attributes and operand shapes).
Result<GemmShape> gemmShape(const StepArgs &args);

/// The dims of ATTENTION step: q [B, Hq, S, D], k [B, Hkv, T, D], v [B,
/// Hkv, T, Dv] (or seq-major: [B, S, H, D]).
struct AttentionShape {
  int64_t b = 0, hq = 0, hkv = 0, s = 0, t = 0, d = 0, dv = 0;
  double scale = 1;
  bool causal = false, hasMask = false;
  /// q, k, v and the output are [B, seq, heads, dim] rather than [B, heads,
  /// seq, dim] (the projections' own layout: no transposes around).
  bool seqMajor = false;

  /// Element offset of (batch, head, position 0) in a tensor of `heads`
  /// heads, `len` positions and `dim` elements per row.
  int64_t headOffset(int64_t batch, int64_t head, int64_t heads, int64_t len,
                     int64_t dim) const {
    return batch * heads * len * dim + head * (seqMajor ? dim : len * dim);
  }
  /// Elements between consecutive positions of one head.
  int64_t rowStride(int64_t heads, int64_t dim) const {
    return seqMajor ? heads * dim : dim;
  }
};

/// The shape of ATTENTION step `args` (its attributes and operand shapes).
Result<AttentionShape> attentionShape(const StepArgs &args);

/// The dims of a PAGED_ATTENTION step: q [1, T, Hq, D], k [1, T, Hkv, D],
/// v [1, T, Hkv, Dv], caches [blocks, block_size, Hkv, D or Dv],
/// block_tables [rows, blocks_per_seq].
struct PagedAttentionShape {
  int64_t t = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  int64_t blocks = 0, blockSize = 0, rows = 0, blocksPerSeq = 0;
  double scale = 1;
};

/// The shape of PAGED_ATTENTION step `args`; its inputs, in order: q, k, v,
/// k_cache, v_cache, positions, token_seq, block_tables.
Result<PagedAttentionShape> pagedAttentionShape(const StepArgs &args);

/// The dims of a SAMPLE step: logits [rows, vocab] (or [1, rows, vocab]).
struct SampleShape {
  int64_t rows = 0, vocab = 0;
};

/// The shape of SAMPLE step `args`; its inputs, in order: logits, params,
/// seeds.
Result<SampleShape> sampleShape(const StepArgs &args);

/// The normalized axis of a norm or softmax step (NormAttrs or SoftmaxAttrs).
Result<int64_t> normAxis(const StepArgs &args);

/// What a REDUCE step computes (ReduceAttrs.kind).
enum ReduceKind { Sum = 0, Mean = 1, Max = 2, Min = 3, Prod = 4 };

/// A REDUCE step: its kind, the dims it reduces, its output shape.
struct ReducePlan {
  ReduceKind kind = Sum;
  std::vector<bool> reduced; // per input dim
  Shape outShape;
};

/// The plan of REDUCE step `args` (its attributes and operand shapes).
Result<ReducePlan> reducePlan(const StepArgs &args);

/// A SLICE step's normalized bounds and its output shape.
struct SliceSpec {
  Shape starts, ends, steps, outShape;
};
/// The bounds of SLICE step `args`, refused outside the normalized form.
Result<SliceSpec> sliceSpec(const StepArgs &args);

/// The gathered axis of a GATHER step, made non-negative.
Result<int64_t> gatherAxis(const StepArgs &args);
/// A GATHER_ND step's batch dims, index depth and output shape.
struct GatherNdShape {
  int64_t batchDims = 0, depth = 0; // depth: indices' last dim
  Shape out;
};
/// The shape of GATHER_ND step `args`.
Result<GatherNdShape> gatherNdShape(const StepArgs &args);

/// CollectiveAttrs.op.
constexpr int64_t kAllReduce = 0, kAllGather = 1;
/// The group attribute of a COLLECTIVE: non-empty, distinct, non-negative
/// ranks; with a known place, within its world and holding its rank.
Result<std::vector<uint32_t>> groupAttr(const StepArgs &args);
/// The peer attribute of SEND / RECV: another rank of the world.
Result<uint32_t> peerAttr(const StepArgs &args);

/// How many arguments an ELEMENTWISE instruction takes.
size_t instrArity(artifact::Instr::Op op);
/// Whether an instruction compares (and so yields BOOL).
bool isComparison(artifact::Instr::Op op);

#define WEFT_STEP_CHECK(NAME) Status check##NAME(const StepArgs &args);
WEFT_STEP_CHECK(Elementwise)
WEFT_STEP_CHECK(Swiglu)
WEFT_STEP_CHECK(Gemm)
WEFT_STEP_CHECK(Attention)
WEFT_STEP_CHECK(LayerNorm)
WEFT_STEP_CHECK(RmsNorm)
WEFT_STEP_CHECK(Softmax)
WEFT_STEP_CHECK(Rotary)
WEFT_STEP_CHECK(Reduce)
WEFT_STEP_CHECK(Cumsum)
WEFT_STEP_CHECK(Copy)
WEFT_STEP_CHECK(Transpose)
WEFT_STEP_CHECK(Slice)
WEFT_STEP_CHECK(Concat)
WEFT_STEP_CHECK(Tile)
WEFT_STEP_CHECK(Broadcast)
WEFT_STEP_CHECK(Trilu)
WEFT_STEP_CHECK(Embedding)
WEFT_STEP_CHECK(Gather)
WEFT_STEP_CHECK(GatherNd)
WEFT_STEP_CHECK(GatherElements)
WEFT_STEP_CHECK(Collective)
WEFT_STEP_CHECK(Send)
WEFT_STEP_CHECK(Recv)
WEFT_STEP_CHECK(PagedAttention)
WEFT_STEP_CHECK(Sample)
#undef WEFT_STEP_CHECK

} // namespace weft::runtime::steps

#endif // WEFT_RUNTIME_STEPS_STEPCHECKS_H
