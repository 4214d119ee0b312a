// RUN: weft-opt %s -split-input-file --weft-convert-compute-type=dtype=bf16 | FileCheck %s
// RUN: weft-opt %s -split-input-file --weft-convert-compute-type=dtype=f16 | FileCheck %s --check-prefix=F16
// RUN: not weft-opt %s -split-input-file --weft-convert-compute-type=dtype=f8 2>&1 | FileCheck %s --check-prefix=BAD

// f32 inside the function becomes bf16: the input is cast on entry, weights
// and results switch type, constants are converted, the result is cast back;
// integer tensors are untouched.
// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>, %[[IDS:.*]]: tensor<2xi64>) -> tensor<2x8xf32>
// CHECK: %[[XC:.*]] = weft.cast %[[X]] : tensor<2x8xf32> -> tensor<2x8xbf16>
// CHECK-DAG: weft.weight "w" : tensor<8x8xbf16>
// CHECK-DAG: arith.constant dense<5.000000e-01> : tensor<8xbf16>
// CHECK: weft.linear %[[XC]], %{{.*}} {transpose_weight = true} : tensor<2x8xbf16>, tensor<8x8xbf16> -> tensor<2x8xbf16>
// CHECK: weft.mul {{.*}} : tensor<2x8xbf16>, tensor<8xbf16> -> tensor<2x8xbf16>
// CHECK: %[[OUT:.*]] = weft.cast %{{.*}} : tensor<2x8xbf16> -> tensor<2x8xf32>
// CHECK: return %[[OUT]] : tensor<2x8xf32>
// F16: weft.linear {{.*}} -> tensor<2x8xf16>
// BAD: compute type must be f16 or bf16, not 'f8'
func.func @block(%x: tensor<2x8xf32>, %ids: tensor<2xi64>) -> tensor<2x8xf32> {
  %w = weft.weight "w" : tensor<8x8xf32>
  %c = arith.constant dense<0.5> : tensor<8xf32>
  %y = weft.linear %x, %w {transpose_weight = true} : tensor<2x8xf32>, tensor<8x8xf32> -> tensor<2x8xf32>
  %z = weft.mul %y, %c : tensor<2x8xf32>, tensor<8xf32> -> tensor<2x8xf32>
  return %z : tensor<2x8xf32>
}
