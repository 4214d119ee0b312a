// RUN: weft-opt %s -split-input-file --weft-fuse-residual | FileCheck %s

// The two residual connections of a bf16 Llama block: the o_proj result
// added to the block's input (linear on the right), the down_proj result
// added to that sum (linear on the left). Each add becomes the projection's
// residual; the second projection reads the first one's fused result.
// CHECK-LABEL: func.func @block
// CHECK: %[[H:.*]] = weft.linear %arg1, %{{.*}} residual %arg0 {transpose_weight = true} : tensor<2x5x16xbf16>, tensor<16x16xbf16> residual tensor<2x5x16xbf16> -> tensor<2x5x16xbf16>
// CHECK: %[[O:.*]] = weft.linear %arg2, %{{.*}} residual %[[H]] {transpose_weight = true} : tensor<2x5x32xbf16>, tensor<16x32xbf16> residual tensor<2x5x16xbf16> -> tensor<2x5x16xbf16>
// CHECK-NOT: weft.add
// CHECK: return %[[O]]
func.func @block(%x: tensor<2x5x16xbf16>, %attn: tensor<2x5x16xbf16>, %act: tensor<2x5x32xbf16>) -> tensor<2x5x16xbf16> {
  %wo = weft.weight "o_proj.weight" : tensor<16x16xbf16>
  %wd = weft.weight "down_proj.weight" : tensor<16x32xbf16>
  %o = weft.linear %attn, %wo {transpose_weight = true} : tensor<2x5x16xbf16>, tensor<16x16xbf16> -> tensor<2x5x16xbf16>
  %h = weft.add %x, %o : tensor<2x5x16xbf16>, tensor<2x5x16xbf16> -> tensor<2x5x16xbf16>
  %d = weft.linear %act, %wd {transpose_weight = true} : tensor<2x5x32xbf16>, tensor<16x32xbf16> -> tensor<2x5x16xbf16>
  %y = weft.add %d, %h : tensor<2x5x16xbf16>, tensor<2x5x16xbf16> -> tensor<2x5x16xbf16>
  return %y : tensor<2x5x16xbf16>
}

// -----

