// RUN: weft-opt %s -split-input-file --weft-seq-major-attention --cse | FileCheck %s

// A Llama attention block as exported: q and k rotated after the transpose
// to [B, H, S, D], v transposed, the result transposed back. Everything
// runs in [B, S, H, D]: rotary takes cos and sin reshaped to that layout,
// attention is seq_major, and no transpose remains.
// CHECK-LABEL: func.func @llama_block
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<2x5x4x16xf32>, %[[K:[^:]*]]: tensor<2x5x2x16xf32>, %[[V:[^:]*]]: tensor<2x5x2x16xf32>, %[[COS:[^:]*]]: tensor<5x16xf32>, %[[SIN:[^:]*]]: tensor<5x16xf32>
// CHECK-DAG: %[[C:.*]] = weft.reshape %[[COS]] : tensor<5x16xf32> -> tensor<1x5x1x16xf32>
// CHECK-DAG: %[[S:.*]] = weft.reshape %[[SIN]] : tensor<5x16xf32> -> tensor<1x5x1x16xf32>
// CHECK-DAG: %[[RQ:.*]] = weft.rotary %[[Q]], %[[C]], %[[S]] : {{.*}} -> tensor<2x5x4x16xf32>
// CHECK-DAG: %[[RK:.*]] = weft.rotary %[[K]], %[[C]], %[[S]] : {{.*}} -> tensor<2x5x2x16xf32>
// CHECK: %[[A:.*]] = weft.attention %[[RQ]], %[[RK]], %[[V]] {causal = true, scale = 2.500000e-01 : f64, seq_major = true} : tensor<2x5x4x16xf32>, tensor<2x5x2x16xf32>, tensor<2x5x2x16xf32> -> tensor<2x5x4x16xf32>
// CHECK-NOT: weft.transpose
// CHECK: return %[[A]]
func.func @llama_block(%q: tensor<2x5x4x16xf32>, %k: tensor<2x5x2x16xf32>, %v: tensor<2x5x2x16xf32>, %cos: tensor<5x16xf32>, %sin: tensor<5x16xf32>) -> tensor<2x5x4x16xf32> {
  %qt = weft.transpose %q, [0, 2, 1, 3] : tensor<2x5x4x16xf32> -> tensor<2x4x5x16xf32>
  %kt = weft.transpose %k, [0, 2, 1, 3] : tensor<2x5x2x16xf32> -> tensor<2x2x5x16xf32>
  %vt = weft.transpose %v, [0, 2, 1, 3] : tensor<2x5x2x16xf32> -> tensor<2x2x5x16xf32>
  %qr = weft.rotary %qt, %cos, %sin : tensor<2x4x5x16xf32>, tensor<5x16xf32>, tensor<5x16xf32> -> tensor<2x4x5x16xf32>
  %kr = weft.rotary %kt, %cos, %sin : tensor<2x2x5x16xf32>, tensor<5x16xf32>, tensor<5x16xf32> -> tensor<2x2x5x16xf32>
  %a = weft.attention %qr, %kr, %vt {scale = 0.25 : f64, causal = true} : tensor<2x4x5x16xf32>, tensor<2x2x5x16xf32>, tensor<2x2x5x16xf32> -> tensor<2x4x5x16xf32>
  %o = weft.transpose %a, [0, 2, 1, 3] : tensor<2x4x5x16xf32> -> tensor<2x5x4x16xf32>
  return %o : tensor<2x5x4x16xf32>
}

// -----

// cos and sin per batch ([B, 1, S, D], broadcast over heads) become
// [B, S, 1, D]: a reshape, as only a size-1 dim moves. A mask stays as it is.
// CHECK-LABEL: func.func @batched_tables_and_mask
// CHECK: weft.reshape %{{.*}} : tensor<2x1x5x16xf32> -> tensor<2x5x1x16xf32>
// CHECK: weft.attention {{.*}}seq_major = true{{.*}} : tensor<2x5x4x16xf32>, tensor<2x5x2x16xf32>, tensor<2x5x2x16xf32>, tensor<2x1x5x5xf32> -> tensor<2x5x4x16xf32>
func.func @batched_tables_and_mask(%q: tensor<2x5x4x16xf32>, %k: tensor<2x5x2x16xf32>, %v: tensor<2x5x2x16xf32>, %cs: tensor<2x1x5x16xf32>, %mask: tensor<2x1x5x5xf32>) -> tensor<2x5x4x16xf32> {
  %qt = weft.transpose %q, [0, 2, 1, 3] : tensor<2x5x4x16xf32> -> tensor<2x4x5x16xf32>
  %kt = weft.transpose %k, [0, 2, 1, 3] : tensor<2x5x2x16xf32> -> tensor<2x2x5x16xf32>
  %vt = weft.transpose %v, [0, 2, 1, 3] : tensor<2x5x2x16xf32> -> tensor<2x2x5x16xf32>
  %qr = weft.rotary %qt, %cs, %cs : tensor<2x4x5x16xf32>, tensor<2x1x5x16xf32>, tensor<2x1x5x16xf32> -> tensor<2x4x5x16xf32>
  %kr = weft.rotary %kt, %cs, %cs : tensor<2x2x5x16xf32>, tensor<2x1x5x16xf32>, tensor<2x1x5x16xf32> -> tensor<2x2x5x16xf32>
  %a = weft.attention %qr, %kr, %vt, %mask {scale = 0.25 : f64} : tensor<2x4x5x16xf32>, tensor<2x2x5x16xf32>, tensor<2x2x5x16xf32>, tensor<2x1x5x5xf32> -> tensor<2x4x5x16xf32>
  %o = weft.transpose %a, [0, 2, 1, 3] : tensor<2x4x5x16xf32> -> tensor<2x5x4x16xf32>
  return %o : tensor<2x5x4x16xf32>
}

// -----

// Left alone: v is not a transpose of [B, S, H, D] (attention keeps its
// layout), and a transposed input with another user keeps its rotary where
// it is.
// CHECK-LABEL: func.func @left_alone
// CHECK: weft.transpose
// CHECK: weft.rotary {{.*}} : tensor<2x4x5x16xf32>
// CHECK: weft.attention
// CHECK-NOT: seq_major
// CHECK: return
func.func @left_alone(%q: tensor<2x5x4x16xf32>, %k: tensor<2x2x5x16xf32>, %v: tensor<2x2x5x16xf32>, %cos: tensor<5x16xf32>) -> (tensor<2x4x5x16xf32>, tensor<2x4x5x16xf32>) {
  %qt = weft.transpose %q, [0, 2, 1, 3] : tensor<2x5x4x16xf32> -> tensor<2x4x5x16xf32>
  %qr = weft.rotary %qt, %cos, %cos : tensor<2x4x5x16xf32>, tensor<5x16xf32>, tensor<5x16xf32> -> tensor<2x4x5x16xf32>
  %a = weft.attention %qr, %k, %v {scale = 0.25 : f64} : tensor<2x4x5x16xf32>, tensor<2x2x5x16xf32>, tensor<2x2x5x16xf32> -> tensor<2x4x5x16xf32>
  return %a, %qt : tensor<2x4x5x16xf32>, tensor<2x4x5x16xf32>
}
