// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(sharding-propagation))" | FileCheck %s
// weft ops tell upstream sharding propagation how they split.

shard.grid @tp(shape = 2)

// Column-parallel projection: a weight split on its output rows splits the
// result's last dim, and the GELU after it follows.
// CHECK-LABEL: func.func @column_parallel
// CHECK: %[[IN:.*]] = shard.sharding @tp split_axes = {{\[\[}}]] : !shard.sharding
// CHECK: weft.linear
// CHECK: %[[OUT:.*]] = shard.sharding @tp split_axes = {{\[\[}}], [0]] : !shard.sharding
// CHECK: weft.gelu
// CHECK: shard.sharding @tp split_axes = {{\[\[}}], [0]] : !shard.sharding
func.func @column_parallel(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = weft.weight "w" : tensor<16x8xf32>
  %s = shard.sharding @tp split_axes = [[0]] : !shard.sharding
  %ws = shard.shard %w to %s : tensor<16x8xf32>
  %y = weft.linear %x, %ws {transpose_weight = true} : tensor<4x8xf32>, tensor<16x8xf32> -> tensor<4x16xf32>
  %g = weft.gelu %y : tensor<4x16xf32>
  return %g : tensor<4x16xf32>
}

// -----

shard.grid @tp(shape = 2)

// Attention split by heads: q's head split carries to k, v (kv heads split
// alike) and the result.
// CHECK-LABEL: func.func @heads
// CHECK-COUNT-3: shard.sharding @tp split_axes = {{\[\[}}], [0]]
// CHECK: weft.attention
// CHECK: shard.sharding @tp split_axes = {{\[\[}}], [0]]
func.func @heads(%q: tensor<2x4x6x8xf32>, %k: tensor<2x2x6x8xf32>) -> tensor<2x4x6x8xf32> {
  %s = shard.sharding @tp split_axes = [[], [0]] : !shard.sharding
  %qs = shard.shard %q to %s : tensor<2x4x6x8xf32>
  %a = weft.attention %qs, %k, %k {causal = true, scale = 0.35 : f64} : tensor<2x4x6x8xf32>, tensor<2x2x6x8xf32>, tensor<2x2x6x8xf32> -> tensor<2x4x6x8xf32>
  return %a : tensor<2x4x6x8xf32>
}

// -----

shard.grid @tp(shape = 2)

// Norms keep their normalized dim whole: a split of the hidden dim is not
// propagated through rms_norm's result as a split of that dim.
// CHECK-LABEL: func.func @norm_rows
// CHECK: weft.rms_norm
// CHECK: shard.sharding @tp split_axes = {{\[\[}}0]]
func.func @norm_rows(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = shard.sharding @tp split_axes = [[0]] : !shard.sharding
  %xs = shard.shard %x to %s : tensor<4x8xf32>
  %g = weft.weight "g" : tensor<8xf32>
  %n = weft.rms_norm %xs, %g {axis = 1 : i64, epsilon = 1.0e-6 : f64} : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
  return %n : tensor<4x8xf32>
}
