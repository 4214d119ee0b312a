// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=2}),canonicalize)" | FileCheck %s
// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=2}),canonicalize,func.func(weft-fuse-residual))" | FileCheck %s --check-prefix=FUSED

// The order the layout pipeline runs them in: the split first, then the
// fusion. The down projection is row-parallel, so its all-reduce sits
// between it and the residual add, which stays; the up projection is
// column-parallel and its result split, so nothing fuses.
// FUSED-LABEL: func.func @mlp
// FUSED-NOT: residual
// FUSED: %[[P:.*]] = weft.linear %{{.*}}, %{{.*}} {transpose_weight = true} : tensor<3x12xf32>, tensor<8x12xf32> -> tensor<3x8xf32>
// FUSED: %[[S:.*]] = weft.all_reduce %[[P]]
// FUSED: %[[Y:.*]] = weft.add %arg0, %[[S]]
// FUSED: return %[[Y]]
func.func @mlp(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %h = weft.linear %x, %w1 {transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32> -> tensor<3x24xf32>
  %g = weft.gelu %h : tensor<3x24xf32>
  %y = weft.linear %g, %w2 {transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32> -> tensor<3x8xf32>
  %r = weft.add %x, %y : tensor<3x8xf32>, tensor<3x8xf32> -> tensor<3x8xf32>
  return %r : tensor<3x8xf32>
}

// -----

// Should a projection that already holds a residual meet the split: as a
// row-parallel projection, its partial sums are all-reduced and the bias
// and then the residual added once, to the total.
// CHECK-LABEL: func.func @row_parallel
// CHECK-DAG: %[[DB:.*]] = weft.weight "down.bias" : tensor<8xf32>
// CHECK: %[[P:.*]] = weft.linear %{{.*}}, %{{.*}} {transpose_weight = true} : tensor<3x12xf32>, tensor<8x12xf32> -> tensor<3x8xf32>
// CHECK: %[[S:.*]] = weft.all_reduce %[[P]] : tensor<3x8xf32>
// CHECK: %[[B:.*]] = weft.add %[[S]], %[[DB]]
// CHECK: %[[Y:.*]] = weft.add %[[B]], %arg0
// CHECK: return %[[Y]] : tensor<3x8xf32>
func.func @row_parallel(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %b2 = weft.weight "down.bias" : tensor<8xf32>
  %h = weft.linear %x, %w1 {transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32> -> tensor<3x24xf32>
  %g = weft.gelu %h : tensor<3x24xf32>
  %y = weft.linear %g, %w2, %b2 residual %x {transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32>, tensor<8xf32> residual tensor<3x8xf32> -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}

// -----

// A residual that is split itself is gathered before it is added.
// CHECK-LABEL: func.func @split_residual
// CHECK: %[[G:.*]] = weft.all_gather %{{.*}} {axis = 1 : i64} : tensor<3x4xf32> -> tensor<3x8xf32>
// CHECK: %[[S:.*]] = weft.all_reduce %{{.*}} : tensor<3x8xf32>
// CHECK: weft.add %[[S]], %[[G]]
func.func @split_residual(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %w3 = weft.weight "side.weight" : tensor<8x8xf32>
  %h = weft.linear %x, %w1 {transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32> -> tensor<3x24xf32>
  %s = weft.linear %x, %w3 {transpose_weight = true} : tensor<3x8xf32>, tensor<8x8xf32> -> tensor<3x8xf32>
  %y = weft.linear %h, %w2 residual %s {transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32> residual tensor<3x8xf32> -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}

// -----

// With a replicated input it would be column-parallel, its result split on
// the last dim, and the residual would have to be split alike: it stays
// whole, its weight unsplit.
// CHECK-LABEL: func.func @replicated
// CHECK: %[[W:.*]] = weft.weight "w" : tensor<8x8xf32>
// CHECK: %[[Y:.*]] = weft.linear %arg0, %[[W]] residual %arg0 {transpose_weight = true} : tensor<3x8xf32>, tensor<8x8xf32> residual tensor<3x8xf32> -> tensor<3x8xf32>
// CHECK: return %[[Y]]
func.func @replicated(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w = weft.weight "w" : tensor<8x8xf32>
  %y = weft.linear %x, %w residual %x {transpose_weight = true} : tensor<3x8xf32>, tensor<8x8xf32> residual tensor<3x8xf32> -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}
