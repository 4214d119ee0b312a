// --weft-fuse-rotary: x * cos + rotate_half(x) * sin becomes weft.rotary.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_FUSEROTARY
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
/// A unit-step slice of x's last dim [from, to), whole on other dims.
bool isLastDimSlice(Value v, Value x, int64_t from, int64_t to) {
  auto s = v.getDefiningOp<SliceOp>();
  if (!s || s.getInput() != x)
    return false;
  auto shape = s.getInput().getType().getShape();
  int64_t last = shape.size() - 1;
  for (int64_t d = 0; d <= last; ++d) {
    int64_t start = d == last ? from : 0, end = d == last ? to : shape[d];
    if (s.getStarts()[d] != start || s.getEnds()[d] != end ||
        s.getSteps()[d] != 1)
      return false;
  }
  return true;
}

/// concat(-x[..., h:2h], x[..., :h]) on the last dim; returns x.
Value matchRotateHalf(Value v) {
  auto cat = v.getDefiningOp<ConcatOp>();
  if (!cat || cat.getInputs().size() != 2)
    return {};
  auto type = cast<RankedTensorType>(cat.getType());
  if (int64_t(cat.getAxis()) != type.getRank() - 1)
    return {};
  auto neg = cat.getInputs()[0].getDefiningOp<NegOp>();
  if (!neg)
    return {};
  auto hi = neg.getInput().getDefiningOp<SliceOp>();
  if (!hi)
    return {};
  Value x = hi.getInput();
  int64_t width = type.getShape().back(), half = width / 2;
  if (width % 2 ||
      cast<RankedTensorType>(x.getType()).getShape().back() != width ||
      !isLastDimSlice(neg.getInput(), x, half, width) ||
      !isLastDimSlice(cat.getInputs()[1], x, 0, half))
    return {};
  return x;
}

struct RotaryPattern : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    Value x, cos, sin;
    matchEitherOrder(add, [&](Value xc, Value rs) {
      auto mulC = xc.getDefiningOp<MulOp>(), mulS = rs.getDefiningOp<MulOp>();
      if (!mulC || !mulS)
        return false;
      return matchEitherOrder(mulS, [&](Value rot, Value s) {
        Value in = matchRotateHalf(rot);
        if (!in)
          return false;
        Value c = otherOperand(mulC, in);
        if (!c)
          return false;
        x = in;
        cos = c;
        sin = s;
        return true;
      });
    });
    if (!x || x.getType() != add.getType() || cos.getType() != sin.getType())
      return failure();
    auto xt = cast<RankedTensorType>(x.getType());
    auto ct = cast<RankedTensorType>(cos.getType());
    if (ct.getRank() > xt.getRank() ||
        ct.getShape().back() != xt.getShape().back())
      return failure();
    auto b = broadcastShapes(xt.getShape(), ct.getShape());
    if (failed(b) || ArrayRef<int64_t>(*b) != xt.getShape())
      return failure();
    rewriter.replaceOpWithNewOp<RotaryOp>(add, xt, x, cos, sin,
                                          /*interleaved=*/false);
    return success();
  }
};

struct FuseRotaryPass : mlir::weft::impl::FuseRotaryBase<FuseRotaryPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RotaryPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
