// --weft-widen-linear-output: a projection whose only use casts its f16 or
// bf16 result to f32 (the LM head of a model compiled with --dtype, whose
// declared logits are f32) stores its f32 accumulator directly: no
// rounding to the compute type, and no cast kernel re-reading the logits.
//
// Runs after tensor parallelism: there a vocab-parallel head gathers its
// logits first, and gathering them in the compute type moves half the
// bytes, so the cast after the gather stays.
#include "passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_WIDENLINEAROUTPUT
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
struct WidenLinearOutput : OpRewritePattern<CastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CastOp cast,
                                PatternRewriter &rewriter) const override {
    auto linear = cast.getInput().getDefiningOp<LinearOp>();
    if (!linear || linear.getBias() || linear.getResidual() ||
        linear.getGeluTanh() || !linear->hasOneUse() ||
        !LinearOp::isCompatibleReturnTypes(linear.getType(), cast.getType()))
      return failure();
    rewriter.replaceOpWithNewOp<LinearOp>(
        cast, cast.getType(), linear.getInput(), linear.getWeight(), Value(),
        /*residual=*/Value(), linear.getTransposeWeightAttr(),
        /*gelu_tanh=*/BoolAttr());
    rewriter.eraseOp(linear);
    return success();
  }
};

struct WidenLinearOutputPass
    : mlir::weft::impl::WidenLinearOutputBase<WidenLinearOutputPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<WidenLinearOutput>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
