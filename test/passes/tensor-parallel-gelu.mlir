// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=2}),canonicalize)" | FileCheck %s
// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=2}),canonicalize,func.func(weft-fuse-residual),func.func(weft-fuse-gelu-epilogue))" | FileCheck %s --check-prefix=FUSED

// The order the layout pipeline runs them in: the split, then the fusions.
// The up projection is column-parallel: each rank's result is whole values
// of its own columns, so its tanh GELU moves into the epilogue. The down
// projection is row-parallel and its all-reduce keeps the residual add.
// FUSED-LABEL: func.func @mlp
// FUSED: %[[H:.*]] = weft.linear %arg0, %{{.*}} {gelu_tanh = true, transpose_weight = true} : tensor<3x8xf32>, tensor<12x8xf32> -> tensor<3x12xf32>
// FUSED: %[[P:.*]] = weft.linear %[[H]], %{{.*}} {transpose_weight = true} : tensor<3x12xf32>, tensor<8x12xf32> -> tensor<3x8xf32>
// FUSED: %[[S:.*]] = weft.all_reduce %[[P]]
// FUSED: %[[Y:.*]] = weft.add %arg0, %[[S]]
// FUSED: return %[[Y]]
func.func @mlp(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %h = weft.linear %x, %w1 {transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32> -> tensor<3x24xf32>
  %g = weft.gelu %h {approximate = #weft.gelu<tanh>} : tensor<3x24xf32>
  %y = weft.linear %g, %w2 {transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32> -> tensor<3x8xf32>
  %r = weft.add %x, %y : tensor<3x8xf32>, tensor<3x8xf32> -> tensor<3x8xf32>
  return %r : tensor<3x8xf32>
}

// -----

// Should a projection that already applies a GELU meet the split: column-
// parallel it keeps it (elementwise on its own columns); row-parallel its
// partial sums are all-reduced, the bias added once, and the GELU applied
// to the total.
// CHECK-LABEL: func.func @fused_first
// CHECK-DAG: %[[DB:.*]] = weft.weight "down.bias" : tensor<8xf32>
// CHECK: %[[H:.*]] = weft.linear %arg0, %{{.*}} {gelu_tanh = true, transpose_weight = true} : tensor<3x8xf32>, tensor<12x8xf32> -> tensor<3x12xf32>
// CHECK: %[[P:.*]] = weft.linear %[[H]], %{{.*}} {transpose_weight = true} : tensor<3x12xf32>, tensor<8x12xf32> -> tensor<3x8xf32>
// CHECK: %[[S:.*]] = weft.all_reduce %[[P]] : tensor<3x8xf32>
// CHECK: %[[B:.*]] = weft.add %[[S]], %[[DB]]
// CHECK: %[[G:.*]] = weft.gelu %[[B]] {approximate = #weft.gelu<tanh>} : tensor<3x8xf32>
// CHECK: return %[[G]] : tensor<3x8xf32>
func.func @fused_first(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %b2 = weft.weight "down.bias" : tensor<8xf32>
  %h = weft.linear %x, %w1 {gelu_tanh = true, transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32> -> tensor<3x24xf32>
  %y = weft.linear %h, %w2, %b2 {gelu_tanh = true, transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32>, tensor<8xf32> -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}