// A bias stays, the residual joins it; f32 fuses too.
// CHECK-LABEL: func.func @bias
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}}, %arg1 residual %arg2 : tensor<3x8xf32>, tensor<8x4xf32>, tensor<4xf32> residual tensor<3x4xf32> -> tensor<3x4xf32>
// CHECK-NOT: weft.add
// CHECK: return %[[L]]
func.func @bias(%x: tensor<3x8xf32>, %b: tensor<4xf32>, %r: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w, %b : tensor<3x8xf32>, tensor<8x4xf32>, tensor<4xf32> -> tensor<3x4xf32>
  %y = weft.add %r, %l : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

// The residual is defined after the projection: the fused op takes the
// add's place, where both are available.
// CHECK-LABEL: func.func @late_residual
// CHECK: %[[R:.*]] = weft.gelu %arg1
// CHECK-NEXT: %[[L:.*]] = weft.linear %arg0, %{{.*}} residual %[[R]]
// CHECK-NEXT: return %[[L]]
func.func @late_residual(%x: tensor<3x8xf32>, %s: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %r = weft.gelu %s : tensor<3x4xf32>
  %y = weft.add %l, %r : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

// GPT-2's projections run on the [batch * seq, n] view and are reshaped
// back before the add: the residual is reshaped to the view (reshapes are
// free views) and the fused result reshaped back.
// CHECK-LABEL: func.func @reshaped
// CHECK: %[[R:.*]] = weft.reshape %arg2 : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}}, %arg1 residual %[[R]] : tensor<6x8xf32>, tensor<8x4xf32>, tensor<4xf32> residual tensor<6x4xf32> -> tensor<6x4xf32>
// CHECK: %[[Y:.*]] = weft.reshape %[[L]] : tensor<6x4xf32> -> tensor<2x3x4xf32>
// CHECK-NOT: weft.add
// CHECK: return %[[Y]]
func.func @reshaped(%x: tensor<6x8xf32>, %b: tensor<4xf32>, %r: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %w = weft.weight "c_proj.weight" : tensor<8x4xf32>
  %l = weft.linear %x, %w, %b : tensor<6x8xf32>, tensor<8x4xf32>, tensor<4xf32> -> tensor<6x4xf32>
  %v = weft.reshape %l : tensor<6x4xf32> -> tensor<2x3x4xf32>
  %y = weft.add %r, %v : tensor<2x3x4xf32>, tensor<2x3x4xf32> -> tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}

// -----

// Not fused: the reshaped projection has a second use.
// CHECK-LABEL: func.func @reshaped_two_uses
// CHECK-NOT: residual
// CHECK: weft.add
func.func @reshaped_two_uses(%x: tensor<6x8xf32>, %r: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x3x4xf32>) {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<6x8xf32>, tensor<8x4xf32> -> tensor<6x4xf32>
  %v = weft.reshape %l : tensor<6x4xf32> -> tensor<2x3x4xf32>
  %y = weft.add %r, %v : tensor<2x3x4xf32>, tensor<2x3x4xf32> -> tensor<2x3x4xf32>
  return %y, %v : tensor<2x3x4xf32>, tensor<2x3x4xf32>
}

// -----

// Not fused: the projection has a second use (its result must exist
// without the residual).
// CHECK-LABEL: func.func @two_uses
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
// CHECK: %[[Y:.*]] = weft.add %[[L]], %arg1
// CHECK: return %[[Y]], %[[L]]
func.func @two_uses(%x: tensor<3x8xf32>, %r: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %y = weft.add %l, %r : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
  return %y, %l : tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// Not fused: adds that broadcast, the residual ([4] is a bias-like row) or
// the projection ([1, 4] against [3, 4] rows).
// CHECK-LABEL: func.func @broadcast
// CHECK-NOT: residual
// CHECK-COUNT-2: weft.add
func.func @broadcast(%x: tensor<3x8xf32>, %v: tensor<4xf32>, %x1: tensor<1x8xf32>, %r: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %y = weft.add %l, %v : tensor<3x4xf32>, tensor<4xf32> -> tensor<3x4xf32>
  %l1 = weft.linear %x1, %w : tensor<1x8xf32>, tensor<8x4xf32> -> tensor<1x4xf32>
  %y1 = weft.add %r, %l1 : tensor<3x4xf32>, tensor<1x4xf32> -> tensor<3x4xf32>
  return %y, %y1 : tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// Not fused: the widened LM head (bf16 operands, the f32 accumulator
// stored) takes no residual.
// CHECK-LABEL: func.func @widened
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} : tensor<2x16xbf16>, tensor<16x32xbf16> -> tensor<2x32xf32>
// CHECK: weft.add %[[L]], %arg1
func.func @widened(%x: tensor<2x16xbf16>, %r: tensor<2x32xf32>) -> tensor<2x32xf32> {
  %w = weft.weight "w" : tensor<16x32xbf16>
  %l = weft.linear %x, %w : tensor<2x16xbf16>, tensor<16x32xbf16> -> tensor<2x32xf32>
  %y = weft.add %l, %r : tensor<2x32xf32>, tensor<2x32xf32> -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

// Not fused: the projection already has a residual; the add stays.
// CHECK-LABEL: func.func @has_residual
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} residual %arg1 : tensor<3x8xf32>, tensor<8x4xf32> residual tensor<3x4xf32> -> tensor<3x4xf32>
// CHECK: %[[Y:.*]] = weft.add %arg2, %[[L]]
// CHECK: return %[[Y]]
func.func @has_residual(%x: tensor<3x8xf32>, %r: tensor<3x4xf32>, %s: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w residual %r : tensor<3x8xf32>, tensor<8x4xf32> residual tensor<3x4xf32> -> tensor<3x4xf32>
  %y = weft.add %s, %l : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

// A projection whose epilogue applies a GELU takes no residual: the
// epilogue would apply the GELU to the sum.
// CHECK-LABEL: func.func @gelu
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} {gelu_tanh = true} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
// CHECK: weft.add %[[L]], %arg1
func.func @gelu(%x: tensor<3x8xf32>, %r: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w {gelu_tanh = true} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %y = weft.add %l, %r : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}
