// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(sharding-propagation,shard-partition))" -verify-diagnostics | FileCheck %s
// A GELU in the epilogue is elementwise on whole results: kept where rows
// are split, refused where the contraction is (the GELU of each partial sum
// is not the GELU of the total).

shard.grid @tp(shape = 2)

// Rows split: each rank applies the GELU to its own rows.
// CHECK-LABEL: func.func @rows
// CHECK: weft.linear %{{.*}}, %{{.*}} {gelu_tanh = true, transpose_weight = true} : tensor<2x8xf32>, tensor<16x8xf32> -> tensor<2x16xf32>
func.func @rows(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = weft.weight "w" : tensor<16x8xf32>
  %s = shard.sharding @tp split_axes = [[0]] : !shard.sharding
  %xs = shard.shard %x to %s : tensor<4x8xf32>
  %xsu = shard.shard %xs to %s annotate_for_users : tensor<4x8xf32>
  %y = weft.linear %xsu, %w {gelu_tanh = true, transpose_weight = true} : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %ys = shard.shard %y to %s : tensor<4x16xf32>
  return %ys : tensor<4x16xf32>
}

// -----

shard.grid @tp(shape = 2)

// The contraction split (input features and weight columns): refused.
func.func @k_split(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = weft.weight "w" : tensor<16x8xf32>
  %s = shard.sharding @tp split_axes = [[], [0]] : !shard.sharding
  %ws = shard.shard %w to %s : tensor<16x8xf32>
  %wsu = shard.shard %ws to %s annotate_for_users : tensor<16x8xf32>
  %xs = shard.shard %x to %s : tensor<4x8xf32>
  %xsu = shard.shard %xs to %s annotate_for_users : tensor<4x8xf32>
  // expected-error @+1 {{cannot split the contraction of a linear with gelu_tanh: each rank's partial sum would take the GELU}}
  %y = weft.linear %xsu, %wsu {gelu_tanh = true, transpose_weight = true} : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}
