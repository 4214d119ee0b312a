// --weft-fuse-norms: decomposed LayerNorm and RMSNorm chains become
// weft.layer_norm and weft.rms_norm.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_FUSENORMS
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
/// A keepdims mean over the trailing axes [axis, rank) of `input`.
struct TrailingMean {
  Value input;
  int64_t axis;
};

std::optional<TrailingMean> matchTrailingMean(Value v) {
  auto red = v.getDefiningOp<ReduceOp>();
  if (!red || red.getKind() != ReduceKind::mean || !red.getKeepdims())
    return std::nullopt;
  ArrayRef<int64_t> axes = red.getAxes();
  int64_t rank = red.getInput().getType().getRank();
  if (axes.empty() || axes.back() != rank - 1)
    return std::nullopt;
  for (size_t i = 1; i < axes.size(); ++i)
    if (axes[i] != axes[i - 1] + 1)
      return std::nullopt;
  return TrailingMean{red.getInput(), axes.front()};
}

/// x*x or x^2; returns x.
Value matchSquare(Value v) {
  if (auto p = v.getDefiningOp<PowOp>())
    return isSplatNear(p.getRhs(), 2.0) ? p.getLhs() : Value();
  if (auto m = v.getDefiningOp<MulOp>())
    return m.getLhs() == m.getRhs() ? m.getLhs() : Value();
  return {};
}

/// sqrt(m + eps) with a constant eps; returns (m, eps).
std::optional<std::pair<Value, double>> matchSqrtPlusEps(Value v) {
  auto s = v.getDefiningOp<SqrtOp>();
  if (!s)
    return std::nullopt;
  auto add = s.getInput().getDefiningOp<AddOp>();
  if (!add)
    return std::nullopt;
  std::optional<std::pair<Value, double>> out;
  matchEitherOrder(add, [&](Value m, Value e) {
    if (auto eps = splatValue(e); eps && *eps >= 0) {
      out = {m, *eps};
      return true;
    }
    return false;
  });
  return out;
}

/// 1 / sqrt(m + eps) as reciprocal(sqrt) or div(1, sqrt); returns (m, eps).
std::optional<std::pair<Value, double>> matchRsqrtPlusEps(Value v) {
  if (auto r = v.getDefiningOp<ReciprocalOp>())
    return matchSqrtPlusEps(r.getInput());
  if (auto d = v.getDefiningOp<DivOp>(); d && isSplatNear(d.getLhs(), 1.0))
    return matchSqrtPlusEps(d.getRhs());
  return std::nullopt;
}

/// A constant of ones shaped like x's trailing dims from `axis`.
Value onesScale(PatternRewriter &rewriter, Location loc, Value x,
                int64_t axis) {
  auto t = cast<RankedTensorType>(x.getType());
  auto type =
      RankedTensorType::get(t.getShape().drop_front(axis), t.getElementType());
  return arith::ConstantOp::create(
      rewriter, loc, type,
      DenseElementsAttr::get(type,
                             rewriter.getFloatAttr(t.getElementType(), 1.0)));
}

/// Whether a parameter broadcasts onto x's trailing dims [axis, rank).
bool fitsTrailing(Value param, Value x, int64_t axis) {
  auto p = cast<RankedTensorType>(param.getType());
  auto t = cast<RankedTensorType>(x.getType());
  if (p.getElementType() != t.getElementType() ||
      p.getRank() > t.getRank() - axis)
    return false;
  auto b = broadcastShapes(t.getShape().drop_front(axis), p.getShape());
  return succeeded(b) && ArrayRef<int64_t>(*b) == t.getShape().drop_front(axis);
}

/// If `v`'s only user multiplies it by a parameter fitting the trailing dims,
/// returns that user and the parameter.
std::pair<Operation *, Value> matchScaleUser(Value v, Value x, int64_t axis) {
  auto mul = dyn_cast_or_null<MulOp>(soleUser(v));
  if (!mul || mul.getType() != v.getType())
    return {nullptr, {}};
  Value w = otherOperand(mul, v);
  if (!w || !isParameter(w) || !fitsTrailing(w, x, axis))
    return {nullptr, {}};
  return {mul, w};
}

/// Llama's RMSNorm: x * rsqrt(mean(x^2) + eps) [* weight].
struct RmsNormPattern : RewritePattern {
  RmsNormPattern(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), 1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (!isa<MulOp, DivOp>(op) || !isFloatTensor(op->getResult(0)))
      return failure();
    Value x;
    std::optional<std::pair<Value, double>> stat;
    if (isa<MulOp>(op)) {
      matchEitherOrder(op, [&](Value a, Value r) {
        stat = matchRsqrtPlusEps(r);
        x = a;
        return stat.has_value();
      });
    } else {
      stat = matchSqrtPlusEps(op->getOperand(1));
      x = op->getOperand(0);
    }
    if (!stat)
      return failure();
    auto mean = matchTrailingMean(stat->first);
    if (!mean)
      return failure();
    Value sq = matchSquare(mean->input);
    if (!sq || stripCasts(sq) != stripCasts(x) ||
        x.getType() != op->getResult(0).getType())
      return failure();

