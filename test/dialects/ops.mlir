// RUN: weft-opt %s | weft-opt | FileCheck %s
// Every weft op prints and parses back.

// CHECK-LABEL: func.func @graph
func.func @graph(%x: tensor<2x8x64xf32>, %ids: tensor<2x8xi64>,
                 %q: tensor<2x4x8x16xf32>, %k: tensor<2x2x8x16xf32>,
                 %mask: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  // CHECK: weft.weight "wte"
  %w = weft.weight "wte" : tensor<100x64xf32>
  // CHECK: weft.embedding
  %e = weft.embedding %w[%ids] : tensor<100x64xf32>, tensor<2x8xi64> -> tensor<2x8x64xf32>
  %g = weft.weight "ln.g" : tensor<64xf32>
  // CHECK: weft.layer_norm {{.*}} {axis = 2 : i64, epsilon = 1.000000e-05 : f64}
  %n = weft.layer_norm %e, %g, %g {axis = 2 : i64, epsilon = 1.0e-5 : f64} : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  // CHECK: weft.rms_norm
  %r = weft.rms_norm %n, %g {axis = 2 : i64, epsilon = 1.0e-6 : f64} : tensor<2x8x64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  %wq = weft.weight "wq" : tensor<128x64xf32>
  // CHECK: weft.linear {{.*}} {transpose_weight = true}
  %l = weft.linear %r, %wq {transpose_weight = true} : tensor<2x8x64xf32>, tensor<128x64xf32> -> tensor<2x8x128xf32>
  %wo = weft.weight "wo" : tensor<64x128xf32>
  %bo = weft.weight "bo" : tensor<64xf32>
  // CHECK: weft.linear %{{.*}}, %{{.*}}, %{{.*}} residual %{{.*}} {transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  %lo = weft.linear %l, %wo, %bo residual %r {transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK: weft.linear %{{.*}}, %{{.*}} residual %{{.*}} : tensor<2x8x64xf32>, tensor<64x64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  %ws = weft.weight "ws" : tensor<64x64xf32>
  %lr = weft.linear %lo, %ws residual %lo : tensor<2x8x64xf32>, tensor<64x64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK: weft.linear %{{.*}}, %{{.*}}, %{{.*}} {gelu_tanh = true, transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  %lg = weft.linear %l, %wo, %bo {gelu_tanh = true, transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  // CHECK: weft.gelu {{.*}} {approximate = #weft.gelu<tanh>}
  %a = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<2x8x128xf32>
  // CHECK: weft.swiglu
  %s = weft.swiglu %a, %l : tensor<2x8x128xf32>
  // CHECK: weft.cmp <lt>
  %c = weft.cmp <lt>, %x, %x : tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xi1>
  // CHECK: weft.select
  %sel = weft.select %c, %x, %x : tensor<2x8x64xi1>, tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK: weft.reduce <mean>
  %m = weft.reduce <mean> %sel {axes = array<i64: 2>, keepdims = true} : tensor<2x8x64xf32> -> tensor<2x8x1xf32>
  // CHECK: weft.slice
  %sl = weft.slice %q[[0, 0, 0, 8] : [2, 4, 8, 16] : [1, 1, 1, 1]] : tensor<2x4x8x16xf32> -> tensor<2x4x8x8xf32>
  %cs = arith.constant dense<1.0> : tensor<1x1x8x16xf32>
  // CHECK: weft.rotary
  %rq = weft.rotary %q, %cs, %cs : tensor<2x4x8x16xf32>, tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32> -> tensor<2x4x8x16xf32>
  // CHECK: weft.attention {{.*}} {causal = true, scale = 2.500000e-01 : f64}
  %o = weft.attention %rq, %k, %k {causal = true, scale = 0.25 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32> -> tensor<2x4x8x16xf32>
  // CHECK: weft.attention {{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale
  %o2 = weft.attention %o, %k, %k, %mask {scale = 0.25 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x4x8x16xf32>
  // CHECK: weft.attention {{.*}} {scale = 2.500000e-01 : f64, seq_major = true} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x8x4x16xf32>
  %sq = weft.transpose %o2, [0, 2, 1, 3] : tensor<2x4x8x16xf32> -> tensor<2x8x4x16xf32>
  %sk = weft.transpose %k, [0, 2, 1, 3] : tensor<2x2x8x16xf32> -> tensor<2x8x2x16xf32>
  %o3 = weft.attention %sq, %sk, %sk, %mask {scale = 0.25 : f64, seq_major = true} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x8x4x16xf32>
  return %o2 : tensor<2x4x8x16xf32>
}
