// RUN: weft-opt %s -split-input-file --pass-pipeline="builtin.module(func.func(weft-tensor-parallel{tp=2}),canonicalize)" -verify-diagnostics | FileCheck %s

// An MLP block: the up projection is column-parallel (weight rows split), the
// down projection row-parallel (weight columns split), one all-reduce, bias
// added after it.
// CHECK-LABEL: func.func @mlp
// CHECK-DAG: %[[DB:.*]] = weft.weight "down.bias" : tensor<8xf32>
// CHECK-DAG: %[[UP:.*]] = weft.weight "up.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 12 : i64} : tensor<12x8xf32>
// CHECK-DAG: %[[UB:.*]] = weft.weight "up.bias" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 12 : i64} : tensor<12xf32>
// CHECK: %[[H:.*]] = weft.linear %arg0, %[[UP]], %[[UB]] {transpose_weight = true} : tensor<3x8xf32>, tensor<12x8xf32>, tensor<12xf32> -> tensor<3x12xf32>
// CHECK: %[[G:.*]] = weft.gelu %[[H]] : tensor<3x12xf32>
// CHECK: %[[DOWN:.*]] = weft.weight "down.weight" {shard_base = 0 : i64, shard_dim = 1 : i64, shard_size = 12 : i64} : tensor<8x12xf32>
// CHECK: %[[P:.*]] = weft.linear %[[G]], %[[DOWN]] {transpose_weight = true} : tensor<3x12xf32>, tensor<8x12xf32> -> tensor<3x8xf32>
// CHECK: %[[S:.*]] = weft.all_reduce %[[P]] : tensor<3x8xf32>
// CHECK: %[[Y:.*]] = weft.add %[[S]], %[[DB]]
// CHECK: return %[[Y]] : tensor<3x8xf32>
func.func @mlp(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %w1 = weft.weight "up.weight" : tensor<24x8xf32>
  %b1 = weft.weight "up.bias" : tensor<24xf32>
  %w2 = weft.weight "down.weight" : tensor<8x24xf32>
  %b2 = weft.weight "down.bias" : tensor<8xf32>
  %h = weft.linear %x, %w1, %b1 {transpose_weight = true} : tensor<3x8xf32>, tensor<24x8xf32>, tensor<24xf32> -> tensor<3x24xf32>
  %g = weft.gelu %h : tensor<3x24xf32>
  %y = weft.linear %g, %w2, %b2 {transpose_weight = true} : tensor<3x24xf32>, tensor<8x24xf32>, tensor<8xf32> -> tensor<3x8xf32>
  return %y : tensor<3x8xf32>
}

// -----

// Attention split by heads: q/k/v projections column-parallel, the heads
// reshape and transpose carry the split, attention runs on this rank's 2 of
// 4 query heads and 1 of 2 kv heads, the output projection is row-parallel.
// CHECK-LABEL: func.func @attention_block
// CHECK: weft.attention {{.*}} : tensor<1x2x5x4xf32>, tensor<1x1x5x4xf32>, tensor<1x1x5x4xf32> -> tensor<1x2x5x4xf32>
// CHECK: weft.linear {{.*}} : tensor<1x5x8xf32>, tensor<16x8xf32> -> tensor<1x5x16xf32>
// CHECK-NEXT: weft.all_reduce
// CHECK-NOT: weft.all_gather
func.func @attention_block(%x: tensor<1x5x16xf32>) -> tensor<1x5x16xf32> {
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

// -----

// GPT-2's fused QKV projection ([K, 3N] weight) consumed by three slices is
// split part by part: each rank holds its share of q, of k and of v.
// CHECK-LABEL: func.func @fused_qkv
// CHECK-DAG: weft.weight "c_attn.weight" {shard_base = 0 : i64, shard_dim = 1 : i64, shard_size = 4 : i64} : tensor<8x4xf32>
// CHECK-DAG: weft.weight "c_attn.weight" {shard_base = 8 : i64, shard_dim = 1 : i64, shard_size = 4 : i64} : tensor<8x4xf32>
// CHECK-DAG: weft.weight "c_attn.weight" {shard_base = 16 : i64, shard_dim = 1 : i64, shard_size = 4 : i64} : tensor<8x4xf32>
// CHECK: weft.concat {{.*}} {axis = 1 : i64} : (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x12xf32>
// CHECK: weft.slice %{{.*}}{{\[}}[0, 4] : [6, 8] : [1, 1]] : tensor<6x12xf32> -> tensor<6x4xf32>
// CHECK: weft.all_gather %{{.*}} {axis = 1 : i64} : tensor<6x4xf32> -> tensor<6x8xf32>
func.func @fused_qkv(%x: tensor<6x8xf32>) -> tensor<6x8xf32> {
  %w = weft.weight "c_attn.weight" : tensor<8x24xf32>
  %qkv = weft.linear %x, %w : tensor<6x8xf32>, tensor<8x24xf32> -> tensor<6x24xf32>
  %q = weft.slice %qkv[[0, 0] : [6, 8] : [1, 1]] : tensor<6x24xf32> -> tensor<6x8xf32>
  %k = weft.slice %qkv[[0, 8] : [6, 16] : [1, 1]] : tensor<6x24xf32> -> tensor<6x8xf32>
  %v = weft.slice %qkv[[0, 16] : [6, 24] : [1, 1]] : tensor<6x24xf32> -> tensor<6x8xf32>
  %s = weft.add %q, %k : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<6x8xf32>
  %t = weft.mul %s, %v : tensor<6x8xf32>, tensor<6x8xf32> -> tensor<6x8xf32>
  return %t : tensor<6x8xf32>
}

// -----

// Vocab-parallel embedding and LM head: each rank looks up the ids in its half
// of the table (all-reduce), and computes its half of the logits (all-gather).
// CHECK-LABEL: func.func @embedding_and_head
// CHECK: %[[T:.*]] = weft.weight "wte" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 50 : i64} : tensor<50x8xf32>
// CHECK: %[[E:.*]] = weft.embedding %[[T]][%arg0]
// CHECK: weft.all_reduce %[[E]]
// CHECK: weft.linear {{.*}} -> tensor<2x3x50xf32>
// CHECK: weft.all_gather %{{.*}} {axis = 2 : i64} : tensor<2x3x50xf32> -> tensor<2x3x100xf32>
func.func @embedding_and_head(%ids: tensor<2x3xi64>) -> tensor<2x3x100xf32> {
  %w = weft.weight "wte" : tensor<100x8xf32>
  %e = weft.embedding %w[%ids] : tensor<100x8xf32>, tensor<2x3xi64> -> tensor<2x3x8xf32>
  %l = weft.linear %e, %w {transpose_weight = true} : tensor<2x3x8xf32>, tensor<100x8xf32> -> tensor<2x3x100xf32>
  return %l : tensor<2x3x100xf32>
}

// -----

// Refused: 3 heads do not split over 2 ranks.
func.func @odd_heads(%q: tensor<1x3x5x4xf32>) -> tensor<1x3x5x4xf32> {
  // expected-error @+1 {{attention heads do not divide by tp 2: 3 query heads, 3 kv heads}}
  %a = weft.attention %q, %q, %q {scale = 0.5 : f64} : tensor<1x3x5x4xf32>, tensor<1x3x5x4xf32>, tensor<1x3x5x4xf32> -> tensor<1x3x5x4xf32>
  return %a : tensor<1x3x5x4xf32>
}
