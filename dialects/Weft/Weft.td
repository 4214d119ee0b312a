// The weft dialect: graph-level tensor ops of transformer inference.
#ifndef WEFT_DIALECT_TD
#define WEFT_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def Weft_Dialect : Dialect {
  let name = "weft";
  let cppNamespace = "::mlir::weft";
  let summary = "Graph-level tensor ops for sharded transformer inference";
  let description = [{
    Ops on statically shaped tensors, at the level a transformer is reasoned
    about: projections, attention, norms, rotary embedding, activations and the
    elementwise and data-movement ops that glue them. Binary elementwise ops
    broadcast like numpy. Weights are referenced by name (`weft.weight`), never
    embedded.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Weft_CmpPredicate : I32EnumAttr<"CmpPredicate", "comparison predicate", [
    I32EnumAttrCase<"eq", 0>, I32EnumAttrCase<"lt", 1>,
    I32EnumAttrCase<"le", 2>, I32EnumAttrCase<"gt", 3>,
    I32EnumAttrCase<"ge", 4>]> {
  let cppNamespace = "::mlir::weft";
  let genSpecializedAttr = 0;
}
def Weft_CmpPredicateAttr : EnumAttr<Weft_Dialect, Weft_CmpPredicate, "cmp"> {
  let assemblyFormat = "`<` $value `>`";
}

def Weft_ReduceKind : I32EnumAttr<"ReduceKind", "reduction kind", [
    I32EnumAttrCase<"sum", 0>, I32EnumAttrCase<"mean", 1>,
    I32EnumAttrCase<"max", 2>, I32EnumAttrCase<"min", 3>,
    I32EnumAttrCase<"prod", 4>]> {
  let cppNamespace = "::mlir::weft";
  let genSpecializedAttr = 0;
}
def Weft_ReduceKindAttr : EnumAttr<Weft_Dialect, Weft_ReduceKind, "reduce"> {
  let assemblyFormat = "`<` $value `>`";
}

def Weft_GeluApprox : I32EnumAttr<"GeluApprox", "GELU approximation", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"tanh", 1>]> {
  let cppNamespace = "::mlir::weft";
  let genSpecializedAttr = 0;
}
def Weft_GeluApproxAttr : EnumAttr<Weft_Dialect, Weft_GeluApprox, "gelu"> {
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Op classes
//===----------------------------------------------------------------------===//

class Weft_Op<string mnemonic, list<Trait> traits = []>
    : Op<Weft_Dialect, mnemonic, traits # [Pure]>;

// An elementwise op: each result element is a function of the operand
// elements at the same (broadcast) position. The plan builder fuses chains of
// them into one kernel, tensor parallelism splits them along any dim, and the
// sharding interface gives them one parallel loop per result dim.
def Weft_Elementwise : NativeOpTrait<"WeftElementwise"> {
  let cppNamespace = "::mlir::weft";
}

// Ops whose result is computed from constant operands by the shared evaluator
// (WeftFold.cpp); the importer folds shape arithmetic through it.
class Weft_FoldableOp<string mnemonic, list<Trait> traits = []>
    : Weft_Op<mnemonic, traits> {
  let hasFolder = 1;
  let extraClassDefinition = [{
    ::mlir::OpFoldResult $cppClass::fold(FoldAdaptor adaptor) {
      return ::mlir::weft::foldWeftOp(getOperation(), adaptor.getOperands());
    }
  }];
}

class Weft_BinaryOp<string mnemonic, string desc>
    : Weft_FoldableOp<mnemonic, [InferTypeOpAdaptor, Weft_Elementwise]> {
  let summary = desc # " (numpy broadcasting)";
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

class Weft_UnaryOp<string mnemonic, string desc, list<Trait> traits = []>
    : Weft_FoldableOp<mnemonic,
                      traits # [SameOperandsAndResultType, Weft_Elementwise]> {
  let summary = desc # ", elementwise";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def Weft_WeightOp : Weft_Op<"weight"> {
  let summary = "a model weight, referenced by name";
  let description = [{
    A named initializer of the source model. The compiler knows its shape and
    dtype only; the runtime reads the bytes (or each rank its slice).

    In a tensor-parallel (per-rank) graph, `shard_dim` names the dim this
    rank holds a slice of: `shard_size` entries starting at
    `shard_base + (rank / shard_replicas) * shard_size` (`shard_replicas`
    ranks share a slice, 1 if absent: grouped-query kv heads); the result
    type is the local slice.
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<I64Attr>:$shard_dim,
                   OptionalAttr<I64Attr>:$shard_size,
                   OptionalAttr<I64Attr>:$shard_base,
                   OptionalAttr<I64Attr>:$shard_replicas);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let builders = [OpBuilder<(ins "::mlir::Type":$result,
                                 "::llvm::StringRef":$name), [{
    build($_builder, $_state, result, $_builder.getStringAttr(name), nullptr,
          nullptr, nullptr, nullptr);
  }]>];
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

def Weft_AddOp : Weft_BinaryOp<"add", "addition">;
def Weft_SubOp : Weft_BinaryOp<"sub", "subtraction">;
def Weft_MulOp : Weft_BinaryOp<"mul", "multiplication">;
def Weft_DivOp : Weft_BinaryOp<"div", "division">;
def Weft_PowOp : Weft_BinaryOp<"pow", "power">;
def Weft_MaxOp : Weft_BinaryOp<"max", "maximum">;
def Weft_MinOp : Weft_BinaryOp<"min", "minimum">;
def Weft_AndOp : Weft_BinaryOp<"and", "logical and">;
def Weft_OrOp : Weft_BinaryOp<"or", "logical or">;

def Weft_CmpOp : Weft_FoldableOp<"cmp", [InferTypeOpAdaptor, Weft_Elementwise]> {
  let summary = "elementwise comparison to i1 (numpy broadcasting)";
  let arguments = (ins Weft_CmpPredicateAttr:$predicate, AnyRankedTensor:$lhs,
                   AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $predicate `,` $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->`
    type($result)
  }];
}

def Weft_SelectOp
    : Weft_FoldableOp<"select", [InferTypeOpAdaptor, Weft_Elementwise]> {
  let summary = "elementwise choice: cond ? on_true : on_false (broadcasting)";
  let arguments = (ins AnyRankedTensor:$cond, AnyRankedTensor:$on_true,
                   AnyRankedTensor:$on_false);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $cond `,` $on_true `,` $on_false attr-dict `:` type($cond) `,`
    type($on_true) `,` type($on_false) `->` type($result)
  }];
}

def Weft_NegOp : Weft_UnaryOp<"neg", "negation">;
def Weft_ExpOp : Weft_UnaryOp<"exp", "exponential">;
def Weft_LogOp : Weft_UnaryOp<"log", "natural logarithm">;
def Weft_ErfOp : Weft_UnaryOp<"erf", "error function">;
def Weft_TanhOp : Weft_UnaryOp<"tanh", "hyperbolic tangent">;
def Weft_SigmoidOp : Weft_UnaryOp<"sigmoid", "logistic sigmoid">;
def Weft_SqrtOp : Weft_UnaryOp<"sqrt", "square root">;
def Weft_ReciprocalOp : Weft_UnaryOp<"reciprocal", "1/x">;
def Weft_CosOp : Weft_UnaryOp<"cos", "cosine">;
def Weft_SinOp : Weft_UnaryOp<"sin", "sine">;
def Weft_AbsOp : Weft_UnaryOp<"abs", "absolute value">;
def Weft_ReluOp : Weft_UnaryOp<"relu", "max(x, 0)">;
def Weft_NotOp : Weft_UnaryOp<"not", "logical not">;
def Weft_SiluOp : Weft_UnaryOp<"silu", "x * sigmoid(x)">;

def Weft_GeluOp
    : Weft_FoldableOp<"gelu", [SameOperandsAndResultType, Weft_Elementwise]> {
  let summary = "GELU, exact (erf) or tanh-approximated";
  let arguments = (ins AnyRankedTensor:$input,
                   DefaultValuedAttr<Weft_GeluApproxAttr,
                                     "GeluApprox::none">:$approximate);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Weft_IsNanOp
    : Weft_FoldableOp<"isnan", [InferTypeOpAdaptor, Weft_Elementwise]> {
  let summary = "elementwise NaN test to i1";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Weft_CastOp : Weft_FoldableOp<"cast", [Weft_Elementwise]> {
  let summary = "elementwise conversion to the result's element type";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Weft_SwigluOp
    : Weft_Op<"swiglu", [SameOperandsAndResultType, Weft_Elementwise]> {
  let summary = "silu(gate) * up";
  let arguments = (ins AnyRankedTensor:$gate, AnyRankedTensor:$up);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def Weft_ReshapeOp : Weft_FoldableOp<"reshape"> {
  let summary = "reshape to the result type (same element count)";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Weft_BroadcastOp : Weft_FoldableOp<"broadcast"> {
  let summary = "numpy broadcast to the result type";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Weft_TransposeOp : Weft_FoldableOp<"transpose", [InferTypeOpAdaptor]> {
  let summary = "permutation of dimensions: result dim i = input dim perm[i]";
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $perm attr-dict `:` type($input) `->` type($result)";
  let hasCanonicalizer = 1;
}

def Weft_SliceOp : Weft_FoldableOp<"slice", [InferTypeOpAdaptor]> {
  let summary = "strided slice, one normalized (start, end, step) per dimension";
  let description = [{
    For a positive step, 0 <= start <= end <= dim; for a negative step,
    -1 <= end <= start <= dim - 1 (end -1 means "through index 0").
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$starts,
                   DenseI64ArrayAttr:$ends, DenseI64ArrayAttr:$steps);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `[` $starts `:` $ends `:` $steps `]` attr-dict `:` type($input) `->`
    type($result)
  }];
}

def Weft_ConcatOp : Weft_FoldableOp<"concat", [InferTypeOpAdaptor]> {
  let summary = "concatenation along one axis";
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $result)";
}

def Weft_GatherOp : Weft_FoldableOp<"gather", [InferTypeOpAdaptor]> {
  let summary = "ONNX Gather: take slices of data at integer indices along axis";
  let arguments = (ins AnyRankedTensor:$data, AnyRankedTensor:$indices,
                   I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `[` $indices `]` attr-dict `:` type($data) `,` type($indices) `->`
    type($result)
  }];
}

def Weft_GatherNdOp : Weft_FoldableOp<"gather_nd", [InferTypeOpAdaptor]> {
  let summary = "ONNX GatherND";
  let arguments = (ins AnyRankedTensor:$data, AnyRankedTensor:$indices,
                   DefaultValuedAttr<I64Attr, "0">:$batch_dims);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `[` $indices `]` attr-dict `:` type($data) `,` type($indices) `->`
    type($result)
  }];
}

def Weft_GatherElementsOp : Weft_FoldableOp<"gather_elements", [InferTypeOpAdaptor]> {
  let summary = "ONNX GatherElements";
  let arguments = (ins AnyRankedTensor:$data, AnyRankedTensor:$indices,
                   I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `[` $indices `]` attr-dict `:` type($data) `,` type($indices) `->`
    type($result)
  }];
}

def Weft_TileOp : Weft_FoldableOp<"tile", [InferTypeOpAdaptor]> {
  let summary = "repeat the tensor repeats[i] times along each dimension";
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$repeats);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `,` $repeats attr-dict `:` type($input) `->` type($result)";
}

def Weft_CumSumOp : Weft_FoldableOp<"cumsum", [SameOperandsAndResultType]> {
  let summary = "cumulative sum along an axis";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis,
                   DefaultValuedAttr<BoolAttr, "false">:$exclusive,
                   DefaultValuedAttr<BoolAttr, "false">:$reverse);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Weft_TriluOp : Weft_FoldableOp<"trilu", [SameOperandsAndResultType]> {
  let summary = "keep the upper or lower triangle of the last two dims";
  let arguments = (ins AnyRankedTensor:$input, BoolAttr:$upper,
                   DefaultValuedAttr<I64Attr, "0">:$k);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Reductions and normalizations
//===----------------------------------------------------------------------===//

def Weft_ReduceOp : Weft_FoldableOp<"reduce", [InferTypeOpAdaptor]> {
  let summary = "reduction over sorted, non-negative axes";
  let arguments = (ins AnyRankedTensor:$input, Weft_ReduceKindAttr:$kind,
                   DenseI64ArrayAttr:$axes, BoolAttr:$keepdims);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$kind $input attr-dict `:` type($input) `->` type($result)";
}

def Weft_SoftmaxOp : Weft_Op<"softmax", [SameOperandsAndResultType]> {
  let summary = "softmax along one axis";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Weft_LayerNormOp : Weft_Op<"layer_norm"> {
  let summary = "layer normalization over dims [axis, rank)";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$scale,
                   Optional<AnyRankedTensor>:$bias, I64Attr:$axis,
                   F64Attr:$epsilon);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale (`,` $bias^)? attr-dict `:` type($input) `,` type($scale)
    (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Weft_RmsNormOp : Weft_Op<"rms_norm"> {
  let summary = "RMS normalization over dims [axis, rank), times scale";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$scale,
                   I64Attr:$axis, F64Attr:$epsilon);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $scale attr-dict `:` type($input) `,` type($scale) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Collectives (per-rank graphs)
//===----------------------------------------------------------------------===//

def Weft_AllReduceOp : Weft_Op<"all_reduce", [SameOperandsAndResultType]> {
  let summary = "sum over the tensor-parallel group";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Weft_AllGatherOp : Weft_Op<"all_gather"> {
  let summary = "concatenation of every rank's tensor along `axis`";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

def Weft_MatmulOp : Weft_FoldableOp<"matmul", [InferTypeOpAdaptor]> {
  let summary = "batched matrix product with optional transposes";
  let description = [{
    Both operands have rank >= 2; leading (batch) dims broadcast like numpy.
    `transpose_a`/`transpose_b` swap the last two dims of that operand first.
  }];
  let arguments = (ins AnyRankedTensor:$a, AnyRankedTensor:$b,
                   DefaultValuedAttr<BoolAttr, "false">:$transpose_a,
                   DefaultValuedAttr<BoolAttr, "false">:$transpose_b);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $a `,` $b attr-dict `:` type($a) `,` type($b) `->` type($result)
  }];
}

def Weft_LinearOp : Weft_Op<"linear",
    [InferTypeOpAdaptor, AttrSizedOperandSegments]> {
  let summary =
      "x @ W (+ bias) (+ residual) (then tanh GELU): a projection by a weight "
      "matrix";
  let description = [{
    `input` is [..., K]. `weight` is [N, K] when `transpose_weight` (the
    PyTorch nn.Linear layout) and [K, N] otherwise. The result is [..., N],
    of the input's element type or, from f16 or bf16 operands, f32 (the
    f32 accumulator stored unrounded: logits the caller wants in f32).

    `residual`, of exactly the result's type (no broadcast, no widened
    result), is added to the f32 accumulator before the one rounding: the
    `h = x + proj(y)` that ends a transformer block, read by the GEMM's
    epilogue instead of a separate add kernel.

    `gelu_tanh` applies the tanh-approximated GELU to the f32 accumulator
    (after the bias) before the rounding: the MLP's up-projection and its
    activation in one GEMM. Only the tanh approximation, the one cuBLASLt's
    GELU epilogue computes; the exact erf GELU stays a `weft.gelu`. It
    cannot be combined with a residual (the epilogue would apply the GELU to
    the sum) nor with a widened result.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight,
                   Optional<AnyRankedTensor>:$bias,
                   Optional<AnyRankedTensor>:$residual,
                   DefaultValuedAttr<BoolAttr, "false">:$transpose_weight,
                   DefaultValuedAttr<BoolAttr, "false">:$gelu_tanh);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? (`residual` $residual^)? attr-dict `:`
    type($input) `,` type($weight) (`,` type($bias)^)?
    (`residual` type($residual)^)? `->` type($result)
  }];
  let extraClassDeclaration = [{
    static bool isCompatibleReturnTypes(::mlir::TypeRange inferred,
                                        ::mlir::TypeRange actual);
  }];
  let hasVerifier = 1;
}

def Weft_EmbeddingOp : Weft_Op<"embedding", [InferTypeOpAdaptor]> {
  let summary = "rows of a [vocab, hidden] table at integer ids";
  let arguments = (ins AnyRankedTensor:$table, AnyRankedTensor:$ids);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->`
    type($result)
  }];
}

def Weft_RotaryOp : Weft_Op<"rotary"> {
  let summary = "rotary position embedding";
  let description = [{
    out[..., :r] = x[..., :r] * cos + rotate(x[..., :r]) * sin, where r is the
    last dim of cos and sin (which broadcast to x[..., :r]); the rest of x
    passes through. rotate is rotate-half ([-x2, x1]) unless `interleaved`,
    where it acts on (even, odd) pairs.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$cos,
                   AnyRankedTensor:$sin,
                   DefaultValuedAttr<BoolAttr, "false">:$interleaved);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $cos `,` $sin attr-dict `:` type($input) `,` type($cos) `,`
    type($sin) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Weft_AttentionOp : Weft_Op<"attention", [InferTypeOpAdaptor]> {
  let summary = "scaled dot-product attention with grouped-query heads";
  let description = [{
    q: [B, Hq, S, D], k: [B, Hkv, T, D], v: [B, Hkv, T, Dv], Hq % Hkv == 0
    (query head h reads kv head h / (Hq / Hkv)). Result [B, Hq, S, Dv] =
    softmax(scale * q k^T + mask) v. `mask` is additive and broadcasts to
    [B, Hq, S, T]. `causal` masks key j > query i + (T - S).
    `seq_major`: q, k, v and the result are [B, S, H, D] instead (the
    projections' own layout; the mask keeps [B, Hq, S, T]).
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                   AnyRankedTensor:$v, Optional<AnyRankedTensor>:$mask,
                   F64Attr:$scale, DefaultValuedAttr<BoolAttr, "false">:$causal,
                   DefaultValuedAttr<BoolAttr, "false">:$seq_major);
  let results = (outs AnyRankedTensor:$result);
  let extraClassDeclaration = [{
    /// The dims of the heads and of the positions in q, k, v and the result.
    int64_t headsDim() { return getSeqMajor() ? 2 : 1; }
    int64_t seqDim() { return getSeqMajor() ? 1 : 2; }
  }];
  let assemblyFormat = [{
    $q `,` $k `,` $v (`,` $mask^)? attr-dict `:` type($q) `,` type($k) `,`
    type($v) (`,` type($mask)^)? `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Generation ops (weft compile --generate)
//===----------------------------------------------------------------------===//

// Not Pure: a cache is state that paged attention writes, so neither may be
// merged with another or removed.
def Weft_KvCacheOp : Op<Weft_Dialect, "kv_cache"> {
  let summary = "a paged KV cache: persistent state of a generation artifact";
  let description = [{
    One layer's keys or values, [blocks, block_size, kv heads, head dim]:
    dim 0 is 0 in the type, its number of blocks chosen when a session
    opens. `name` identifies it among the entry points that share it.
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Weft_PagedAttentionOp : Op<Weft_Dialect, "paged_attention"> {
  let summary = "causal attention of packed tokens over a paged KV cache";
  let description = [{
    q: [1, T, Hq, D], k: [1, T, Hkv, D], v: [1, T, Hkv, Dv] for T packed
    tokens of several sequences; k_cache, v_cache: weft.kv_cache values;
    positions: i64 [1, T]; token_seq: i32 [T] (row of `block_tables`, -1 for
    padding); block_tables: i32 [R, blocks per sequence]. Stores each
    token's k and v at its position in its row's blocks, then attends each
    token over positions 0..its own of its row. Result [1, T, Hq, Dv].
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                   AnyRankedTensor:$v, AnyRankedTensor:$k_cache,
                   AnyRankedTensor:$v_cache, AnyRankedTensor:$positions,
                   AnyRankedTensor:$token_seq, AnyRankedTensor:$block_tables,
                   F64Attr:$scale, I64Attr:$block_size);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v `cache` $k_cache `,` $v_cache `at` $positions `,`
    $token_seq `,` $block_tables attr-dict `:` type($q) `,` type($k) `,`
    type($v) `,` type($k_cache) `,` type($v_cache) `,` type($positions) `,`
    type($token_seq) `,` type($block_tables) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Weft_SampleOp : Weft_Op<"sample"> {
  let summary = "one token per row of logits: greedy, temperature, top-k, top-p";
  let description = [{
    logits: [R, V] or [1, R, V]; params: f32 [R, 3] (temperature, top_k,
    top_p); seeds: i64 [R, 2] (seed, position). Result i32 [R]: the SAMPLE
    step of the artifact format (runtime/artifact/artifact.proto).
  }];
  let arguments = (ins AnyRankedTensor:$logits, AnyRankedTensor:$params,
                   AnyRankedTensor:$seeds);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $logits `,` $params `,` $seeds attr-dict `:` type($logits) `,`
    type($params) `,` type($seeds) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // WEFT_DIALECT_TD
