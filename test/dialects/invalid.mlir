// RUN: weft-opt %s -split-input-file -verify-diagnostics
// Verifiers and result-type inference refuse malformed ops.

func.func @bad_broadcast(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) {
  // expected-error @+2 {{operand shapes do not broadcast}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.add %a, %b : tensor<2x3xf32>, tensor<4x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @mixed_types(%a: tensor<2xf32>, %b: tensor<2xf16>) {
  // expected-error @+2 {{operand element types differ}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.mul %a, %b : tensor<2xf32>, tensor<2xf16> -> tensor<2xf32>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{element count changes}}
  %0 = weft.reshape %a : tensor<2x3xf32> -> tensor<7xf32>
  return
}

// -----

func.func @gqa_heads(%q: tensor<1x6x4x8xf32>, %k: tensor<1x4x4x8xf32>) {
  // expected-error @+2 {{query heads (6) are not a multiple of kv heads (4)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.attention %q, %k, %k {scale = 1.0 : f64} : tensor<1x6x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32> -> tensor<1x6x4x8xf32>
  return
}

// -----

// seq_major: heads are dim 2 ([B, S, H, D]): 6 query heads against 4.
func.func @gqa_heads_seq_major(%q: tensor<1x4x6x8xf32>, %k: tensor<1x4x4x8xf32>) {
  // expected-error @+2 {{query heads (6) are not a multiple of kv heads (4)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.attention %q, %k, %k {scale = 1.0 : f64, seq_major = true} : tensor<1x4x6x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32> -> tensor<1x4x6x8xf32>
  return
}

// -----

// seq_major: the mask is over [B, H, S, T] = [1, 2, 4, 4], not [1, 1, 4, 5].
func.func @attention_mask_seq_major(%q: tensor<1x4x2x8xf32>, %m: tensor<1x1x4x5xf32>) {
  // expected-error @+2 {{mask does not broadcast onto the scores}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.attention %q, %q, %q, %m {scale = 1.0 : f64, seq_major = true} : tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x1x4x5xf32> -> tensor<1x4x2x8xf32>
  return
}

// -----

func.func @attention_mask(%q: tensor<1x2x4x8xf32>, %m: tensor<1x1x4x5xf32>) {
  // expected-error @+2 {{mask does not broadcast onto the scores}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.attention %q, %q, %q, %m {scale = 1.0 : f64} : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x1x4x5xf32> -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @linear_k(%x: tensor<2x8xf32>, %w: tensor<16x9xf32>) {
  // expected-error @+2 {{linear contraction sizes differ: 8 vs 9}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.linear %x, %w {transpose_weight = true} : tensor<2x8xf32>, tensor<16x9xf32> -> tensor<2x16xf32>
  return
}

// -----

func.func @matmul_k(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+2 {{matmul contraction sizes differ: 3 vs 4}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.matmul %a, %b : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>
  return
}

// -----

func.func @norm_scale(%x: tensor<2x8xf32>, %g: tensor<7xf32>) {
  // expected-error @+1 {{scale does not broadcast onto the normalized dimensions}}
  %0 = weft.rms_norm %x, %g {axis = 1 : i64, epsilon = 1.0e-6 : f64} : tensor<2x8xf32>, tensor<7xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @rotary_dim(%x: tensor<1x2x4x8xf32>, %c: tensor<1x1x4x3xf32>) {
  // expected-error @+1 {{rotary dim 3 must be even and at most 8}}
  %0 = weft.rotary %x, %c, %c : tensor<1x2x4x8xf32>, tensor<1x1x4x3xf32>, tensor<1x1x4x3xf32> -> tensor<1x2x4x8xf32>
  return
}

// -----

func.func @slice_bounds(%x: tensor<4xf32>) {
  // expected-error @+2 {{slice bounds not normalized on dimension 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.slice %x[[0] : [5] : [1]] : tensor<4xf32> -> tensor<5xf32>
  return
}

// -----

func.func @transpose_perm(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{invalid permutation}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.transpose %x, [0, 0] : tensor<2x3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @reduce_axes(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{reduce axes must be sorted, unique and in range}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.reduce <sum> %x {axes = array<i64: 1, 0>, keepdims = false} : tensor<2x3xf32> -> tensor<f32>
  return
}

// -----

// A linear's result widens only from f16 or bf16 to f32.
func.func @linear_result_type(%x: tensor<2x16xf32>, %w: tensor<16x32xf32>) {
  // expected-error @+2 {{'weft.linear' op inferred type(s) 'tensor<2x32xf32>' are incompatible with return type(s) of operation 'tensor<2x32xf16>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = weft.linear %x, %w : tensor<2x16xf32>, tensor<16x32xf32> -> tensor<2x32xf16>
  return
}

// -----

// A residual is read element for element beside the result: no broadcast.
func.func @linear_residual_broadcast(%x: tensor<2x16xf32>, %w: tensor<16x32xf32>, %r: tensor<32xf32>) {
  // expected-error @+1 {{residual of type 'tensor<32xf32>' must have exactly the result's type 'tensor<2x32xf32>' (it is not broadcast)}}
  %0 = weft.linear %x, %w residual %r : tensor<2x16xf32>, tensor<16x32xf32> residual tensor<32xf32> -> tensor<2x32xf32>
  return
}

// -----

func.func @linear_residual_dtype(%x: tensor<2x16xbf16>, %w: tensor<16x32xbf16>, %r: tensor<2x32xf32>) {
  // expected-error @+1 {{residual of type 'tensor<2x32xf32>' must have exactly the result's type 'tensor<2x32xbf16>'}}
  %0 = weft.linear %x, %w residual %r : tensor<2x16xbf16>, tensor<16x32xbf16> residual tensor<2x32xf32> -> tensor<2x32xbf16>
  return
}

// -----

// The GEMM epilogue would apply the GELU to the sum, not to the projection.
func.func @linear_gelu_residual(%x: tensor<2x16xf32>, %w: tensor<16x32xf32>, %r: tensor<2x32xf32>) {
  // expected-error @+1 {{cannot apply gelu_tanh together with a residual: the epilogue would apply the GELU to the sum}}
  %0 = weft.linear %x, %w residual %r {gelu_tanh = true} : tensor<2x16xf32>, tensor<16x32xf32> residual tensor<2x32xf32> -> tensor<2x32xf32>
  return
}

// -----

// The widened f32 result is the raw accumulator: no activation.
func.func @linear_gelu_widened(%x: tensor<2x16xbf16>, %w: tensor<16x32xbf16>) {
  // expected-error @+1 {{cannot apply gelu_tanh to a widened 'f32' result of 'bf16' operands}}
  %0 = weft.linear %x, %w {gelu_tanh = true} : tensor<2x16xbf16>, tensor<16x32xbf16> -> tensor<2x32xf32>
  return
}

// -----

// The widened f32 result (an LM head's logits) takes no residual.
func.func @linear_residual_widened(%x: tensor<2x16xbf16>, %w: tensor<16x32xbf16>, %r: tensor<2x32xf32>) {
  // expected-error @+1 {{a residual cannot be added to a widened 'f32' result of 'bf16' operands}}
  %0 = weft.linear %x, %w residual %r : tensor<2x16xbf16>, tensor<16x32xbf16> residual tensor<2x32xf32> -> tensor<2x32xf32>
  return
}
