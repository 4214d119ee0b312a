// --weft-fuse-activations: GELU (erf and tanh forms), SiLU and SwiGLU.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::weft {
#define GEN_PASS_DEF_FUSEACTIVATIONS
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
/// x * 0.5 (or x / 2, or 0.5 * x); returns x.
Value matchHalfOf(Value v) {
  if (auto m = v.getDefiningOp<MulOp>()) {
    Value x;
    matchEitherOrder(m, [&](Value a, Value c) {
      x = isSplatNear(c, 0.5) ? a : Value();
      return bool(x);
    });
    return x;
  }
  if (auto d = v.getDefiningOp<DivOp>())
    return isSplatNear(d.getRhs(), 2.0) ? d.getLhs() : Value();
  return {};
}

/// Given t = 1 + f(x), finds the root computing 0.5 * x * t in any
/// association: (0.5 x) t, (x t) 0.5, x (0.5 t)... Returns it or null.
Operation *matchHalfXTimes(Value t, Value x) {
  auto u = dyn_cast_or_null<MulOp>(soleUser(t));
  if (!u)
    return nullptr;
  Value other = otherOperand(u, t);
  if (other == x) {
    // (x * t) * 0.5
    auto root = dyn_cast_or_null<MulOp>(soleUser(u.getResult()));
    if (root && isSplatNear(otherOperand(root, u.getResult()), 0.5))
      return root;
    if (auto div = dyn_cast_or_null<DivOp>(soleUser(u.getResult())))
      if (div.getLhs() == u.getResult() && isSplatNear(div.getRhs(), 2.0))
        return div;
    return nullptr;
  }
  if (matchHalfOf(other) == x)
    return u; // (0.5 * x) * t
  if (isSplatNear(other, 0.5)) {
    // x * (0.5 * t)
    auto root = dyn_cast_or_null<MulOp>(soleUser(u.getResult()));
    if (root && otherOperand(root, u.getResult()) == x)
      return root;
  }
  return nullptr;
}

/// 1 + v in either order; returns v.
Value matchOnePlus(Value sum) {
  auto add = sum.getDefiningOp<AddOp>();
  if (!add)
    return {};
  Value v;
  matchEitherOrder(add, [&](Value a, Value one) {
    v = isSplatNear(one, 1.0) ? a : Value();
    return bool(v);
  });
  return v;
}

/// 0.5 x (1 + erf(x / sqrt 2)).
struct GeluErfPattern : OpRewritePattern<ErfOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ErfOp erf,
                                PatternRewriter &rewriter) const override {
    Value x;
    Value in = erf.getInput();
    if (auto d = in.getDefiningOp<DivOp>();
        d && isSplatNear(d.getRhs(), M_SQRT2))
      x = d.getLhs();
    else if (auto m = in.getDefiningOp<MulOp>())
      matchEitherOrder(m, [&](Value a, Value c) {
        x = isSplatNear(c, M_SQRT1_2) ? a : Value();
        return bool(x);
      });
    if (!x || !erf.getResult().hasOneUse())
      return failure();
    auto add = dyn_cast<AddOp>(*erf.getResult().getUsers().begin());
    if (!add || matchOnePlus(add.getResult()) != erf.getResult())
      return failure();
    Operation *root = matchHalfXTimes(add.getResult(), x);
    if (!root || root->getResult(0).getType() != x.getType())
      return failure();
    rewriter.setInsertionPoint(root);
    rewriter.replaceOpWithNewOp<GeluOp>(root, x.getType(), x, GeluApprox::none);
    return success();
  }
};

/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct GeluTanhPattern : OpRewritePattern<TanhOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TanhOp tanh,
                                PatternRewriter &rewriter) const override {
    auto outer = tanh.getInput().getDefiningOp<MulOp>();
    if (!outer)
      return failure();
    Value inner;
    matchEitherOrder(outer, [&](Value a, Value c) {
      inner = isSplatNear(c, std::sqrt(2.0 / M_PI)) ? a : Value();
      return bool(inner);
    });
    auto sum = inner ? inner.getDefiningOp<AddOp>() : AddOp();
    if (!sum)
      return failure();
    Value x;
    matchEitherOrder(sum, [&](Value a, Value cubic) {
      auto m = cubic.getDefiningOp<MulOp>();
      if (!m)
        return false;
      return matchEitherOrder(m, [&](Value p, Value c) {
        auto pow = p.getDefiningOp<PowOp>();
        if (!pow || !isSplatNear(c, 0.044715) ||
            !isSplatNear(pow.getRhs(), 3.0) || pow.getLhs() != a)
          return false;
        x = a;
        return true;
      });
    });
    if (!x || !tanh.getResult().hasOneUse())
      return failure();
    auto add = dyn_cast<AddOp>(*tanh.getResult().getUsers().begin());
    if (!add || matchOnePlus(add.getResult()) != tanh.getResult())
      return failure();
    Operation *root = matchHalfXTimes(add.getResult(), x);
    if (!root || root->getResult(0).getType() != x.getType())
      return failure();
    rewriter.setInsertionPoint(root);
    rewriter.replaceOpWithNewOp<GeluOp>(root, x.getType(), x, GeluApprox::tanh);
    return success();
  }
};

/// x * sigmoid(x).
struct SiluPattern : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    Value x;
    matchEitherOrder(mul, [&](Value a, Value s) {
      auto sig = s.getDefiningOp<SigmoidOp>();
      x = sig && sig.getInput() == a ? a : Value();
      return bool(x);
    });
    if (!x || x.getType() != mul.getType())
      return failure();
    rewriter.replaceOpWithNewOp<SiluOp>(mul, x.getType(), x);
    return success();
  }
};

/// silu(gate) * up, same shapes.
struct SwigluPattern : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    Value gate, up;
    matchEitherOrder(mul, [&](Value s, Value u) {
      auto silu = s.getDefiningOp<SiluOp>();
      if (!silu || !s.hasOneUse() || u.getType() != mul.getType() ||
          s.getType() != mul.getType())
        return false;
      gate = silu.getInput();
      up = u;
      return true;
    });
    if (!gate)
      return failure();
    rewriter.replaceOpWithNewOp<SwigluOp>(mul, mul.getType(), gate, up);
    return success();
  }
};

struct FuseActivationsPass
    : mlir::weft::impl::FuseActivationsBase<FuseActivationsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<GeluErfPattern, GeluTanhPattern, SiluPattern>(&getContext());
    // SwiGLU needs SiLU formed first; a lower benefit lets it run after.
    patterns.add<SwigluPattern>(&getContext(), /*benefit=*/0);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
