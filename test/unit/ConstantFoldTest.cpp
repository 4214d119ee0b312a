// Unit tests of the constant evaluator behind weft ops' fold(), checked
// against values computed by hand.
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::weft;

namespace {
class ConstantFoldTest : public ::testing::Test {
protected:
  ConstantFoldTest() : b(&ctx) {
    ctx.loadDialect<WeftDialect, arith::ArithDialect, func::FuncDialect>();
    module = ModuleOp::create(b.getUnknownLoc());
    b.setInsertionPointToStart(module->getBody());
  }

  Value i64s(ArrayRef<int64_t> shape, ArrayRef<int64_t> values) {
    auto t = RankedTensorType::get(shape, b.getI64Type());
    return arith::ConstantOp::create(b, b.getUnknownLoc(), t,
                                     DenseElementsAttr::get(t, values));
  }
  Value f32s(ArrayRef<int64_t> shape, ArrayRef<float> values) {
    auto t = RankedTensorType::get(shape, b.getF32Type());
    return arith::ConstantOp::create(b, b.getUnknownLoc(), t,
                                     DenseElementsAttr::get(t, values));
  }
  /// The folded value of `v` as int64s (fails the test if not constant).
  std::vector<int64_t> ints(Value v) {
    auto c = v.getDefiningOp<arith::ConstantOp>();
    EXPECT_TRUE(c) << "did not fold";
    std::vector<int64_t> out;
    if (c)
      for (const APInt &x :
           cast<DenseElementsAttr>(c.getValue()).getValues<APInt>())
        out.push_back(x.getSExtValue());
    return out;
  }
  std::vector<float> floats(Value v) {
    auto c = v.getDefiningOp<arith::ConstantOp>();
    EXPECT_TRUE(c) << "did not fold";
    std::vector<float> out;
    if (c)
      for (float x : cast<DenseElementsAttr>(c.getValue()).getValues<float>())
        out.push_back(x);
    return out;
  }

  MLIRContext ctx;
  OpBuilder b;
  OwningOpRef<ModuleOp> module;
};

TEST_F(ConstantFoldTest, BroadcastingArithmetic) {
  Value a = i64s({2, 1}, {10, 20}), c = i64s({3}, {1, 2, 3});
  Value sum = b.createOrFold<AddOp>(b.getUnknownLoc(), a, c);
  EXPECT_EQ(ints(sum), (std::vector<int64_t>{11, 12, 13, 21, 22, 23}));
  Value q = b.createOrFold<DivOp>(b.getUnknownLoc(), i64s({2}, {7, -7}),
                                  i64s({}, {2}));
  EXPECT_EQ(ints(q), (std::vector<int64_t>{3, -3})); // truncating division
}

TEST_F(ConstantFoldTest, ShapeArithmeticChain) {
  // Shape -> Gather -> Concat -> the operands of a Reshape.
  Value shape = i64s({3}, {2, 16, 64});
  Value idx = i64s({}, {1});
  Value seq = b.createOrFold<GatherOp>(b.getUnknownLoc(), shape, idx,
                                       b.getI64IntegerAttr(0));
  EXPECT_EQ(ints(seq), (std::vector<int64_t>{16}));
  Value seq1 = b.createOrFold<ReshapeOp>(
      b.getUnknownLoc(), RankedTensorType::get({1}, b.getI64Type()), seq);
  Value cat = b.createOrFold<ConcatOp>(
      b.getUnknownLoc(), ValueRange{i64s({1}, {2}), seq1, i64s({1}, {-1})},
      b.getI64IntegerAttr(0));
  EXPECT_EQ(ints(cat), (std::vector<int64_t>{2, 16, -1}));
}

TEST_F(ConstantFoldTest, CausalMaskFromRangeAndTrilu) {
  Value ones = f32s({3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  Value tri =
      b.createOrFold<TriluOp>(b.getUnknownLoc(), ones.getType(), ones,
                              b.getBoolAttr(true), b.getI64IntegerAttr(1));
  EXPECT_EQ(floats(tri), (std::vector<float>{0, 1, 1, 0, 0, 1, 0, 0, 0}));
  Value cum = b.createOrFold<CumSumOp>(
      b.getUnknownLoc(), ones.getType(), ones, b.getI64IntegerAttr(1),
      b.getBoolAttr(true), b.getBoolAttr(false));
  EXPECT_EQ(floats(cum), (std::vector<float>{0, 1, 2, 0, 1, 2, 0, 1, 2}));
}

TEST_F(ConstantFoldTest, TransposeSliceAndMatmul) {
  Value m = f32s({2, 3}, {1, 2, 3, 4, 5, 6});
  Value t = b.createOrFold<TransposeOp>(b.getUnknownLoc(), m,
                                        ArrayRef<int64_t>{1, 0});
  EXPECT_EQ(floats(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Value s = b.createOrFold<SliceOp>(
      b.getUnknownLoc(), m, ArrayRef<int64_t>{0, 2}, ArrayRef<int64_t>{2, -1},
      ArrayRef<int64_t>{1, -2});
  EXPECT_EQ(floats(s), (std::vector<float>{3, 1, 6, 4}));
  Value p = b.createOrFold<MatmulOp>(b.getUnknownLoc(), m, m, false, true);
  EXPECT_EQ(floats(p), (std::vector<float>{14, 32, 32, 77}));
}

TEST_F(ConstantFoldTest, LargeNonSplatResultsStayOps) {
  int64_t n = kMaxFoldElements + 1;
  Value big = b.createOrFold<BroadcastOp>(
      b.getUnknownLoc(), RankedTensorType::get({n}, b.getI64Type()),
      i64s({1}, {3}));
  // A splat broadcast folds at any size; a non-splat one above the limit
  // does not.
  EXPECT_TRUE(big.getDefiningOp<arith::ConstantOp>());
  Value two = i64s({2}, {1, 2});
  Value wide = b.createOrFold<BroadcastOp>(
      b.getUnknownLoc(), RankedTensorType::get({n / 2 + 1, 2}, b.getI64Type()),
      two);
  EXPECT_TRUE(wide.getDefiningOp<BroadcastOp>());
}
} // namespace
