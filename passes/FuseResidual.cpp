// --weft-fuse-residual: `add(linear(y, W), x)` (either operand order, the
// linear possibly reshaped), the residual connection that ends each
// attention and MLP block, becomes one weft.linear with `residual = x`: the
// GEMM's epilogue reads x and the separate add kernel, which reads two
// activations and writes a third, is gone.
//
// Runs after tensor parallelism: a row-parallel projection there feeds an
// all-reduce, so its partial sums never take the residual (each would add
// it once per rank).
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_FUSERESIDUAL
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
/// The projection behind the add's operand `v` that can take `residual`
/// into its epilogue (freeEpilogueSite: a GELU epilogue would apply to the
/// sum). The add must neither broadcast nor change the type.
std::optional<EpilogueSite> fusable(Value v, Value residual, AddOp add) {
  if (residual.getType() != v.getType() || add.getType() != v.getType())
    return std::nullopt;
  return freeEpilogueSite(v);
}

struct FuseResidual : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    // Of add(linear, linear) the left one takes the right as its residual.
    Value lhs = add.getLhs(), rhs = add.getRhs();
    std::optional<EpilogueSite> c = fusable(lhs, rhs, add);
    Value residual = rhs;
    if (!c) {
      c = fusable(rhs, lhs, add);
      residual = lhs;
    }
    if (!c)
      return failure();
    // At the add: the residual may be defined after the projection.
    LinearOp linear = c->linear;
    if (c->reshape)
      residual = rewriter.createOrFold<ReshapeOp>(add.getLoc(),
                                                  linear.getType(), residual);
    // Named after both (a profile's GEMM step names the projection).
    Location loc = rewriter.getFusedLoc({linear.getLoc(), add.getLoc()});
    Value fused = LinearOp::create(
        rewriter, loc, linear.getType(), linear.getInput(), linear.getWeight(),
        linear.getBias(), residual, linear.getTransposeWeightAttr(),
        /*gelu_tanh=*/BoolAttr());
    if (c->reshape)
      fused =
          rewriter.createOrFold<ReshapeOp>(add.getLoc(), add.getType(), fused);
    rewriter.replaceOp(add, fused);
    if (c->reshape)
      rewriter.eraseOp(c->reshape);
    rewriter.eraseOp(linear);
    return success();
  }
};

struct FuseResidualPass : mlir::weft::impl::FuseResidualBase<FuseResidualPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseResidual>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
