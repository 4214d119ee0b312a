// RUN: weft-opt %s -split-input-file --weft-form-linear | FileCheck %s

// nn.Linear as the dynamo exporter writes it: MatMul by a transposed weight,
// then the bias.
// CHECK-LABEL: func.func @matmul_transposed_bias
// CHECK: %[[W:.*]] = weft.weight "fc.weight" : tensor<24x8xf32>
// CHECK: %[[B:.*]] = weft.weight "fc.bias" : tensor<24xf32>
// CHECK: %[[L:.*]] = weft.linear %arg0, %[[W]], %[[B]] {transpose_weight = true} : tensor<2x5x8xf32>, tensor<24x8xf32>, tensor<24xf32> -> tensor<2x5x24xf32>
// CHECK: return %[[L]]
func.func @matmul_transposed_bias(%x: tensor<2x5x8xf32>) -> tensor<2x5x24xf32> {
  %w = weft.weight "fc.weight" : tensor<24x8xf32>
  %b = weft.weight "fc.bias" : tensor<24xf32>
  %wt = weft.transpose %w, [1, 0] : tensor<24x8xf32> -> tensor<8x24xf32>
  %y = weft.matmul %x, %wt : tensor<2x5x8xf32>, tensor<8x24xf32> -> tensor<2x5x24xf32>
  %z = weft.add %y, %b : tensor<2x5x24xf32>, tensor<24xf32> -> tensor<2x5x24xf32>
  return %z : tensor<2x5x24xf32>
}

// -----

// GPT-2's Conv1D through Gemm: [K, N] weight, no transpose.
// CHECK-LABEL: func.func @gemm_conv1d
// CHECK: weft.linear %arg0, %{{.*}}, %{{.*}} : tensor<10x8xf32>, tensor<8x24xf32>, tensor<24xf32> -> tensor<10x24xf32>
func.func @gemm_conv1d(%x: tensor<10x8xf32>) -> tensor<10x24xf32> {
  %w = weft.weight "c_attn.weight" : tensor<8x24xf32>
  %b = weft.weight "c_attn.bias" : tensor<24xf32>
  %y = weft.matmul %x, %w : tensor<10x8xf32>, tensor<8x24xf32> -> tensor<10x24xf32>
  %z = weft.add %b, %y : tensor<24xf32>, tensor<10x24xf32> -> tensor<10x24xf32>
  return %z : tensor<10x24xf32>
}

// -----

// Embedding lookups.
// CHECK-LABEL: func.func @embedding
// CHECK: weft.embedding %{{.*}}[%arg0] : tensor<96x8xf32>, tensor<2x5xi64> -> tensor<2x5x8xf32>
func.func @embedding(%ids: tensor<2x5xi64>) -> tensor<2x5x8xf32> {
  %w = weft.weight "wte" : tensor<96x8xf32>
  %e = weft.gather %w[%ids] {axis = 0 : i64} : tensor<96x8xf32>, tensor<2x5xi64> -> tensor<2x5x8xf32>
  return %e : tensor<2x5x8xf32>
}

// -----

// Refused: a product of two activations is not a projection.
// CHECK-LABEL: func.func @activation_product
// CHECK-NOT: weft.linear
// CHECK: weft.matmul
func.func @activation_product(%a: tensor<4x8xf32>, %b: tensor<8x3xf32>) -> tensor<4x3xf32> {
  %y = weft.matmul %a, %b : tensor<4x8xf32>, tensor<8x3xf32> -> tensor<4x3xf32>
  return %y : tensor<4x3xf32>
}
