// KNOWN COMPILER BUG, marked XFAIL until --weft-fuse-attention is fixed; an
// XPASS here means it is: drop the XFAIL line.
// XFAIL: *
// RUN: weft-opt %s --weft-fuse-attention | FileCheck %s

// A causal boolean keep-mask, where(keep, s, lowest), then the scores scaled
// by -1: the masked scores become +3.4e38 and win the softmax. The pass
// takes the scale into the attention but not into the mask it builds from
// the keep-mask (an additive mask gets it): weft fuses this as causal with
// scale -1, which hides the very keys the graph attends to. The mask must
// not be causal (nor the unscaled 0 / -inf select when keep is not a
// constant).
// CHECK-LABEL: func.func @keep_then_negate
// CHECK: weft.attention
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
