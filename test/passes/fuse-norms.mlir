// RUN: weft-opt %s -split-input-file --weft-fuse-norms | FileCheck %s

// Llama's RMSNorm as the dynamo exporter writes it: Reciprocal(Sqrt).
// CHECK-LABEL: func.func @rms_reciprocal
// CHECK-SAME: (%[[X:.*]]: tensor<2x5x8xf32>
// CHECK: %[[W:.*]] = weft.weight "norm.weight"
// CHECK: %[[N:.*]] = weft.rms_norm %[[X]], %[[W]] {axis = 2 : i64, epsilon = 9.99{{[0-9]*}}E-7 : f64}
// CHECK-NOT: weft.reduce
// CHECK: return %[[N]]
func.func @rms_reciprocal(%x: tensor<2x5x8xf32>) -> tensor<2x5x8xf32> {
  %w = weft.weight "norm.weight" : tensor<8xf32>
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-6> : tensor<f32>
  %sq = weft.pow %x, %two : tensor<2x5x8xf32>, tensor<f32> -> tensor<2x5x8xf32>
  %m = weft.reduce <mean> %sq {axes = array<i64: 2>, keepdims = true} : tensor<2x5x8xf32> -> tensor<2x5x1xf32>
  %a = weft.add %m, %eps : tensor<2x5x1xf32>, tensor<f32> -> tensor<2x5x1xf32>
  %s = weft.sqrt %a : tensor<2x5x1xf32>
  %r = weft.reciprocal %s : tensor<2x5x1xf32>
  %n = weft.mul %x, %r : tensor<2x5x8xf32>, tensor<2x5x1xf32> -> tensor<2x5x8xf32>
  %y = weft.mul %w, %n : tensor<8xf32>, tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  return %y : tensor<2x5x8xf32>
}

// -----

// The TorchScript form: Div(1, Sqrt), and no weight multiply (ones scale).
// CHECK-LABEL: func.func @rms_div_no_weight
// CHECK: %[[ONES:.*]] = arith.constant dense<1.000000e+00> : tensor<8xf32>
// CHECK: weft.rms_norm %{{.*}}, %[[ONES]] {axis = 2 : i64
func.func @rms_div_no_weight(%x: tensor<2x5x8xf32>) -> tensor<2x5x8xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %one = arith.constant dense<1.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %sq = weft.pow %x, %two : tensor<2x5x8xf32>, tensor<f32> -> tensor<2x5x8xf32>
  %m = weft.reduce <mean> %sq {axes = array<i64: 2>, keepdims = true} : tensor<2x5x8xf32> -> tensor<2x5x1xf32>
  %a = weft.add %eps, %m : tensor<f32>, tensor<2x5x1xf32> -> tensor<2x5x1xf32>
  %s = weft.sqrt %a : tensor<2x5x1xf32>
  %r = weft.div %one, %s : tensor<f32>, tensor<2x5x1xf32> -> tensor<2x5x1xf32>
  %n = weft.mul %r, %x : tensor<2x5x1xf32>, tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  return %n : tensor<2x5x8xf32>
}

// -----

// Decomposed LayerNorm (TorchScript exporter, opset < 17), with gamma and beta.
// CHECK-LABEL: func.func @layer_norm_chain
// CHECK: weft.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {axis = 1 : i64, epsilon = 9.99{{[0-9]*}}E-6 : f64}
// CHECK-NOT: weft.sub
// CHECK-NOT: weft.reduce
func.func @layer_norm_chain(%x: tensor<6x8xf32>) -> tensor<6x8xf32> {
  %g = weft.weight "ln.weight" : tensor<8xf32>
  %b = weft.weight "ln.bias" : tensor<8xf32>
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-5> : tensor<f32>
  %mu = weft.reduce <mean> %x {axes = array<i64: 1>, keepdims = true} : tensor<6x8xf32> -> tensor<6x1xf32>
  %d = weft.sub %x, %mu : tensor<6x8xf32>, tensor<6x1xf32> -> tensor<6x8xf32>
  %sq = weft.pow %d, %two : tensor<6x8xf32>, tensor<f32> -> tensor<6x8xf32>
  %var = weft.reduce <mean> %sq {axes = array<i64: 1>, keepdims = true} : tensor<6x8xf32> -> tensor<6x1xf32>
  %a = weft.add %var, %eps : tensor<6x1xf32>, tensor<f32> -> tensor<6x1xf32>
  %s = weft.sqrt %a : tensor<6x1xf32>
  %n = weft.div %d, %s : tensor<6x8xf32>, tensor<6x1xf32> -> tensor<6x8xf32>
  %y = weft.mul %n, %g : tensor<6x8xf32>, tensor<8xf32> -> tensor<6x8xf32>
  %z = weft.add %y, %b : tensor<6x8xf32>, tensor<8xf32> -> tensor<6x8xf32>
  return %z : tensor<6x8xf32>
}

// -----

