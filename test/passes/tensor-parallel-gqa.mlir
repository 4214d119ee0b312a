// RUN: weft-opt %s --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=4}),canonicalize)" | FileCheck %s

// 4 query heads over 4 ranks, 2 kv heads: each kv head is shared by the 2
// ranks of its query group (shard_replicas = 2), so each rank attends with 1
// query head to 1 kv head.
// CHECK-LABEL: func.func @gqa
// CHECK-DAG: weft.weight "q.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 4 : i64} : tensor<4x16xf32>
// CHECK-DAG: weft.weight "k.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_replicas = 2 : i64, shard_size = 4 : i64} : tensor<4x16xf32>
// CHECK-DAG: weft.weight "v.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_replicas = 2 : i64, shard_size = 4 : i64} : tensor<4x16xf32>
// CHECK: weft.attention {{.*}} : tensor<1x1x5x4xf32>, tensor<1x1x5x4xf32>, tensor<1x1x5x4xf32> -> tensor<1x1x5x4xf32>
// CHECK: weft.all_reduce
func.func @gqa(%x: tensor<1x5x16xf32>) -> tensor<1x5x16xf32> {
  %wq = weft.weight "q.weight" : tensor<16x16xf32>
  %wk = weft.weight "k.weight" : tensor<8x16xf32>
  %wv = weft.weight "v.weight" : tensor<8x16xf32>
  %wo = weft.weight "o.weight" : tensor<16x16xf32>
  %q0 = weft.linear %x, %wq {transpose_weight = true} : tensor<1x5x16xf32>, tensor<16x16xf32> -> tensor<1x5x16xf32>
  %k0 = weft.linear %x, %wk {transpose_weight = true} : tensor<1x5x16xf32>, tensor<8x16xf32> -> tensor<1x5x8xf32>
  %v0 = weft.linear %x, %wv {transpose_weight = true} : tensor<1x5x16xf32>, tensor<8x16xf32> -> tensor<1x5x8xf32>
  %q1 = weft.reshape %q0 : tensor<1x5x16xf32> -> tensor<1x5x4x4xf32>
  %k1 = weft.reshape %k0 : tensor<1x5x8xf32> -> tensor<1x5x2x4xf32>
  %v1 = weft.reshape %v0 : tensor<1x5x8xf32> -> tensor<1x5x2x4xf32>
  %q = weft.transpose %q1, [0, 2, 1, 3] : tensor<1x5x4x4xf32> -> tensor<1x4x5x4xf32>
  %k = weft.transpose %k1, [0, 2, 1, 3] : tensor<1x5x2x4xf32> -> tensor<1x2x5x4xf32>
  %v = weft.transpose %v1, [0, 2, 1, 3] : tensor<1x5x2x4xf32> -> tensor<1x2x5x4xf32>
  %a = weft.attention %q, %k, %v {causal = true, scale = 0.5 : f64} : tensor<1x4x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32> -> tensor<1x4x5x4xf32>
  %t = weft.transpose %a, [0, 2, 1, 3] : tensor<1x4x5x4xf32> -> tensor<1x5x4x4xf32>
  %m = weft.reshape %t : tensor<1x5x4x4xf32> -> tensor<1x5x16xf32>
  %o = weft.linear %m, %wo {transpose_weight = true} : tensor<1x5x16xf32>, tensor<16x16xf32> -> tensor<1x5x16xf32>
  return %o : tensor<1x5x16xf32>
}
