// RUN: weft-opt %s --weft-fuse-attention | FileCheck %s

// S=5 queries over T=3 keys with the mask of j <= i + (T - S): its first two
// rows mask every key with the lowest float. softmax over such a row is
// uniform (every score is the same -3.4e38), so those queries get the mean
// of v in onnxruntime and in the unfused graph. The causal kernels give a
// row with no visible key zeros, so this mask must not become causal = true:
// it stays the attention's additive mask operand.
// CHECK-LABEL: func.func @causal_empty_rows
// CHECK: %[[MASK:.+]] = arith.constant dense<{{\[\[\[\[}}-3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38
// CHECK: weft.attention %{{.+}}, %{{.+}}, %{{.+}}, %[[MASK]]
// CHECK-NOT: causal = true
func.func @causal_empty_rows(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x3x8xf32>, %v: tensor<1x2x3x8xf32>) -> tensor<1x2x5x8xf32> {
  %kt = weft.transpose %k, [0, 1, 3, 2] : tensor<1x2x3x8xf32> -> tensor<1x2x8x3xf32>
  %s = weft.matmul %q, %kt : tensor<1x2x5x8xf32>, tensor<1x2x8x3xf32> -> tensor<1x2x5x3xf32>
  %mask = arith.constant dense<[[[[-3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0]]]]> : tensor<1x1x5x3xf32>
  %sm = weft.add %s, %mask : tensor<1x2x5x3xf32>, tensor<1x1x5x3xf32> -> tensor<1x2x5x3xf32>
  %p = weft.softmax %sm {axis = 3 : i64} : tensor<1x2x5x3xf32>
  %o = weft.matmul %p, %v : tensor<1x2x5x3xf32>, tensor<1x2x3x8xf32> -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}