    Location loc = op->getLoc();
    Value result = op->getResult(0);
    auto [scaleUser, scale] = matchScaleUser(result, x, mean->axis);
    Operation *root = scaleUser ? scaleUser : op;
    rewriter.setInsertionPoint(root);
    if (!scale)
      scale = onesScale(rewriter, loc, x, mean->axis);
    auto norm = RmsNormOp::create(rewriter, loc, x.getType(), x, scale,
                                  rewriter.getI64IntegerAttr(mean->axis),
                                  rewriter.getF64FloatAttr(stat->second));
    rewriter.replaceOp(root, norm.getResult());
    return success();
  }
};

/// LayerNorm: (x - mean(x)) / sqrt(var + eps) [* gamma] [+ beta].
struct LayerNormPattern : RewritePattern {
  // Outranks RmsNormPattern: the centered half of a LayerNorm is an RMSNorm
  // of x - mean(x), and the whole chain must become one layer_norm.
  LayerNormPattern(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), 2, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (!isa<MulOp, DivOp>(op) || !isFloatTensor(op->getResult(0)))
      return failure();
    Value d;
    std::optional<std::pair<Value, double>> stat;
    if (isa<DivOp>(op)) {
      d = op->getOperand(0);
      stat = matchSqrtPlusEps(op->getOperand(1));
    } else {
      matchEitherOrder(op, [&](Value a, Value r) {
        stat = matchRsqrtPlusEps(r);
        d = a;
        return stat.has_value();
      });
    }
    if (!stat)
      return failure();
    auto sub = d.getDefiningOp<SubOp>();
    auto var = matchTrailingMean(stat->first);
    if (!sub || !var || matchSquare(var->input) != d)
      return failure();
    auto mu = matchTrailingMean(sub.getRhs());
    Value x = sub.getLhs();
    if (!mu || mu->input != x || mu->axis != var->axis ||
        x.getType() != op->getResult(0).getType())
      return failure();

    int64_t axis = mu->axis;
    Location loc = op->getLoc();
    Operation *root = op;
    auto [gammaUser, gamma] = matchScaleUser(op->getResult(0), x, axis);
    Value beta;
    if (gammaUser) {
      root = gammaUser;
      if (auto add =
              dyn_cast_or_null<AddOp>(soleUser(gammaUser->getResult(0)))) {
        Value b = otherOperand(add, gammaUser->getResult(0));
        if (b && isParameter(b) && fitsTrailing(b, x, axis) &&
            add.getType() == x.getType()) {
          beta = b;
          root = add;
        }
      }
    }
    rewriter.setInsertionPoint(root);
    if (!gamma)
      gamma = onesScale(rewriter, loc, x, axis);
    auto norm = LayerNormOp::create(rewriter, loc, x.getType(), x, gamma, beta,
                                    rewriter.getI64IntegerAttr(axis),
                                    rewriter.getF64FloatAttr(stat->second));
    rewriter.replaceOp(root, norm.getResult());
    return success();
  }
};

/// rms_norm(x, ones) * w becomes rms_norm(x, w). Hugging Face's RMSNorm
/// normalizes in f32 and casts back before the weight multiply, so the
/// weight stays outside the norm until --dtype has made the casts vanish;
/// then one rounding replaces two and one step disappears per norm.
struct FoldRmsNormWeight : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp norm,
                                PatternRewriter &rewriter) const override {
    if (!isSplatNear(norm.getScale(), 1.0))
      return failure();
    Value x = norm.getInput();
    int64_t axis = norm.getAxis();
    auto [mul, w] = matchScaleUser(norm.getResult(), x, axis);
    if (!mul)
      return failure();
    rewriter.setInsertionPoint(mul);
    auto folded = RmsNormOp::create(rewriter, norm.getLoc(), x.getType(), x, w,
                                    norm.getAxisAttr(), norm.getEpsilonAttr());
    rewriter.replaceOp(mul, folded.getResult());
    rewriter.eraseOp(norm);
    return success();
  }
};

struct FuseNormsPass : mlir::weft::impl::FuseNormsBase<FuseNormsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RmsNormPattern, LayerNormPattern, FoldRmsNormWeight>(
        &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
