// RUN: weft-opt %s -split-input-file --weft-fuse-attention | FileCheck %s

// Eager attention with grouped-query heads repeated by reshape/broadcast, a
// constant causal mask and the scale on the scores. S=5, T=5, D=16.
// CHECK-LABEL: func.func @gqa_causal
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x5x16xf32>, %[[K:.*]]: tensor<2x2x5x16xf32>, %[[V:.*]]: tensor<2x2x5x16xf32>)
// CHECK: %[[A:.*]] = weft.attention %[[Q]], %[[K]], %[[V]] {causal = true, scale = 2.500000e-01 : f64} : tensor<2x4x5x16xf32>, tensor<2x2x5x16xf32>, tensor<2x2x5x16xf32> -> tensor<2x4x5x16xf32>
// CHECK-NOT: weft.softmax
// CHECK: return %[[A]]
func.func @gqa_causal(%q: tensor<2x4x5x16xf32>, %k: tensor<2x2x5x16xf32>, %v: tensor<2x2x5x16xf32>) -> tensor<2x4x5x16xf32> {
  %k5 = weft.reshape %k : tensor<2x2x5x16xf32> -> tensor<2x2x1x5x16xf32>
  %kb = weft.broadcast %k5 : tensor<2x2x1x5x16xf32> -> tensor<2x2x2x5x16xf32>
  %kr = weft.reshape %kb : tensor<2x2x2x5x16xf32> -> tensor<2x4x5x16xf32>
  %v5 = weft.reshape %v : tensor<2x2x5x16xf32> -> tensor<2x2x1x5x16xf32>
  %vb = weft.broadcast %v5 : tensor<2x2x1x5x16xf32> -> tensor<2x2x2x5x16xf32>
  %vr = weft.reshape %vb : tensor<2x2x2x5x16xf32> -> tensor<2x4x5x16xf32>
  %kt = weft.transpose %kr, [0, 1, 3, 2] : tensor<2x4x5x16xf32> -> tensor<2x4x16x5xf32>
  %s = weft.matmul %q, %kt : tensor<2x4x5x16xf32>, tensor<2x4x16x5xf32> -> tensor<2x4x5x5xf32>
  %c = arith.constant dense<0.25> : tensor<f32>
  %ss = weft.mul %s, %c : tensor<2x4x5x5xf32>, tensor<f32> -> tensor<2x4x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %ss, %mask : tensor<2x4x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<2x4x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<2x4x5x5xf32>
  %o = weft.matmul %p, %vr : tensor<2x4x5x5xf32>, tensor<2x4x5x16xf32> -> tensor<2x4x5x16xf32>
  return %o : tensor<2x4x5x16xf32>
}

// -----

