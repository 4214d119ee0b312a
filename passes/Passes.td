// weft's passes: pattern recognition that lifts exporter output to weft ops.
#ifndef WEFT_PASSES_TD
#define WEFT_PASSES_TD

include "mlir/Pass/PassBase.td"

def FuseNorms : Pass<"weft-fuse-norms", "func::FuncOp"> {
  let summary = "Recognize decomposed LayerNorm and RMSNorm chains";
  let description = [{
    Rewrites mean/variance chains (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt,
    Div, Mul, Add) into `weft.layer_norm` and Llama's RMSNorm (Pow, ReduceMean,
    Add, Sqrt, Reciprocal or Div, Mul, Mul by weight, with optional casts)
    into `weft.rms_norm`, and folds a weight multiply that follows an
    unweighted `weft.rms_norm` into its scale (run again after
    --weft-convert-compute-type, which removes the casts between them).
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FuseActivations : Pass<"weft-fuse-activations", "func::FuncOp"> {
  let summary = "Recognize GELU (erf and tanh forms), SiLU and SwiGLU";
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FuseRotary : Pass<"weft-fuse-rotary", "func::FuncOp"> {
  let summary = "Recognize rotate-half rotary embedding into weft.rotary";
  let description = [{
    Rewrites x * cos + concat(-x[..., r/2:r], x[..., :r/2]) * sin into
    `weft.rotary`, also where only the first r dims of x are rotated.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FuseAttention : Pass<"weft-fuse-attention", "func::FuncOp"> {
  let summary = "Recognize scaled dot-product attention into weft.attention";
  let description = [{
    Rewrites softmax(scale * q k^T + mask) v, in the forms the PyTorch
    exporters produce (scale on the scores or split over q and k, additive or
    boolean masks, NaN guards, grouped-query repetition of k and v through
    broadcast and reshape), into one `weft.attention`. A constant causal mask
    becomes `causal = true`.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FormLinear : Pass<"weft-form-linear", "func::FuncOp"> {
  let summary = "Turn products with weights into weft.linear and lookups into "
                "weft.embedding";
  let description = [{
    matmul(x, W) or matmul(x, transpose(W)) with W a 2-D weight, plus an
    optional bias add, becomes `weft.linear`; gather(W, ids) along axis 0 of a
    2-D weight becomes `weft.embedding`.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def ConvertComputeType : Pass<"weft-convert-compute-type", "func::FuncOp"> {
  let summary = "Run the float computation in f16 or bf16";
  let description = [{
    Every f32 tensor inside the function becomes `dtype`: weights keep their
    stored type in the model (the runtime converts them on load), constants
    are converted, f32 inputs are cast on entry and results cast back to f32
    on return, so the function's signature is unchanged.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"bf16\"",
           "compute type: f16 or bf16">
  ];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def TensorParallel : Pass<"weft-tensor-parallel", "func::FuncOp"> {
  let summary = "Rewrite the graph into one tensor-parallel rank's graph";
  let description = [{
    Megatron-style: a projection whose input is replicated becomes
    column-parallel (its weight split on the output features); one whose
    input is split on its features becomes row-parallel (weight split on the
    input features) followed by `weft.all_reduce`, its bias added after.
    Splits follow through reshapes, transposes, rotary and elementwise ops,
    so attention runs on this rank's heads. A fused QKV projection consumed
    by equal slices is split part by part. Embedding tables are split on
    the vocabulary (each rank looks up its ids, then all-reduce). A value a
    consumer cannot take split is all-gathered first; results are always
    whole. A dimension that does not divide by `tp` stays replicated, except
    attention heads, which are refused with a message.
  }];
  let options = [
    Option<"tp", "tp", "int64_t", /*default=*/"1", "tensor-parallel degree">
  ];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def SeqMajorAttention : Pass<"weft-seq-major-attention", "func::FuncOp"> {
  let summary = "Run attention and rotary in the [B, S, H, D] layout";
  let description = [{
    Moves a transpose that keeps the last dim from before `weft.rotary` to
    after it (cos and sin take the input's layout), and turns attention over
    q, k and v transposed from [B, S, H, D] into `weft.attention` with
    `seq_major`, whose result is transposed back; the transpose pairs that
    result cancel. Runs after tensor parallelism.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def WidenLinearOutput : Pass<"weft-widen-linear-output", "func::FuncOp"> {
  let summary = "Store an f32 cast of a projection as its f32 accumulator";
  let description = [{
    Rewrites cast(linear(x, w)) from f16 or bf16 to f32, where the cast is
    the projection's only use and there is no bias, into one `weft.linear`
    with an f32 result (the LM head's logits of a --dtype graph). Runs after
    tensor parallelism.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FuseResidual : Pass<"weft-fuse-residual", "func::FuncOp"> {
  let summary = "Add a residual in the epilogue of the projection before it";
  let description = [{
    Rewrites add(linear(x, W), r) and add(r, linear(x, W)), where the add is
    the projection's only use and r, the projection and the add have one
    type (no broadcast, no widened f32 result), into one `weft.linear` with
    `residual = r`: the GEMM adds r to its accumulator instead of a separate
    kernel re-reading its output. A projection reshaped before the add
    (GPT-2's [batch * seq, n] view) takes r reshaped to its own shape. Runs
    after tensor parallelism, whose row-parallel projections feed an
    all-reduce and so keep their add.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

def FuseGeluEpilogue : Pass<"weft-fuse-gelu-epilogue", "func::FuncOp"> {
  let summary = "Apply a tanh GELU in the epilogue of the projection before it";
  let description = [{
    Rewrites gelu(linear(x, W)) with `approximate = tanh`, where the GELU is
    the projection's only use (possibly through a reshape, GPT-2's
    [batch * seq, n] view), into one `weft.linear` with `gelu_tanh`: the
    GEMM applies the activation to its accumulator instead of a separate
    kernel re-reading its output. The exact erf GELU is left alone (the
    GEMM epilogue computes only the tanh approximation), as are projections
    with a residual (the epilogue would apply the GELU to the sum) or a
    widened f32 result. Runs after tensor parallelism and the residual
    fusion.
  }];
  let dependentDialects = ["::mlir::weft::WeftDialect"];
}

#endif // WEFT_PASSES_TD
