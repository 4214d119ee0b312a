// Unit tests of numpy broadcasting of static shapes.
#include "dialects/Weft/WeftOps.h"

#include <gtest/gtest.h>

using mlir::weft::broadcastShapes;

TEST(BroadcastShapes, AlignsTrailingDims) {
  auto r = broadcastShapes({2, 1, 4}, {3, 1});
  ASSERT_TRUE(mlir::succeeded(r));
  EXPECT_EQ(std::vector<int64_t>(r->begin(), r->end()),
            (std::vector<int64_t>{2, 3, 4}));
}

TEST(BroadcastShapes, ScalarBroadcastsToAnything) {
  auto r = broadcastShapes({}, {5, 6});
  ASSERT_TRUE(mlir::succeeded(r));
  EXPECT_EQ(std::vector<int64_t>(r->begin(), r->end()),
            (std::vector<int64_t>{5, 6}));
}

TEST(BroadcastShapes, RefusesMismatchedDims) {
  EXPECT_TRUE(mlir::failed(broadcastShapes({2, 3}, {4, 3})));
  EXPECT_TRUE(mlir::failed(broadcastShapes({3}, {2})));
}

TEST(BroadcastShapes, ZeroSizedDimsBroadcastAgainstOne) {
  auto r = broadcastShapes({0, 1}, {1, 7});
  ASSERT_TRUE(mlir::succeeded(r));
  EXPECT_EQ(std::vector<int64_t>(r->begin(), r->end()),
            (std::vector<int64_t>{0, 7}));
}
