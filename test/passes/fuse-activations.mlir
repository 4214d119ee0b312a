// RUN: weft-opt %s -split-input-file --weft-fuse-activations | FileCheck %s

// GELU, erf form as BERT exports it: x * (0.5 * (1 + erf(x / sqrt 2))).
// CHECK-LABEL: func.func @gelu_erf
// CHECK: %[[G:.*]] = weft.gelu %arg0 : tensor<3x7xf32>
// CHECK-NOT: weft.erf
// CHECK: return %[[G]]
func.func @gelu_erf(%x: tensor<3x7xf32>) -> tensor<3x7xf32> {
  %s2 = arith.constant dense<1.41421354> : tensor<f32>
  %one = arith.constant dense<1.0> : tensor<f32>
  %half = arith.constant dense<0.5> : tensor<f32>
  %d = weft.div %x, %s2 : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %e = weft.erf %d : tensor<3x7xf32>
  %t = weft.add %e, %one : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %h = weft.mul %half, %t : tensor<f32>, tensor<3x7xf32> -> tensor<3x7xf32>
  %y = weft.mul %x, %h : tensor<3x7xf32>, tensor<3x7xf32> -> tensor<3x7xf32>
  return %y : tensor<3x7xf32>
}

// -----

// GELU, erf form with (x * 0.5) * (1 + erf(x * 0.7071)).
// CHECK-LABEL: func.func @gelu_erf_mul
// CHECK: weft.gelu %arg0 : tensor<3x7xf32>
func.func @gelu_erf_mul(%x: tensor<3x7xf32>) -> tensor<3x7xf32> {
  %r2 = arith.constant dense<0.707106769> : tensor<f32>
  %one = arith.constant dense<1.0> : tensor<f32>
  %half = arith.constant dense<0.5> : tensor<f32>
  %d = weft.mul %x, %r2 : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %e = weft.erf %d : tensor<3x7xf32>
  %t = weft.add %one, %e : tensor<f32>, tensor<3x7xf32> -> tensor<3x7xf32>
  %hx = weft.mul %x, %half : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %y = weft.mul %hx, %t : tensor<3x7xf32>, tensor<3x7xf32> -> tensor<3x7xf32>
  return %y : tensor<3x7xf32>
}

// -----

// GELU, GPT-2's tanh form.
// CHECK-LABEL: func.func @gelu_tanh
// CHECK: weft.gelu %arg0 {approximate = #weft.gelu<tanh>}
// CHECK-NOT: weft.tanh
func.func @gelu_tanh(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %three = arith.constant dense<3.0> : tensor<f32>
  %c = arith.constant dense<0.044715> : tensor<f32>
  %k = arith.constant dense<0.797884583> : tensor<f32>
  %one = arith.constant dense<1.0> : tensor<f32>
  %half = arith.constant dense<0.5> : tensor<f32>
  %p = weft.pow %x, %three : tensor<4x6xf32>, tensor<f32> -> tensor<4x6xf32>
  %cp = weft.mul %c, %p : tensor<f32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %in = weft.add %x, %cp : tensor<4x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %ki = weft.mul %k, %in : tensor<f32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %t = weft.tanh %ki : tensor<4x6xf32>
  %a = weft.add %one, %t : tensor<f32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %hx = weft.mul %half, %x : tensor<f32>, tensor<4x6xf32> -> tensor<4x6xf32>
  %y = weft.mul %hx, %a : tensor<4x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  return %y : tensor<4x6xf32>
}

// -----

// SiLU, then SwiGLU with the up projection.
// CHECK-LABEL: func.func @swiglu
// CHECK: %[[S:.*]] = weft.swiglu %arg0, %arg1 : tensor<2x11xf32>
// CHECK: return %[[S]]
func.func @swiglu(%g: tensor<2x11xf32>, %u: tensor<2x11xf32>) -> tensor<2x11xf32> {
  %s = weft.sigmoid %g : tensor<2x11xf32>
  %a = weft.mul %g, %s : tensor<2x11xf32>, tensor<2x11xf32> -> tensor<2x11xf32>
  %y = weft.mul %a, %u : tensor<2x11xf32>, tensor<2x11xf32> -> tensor<2x11xf32>
  return %y : tensor<2x11xf32>
}

// -----

// Refused: a GELU-like chain with the wrong constant stays as it is.
// CHECK-LABEL: func.func @not_gelu
// CHECK-NOT: weft.gelu
// CHECK: weft.erf
func.func @not_gelu(%x: tensor<3x7xf32>) -> tensor<3x7xf32> {
  %s2 = arith.constant dense<2.0> : tensor<f32>
  %one = arith.constant dense<1.0> : tensor<f32>
  %half = arith.constant dense<0.5> : tensor<f32>
  %d = weft.div %x, %s2 : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %e = weft.erf %d : tensor<3x7xf32>
  %t = weft.add %e, %one : tensor<3x7xf32>, tensor<f32> -> tensor<3x7xf32>
  %h = weft.mul %half, %t : tensor<f32>, tensor<3x7xf32> -> tensor<3x7xf32>
  %y = weft.mul %x, %h : tensor<3x7xf32>, tensor<3x7xf32> -> tensor<3x7xf32>
  return %y : tensor<3x7xf32>
}

// -----

// Refused: sigmoid of another value is not SiLU.
// CHECK-LABEL: func.func @not_silu
// CHECK-NOT: weft.silu
func.func @not_silu(%x: tensor<5xf32>, %y: tensor<5xf32>) -> tensor<5xf32> {
  %s = weft.sigmoid %y : tensor<5xf32>
  %a = weft.mul %x, %s : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>
  return %a : tensor<5xf32>
}
