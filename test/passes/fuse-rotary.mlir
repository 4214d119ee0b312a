// RUN: weft-opt %s -split-input-file --weft-fuse-rotary | FileCheck %s

// HF rotate_half: x * cos + cat(-x[..., 8:], x[..., :8]) * sin.
// CHECK-LABEL: func.func @rotate_half
// CHECK: %[[R:.*]] = weft.rotary %arg0, %arg1, %arg2 : tensor<2x3x5x16xf32>, tensor<1x1x5x16xf32>, tensor<1x1x5x16xf32> -> tensor<2x3x5x16xf32>
// CHECK-NOT: weft.concat
// CHECK: return %[[R]]
func.func @rotate_half(%x: tensor<2x3x5x16xf32>, %cos: tensor<1x1x5x16xf32>, %sin: tensor<1x1x5x16xf32>) -> tensor<2x3x5x16xf32> {
  %xc = weft.mul %x, %cos : tensor<2x3x5x16xf32>, tensor<1x1x5x16xf32> -> tensor<2x3x5x16xf32>
  %lo = weft.slice %x[[0, 0, 0, 0] : [2, 3, 5, 8] : [1, 1, 1, 1]] : tensor<2x3x5x16xf32> -> tensor<2x3x5x8xf32>
  %hi = weft.slice %x[[0, 0, 0, 8] : [2, 3, 5, 16] : [1, 1, 1, 1]] : tensor<2x3x5x16xf32> -> tensor<2x3x5x8xf32>
  %nh = weft.neg %hi : tensor<2x3x5x8xf32>
  %rot = weft.concat %nh, %lo {axis = 3 : i64} : (tensor<2x3x5x8xf32>, tensor<2x3x5x8xf32>) -> tensor<2x3x5x16xf32>
  %rs = weft.mul %sin, %rot : tensor<1x1x5x16xf32>, tensor<2x3x5x16xf32> -> tensor<2x3x5x16xf32>
  %y = weft.add %rs, %xc : tensor<2x3x5x16xf32>, tensor<2x3x5x16xf32> -> tensor<2x3x5x16xf32>
  return %y : tensor<2x3x5x16xf32>
}

// -----

// Refused: the halves are swapped the wrong way (x1 negated).
// CHECK-LABEL: func.func @wrong_halves
// CHECK-NOT: weft.rotary
func.func @wrong_halves(%x: tensor<2x3x5x16xf32>, %cos: tensor<1x1x5x16xf32>, %sin: tensor<1x1x5x16xf32>) -> tensor<2x3x5x16xf32> {
  %xc = weft.mul %x, %cos : tensor<2x3x5x16xf32>, tensor<1x1x5x16xf32> -> tensor<2x3x5x16xf32>
  %lo = weft.slice %x[[0, 0, 0, 0] : [2, 3, 5, 8] : [1, 1, 1, 1]] : tensor<2x3x5x16xf32> -> tensor<2x3x5x8xf32>
  %hi = weft.slice %x[[0, 0, 0, 8] : [2, 3, 5, 16] : [1, 1, 1, 1]] : tensor<2x3x5x16xf32> -> tensor<2x3x5x8xf32>
  %nl = weft.neg %lo : tensor<2x3x5x8xf32>
  %rot = weft.concat %nl, %hi {axis = 3 : i64} : (tensor<2x3x5x8xf32>, tensor<2x3x5x8xf32>) -> tensor<2x3x5x16xf32>
  %rs = weft.mul %rot, %sin : tensor<2x3x5x16xf32>, tensor<1x1x5x16xf32> -> tensor<2x3x5x16xf32>
  %y = weft.add %xc, %rs : tensor<2x3x5x16xf32>, tensor<2x3x5x16xf32> -> tensor<2x3x5x16xf32>
  return %y : tensor<2x3x5x16xf32>
}

// -----

// Refused: cos and sin of different shapes.
// CHECK-LABEL: func.func @mismatched_tables
// CHECK-NOT: weft.rotary
func.func @mismatched_tables(%x: tensor<1x2x4x8xf32>, %cos: tensor<1x1x4x8xf32>, %sin: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %xc = weft.mul %x, %cos : tensor<1x2x4x8xf32>, tensor<1x1x4x8xf32> -> tensor<1x2x4x8xf32>
  %lo = weft.slice %x[[0, 0, 0, 0] : [1, 2, 4, 4] : [1, 1, 1, 1]] : tensor<1x2x4x8xf32> -> tensor<1x2x4x4xf32>
  %hi = weft.slice %x[[0, 0, 0, 4] : [1, 2, 4, 8] : [1, 1, 1, 1]] : tensor<1x2x4x8xf32> -> tensor<1x2x4x4xf32>
  %nh = weft.neg %hi : tensor<1x2x4x4xf32>
  %rot = weft.concat %nh, %lo {axis = 3 : i64} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x8xf32>
  %rs = weft.mul %rot, %sin : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32> -> tensor<1x2x4x8xf32>
  %y = weft.add %xc, %rs : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32> -> tensor<1x2x4x8xf32>
  return %y : tensor<1x2x4x8xf32>
}
