// RUN: weft-opt %s --weft-fuse-attention | FileCheck %s

// A causal boolean keep-mask, where(keep, s, lowest), then the scores scaled
// by -1: the masked scores become +3.4e38 and win the softmax. The mask the
// pass builds from the keep-mask carries the scale too (0 where kept,
// -1 x lowest elsewhere), so it is not causal: it stays the attention's
// additive mask operand, with scale -1 on the scores.
// CHECK-LABEL: func.func @keep_then_negate
// CHECK: %[[MASK:.+]] = arith.constant dense<{{\[\[\[\[}}0.000000e+00, 3.40282347E+38, 3.40282347E+38
// CHECK: weft.attention %{{.+}}, %{{.+}}, %{{.+}}, %[[MASK]]
// CHECK-SAME: scale = -1.000000e+00
// CHECK-NOT: causal = true
func.func @keep_then_negate(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x5x8xf32> -> tensor<1x2x8x5xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32> -> tensor<1x2x5x5xf32>
  %keep = arith.constant dense<[[[[true, false, false, false, false], [true, true, false, false, false], [true, true, true, false, false], [true, true, true, true, false], [true, true, true, true, true]]]]> : tensor<1x1x5x5xi1>
  %lo = arith.constant dense<-3.40282347E+38> : tensor<f32>
  %a = weft.select %keep, %s, %lo : tensor<1x1x5x5xi1>, tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %c = arith.constant dense<-1.0> : tensor<f32>
  %sm = weft.mul %a, %c : tensor<1x2x5x5xf32>, tensor<f32> -> tensor<1x2x5x5xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}
