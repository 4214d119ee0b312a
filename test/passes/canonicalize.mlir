// RUN: weft-opt %s -split-input-file --canonicalize | FileCheck %s

// Shape arithmetic on constants folds; identity reshapes and transposes go.
// CHECK-LABEL: func.func @fold_shape_math
// CHECK-NEXT: %[[C:.*]] = arith.constant dense<[2, 12, 4, 16]> : tensor<4xi64>
// CHECK-NEXT: return %[[C]], %arg0
func.func @fold_shape_math(%x: tensor<2x12x64xf32>) -> (tensor<4xi64>, tensor<2x12x64xf32>) {
  %shape = arith.constant dense<[2, 12, 64]> : tensor<3xi64>
  %idx = arith.constant dense<[0, 1]> : tensor<2xi64>
  %bs = weft.gather %shape[%idx] {axis = 0 : i64} : tensor<3xi64>, tensor<2xi64> -> tensor<2xi64>
  %tail = arith.constant dense<[4, 16]> : tensor<2xi64>
  %cat = weft.concat %bs, %tail {axis = 0 : i64} : (tensor<2xi64>, tensor<2xi64>) -> tensor<4xi64>
  %r = weft.reshape %x : tensor<2x12x64xf32> -> tensor<2x12x64xf32>
  %t = weft.transpose %r, [0, 1, 2] : tensor<2x12x64xf32> -> tensor<2x12x64xf32>
  return %cat, %t : tensor<4xi64>, tensor<2x12x64xf32>
}

// -----

// Transpose chains compose; transposes of trailing dims move below reshapes
// that only merge leading dims.
// CHECK-LABEL: func.func @transposes
// CHECK: %[[T:.*]] = weft.transpose %arg0, [0, 1, 2, 4, 3] : tensor<2x2x3x5x7xf32> -> tensor<2x2x3x7x5xf32>
// CHECK: weft.reshape %[[T]] : tensor<2x2x3x7x5xf32> -> tensor<12x7x5xf32>
func.func @transposes(%x: tensor<2x2x3x5x7xf32>) -> tensor<12x7x5xf32> {
  %r = weft.reshape %x : tensor<2x2x3x5x7xf32> -> tensor<12x5x7xf32>
  %t = weft.transpose %r, [0, 2, 1] : tensor<12x5x7xf32> -> tensor<12x7x5xf32>
  return %t : tensor<12x7x5xf32>
}

// -----

// A causal mask built from Range and a comparison folds to one constant.
// CHECK-LABEL: func.func @mask_fold
// CHECK-NEXT: arith.constant dense<{{\[}}[true, false, false], [true, true, false], [true, true, true]]> : tensor<3x3xi1>
// CHECK-NEXT: return
func.func @mask_fold() -> tensor<3x3xi1> {
  %row = arith.constant dense<[[0], [1], [2]]> : tensor<3x1xi64>
  %col = arith.constant dense<[[0, 1, 2]]> : tensor<1x3xi64>
  %m = weft.cmp <le>, %col, %row : tensor<1x3xi64>, tensor<3x1xi64> -> tensor<3x3xi1>
  return %m : tensor<3x3xi1>
}

// -----

// Integer unary ops fold in integer arithmetic: Neg and Abs wrap at the
// minimum, values beyond 2^53 stay exact; Reciprocal of an integer (1/0) and
// a float cast to an integer it does not fit are left unfolded.
// CHECK-LABEL: func.func @int_unary_fold
// CHECK-DAG: arith.constant dense<[-9223372036854775808, -9007199254740993, 5]> : tensor<3xi64>
// CHECK-DAG: arith.constant dense<[-9223372036854775808, 9007199254740993, 5]> : tensor<3xi64>
// CHECK-DAG: weft.reciprocal
// CHECK-DAG: weft.cast
// CHECK: return
func.func @int_unary_fold() -> (tensor<3xi64>, tensor<3xi64>, tensor<3xi64>, tensor<2xi64>) {
  %c = arith.constant dense<[-9223372036854775808, 9007199254740993, -5]> : tensor<3xi64>
  %z = arith.constant dense<[0, 1, 2]> : tensor<3xi64>
  %f = arith.constant dense<[1.0e30, 2.0]> : tensor<2xf32>
  %n = weft.neg %c : tensor<3xi64>
  %a = weft.abs %c : tensor<3xi64>
  %r = weft.reciprocal %z : tensor<3xi64>
  %i = weft.cast %f : tensor<2xf32> -> tensor<2xi64>
  return %n, %a, %r, %i : tensor<3xi64>, tensor<3xi64>, tensor<3xi64>, tensor<2xi64>
}

// -----

// Integer reductions fold in integer arithmetic, exact beyond 2^53 and
// wrapping as the kernels do; a float max keeps a NaN, as the kernels do.
// The integer mean of no elements and a gather from empty data have no
// value to fold and are left to the runtime (found by the ONNX fuzz target:
// a NaN converted to int64, a read of an empty vector).
// CHECK-LABEL: func.func @reduce_fold
// CHECK-DAG: arith.constant dense<[9007199254740995, -9223372036854775808]> : tensor<2xi64>
// CHECK-DAG: arith.constant dense<[9007199254740993, 9223372036854775807]> : tensor<2xi64>
// CHECK-DAG: arith.constant dense<0x7FC00000> : tensor<1xf32>
// CHECK-DAG: weft.reduce <mean>
// CHECK-DAG: weft.gather
// CHECK: return
func.func @reduce_fold() -> (tensor<2xi64>, tensor<2xi64>, tensor<1xf32>, tensor<2xi64>, tensor<1xi64>) {
  %c = arith.constant dense<[[9007199254740993, 2], [9223372036854775807, 1]]> : tensor<2x2xi64>
  %f = arith.constant dense<[[1.0, 0x7FC00000]]> : tensor<1x2xf32>
  %e = arith.constant dense<> : tensor<2x0xi64>
  %d = arith.constant dense<> : tensor<0xi64>
  %i = arith.constant dense<[0]> : tensor<1xi64>
  %s = weft.reduce <sum> %c {axes = array<i64: 1>, keepdims = false} : tensor<2x2xi64> -> tensor<2xi64>
  %m = weft.reduce <max> %c {axes = array<i64: 1>, keepdims = false} : tensor<2x2xi64> -> tensor<2xi64>
  %n = weft.reduce <max> %f {axes = array<i64: 1>, keepdims = false} : tensor<1x2xf32> -> tensor<1xf32>
  %z = weft.reduce <mean> %e {axes = array<i64: 1>, keepdims = false} : tensor<2x0xi64> -> tensor<2xi64>
  %g = weft.gather %d[%i] {axis = 0 : i64} : tensor<0xi64>, tensor<1xi64> -> tensor<1xi64>
  return %s, %m, %n, %z, %g : tensor<2xi64>, tensor<2xi64>, tensor<1xf32>, tensor<2xi64>, tensor<1xi64>
}
