// RUN: weft-opt %s -split-input-file --weft-widen-linear-output | FileCheck %s

// The LM head of a bf16 graph whose logits are declared f32: the projection
// stores f32 itself and the cast goes.
// CHECK-LABEL: func.func @lm_head
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} {transpose_weight = true} : tensor<2x5x16xbf16>, tensor<32x16xbf16> -> tensor<2x5x32xf32>
// CHECK-NOT: weft.cast
// CHECK: return %[[L]]
func.func @lm_head(%x: tensor<2x5x16xbf16>) -> tensor<2x5x32xf32> {
  %w = weft.weight "lm_head.weight" : tensor<32x16xbf16>
  %l = weft.linear %x, %w {transpose_weight = true} : tensor<2x5x16xbf16>, tensor<32x16xbf16> -> tensor<2x5x32xbf16>
  %y = weft.cast %l : tensor<2x5x32xbf16> -> tensor<2x5x32xf32>
  return %y : tensor<2x5x32xf32>
}

// -----

// Kept: a bias (its epilogue stays in the operands' type), a second user of
// the bf16 result, a cast to another narrow type.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-3: weft.cast
func.func @kept(%x: tensor<2x16xbf16>, %b: tensor<32xbf16>) -> (tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xbf16>, tensor<2x32xf16>) {
  %w = weft.weight "w" : tensor<16x32xbf16>
  %l1 = weft.linear %x, %w, %b : tensor<2x16xbf16>, tensor<16x32xbf16>, tensor<32xbf16> -> tensor<2x32xbf16>
  %c1 = weft.cast %l1 : tensor<2x32xbf16> -> tensor<2x32xf32>
  %l2 = weft.linear %x, %w : tensor<2x16xbf16>, tensor<16x32xbf16> -> tensor<2x32xbf16>
  %c2 = weft.cast %l2 : tensor<2x32xbf16> -> tensor<2x32xf32>
  %l3 = weft.linear %x, %w : tensor<2x16xbf16>, tensor<16x32xbf16> -> tensor<2x32xbf16>
  %c3 = weft.cast %l3 : tensor<2x32xbf16> -> tensor<2x32xf16>
  return %c1, %c2, %l2, %c3 : tensor<2x32xf32>, tensor<2x32xf32>, tensor<2x32xbf16>, tensor<2x32xf16>
}