// SDPA decomposition: q and k^T each scaled by sqrt(scale), a boolean mask
// through where(mask, s, -inf) and the isnan guard; k^T from a non-square
// transpose (S=3, D=8) so a swapped k shows.
// CHECK-LABEL: func.func @sdpa_bool_mask
// CHECK-SAME: (%[[Q:.*]]: tensor<1x2x3x8xf32>, %[[K:.*]]: tensor<1x2x3x8xf32>, %[[V:.*]]: tensor<1x2x3x8xf32>, %[[M:.*]]: tensor<1x1x3x3xi1>)
// CHECK: %[[ADD:.*]] = weft.select %[[M]]
// CHECK: weft.attention %[[Q]], %[[K]], %[[V]], %[[ADD]] {scale = 0.12499
// CHECK-NOT: weft.isnan
func.func @sdpa_bool_mask(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x3x8xf32>, %v: tensor<1x2x3x8xf32>, %m: tensor<1x1x3x3xi1>) -> tensor<1x2x3x8xf32> {
  %r = arith.constant dense<0.353553385> : tensor<f32>
  %qs = weft.mul %q, %r : tensor<1x2x3x8xf32>, tensor<f32> -> tensor<1x2x3x8xf32>
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x3x8xf32> -> tensor<1x2x8x3xf32>
  %ks = weft.mul %kt, %r : tensor<1x2x8x3xf32>, tensor<f32> -> tensor<1x2x8x3xf32>
  %s = weft.matmul %qs, %ks : tensor<1x2x3x8xf32>, tensor<1x2x8x3xf32> -> tensor<1x2x3x3xf32>
  %ninf = arith.constant dense<0xFF800000> : tensor<f32>
  %sm = weft.select %m, %s, %ninf : tensor<1x1x3x3xi1>, tensor<1x2x3x3xf32>, tensor<f32> -> tensor<1x2x3x3xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x3x3xf32>
  %nan = weft.isnan %p : tensor<1x2x3x3xf32> -> tensor<1x2x3x3xi1>
  %zero = arith.constant dense<0.0> : tensor<f32>
  %pg = weft.select %nan, %zero, %p : tensor<1x2x3x3xi1>, tensor<f32>, tensor<1x2x3x3xf32> -> tensor<1x2x3x3xf32>
  %o = weft.matmul %pg, %v : tensor<1x2x3x3xf32>, tensor<1x2x3x8xf32> -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// BERT: an input-dependent padding mask stays an additive operand; the scale
// divides the scores; k^T comes from a [B, S, H, D] tensor permuted with
// [0, 2, 3, 1].
// CHECK-LABEL: func.func @padding_mask
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x6x8xf32>, %[[KS:.*]]: tensor<2x6x4x8xf32>, %[[V:.*]]: tensor<2x4x6x8xf32>, %[[M:.*]]: tensor<2x1x1x6xf32>)
// CHECK: %[[K:.*]] = weft.transpose %[[KS]], [0, 2, 1, 3]
// CHECK: weft.attention %[[Q]], %[[K]], %[[V]], %[[M]] {scale = 0.35355
// CHECK-NOT: causal
func.func @padding_mask(%q: tensor<2x4x6x8xf32>, %ks: tensor<2x6x4x8xf32>, %v: tensor<2x4x6x8xf32>, %m: tensor<2x1x1x6xf32>) -> tensor<2x4x6x8xf32> {
  %kt = weft.transpose %ks, [0, 2, 3, 1] : tensor<2x6x4x8xf32> -> tensor<2x4x8x6xf32>
  %s = weft.matmul %q, %kt : tensor<2x4x6x8xf32>, tensor<2x4x8x6xf32> -> tensor<2x4x6x6xf32>
  %d = arith.constant dense<2.82842708> : tensor<f32>
  %sd = weft.div %s, %d : tensor<2x4x6x6xf32>, tensor<f32> -> tensor<2x4x6x6xf32>
  %sm = weft.add %sd, %m : tensor<2x4x6x6xf32>, tensor<2x1x1x6xf32> -> tensor<2x4x6x6xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<2x4x6x6xf32>
  %o = weft.matmul %p, %v : tensor<2x4x6x6xf32>, tensor<2x4x6x8xf32> -> tensor<2x4x6x8xf32>
  return %o : tensor<2x4x6x8xf32>
}

// -----

// k^T given directly (not produced by a transpose): weft adds the transpose.
// CHECK-LABEL: func.func @kt_argument
// CHECK: %[[K:.*]] = weft.transpose %arg1, [0, 1, 3, 2] : tensor<1x1x8x3xf32> -> tensor<1x1x3x8xf32>
// CHECK: weft.attention %arg0, %[[K]], %arg2 {scale = 1.000000e+00 : f64}
func.func @kt_argument(%q: tensor<1x1x3x8xf32>, %kt: tensor<1x1x8x3xf32>, %v: tensor<1x1x3x8xf32>) -> tensor<1x1x3x8xf32> {
  %s = weft.matmul %q, %kt : tensor<1x1x3x8xf32>, tensor<1x1x8x3xf32> -> tensor<1x1x3x3xf32>
  %p = weft.softmax %s {axis = 3 : i64} : tensor<1x1x3x3xf32>
  %o = weft.matmul %p, %v : tensor<1x1x3x3xf32>, tensor<1x1x3x8xf32> -> tensor<1x1x3x8xf32>
  return %o : tensor<1x1x3x8xf32>
}

// -----

// Refused: softmax over the query axis is not attention.
// CHECK-LABEL: func.func @softmax_wrong_axis
// CHECK-NOT: weft.attention
func.func @softmax_wrong_axis(%q: tensor<1x1x3x8xf32>, %kt: tensor<1x1x8x3xf32>, %v: tensor<1x1x3x8xf32>) -> tensor<1x1x3x8xf32> {
  %s = weft.matmul %q, %kt : tensor<1x1x3x8xf32>, tensor<1x1x8x3xf32> -> tensor<1x1x3x3xf32>
  %p = weft.softmax %s {axis = 2 : i64} : tensor<1x1x3x3xf32>
  %o = weft.matmul %p, %v : tensor<1x1x3x3xf32>, tensor<1x1x3x8xf32> -> tensor<1x1x3x8xf32>
  return %o : tensor<1x1x3x8xf32>
}