// Refused: the mean is over a leading axis, not the trailing ones.
// CHECK-LABEL: func.func @not_trailing
// CHECK-NOT: weft.rms_norm
// CHECK: weft.reduce <mean>
func.func @not_trailing(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-6> : tensor<f32>
  %sq = weft.pow %x, %two : tensor<4x8xf32>, tensor<f32> -> tensor<4x8xf32>
  %m = weft.reduce <mean> %sq {axes = array<i64: 0>, keepdims = true} : tensor<4x8xf32> -> tensor<1x8xf32>
  %a = weft.add %m, %eps : tensor<1x8xf32>, tensor<f32> -> tensor<1x8xf32>
  %s = weft.sqrt %a : tensor<1x8xf32>
  %r = weft.reciprocal %s : tensor<1x8xf32>
  %n = weft.mul %x, %r : tensor<4x8xf32>, tensor<1x8xf32> -> tensor<4x8xf32>
  return %n : tensor<4x8xf32>
}

// -----

// Refused: the squared value is not the normalized one.
// CHECK-LABEL: func.func @different_input
// CHECK-NOT: weft.rms_norm
func.func @different_input(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %eps = arith.constant dense<1.0e-6> : tensor<f32>
  %sq = weft.pow %y, %two : tensor<4x8xf32>, tensor<f32> -> tensor<4x8xf32>
  %m = weft.reduce <mean> %sq {axes = array<i64: 1>, keepdims = true} : tensor<4x8xf32> -> tensor<4x1xf32>
  %a = weft.add %m, %eps : tensor<4x1xf32>, tensor<f32> -> tensor<4x1xf32>
  %s = weft.sqrt %a : tensor<4x1xf32>
  %r = weft.reciprocal %s : tensor<4x1xf32>
  %n = weft.mul %x, %r : tensor<4x8xf32>, tensor<4x1xf32> -> tensor<4x8xf32>
  return %n : tensor<4x8xf32>
}

// -----

// An unweighted norm followed by the weight multiply (what remains of Hugging
// Face's f32 norm island once --dtype bf16 has dropped its casts): the weight
// becomes the norm's scale and the multiply goes.
// CHECK-LABEL: func.func @fold_weight_into_unweighted_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x5x8xbf16>
// CHECK: %[[W:.*]] = weft.weight "norm.weight"
// CHECK: %[[N:.*]] = weft.rms_norm %[[X]], %[[W]] {axis = 2 : i64, epsilon = 1.000000e-05 : f64}
// CHECK-NOT: weft.mul
// CHECK: return %[[N]]
func.func @fold_weight_into_unweighted_norm(%x: tensor<2x5x8xbf16>) -> tensor<2x5x8xbf16> {
  %w = weft.weight "norm.weight" : tensor<8xbf16>
  %ones = arith.constant dense<1.0> : tensor<8xbf16>
  %n = weft.rms_norm %x, %ones {axis = 2 : i64, epsilon = 1.0e-5 : f64} : tensor<2x5x8xbf16>, tensor<8xbf16> -> tensor<2x5x8xbf16>
  %y = weft.mul %w, %n : tensor<8xbf16>, tensor<2x5x8xbf16> -> tensor<2x5x8xbf16>
  return %y : tensor<2x5x8xbf16>
}

// -----

// Not folded: the norm already has a scale, the multiplier is an activation,
// or the unscaled norm has another user.
// CHECK-LABEL: func.func @no_fold
// CHECK: weft.rms_norm %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 1.0
// CHECK-NEXT: weft.mul
// CHECK-NEXT: weft.rms_norm %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 2.0
// CHECK-NEXT: weft.mul
// CHECK-NEXT: weft.rms_norm %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 3.0
// CHECK-NEXT: weft.mul
func.func @no_fold(%x: tensor<2x5x8xf32>, %act: tensor<8xf32>) -> (tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>) {
  %w = weft.weight "norm.weight" : tensor<8xf32>
  %s = weft.weight "other.weight" : tensor<8xf32>
  %ones = arith.constant dense<1.0> : tensor<8xf32>
  %a = weft.rms_norm %x, %s {axis = 2 : i64, epsilon = 1.0e-5 : f64} : tensor<2x5x8xf32>, tensor<8xf32> -> tensor<2x5x8xf32>
  %ya = weft.mul %w, %a : tensor<8xf32>, tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  %b = weft.rms_norm %x, %ones {axis = 2 : i64, epsilon = 2.0e-5 : f64} : tensor<2x5x8xf32>, tensor<8xf32> -> tensor<2x5x8xf32>
  %yb = weft.mul %act, %b : tensor<8xf32>, tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  %c = weft.rms_norm %x, %ones {axis = 2 : i64, epsilon = 3.0e-5 : f64} : tensor<2x5x8xf32>, tensor<8xf32> -> tensor<2x5x8xf32>
  %yc = weft.mul %w, %c : tensor<8xf32>, tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  return %ya, %yb, %yc, %c : tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>
}
