// --weft-form-linear: products with 2-D weights become weft.linear (bias
// folded in) and row lookups in 2-D weights become weft.embedding.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_FORMLINEAR
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
bool isMatrixParameter(Value v) {
  return isParameter(v) && cast<RankedTensorType>(v.getType()).getRank() == 2;
}

struct LinearPattern : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp mm,
                                PatternRewriter &rewriter) const override {
    if (mm.getTransposeA())
      return failure();
    Value w = mm.getB();
    bool transposed = mm.getTransposeB();
    if (auto tr = w.getDefiningOp<TransposeOp>();
        tr && !transposed && isMatrixParameter(tr.getInput())) {
      w = tr.getInput();
      transposed = true;
    }
    if (!isMatrixParameter(w))
      return failure();
    // The input's batch dims must not broadcast against the weight's (none).
    Operation *root = mm;
    Value bias;
    if (auto add = dyn_cast_or_null<AddOp>(soleUser(mm.getResult()))) {
      Value b = otherOperand(add, mm.getResult());
      auto bt = b ? dyn_cast<RankedTensorType>(b.getType()) : nullptr;
      int64_t n = mm.getType().getShape().back();
      if (bt && isParameter(b) && add.getType() == mm.getType() &&
          bt.getNumElements() == n && bt.getShape().back() == n) {
        bias = b;
        root = add;
      }
    }
    rewriter.setInsertionPoint(root);
    if (bias && cast<RankedTensorType>(bias.getType()).getRank() != 1)
      bias = rewriter.createOrFold<ReshapeOp>(
          root->getLoc(),
          RankedTensorType::get({mm.getType().getShape().back()},
                                mm.getType().getElementType()),
          bias);
    auto lin = LinearOp::create(rewriter, root->getLoc(), mm.getType(),
                                mm.getA(), w, bias, /*residual=*/Value(),
                                rewriter.getBoolAttr(transposed),
                                /*gelu_tanh=*/BoolAttr());
    rewriter.replaceOp(root, lin.getResult());
    return success();
  }
};

struct EmbeddingPattern : OpRewritePattern<GatherOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherOp g,
                                PatternRewriter &rewriter) const override {
    if (g.getAxis() != 0 || !g.getData().getDefiningOp<WeightOp>() ||
        g.getData().getType().getRank() != 2)
      return failure();
    rewriter.replaceOpWithNewOp<EmbeddingOp>(g, g.getType(), g.getData(),
                                             g.getIndices());
    return success();
  }
};

struct FormLinearPass : mlir::weft::impl::FormLinearBase<FormLinearPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<LinearPattern, EmbeddingPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
