// RUN: weft-opt %s -split-input-file --weft-fuse-gelu-epilogue | FileCheck %s

// GPT-2's MLP in bf16: the up-projection with its bias, then the tanh GELU,
// becomes one linear that applies the GELU in its epilogue.
// CHECK-LABEL: func.func @bias_bf16
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}}, %{{.*}} {gelu_tanh = true, transpose_weight = true} : tensor<2x5x16xbf16>, tensor<64x16xbf16>, tensor<64xbf16> -> tensor<2x5x64xbf16>
// CHECK-NOT: weft.gelu
// CHECK: return %[[L]]
func.func @bias_bf16(%x: tensor<2x5x16xbf16>) -> tensor<2x5x64xbf16> {
  %w = weft.weight "c_fc.weight" : tensor<64x16xbf16>
  %b = weft.weight "c_fc.bias" : tensor<64xbf16>
  %l = weft.linear %x, %w, %b {transpose_weight = true} : tensor<2x5x16xbf16>, tensor<64x16xbf16>, tensor<64xbf16> -> tensor<2x5x64xbf16>
  %g = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<2x5x64xbf16>
  return %g : tensor<2x5x64xbf16>
}

// -----

// Without a bias, f32.
// CHECK-LABEL: func.func @no_bias
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} {gelu_tanh = true} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
// CHECK-NOT: weft.gelu
// CHECK: return %[[L]]
func.func @no_bias(%x: tensor<3x8xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %g = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<3x4xf32>
  return %g : tensor<3x4xf32>
}

// -----

// GPT-2's Conv1D projects the [batch * seq, n] view and reshapes back
// before the GELU; the GELU is elementwise, so it moves into the epilogue
// and the reshape follows. The down-projection's view of the GELU reads
// the fused projection directly.
// CHECK-LABEL: func.func @reshaped
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}}, %{{.*}} {gelu_tanh = true} : tensor<6x8xf32>, tensor<8x4xf32>, tensor<4xf32> -> tensor<6x4xf32>
// CHECK: %[[Y:.*]] = weft.reshape %[[L]] : tensor<6x4xf32> -> tensor<2x3x4xf32>
// CHECK: %[[D:.*]] = weft.linear %[[L]], %{{.*}} : tensor<6x4xf32>, tensor<4x8xf32> -> tensor<6x8xf32>
// CHECK-NOT: weft.gelu
// CHECK: return %[[Y]], %[[D]]
func.func @reshaped(%x: tensor<6x8xf32>) -> (tensor<2x3x4xf32>, tensor<6x8xf32>) {
  %w = weft.weight "w" : tensor<8x4xf32>
  %b = weft.weight "b" : tensor<4xf32>
  %wd = weft.weight "wd" : tensor<4x8xf32>
  %l = weft.linear %x, %w, %b : tensor<6x8xf32>, tensor<8x4xf32>, tensor<4xf32> -> tensor<6x4xf32>
  %r = weft.reshape %l : tensor<6x4xf32> -> tensor<2x3x4xf32>
  %g = weft.gelu %r {approximate = #weft.gelu<tanh>} : tensor<2x3x4xf32>
  %v = weft.reshape %g : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %d = weft.linear %v, %wd : tensor<6x4xf32>, tensor<4x8xf32> -> tensor<6x8xf32>
  return %g, %d : tensor<2x3x4xf32>, tensor<6x8xf32>
}

// -----

// The exact erf GELU (BERT's) is not what the GEMM epilogue computes.
// CHECK-LABEL: func.func @erf
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
// CHECK: weft.gelu %[[L]] : tensor<3x4xf32>
func.func @erf(%x: tensor<3x8xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %g = weft.gelu %l : tensor<3x4xf32>
  return %g : tensor<3x4xf32>
}

// -----

// The projection is also read unactivated: both stay.
// CHECK-LABEL: func.func @two_uses
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
// CHECK: weft.gelu %[[L]] {approximate = #weft.gelu<tanh>}
func.func @two_uses(%x: tensor<3x8xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w : tensor<3x8xf32>, tensor<8x4xf32> -> tensor<3x4xf32>
  %g = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<3x4xf32>
  return %g, %l : tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// A projection that took a residual: the epilogue would apply the GELU to
// the sum, so the GELU stays a kernel of its own.
// CHECK-LABEL: func.func @residual
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} residual %arg1 : tensor<3x8xf32>, tensor<8x4xf32> residual tensor<3x4xf32> -> tensor<3x4xf32>
// CHECK: weft.gelu %[[L]] {approximate = #weft.gelu<tanh>}
func.func @residual(%x: tensor<3x8xf32>, %r: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xf32>
  %l = weft.linear %x, %w residual %r : tensor<3x8xf32>, tensor<8x4xf32> residual tensor<3x4xf32> -> tensor<3x4xf32>
  %g = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<3x4xf32>
  return %g : tensor<3x4xf32>
}

// -----

// The widened f32 result is the raw accumulator of bf16 operands; the GELU
// of f32 values after it is left alone.
// CHECK-LABEL: func.func @widened
// CHECK: %[[L:.*]] = weft.linear %arg0, %{{.*}} : tensor<3x8xbf16>, tensor<8x4xbf16> -> tensor<3x4xf32>
// CHECK: weft.gelu %[[L]] {approximate = #weft.gelu<tanh>}
func.func @widened(%x: tensor<3x8xbf16>) -> tensor<3x4xf32> {
  %w = weft.weight "w" : tensor<8x4xbf16>
  %l = weft.linear %x, %w : tensor<3x8xbf16>, tensor<8x4xbf16> -> tensor<3x4xf32>
  %g = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<3x4xf32>
  return %g : tensor<3x4xf32>
}
