// Every weft op prints and parses back: custom form, generic form and
// bytecode each re-parsed and printed to the same lines, printing stable.
// RUN: weft-opt %s | weft-opt | FileCheck %s
// RUN: weft-opt %s --mlir-print-op-generic | weft-opt | FileCheck %s
// RUN: weft-opt %s --emit-bytecode | weft-opt | FileCheck %s
// RUN: weft-opt %s -o %t.1.mlir && weft-opt %t.1.mlir -o %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// The ops of dialects/Weft/Weft.td, all of them used here (a new op needs its
// case below).
// RUN: %python %S/every_op.py %src/dialects/Weft/Weft.td %t.1.mlir | FileCheck %s --check-prefix=EVERY
// EVERY: ops, every one round-tripped

// CHECK-LABEL: func.func @graph(%arg0: tensor<2x8x64xf32>, %arg1: tensor<2x8xi64>, %arg2: tensor<2x4x8x16xf32>, %arg3: tensor<2x2x8x16xf32>, %arg4: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
func.func @graph(%x: tensor<2x8x64xf32>, %ids: tensor<2x8xi64>, %q: tensor<2x4x8x16xf32>, %k: tensor<2x2x8x16xf32>, %mask: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  // CHECK-NEXT: %0 = weft.weight "wte" : tensor<100x64xf32>
  %w = weft.weight "wte" : tensor<100x64xf32>
  // CHECK-NEXT: %1 = weft.embedding %0[%arg1] : tensor<100x64xf32>, tensor<2x8xi64> -> tensor<2x8x64xf32>
  %e = weft.embedding %w[%ids] : tensor<100x64xf32>, tensor<2x8xi64> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %2 = weft.weight "ln.g" : tensor<64xf32>
  %g = weft.weight "ln.g" : tensor<64xf32>
  // CHECK-NEXT: %3 = weft.layer_norm %1, %2, %2 {axis = 2 : i64, epsilon = 1.000000e-05 : f64} : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  %n = weft.layer_norm %e, %g, %g {axis = 2 : i64, epsilon = 1.0e-5 : f64} : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %4 = weft.rms_norm %3, %2 {axis = 2 : i64, epsilon = 9.9999999999999995E-7 : f64} : tensor<2x8x64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  %r = weft.rms_norm %n, %g {axis = 2 : i64, epsilon = 1.0e-6 : f64} : tensor<2x8x64xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %5 = weft.weight "wq" : tensor<128x64xf32>
  %wq = weft.weight "wq" : tensor<128x64xf32>
  // CHECK-NEXT: %6 = weft.linear %4, %5 {transpose_weight = true} : tensor<2x8x64xf32>, tensor<128x64xf32> -> tensor<2x8x128xf32>
  %l = weft.linear %r, %wq {transpose_weight = true} : tensor<2x8x64xf32>, tensor<128x64xf32> -> tensor<2x8x128xf32>
  // CHECK-NEXT: %7 = weft.weight "wo" : tensor<64x128xf32>
  %wo = weft.weight "wo" : tensor<64x128xf32>
  // CHECK-NEXT: %8 = weft.weight "bo" : tensor<64xf32>
  %bo = weft.weight "bo" : tensor<64xf32>
  // CHECK-NEXT: %9 = weft.linear %6, %7, %8 residual %4 {transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  %lo = weft.linear %l, %wo, %bo residual %r {transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %10 = weft.weight "ws" : tensor<64x64xf32>
  %ws = weft.weight "ws" : tensor<64x64xf32>
  // CHECK-NEXT: %11 = weft.linear %9, %10 residual %9 : tensor<2x8x64xf32>, tensor<64x64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  %lr = weft.linear %lo, %ws residual %lo : tensor<2x8x64xf32>, tensor<64x64xf32> residual tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %12 = weft.linear %6, %7, %8 {gelu_tanh = true, transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  %lg = weft.linear %l, %wo, %bo {gelu_tanh = true, transpose_weight = true} : tensor<2x8x128xf32>, tensor<64x128xf32>, tensor<64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %13 = weft.gelu %6 {approximate = #weft.gelu<tanh>} : tensor<2x8x128xf32>
  %a = weft.gelu %l {approximate = #weft.gelu<tanh>} : tensor<2x8x128xf32>
  // CHECK-NEXT: %14 = weft.swiglu %13, %6 : tensor<2x8x128xf32>
  %s = weft.swiglu %a, %l : tensor<2x8x128xf32>
  // CHECK-NEXT: %15 = weft.cmp <lt>, %arg0, %arg0 : tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xi1>
  %c = weft.cmp <lt>, %x, %x : tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xi1>
  // CHECK-NEXT: %16 = weft.select %15, %arg0, %arg0 : tensor<2x8x64xi1>, tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  %sel = weft.select %c, %x, %x : tensor<2x8x64xi1>, tensor<2x8x64xf32>, tensor<2x8x64xf32> -> tensor<2x8x64xf32>
  // CHECK-NEXT: %17 = weft.reduce <mean> %16 {axes = array<i64: 2>, keepdims = true} : tensor<2x8x64xf32> -> tensor<2x8x1xf32>
  %m = weft.reduce <mean> %sel {axes = array<i64: 2>, keepdims = true} : tensor<2x8x64xf32> -> tensor<2x8x1xf32>
  // CHECK-NEXT: %18 = weft.slice %arg2{{\[\[}}0, 0, 0, 8] : [2, 4, 8, 16] : [1, 1, 1, 1{{\]\]}} : tensor<2x4x8x16xf32> -> tensor<2x4x8x8xf32>
  %sl = weft.slice %q[[0, 0, 0, 8] : [2, 4, 8, 16] : [1, 1, 1, 1]] : tensor<2x4x8x16xf32> -> tensor<2x4x8x8xf32>
  // CHECK-NEXT: %cst = arith.constant dense<1.000000e+00> : tensor<1x1x8x16xf32>
  %cs = arith.constant dense<1.0> : tensor<1x1x8x16xf32>
  // CHECK-NEXT: %19 = weft.rotary %arg2, %cst, %cst : tensor<2x4x8x16xf32>, tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32> -> tensor<2x4x8x16xf32>
  %rq = weft.rotary %q, %cs, %cs : tensor<2x4x8x16xf32>, tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32> -> tensor<2x4x8x16xf32>
  // CHECK-NEXT: %20 = weft.attention %19, %arg3, %arg3 {causal = true, scale = 2.500000e-01 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32> -> tensor<2x4x8x16xf32>
  %o = weft.attention %rq, %k, %k {causal = true, scale = 0.25 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32> -> tensor<2x4x8x16xf32>
  // CHECK-NEXT: %21 = weft.attention %20, %arg3, %arg3, %arg4 {scale = 2.500000e-01 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x4x8x16xf32>
  %o2 = weft.attention %o, %k, %k, %mask {scale = 0.25 : f64} : tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x4x8x16xf32>
  // CHECK-NEXT: %22 = weft.transpose %21, [0, 2, 1, 3] : tensor<2x4x8x16xf32> -> tensor<2x8x4x16xf32>
  %sq = weft.transpose %o2, [0, 2, 1, 3] : tensor<2x4x8x16xf32> -> tensor<2x8x4x16xf32>
  // CHECK-NEXT: %23 = weft.transpose %arg3, [0, 2, 1, 3] : tensor<2x2x8x16xf32> -> tensor<2x8x2x16xf32>
  %sk = weft.transpose %k, [0, 2, 1, 3] : tensor<2x2x8x16xf32> -> tensor<2x8x2x16xf32>
  // CHECK-NEXT: %24 = weft.attention %22, %23, %23, %arg4 {scale = 2.500000e-01 : f64, seq_major = true} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x8x4x16xf32>
  %o3 = weft.attention %sq, %sk, %sk, %mask {scale = 0.25 : f64, seq_major = true} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x1x8x8xf32> -> tensor<2x8x4x16xf32>
  // CHECK-NEXT: return %21 : tensor<2x4x8x16xf32>
  return %o2 : tensor<2x4x8x16xf32>
}

// Elementwise: every binary op with numpy broadcasting, the comparisons, every
// unary op, GELU's default and explicit approximations, NaN test, select,
// casts between float and integer types, SwiGLU.
// CHECK-LABEL: func.func @elementwise(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>, %arg2: tensor<2x3xi1>, %arg3: tensor<1x3xi1>) -> tensor<2x3xf32> {
func.func @elementwise(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %p: tensor<2x3xi1>, %q: tensor<1x3xi1>) -> tensor<2x3xf32> {
  // CHECK-NEXT: %0 = weft.add %arg0, %arg1 : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %add = weft.add %a, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %1 = weft.sub %0, %arg1 : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %sub = weft.sub %add, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %2 = weft.mul %arg1, %1 : tensor<3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  %mul = weft.mul %b, %sub : tensor<3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %3 = weft.div %2, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  %div = weft.div %mul, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %4 = weft.pow %3, %arg1 : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %pow = weft.pow %div, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %5 = weft.max %4, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  %max = weft.max %pow, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %6 = weft.min %5, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  %min = weft.min %max, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %7 = weft.and %arg2, %arg3 : tensor<2x3xi1>, tensor<1x3xi1> -> tensor<2x3xi1>
  %and = weft.and %p, %q : tensor<2x3xi1>, tensor<1x3xi1> -> tensor<2x3xi1>
  // CHECK-NEXT: %8 = weft.or %7, %arg2 : tensor<2x3xi1>, tensor<2x3xi1> -> tensor<2x3xi1>
  %or = weft.or %and, %p : tensor<2x3xi1>, tensor<2x3xi1> -> tensor<2x3xi1>
  // CHECK-NEXT: %9 = weft.not %8 : tensor<2x3xi1>
  %not = weft.not %or : tensor<2x3xi1>
  // CHECK-NEXT: %10 = weft.cmp <eq>, %6, %arg1 : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xi1>
  %eq = weft.cmp <eq>, %min, %b : tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xi1>
  // CHECK-NEXT: %11 = weft.cmp <le>, %6, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  %le = weft.cmp <le>, %min, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  // CHECK-NEXT: %12 = weft.cmp <gt>, %6, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  %gt = weft.cmp <gt>, %min, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  // CHECK-NEXT: %13 = weft.cmp <ge>, %6, %arg0 : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  %ge = weft.cmp <ge>, %min, %a : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xi1>
  // CHECK-NEXT: %14 = weft.neg %6 : tensor<2x3xf32>
  %neg = weft.neg %min : tensor<2x3xf32>
  // CHECK-NEXT: %15 = weft.exp %14 : tensor<2x3xf32>
  %exp = weft.exp %neg : tensor<2x3xf32>
  // CHECK-NEXT: %16 = weft.log %15 : tensor<2x3xf32>
  %log = weft.log %exp : tensor<2x3xf32>
  // CHECK-NEXT: %17 = weft.erf %16 : tensor<2x3xf32>
  %erf = weft.erf %log : tensor<2x3xf32>
  // CHECK-NEXT: %18 = weft.tanh %17 : tensor<2x3xf32>
  %tanh = weft.tanh %erf : tensor<2x3xf32>
  // CHECK-NEXT: %19 = weft.sigmoid %18 : tensor<2x3xf32>
  %sigmoid = weft.sigmoid %tanh : tensor<2x3xf32>
  // CHECK-NEXT: %20 = weft.sqrt %19 : tensor<2x3xf32>
  %sqrt = weft.sqrt %sigmoid : tensor<2x3xf32>
  // CHECK-NEXT: %21 = weft.reciprocal %20 : tensor<2x3xf32>
  %recip = weft.reciprocal %sqrt : tensor<2x3xf32>
  // CHECK-NEXT: %22 = weft.cos %21 : tensor<2x3xf32>
  %cos = weft.cos %recip : tensor<2x3xf32>
  // CHECK-NEXT: %23 = weft.sin %22 : tensor<2x3xf32>
  %sin = weft.sin %cos : tensor<2x3xf32>
  // CHECK-NEXT: %24 = weft.abs %23 : tensor<2x3xf32>
  %abs = weft.abs %sin : tensor<2x3xf32>
  // CHECK-NEXT: %25 = weft.relu %24 : tensor<2x3xf32>
  %relu = weft.relu %abs : tensor<2x3xf32>
  // CHECK-NEXT: %26 = weft.silu %25 : tensor<2x3xf32>
  %silu = weft.silu %relu : tensor<2x3xf32>
  // CHECK-NEXT: %27 = weft.gelu %26 : tensor<2x3xf32>
  %gelu = weft.gelu %silu : tensor<2x3xf32>
  // CHECK-NEXT: %28 = weft.gelu %27 : tensor<2x3xf32>
  %gelu_none = weft.gelu %gelu {approximate = #weft.gelu<none>} : tensor<2x3xf32>
  // CHECK-NEXT: %29 = weft.isnan %28 : tensor<2x3xf32> -> tensor<2x3xi1>
  %nan = weft.isnan %gelu_none : tensor<2x3xf32> -> tensor<2x3xi1>
  // CHECK-NEXT: %30 = weft.select %9, %28, %arg1 : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  %sel = weft.select %not, %gelu_none, %b : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32> -> tensor<2x3xf32>
  // CHECK-NEXT: %31 = weft.cast %30 : tensor<2x3xf32> -> tensor<2x3xbf16>
  %bf = weft.cast %sel : tensor<2x3xf32> -> tensor<2x3xbf16>
  // CHECK-NEXT: %32 = weft.cast %31 : tensor<2x3xbf16> -> tensor<2x3xf32>
  %f = weft.cast %bf : tensor<2x3xbf16> -> tensor<2x3xf32>
  // CHECK-NEXT: %33 = weft.cast %32 : tensor<2x3xf32> -> tensor<2x3xi64>
  %ids = weft.cast %f : tensor<2x3xf32> -> tensor<2x3xi64>
  // CHECK-NEXT: %34 = weft.swiglu %32, %arg0 : tensor<2x3xf32>
  %sw = weft.swiglu %f, %a : tensor<2x3xf32>
  // CHECK-NEXT: return %34 : tensor<2x3xf32>
  return %sw : tensor<2x3xf32>
}

// Data movement: reshape, broadcast, transpose, slices with positive and
// negative steps, concat, the three gathers (gather_nd with and without
// batch_dims), tile, cumsum (plain, exclusive and reverse), trilu both ways.
// CHECK-LABEL: func.func @data_movement(%arg0: tensor<2x3x4xf32>, %arg1: tensor<2xi64>, %arg2: tensor<2x2xi64>, %arg3: tensor<2x3x1xi64>) -> tensor<2x3x4xf32> {
func.func @data_movement(%x: tensor<2x3x4xf32>, %idx: tensor<2xi64>, %nd: tensor<2x2xi64>, %el: tensor<2x3x1xi64>) -> tensor<2x3x4xf32> {
  // CHECK-NEXT: %0 = weft.reshape %arg0 : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %r = weft.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  // CHECK-NEXT: %1 = weft.broadcast %0 : tensor<6x4xf32> -> tensor<2x6x4xf32>
  %b = weft.broadcast %r : tensor<6x4xf32> -> tensor<2x6x4xf32>
  // CHECK-NEXT: %2 = weft.transpose %arg0, [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  %t = weft.transpose %x, [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  // CHECK-NEXT: %3 = weft.slice %arg0{{\[\[}}0, 1, 0] : [2, 3, 4] : [1, 1, 2{{\]\]}} : tensor<2x3x4xf32> -> tensor<2x2x2xf32>
  %s = weft.slice %x[[0, 1, 0] : [2, 3, 4] : [1, 1, 2]] : tensor<2x3x4xf32> -> tensor<2x2x2xf32>
  // CHECK-NEXT: %4 = weft.slice %arg0{{\[\[}}1, 2, 3] : [-1, -1, -1] : [-1, -2, -1{{\]\]}} : tensor<2x3x4xf32> -> tensor<2x2x4xf32>
  %sr = weft.slice %x[[1, 2, 3] : [-1, -1, -1] : [-1, -2, -1]] : tensor<2x3x4xf32> -> tensor<2x2x4xf32>
  // CHECK-NEXT: %5 = weft.concat %arg0, %arg0 {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  %c = weft.concat %x, %x {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  // CHECK-NEXT: %6 = weft.gather %arg0[%arg1] {axis = 2 : i64} : tensor<2x3x4xf32>, tensor<2xi64> -> tensor<2x3x2xf32>
  %g = weft.gather %x[%idx] {axis = 2 : i64} : tensor<2x3x4xf32>, tensor<2xi64> -> tensor<2x3x2xf32>
  // CHECK-NEXT: %7 = weft.gather_nd %arg0[%arg2] : tensor<2x3x4xf32>, tensor<2x2xi64> -> tensor<2x4xf32>
  %gnd = weft.gather_nd %x[%nd] : tensor<2x3x4xf32>, tensor<2x2xi64> -> tensor<2x4xf32>
  // CHECK-NEXT: %8 = weft.gather_nd %arg0[%arg2] {batch_dims = 1 : i64} : tensor<2x3x4xf32>, tensor<2x2xi64> -> tensor<2xf32>
  %gnb = weft.gather_nd %x[%nd] {batch_dims = 1 : i64} : tensor<2x3x4xf32>, tensor<2x2xi64> -> tensor<2xf32>
  // CHECK-NEXT: %9 = weft.gather_elements %arg0[%arg3] {axis = 2 : i64} : tensor<2x3x4xf32>, tensor<2x3x1xi64> -> tensor<2x3x1xf32>
  %ge = weft.gather_elements %x[%el] {axis = 2 : i64} : tensor<2x3x4xf32>, tensor<2x3x1xi64> -> tensor<2x3x1xf32>
  // CHECK-NEXT: %10 = weft.tile %arg0, [1, 2, 3] : tensor<2x3x4xf32> -> tensor<2x6x12xf32>
  %tile = weft.tile %x, [1, 2, 3] : tensor<2x3x4xf32> -> tensor<2x6x12xf32>
  // CHECK-NEXT: %11 = weft.cumsum %arg0 {axis = 2 : i64} : tensor<2x3x4xf32>
  %cs = weft.cumsum %x {axis = 2 : i64} : tensor<2x3x4xf32>
  // CHECK-NEXT: %12 = weft.cumsum %11 {axis = 1 : i64, exclusive = true, reverse = true} : tensor<2x3x4xf32>
  %csr = weft.cumsum %cs {axis = 1 : i64, exclusive = true, reverse = true} : tensor<2x3x4xf32>
  // CHECK-NEXT: %13 = weft.trilu %12 {upper = false} : tensor<2x3x4xf32>
  %lower = weft.trilu %csr {upper = false} : tensor<2x3x4xf32>
  // CHECK-NEXT: %14 = weft.trilu %13 {k = -1 : i64, upper = true} : tensor<2x3x4xf32>
  %upper = weft.trilu %lower {k = -1 : i64, upper = true} : tensor<2x3x4xf32>
  // CHECK-NEXT: return %14 : tensor<2x3x4xf32>
  return %upper : tensor<2x3x4xf32>
}

// Every reduction kind, softmax, layer_norm without bias over two dims,
// rms_norm.
// CHECK-LABEL: func.func @reductions(%arg0: tensor<2x3x4xf32>, %arg1: tensor<4xf32>, %arg2: tensor<3x4xf32>) -> tensor<2x3x4xf32> {
func.func @reductions(%x: tensor<2x3x4xf32>, %g: tensor<4xf32>, %gb: tensor<3x4xf32>) -> tensor<2x3x4xf32> {
  // CHECK-NEXT: %0 = weft.reduce <sum> %arg0 {axes = array<i64: 0, 2>, keepdims = false} : tensor<2x3x4xf32> -> tensor<3xf32>
  %sum = weft.reduce <sum> %x {axes = array<i64: 0, 2>, keepdims = false} : tensor<2x3x4xf32> -> tensor<3xf32>
  // CHECK-NEXT: %1 = weft.reduce <mean> %arg0 {axes = array<i64: 2>, keepdims = true} : tensor<2x3x4xf32> -> tensor<2x3x1xf32>
  %mean = weft.reduce <mean> %x {axes = array<i64: 2>, keepdims = true} : tensor<2x3x4xf32> -> tensor<2x3x1xf32>
  // CHECK-NEXT: %2 = weft.reduce <max> %arg0 {axes = array<i64: 1>, keepdims = true} : tensor<2x3x4xf32> -> tensor<2x1x4xf32>
  %max = weft.reduce <max> %x {axes = array<i64: 1>, keepdims = true} : tensor<2x3x4xf32> -> tensor<2x1x4xf32>
  // CHECK-NEXT: %3 = weft.reduce <min> %arg0 {axes = array<i64: 0, 1, 2>, keepdims = false} : tensor<2x3x4xf32> -> tensor<f32>
  %min = weft.reduce <min> %x {axes = array<i64: 0, 1, 2>, keepdims = false} : tensor<2x3x4xf32> -> tensor<f32>
  // CHECK-NEXT: %4 = weft.reduce <prod> %arg0 {axes = array<i64: 0>, keepdims = false} : tensor<2x3x4xf32> -> tensor<3x4xf32>
  %prod = weft.reduce <prod> %x {axes = array<i64: 0>, keepdims = false} : tensor<2x3x4xf32> -> tensor<3x4xf32>
  // CHECK-NEXT: %5 = weft.softmax %arg0 {axis = 1 : i64} : tensor<2x3x4xf32>
  %sm = weft.softmax %x {axis = 1 : i64} : tensor<2x3x4xf32>
  // CHECK-NEXT: %6 = weft.layer_norm %5, %arg2 {axis = 1 : i64, epsilon = 9.9999999999999998E-13 : f64} : tensor<2x3x4xf32>, tensor<3x4xf32> -> tensor<2x3x4xf32>
  %ln = weft.layer_norm %sm, %gb {axis = 1 : i64, epsilon = 1.0e-12 : f64} : tensor<2x3x4xf32>, tensor<3x4xf32> -> tensor<2x3x4xf32>
  // CHECK-NEXT: %7 = weft.rms_norm %6, %arg1 {axis = 2 : i64, epsilon = 9.9999999999999995E-7 : f64} : tensor<2x3x4xf32>, tensor<4xf32> -> tensor<2x3x4xf32>
  %rms = weft.rms_norm %ln, %g {axis = 2 : i64, epsilon = 1.0e-6 : f64} : tensor<2x3x4xf32>, tensor<4xf32> -> tensor<2x3x4xf32>
  // CHECK-NEXT: return %7 : tensor<2x3x4xf32>
  return %rms : tensor<2x3x4xf32>
}

// A per-rank graph: sharded weights (with replicas for grouped kv heads),
// a widened bf16 -> f32 projection and both collectives.
// CHECK-LABEL: func.func @per_rank(%arg0: tensor<2x8x32xbf16>, %arg1: tensor<2x8xi32>) -> tensor<2x8x64xbf16> {
func.func @per_rank(%x: tensor<2x8x32xbf16>, %ids: tensor<2x8xi32>) -> tensor<2x8x64xbf16> {
  // CHECK-NEXT: %0 = weft.weight "up.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 16 : i64} : tensor<16x32xbf16>
  %w = weft.weight "up.weight" {shard_base = 0 : i64, shard_dim = 0 : i64, shard_size = 16 : i64} : tensor<16x32xbf16>
  // CHECK-NEXT: %1 = weft.weight "k.weight" {shard_base = 4 : i64, shard_dim = 0 : i64, shard_replicas = 2 : i64, shard_size = 8 : i64} : tensor<8x32xbf16>
  %kv = weft.weight "k.weight" {shard_base = 4 : i64, shard_dim = 0 : i64, shard_replicas = 2 : i64, shard_size = 8 : i64} : tensor<8x32xbf16>
  // CHECK-NEXT: %2 = weft.weight "wte" : tensor<100x32xbf16>
  %tab = weft.weight "wte" : tensor<100x32xbf16>
  // CHECK-NEXT: %3 = weft.embedding %2[%arg1] : tensor<100x32xbf16>, tensor<2x8xi32> -> tensor<2x8x32xbf16>
  %e = weft.embedding %tab[%ids] : tensor<100x32xbf16>, tensor<2x8xi32> -> tensor<2x8x32xbf16>
  // CHECK-NEXT: %4 = weft.linear %3, %0 {transpose_weight = true} : tensor<2x8x32xbf16>, tensor<16x32xbf16> -> tensor<2x8x16xbf16>
  %l = weft.linear %e, %w {transpose_weight = true} : tensor<2x8x32xbf16>, tensor<16x32xbf16> -> tensor<2x8x16xbf16>
  // CHECK-NEXT: %5 = weft.linear %3, %1 {transpose_weight = true} : tensor<2x8x32xbf16>, tensor<8x32xbf16> -> tensor<2x8x8xf32>
  %wide = weft.linear %e, %kv {transpose_weight = true} : tensor<2x8x32xbf16>, tensor<8x32xbf16> -> tensor<2x8x8xf32>
  // CHECK-NEXT: %6 = weft.all_gather %4 {axis = 2 : i64} : tensor<2x8x16xbf16> -> tensor<2x8x64xbf16>
  %g = weft.all_gather %l {axis = 2 : i64} : tensor<2x8x16xbf16> -> tensor<2x8x64xbf16>
  // CHECK-NEXT: %7 = weft.all_reduce %6 : tensor<2x8x64xbf16>
  %r = weft.all_reduce %g : tensor<2x8x64xbf16>
  // CHECK-NEXT: return %7 : tensor<2x8x64xbf16>
  return %r : tensor<2x8x64xbf16>
}

// matmul with batch broadcasting and each transpose flag.
// CHECK-LABEL: func.func @matmuls(%arg0: tensor<2x3x5xf32>, %arg1: tensor<5x7xf32>, %arg2: tensor<1x7x5xf32>, %arg3: tensor<2x5x3xf32>) -> tensor<2x3x7xf32> {
func.func @matmuls(%a: tensor<2x3x5xf32>, %b: tensor<5x7xf32>, %bt: tensor<1x7x5xf32>, %at: tensor<2x5x3xf32>) -> tensor<2x3x7xf32> {
  // CHECK-NEXT: %0 = weft.matmul %arg0, %arg1 : tensor<2x3x5xf32>, tensor<5x7xf32> -> tensor<2x3x7xf32>
  %m = weft.matmul %a, %b : tensor<2x3x5xf32>, tensor<5x7xf32> -> tensor<2x3x7xf32>
  // CHECK-NEXT: %1 = weft.matmul %arg0, %arg2 {transpose_b = true} : tensor<2x3x5xf32>, tensor<1x7x5xf32> -> tensor<2x3x7xf32>
  %mt = weft.matmul %a, %bt {transpose_b = true} : tensor<2x3x5xf32>, tensor<1x7x5xf32> -> tensor<2x3x7xf32>
  // CHECK-NEXT: %2 = weft.matmul %arg3, %arg2 {transpose_a = true, transpose_b = true} : tensor<2x5x3xf32>, tensor<1x7x5xf32> -> tensor<2x3x7xf32>
  %mtt = weft.matmul %at, %bt {transpose_a = true, transpose_b = true} : tensor<2x5x3xf32>, tensor<1x7x5xf32> -> tensor<2x3x7xf32>
  // CHECK-NEXT: return %2 : tensor<2x3x7xf32>
  return %mtt : tensor<2x3x7xf32>
}

// Rotary on (even, odd) pairs over the first half of the head dim.
// CHECK-LABEL: func.func @rotary_interleaved(%arg0: tensor<1x2x4x16xf32>, %arg1: tensor<4x8xf32>) -> tensor<1x2x4x16xf32> {
func.func @rotary_interleaved(%x: tensor<1x2x4x16xf32>, %cs: tensor<4x8xf32>) -> tensor<1x2x4x16xf32> {
  // CHECK-NEXT: %0 = weft.rotary %arg0, %arg1, %arg1 {interleaved = true} : tensor<1x2x4x16xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<1x2x4x16xf32>
  %r = weft.rotary %x, %cs, %cs {interleaved = true} : tensor<1x2x4x16xf32>, tensor<4x8xf32>, tensor<4x8xf32> -> tensor<1x2x4x16xf32>
  // CHECK-NEXT: return %0 : tensor<1x2x4x16xf32>
  return %r : tensor<1x2x4x16xf32>
}

// Generation: the paged KV caches, paged attention and sampling.
// CHECK-LABEL: func.func @generation(%arg0: tensor<1x16x8x64xbf16>, %arg1: tensor<1x16x2x64xbf16>, %arg2: tensor<1x16x2x64xbf16>, %arg3: tensor<1x16xi64>, %arg4: tensor<16xi32>, %arg5: tensor<4x8xi32>, %arg6: tensor<1x4x100xf32>, %arg7: tensor<4x3xf32>, %arg8: tensor<4x2xi64>) -> (tensor<1x16x8x64xbf16>, tensor<4xi32>) {
func.func @generation(%q: tensor<1x16x8x64xbf16>, %k: tensor<1x16x2x64xbf16>, %v: tensor<1x16x2x64xbf16>, %pos: tensor<1x16xi64>, %seq: tensor<16xi32>, %tables: tensor<4x8xi32>, %logits: tensor<1x4x100xf32>, %params: tensor<4x3xf32>, %seeds: tensor<4x2xi64>) -> (tensor<1x16x8x64xbf16>, tensor<4xi32>) {
  // CHECK-NEXT: %0 = weft.kv_cache "kv.0.k" : tensor<0x16x2x64xbf16>
  %kc = weft.kv_cache "kv.0.k" : tensor<0x16x2x64xbf16>
  // CHECK-NEXT: %1 = weft.kv_cache "kv.0.v" : tensor<0x16x2x64xbf16>
  %vc = weft.kv_cache "kv.0.v" : tensor<0x16x2x64xbf16>
  // CHECK-NEXT: %2 = weft.paged_attention %arg0, %arg1, %arg2 cache %0, %1 at %arg3, %arg4, %arg5 {block_size = 16 : i64, scale = 1.250000e-01 : f64} : tensor<1x16x8x64xbf16>, tensor<1x16x2x64xbf16>, tensor<1x16x2x64xbf16>, tensor<0x16x2x64xbf16>, tensor<0x16x2x64xbf16>, tensor<1x16xi64>, tensor<16xi32>, tensor<4x8xi32> -> tensor<1x16x8x64xbf16>
  %o = weft.paged_attention %q, %k, %v cache %kc, %vc at %pos, %seq, %tables {block_size = 16 : i64, scale = 1.250000e-01 : f64} : tensor<1x16x8x64xbf16>, tensor<1x16x2x64xbf16>, tensor<1x16x2x64xbf16>, tensor<0x16x2x64xbf16>, tensor<0x16x2x64xbf16>, tensor<1x16xi64>, tensor<16xi32>, tensor<4x8xi32> -> tensor<1x16x8x64xbf16>
  // CHECK-NEXT: %3 = weft.sample %arg6, %arg7, %arg8 : tensor<1x4x100xf32>, tensor<4x3xf32>, tensor<4x2xi64> -> tensor<4xi32>
  %t = weft.sample %logits, %params, %seeds : tensor<1x4x100xf32>, tensor<4x3xf32>, tensor<4x2xi64> -> tensor<4xi32>
  // CHECK-NEXT: return %2, %3 : tensor<1x16x8x64xbf16>, tensor<4xi32>
  return %o, %t : tensor<1x16x8x64xbf16>, tensor<4xi32>
}
