// --weft-fuse-gelu-epilogue: `gelu(linear(x, W))` with the tanh
// approximation (GPT-2's MLP up-projection), the linear possibly reshaped,
// becomes one weft.linear with `gelu_tanh`: the GEMM's epilogue applies the
// activation and the separate GELU kernel, which reads the up-projection's
// wide output and writes it again, is gone.
//
// Runs after tensor parallelism and the residual fusion: a row-parallel
// projection feeds an all-reduce (the GELU must follow the sum), and a
// projection that took a residual would apply the GELU to the sum.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::weft {
#define GEN_PASS_DEF_FUSEGELUEPILOGUE
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
struct FuseGeluEpilogue : OpRewritePattern<GeluOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(GeluOp gelu,
                                PatternRewriter &rewriter) const override {
    // cuBLASLt's GELU epilogue is the tanh approximation: the exact erf GELU
    // (BERT's) keeps its own kernel.
    if (gelu.getApproximate() != GeluApprox::tanh)
      return failure();
    // GELU is elementwise, so it commutes with the site's reshape.
    std::optional<EpilogueSite> site = freeEpilogueSite(gelu.getInput());
    if (!site)
      return failure();
    LinearOp linear = site->linear;
    ReshapeOp reshape = site->reshape;
    Value product = LinearOp::create(
        rewriter, rewriter.getFusedLoc({linear.getLoc(), gelu.getLoc()}),
        linear.getType(), linear.getInput(), linear.getWeight(),
        linear.getBias(), /*residual=*/Value(), linear.getTransposeWeightAttr(),
        rewriter.getBoolAttr(true));
    Value fused = product;
    if (reshape) {
      fused = rewriter.createOrFold<ReshapeOp>(gelu.getLoc(), gelu.getType(),
                                               product);
      // A reshape of the GELU (GPT-2's down-projection takes the view
      // again) reads the projection directly, with no reshape pair between.
      for (Operation *user : llvm::make_early_inc_range(gelu->getUsers()))
        if (auto back = dyn_cast<ReshapeOp>(user)) {
          rewriter.setInsertionPoint(back);
          rewriter.replaceOp(back, rewriter.createOrFold<ReshapeOp>(
                                       back.getLoc(), back.getType(), product));
        }
    }
    rewriter.replaceOp(gelu, fused);
    if (reshape)
      rewriter.eraseOp(reshape);
    rewriter.eraseOp(linear);
    return success();
  }
};

struct FuseGeluEpiloguePass
    : mlir::weft::impl::FuseGeluEpilogueBase<FuseGeluEpiloguePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGeluEpilogue>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