// -----

// The causal mask with -inf for the masked scores still fuses.
// CHECK-LABEL: func.func @causal_inf
// CHECK-NOT: arith.constant
// CHECK: weft.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.000000e+00 : f64} : tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
func.func @causal_inf(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0xFF800000, 0xFF800000, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000, 0xFF800000, 0xFF800000], [0.0, 0.0, 0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// A causal mask over S=3 queries and T=5 keys (the last query the last key:
// key j is visible to query i when j <= i + T - S) fuses.
// CHECK-LABEL: func.func @causal_past
// CHECK-NOT: arith.constant
// CHECK: weft.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.000000e+00 : f64} : tensor<1x2x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x3x8xf32>
func.func @causal_past(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x3x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x3x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x3x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x3x5xf32>, tensor<1x1x3x5xf32> -> tensor<1x2x3x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x3x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// A causal mask scaled with the scores after the add fuses with the scale.
// CHECK-LABEL: func.func @causal_scaled
// CHECK-NOT: arith.constant
// CHECK: weft.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.250000e-01 : f64} : tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
func.func @causal_scaled(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %a = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %c = arith.constant dense<0.125> : tensor<f32>
  %sm = weft.mul %a, %c : tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// A boolean keep-mask that is lower-triangular fuses as causal.
// CHECK-LABEL: func.func @keep_causal
// CHECK-NOT: arith.constant
// CHECK: weft.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.000000e+00 : f64} : tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
func.func @keep_causal(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %keep = arith.constant dense<[[[[true, false, false, false, false], [true, true, false, false, false], [true, true, true, false, false], [true, true, true, true, false], [true, true, true, true, true]]]]> : tensor<1x1x5x5xi1>
  %ninf = arith.constant dense<0xFF800000> : tensor<f32>
  %sm = weft.select %keep, %s, %ninf : tensor<1x1x5x5xi1>, tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: off by one, each query also sees the next key.
// CHECK-LABEL: func.func @future_one
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, 0.000000e+00, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @future_one(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: off by one, each query sees only earlier keys, not its
// own (the first query sees none).
// CHECK-LABEL: func.func @no_diagonal
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @no_diagonal(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: the causal mask transposed (each query sees itself and
// later keys).
// CHECK-LABEL: func.func @transposed
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @transposed(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0.0, 0.0, 0.0, 0.0], [-3.40282347E+38, 0.0, 0.0, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: a sliding window of 3 keys.
// CHECK-LABEL: func.func @window
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @window(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, 0.0, 0.0, 0.0, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: S=3 queries, T=5 keys, the first query the first key
// (j <= i), not weft's causal (j <= i + T - S).
// CHECK-LABEL: func.func @top_left
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x3x5xf32> -> tensor<1x2x3x8xf32>
func.func @top_left(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x3x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x3x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38]]]]> : tensor<1x1x3x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x3x5xf32>, tensor<1x1x3x5xf32> -> tensor<1x2x3x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x3x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// Refused as causal: S=3, T=5, off by one: each query also sees the next key.
// CHECK-LABEL: func.func @past_future_one
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x3x5xf32> -> tensor<1x2x3x8xf32>
func.func @past_future_one(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x3x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x3x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x3x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x3x5xf32>, tensor<1x1x3x5xf32> -> tensor<1x2x3x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x3x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// Refused as causal: S=3, T=5, off by one: each query's own key hidden.
// CHECK-LABEL: func.func @past_no_diagonal
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, 0.000000e+00, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x3x5xf32> -> tensor<1x2x3x8xf32>
func.func @past_no_diagonal(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x3x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x3x5xf32>
  %mask = arith.constant dense<[[[[0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38]]]]> : tensor<1x1x3x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x3x5xf32>, tensor<1x1x3x5xf32> -> tensor<1x2x3x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x3x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// Refused as causal: masked scores of -100 do not vanish in the softmax.
// CHECK-LABEL: func.func @small_masked
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, -1.000000e+02, -1.000000e+02, -1.000000e+02, -1.000000e+02]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @small_masked(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -100.0, -100.0, -100.0, -100.0], [0.0, 0.0, -100.0, -100.0, -100.0], [0.0, 0.0, 0.0, -100.0, -100.0], [0.0, 0.0, 0.0, 0.0, -100.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: the visible scores carry a bias of -1.
// CHECK-LABEL: func.func @bias_visible
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}-1.000000e+00, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38]
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @bias_visible(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[-1.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-1.0, -1.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-1.0, -1.0, -1.0, -3.40282347E+38, -3.40282347E+38], [-1.0, -1.0, -1.0, -1.0, -3.40282347E+38], [-1.0, -1.0, -1.0, -1.0, -1.0]]]]> : tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: a causal constant through a transpose of its last two
// dims is the transposed mask.
// CHECK-LABEL: func.func @transpose_op
// CHECK-NOT: causal
// CHECK: weft.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @transpose_op(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %c = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %mask = weft.transpose %c, [0, 1, 3, 2] : tensor<1x1x5x5xf32> -> tensor<1x1x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: one head's mask causal, the other's transposed.
// CHECK-LABEL: func.func @per_head
// CHECK: weft.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x2x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @per_head(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0, 0.0], [-3.40282347E+38, 0.0, 0.0, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0, 0.0], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0]]]]> : tensor<1x2x5x5xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x2x5x5xf32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: the causal mask and the scores scaled by -1 after the
// add; the mask, scaled the same, stays an operand (its masked scores +max).
// CHECK-LABEL: func.func @causal_negated
// CHECK: %[[M:.*]] = arith.constant dense<{{\[\[\[\[}}-0.000000e+00, 3.40282347E+38,
// CHECK: weft.attention %arg0, %arg1, %arg2, %[[M]] {scale = -1.000000e+00 : f64}
func.func @causal_negated(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %mask = arith.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x5x5xf32>
  %a = weft.add %s, %mask : tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32> -> tensor<1x2x5x5xf32>
  %c = arith.constant dense<-1.0> : tensor<f32>
  %sm = weft.mul %a, %c : tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: an upper-triangular boolean keep-mask (the transposed
// causal one) becomes an additive operand.
// CHECK-LABEL: func.func @keep_transposed
// CHECK-NOT: causal
// CHECK: weft.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @keep_transposed(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %keep = arith.constant dense<[[[[true, true, true, true, true], [false, true, true, true, true], [false, false, true, true, true], [false, false, false, true, true], [false, false, false, false, true]]]]> : tensor<1x1x5x5xi1>
  %ninf = arith.constant dense<0xFF800000> : tensor<f32>
  %sm = weft.select %keep, %s, %ninf : tensor<1x1x5x5xi1>, tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// Refused as causal: a keep-mask off by one (each query also keeps the next key).
// CHECK-LABEL: func.func @keep_future_one
// CHECK-NOT: causal
// CHECK: weft.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 1.000000e+00 : f64} : {{.*}}, tensor<1x1x5x5xf32> -> tensor<1x2x5x8xf32>
func.func @keep_future_one(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %keep = arith.constant dense<[[[[true, true, false, false, false], [true, true, true, false, false], [true, true, true, true, false], [true, true, true, true, true], [true, true, true, true, true]]]]> : tensor<1x1x5x5xi1>
  %ninf = arith.constant dense<0xFF800000> : tensor<f32>
  %sm = weft.select %keep, %s, %ninf : tensor<1x1x5x5xi1>, tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// -----

// A causal mask in f16, masked by f16's lowest (-65504), fuses.
// CHECK-LABEL: func.func @causal_f16
// CHECK-NOT: arith.constant
// CHECK: weft.attention %arg0, %{{.*}}, %arg2 {causal = true, scale = 1.000000e+00 : f64} : tensor<1x1x3x8xf16>, tensor<1x1x3x8xf16>, tensor<1x1x3x8xf16> -> tensor<1x1x3x8xf16>
func.func @causal_f16(%q: tensor<1x1x3x8xf16>, %kt: tensor<1x1x8x3xf16>, %v: tensor<1x1x3x8xf16>) -> tensor<1x1x3x8xf16> {
  %s = weft.matmul %q, %kt : tensor<1x1x3x8xf16>, tensor<1x1x8x3xf16> -> tensor<1x1x3x3xf16>
  %mask = arith.constant dense<[[0.0, -65504.0, -65504.0], [0.0, 0.0, -65504.0], [0.0, 0.0, 0.0]]> : tensor<3x3xf16>
  %sm = weft.add %s, %mask : tensor<1x1x3x3xf16>, tensor<3x3xf16> -> tensor<1x1x3x3xf16>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x1x3x3xf16>
  %o = weft.matmul %p, %v : tensor<1x1x3x3xf16>, tensor<1x1x3x8xf16> -> tensor<1x1x3x8xf16>
  return %o : tensor<1x1x3x8xf16>
}
