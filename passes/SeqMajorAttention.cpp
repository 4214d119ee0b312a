// --weft-seq-major-attention: attention and rotary run in the projections'
// own [B, S, H, D] layout, so the transposes to [B, H, S, D] and back go.
//
// Exporters write q = transpose(reshape(x W_q)) and the inverse transpose
// after attention. Each of those transposes moves the whole activation
// through memory twice; the kernels can read and write the projection
// layout directly instead.
#include "passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <map>

namespace mlir::weft {
#define GEN_PASS_DEF_SEQMAJORATTENTION
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
constexpr int64_t kSwapHeadsAndSeq[] = {0, 2, 1, 3};

bool isHeadsSeqSwap(TransposeOp t) {
  return t && t.getPerm() == ArrayRef<int64_t>(kSwapHeadsAndSeq);
}

/// `v` laid out like x before the transpose `perm` of x: v broadcast to x's
/// rank (leading 1s), then permuted by perm's inverse. A reshape when that
/// moves only size-1 dims.
Value permuteLikeSource(OpBuilder &rewriter, Location loc, Value v,
                        ArrayRef<int64_t> perm) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rank = perm.size();
  SmallVector<int64_t> full(rank - type.getRank(), 1);
  llvm::append_range(full, type.getShape());
  SmallVector<int64_t> inverse(rank), permuted(rank);
  for (int64_t i = 0; i < rank; ++i)
    inverse[perm[i]] = i;
  for (int64_t i = 0; i < rank; ++i)
    permuted[i] = full[inverse[i]];
  // Only size-1 dims move when the other dims keep their order.
  SmallVector<int64_t> order;
  for (int64_t i = 0; i < rank; ++i)
    if (full[inverse[i]] != 1)
      order.push_back(inverse[i]);
  auto permutedType = RankedTensorType::get(permuted, type.getElementType());
  if (llvm::is_sorted(order))
    return ReshapeOp::create(rewriter, loc, permutedType, v);
  auto fullType = RankedTensorType::get(full, type.getElementType());
  Value extended = v;
  if (fullType != type)
    extended = ReshapeOp::create(rewriter, loc, fullType, v);
  return TransposeOp::create(rewriter, loc, extended, inverse);
}

/// rotary(transpose(x)) -> transpose(rotary(x)) for a transpose that keeps
/// the rotated last dim: cos and sin follow x's layout. Every layer's rotary
/// reads the same tables, so each table is permuted once, right after its
/// definition (a constant table is then folded once, not once per layer).
void moveRotariesBeforeTransposes(func::FuncOp func) {
  SmallVector<RotaryOp> rotaries;
  func.walk([&](RotaryOp op) {
    auto t = op.getInput().getDefiningOp<TransposeOp>();
    if (t && t->hasOneUse() &&
        t.getPerm().back() == int64_t(t.getPerm().size()) - 1)
      rotaries.push_back(op);
  });
  std::map<std::pair<void *, SmallVector<int64_t>>, Value> permuted;
  auto tableFor = [&](Value table, ArrayRef<int64_t> perm) {
    auto key =
        std::make_pair(table.getAsOpaquePointer(), SmallVector<int64_t>(perm));
    if (auto it = permuted.find(key); it != permuted.end())
      return it->second;
    OpBuilder b(func.getContext());
    if (Operation *def = table.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(cast<BlockArgument>(table).getOwner());
    Value v = permuteLikeSource(b, table.getLoc(), table, perm);
    permuted[key] = v;
    return v;
  };
  for (RotaryOp op : rotaries) {
    auto t = op.getInput().getDefiningOp<TransposeOp>();
    ArrayRef<int64_t> perm = t.getPerm();
    Value cos = tableFor(op.getCos(), perm);
    Value sin = tableFor(op.getSin(), perm);
    OpBuilder b(op);
    Value x = t.getInput();
    auto rotated = RotaryOp::create(b, op.getLoc(), x.getType(), x, cos, sin,
                                    op.getInterleavedAttr());
    auto back = TransposeOp::create(b, op.getLoc(), rotated.getResult(), perm);
    op.getResult().replaceAllUsesWith(back.getResult());
    op.erase();
    t.erase();
  }
}

/// attention(q^T, k^T, v^T)  ->  attention_seq_major(q, k, v)^T, where ^T
/// swaps heads and positions; the transpose after it then cancels against
/// the exporter's transpose back.
struct SeqMajorAttentionPattern : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getSeqMajor())
      return failure();
    SmallVector<Value, 3> sources;
    for (Value v : {op.getQ(), op.getK(), op.getV()}) {
      auto t = v.getDefiningOp<TransposeOp>();
      if (!isHeadsSeqSwap(t))
        return failure();
      sources.push_back(t.getInput());
    }
    auto type = op.getType();
    SmallVector<int64_t> shape = {type.getDimSize(0), type.getDimSize(2),
                                  type.getDimSize(1), type.getDimSize(3)};
    auto attention = AttentionOp::create(
        rewriter, op.getLoc(),
        RankedTensorType::get(shape, type.getElementType()), sources[0],
        sources[1], sources[2], op.getMask(), op.getScaleAttr(),
        op.getCausalAttr(), rewriter.getBoolAttr(true));
    rewriter.replaceOpWithNewOp<TransposeOp>(op, attention.getResult(),
                                             kSwapHeadsAndSeq);
    return success();
  }
};

struct SeqMajorAttentionPass
    : mlir::weft::impl::SeqMajorAttentionBase<SeqMajorAttentionPass> {
  void runOnOperation() override {
    moveRotariesBeforeTransposes(getOperation());
    RewritePatternSet patterns(&getContext());
    patterns.add<SeqMajorAttentionPattern>(&getContext());
    TransposeOp::getCanonicalizationPatterns(patterns, &getContext());
    ReshapeOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
