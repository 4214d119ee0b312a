// The weft dialect: registration, result-type inference, verifiers and
// canonicalization patterns.
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::weft;

#include "dialects/Weft/WeftDialect.cpp.inc"
#include "dialects/Weft/WeftEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Weft/WeftAttrs.cpp.inc"

void WeftDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Weft/WeftOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Weft/WeftAttrs.cpp.inc"
      >();
}

Operation *WeftDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                            Type type, Location loc) {
  auto typed = dyn_cast<TypedAttr>(value);
  if (!typed || typed.getType() != type)
    return nullptr;
  return arith::ConstantOp::create(builder, loc, type, typed);
}

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

FailureOr<SmallVector<int64_t>>
mlir::weft::broadcastShapes(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return failure();
    out[i] = da == 1 ? db : da;
  }
  return out;
}

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

static LogicalResult
inferBroadcast(std::optional<Location> loc, Type elementType,
               ArrayRef<Value> operands,
               SmallVectorImpl<Type> &inferredReturnTypes) {
  SmallVector<int64_t> shape;
  for (Value v : operands) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t)
      return emitOptionalError(loc, "expected ranked tensor operands");
    auto b = broadcastShapes(shape, t.getShape());
    if (failed(b))
      return emitOptionalError(loc, "operand shapes do not broadcast");
    shape = *b;
  }
  inferredReturnTypes.push_back(RankedTensorType::get(shape, elementType));
  return success();
}

static LogicalResult inferBinary(std::optional<Location> loc, Value lhs,
                                 Value rhs, SmallVectorImpl<Type> &out) {
  if (tensorOf(lhs).getElementType() != tensorOf(rhs).getElementType())
    return emitOptionalError(loc, "operand element types differ");
  return inferBroadcast(loc, tensorOf(lhs).getElementType(), {lhs, rhs}, out);
}

#define WEFT_BINARY_INFER(Op)                                                  \
  LogicalResult Op::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &out) {                                            \
    return inferBinary(loc, adaptor.getLhs(), adaptor.getRhs(), out);          \
  }
WEFT_BINARY_INFER(AddOp)
WEFT_BINARY_INFER(SubOp)
WEFT_BINARY_INFER(MulOp)
WEFT_BINARY_INFER(DivOp)
WEFT_BINARY_INFER(PowOp)
WEFT_BINARY_INFER(MaxOp)
WEFT_BINARY_INFER(MinOp)
WEFT_BINARY_INFER(AndOp)
WEFT_BINARY_INFER(OrOp)
#undef WEFT_BINARY_INFER

LogicalResult CmpOp::inferReturnTypes(MLIRContext *ctx,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &out) {
  if (tensorOf(adaptor.getLhs()).getElementType() !=
      tensorOf(adaptor.getRhs()).getElementType())
    return emitOptionalError(loc, "operand element types differ");
  return inferBroadcast(loc, IntegerType::get(ctx, 1),
                        {adaptor.getLhs(), adaptor.getRhs()}, out);
}

LogicalResult SelectOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  if (!tensorOf(adaptor.getCond()).getElementType().isInteger(1))
    return emitOptionalError(loc, "condition must be a tensor of i1");
  Type elem = tensorOf(adaptor.getOnTrue()).getElementType();
  if (elem != tensorOf(adaptor.getOnFalse()).getElementType())
    return emitOptionalError(loc, "branch element types differ");
  return inferBroadcast(
      loc, elem, {adaptor.getCond(), adaptor.getOnTrue(), adaptor.getOnFalse()},
      out);
}

LogicalResult IsNanOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &out) {
  out.push_back(RankedTensorType::get(tensorOf(adaptor.getInput()).getShape(),
                                      IntegerType::get(ctx, 1)));
  return success();
}

LogicalResult CastOp::verify() {
  if (getInput().getType().getShape() != getType().getShape())
    return emitOpError("result shape differs from the input's");
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  if (getInput().getType().getElementType() != getType().getElementType())
    return emitOpError("element type changes");
  if (getInput().getType().getNumElements() != getType().getNumElements())
    return emitOpError("element count changes: ")
           << getInput().getType().getNumElements() << " vs "
           << getType().getNumElements();
  return success();
}

namespace {
/// reshape(reshape(x)) -> reshape(x).
struct FoldReshapeChain : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    auto inner = op.getInput().getDefiningOp<ReshapeOp>();
    if (!inner)
      return failure();
    rewriter.replaceOpWithNewOp<ReshapeOp>(op, op.getType(), inner.getInput());
    return success();
  }
};

/// transpose(transpose(x)) -> transpose(x) with the composed permutation.
struct FoldTransposeChain : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    auto inner = op.getInput().getDefiningOp<TransposeOp>();
    if (!inner)
      return failure();
    SmallVector<int64_t> perm;
    for (int64_t p : op.getPerm())
      perm.push_back(inner.getPerm()[p]);
    rewriter.replaceOpWithNewOp<TransposeOp>(op, op.getType(), inner.getInput(),
                                             perm);
    return success();
  }
};
/// transpose(reshape(x)) -> reshape(transpose(x)) when the transpose only
/// permutes trailing dims that the reshape leaves intact (it merges or splits
/// leading dims only). This exposes transposes to composition and the
/// patterns below them (attention's k^T through flattened heads).
struct SinkTransposeThroughReshape : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    auto reshape = op.getInput().getDefiningOp<ReshapeOp>();
    if (!reshape)
      return failure();
    ArrayRef<int64_t> perm = op.getPerm();
    int64_t rank = perm.size(), lead = 0;
    while (lead < rank && perm[lead] == lead)
      ++lead;
    int64_t trailing = rank - lead;
    ArrayRef<int64_t> in = reshape.getInput().getType().getShape();
    ArrayRef<int64_t> out = reshape.getType().getShape();
    if (trailing < 2 || int64_t(in.size()) < trailing ||
        in.take_back(trailing) != out.take_back(trailing))
      return failure();
    int64_t inLead = in.size() - trailing;
    SmallVector<int64_t> newPerm;
    for (int64_t i = 0; i < inLead; ++i)
      newPerm.push_back(i);
    for (int64_t i = lead; i < rank; ++i)
      newPerm.push_back(perm[i] - lead + inLead);
    auto t =
        TransposeOp::create(rewriter, op.getLoc(), reshape.getInput(), newPerm);
    rewriter.replaceOpWithNewOp<ReshapeOp>(op, op.getType(), t.getResult());
    return success();
  }
};
} // namespace

void ReshapeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                            MLIRContext *ctx) {
  results.add<FoldReshapeChain>(ctx);
}

void TransposeOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *ctx) {
  results.add<FoldTransposeChain, SinkTransposeThroughReshape>(ctx);
}

LogicalResult BroadcastOp::verify() {
  auto in = getInput().getType();
  if (in.getElementType() != getType().getElementType())
    return emitOpError("element type changes");
  auto b = broadcastShapes(in.getShape(), getType().getShape());
  if (failed(b) || ArrayRef<int64_t>(*b) != getType().getShape())
    return emitOpError("input does not broadcast to the result shape");
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &out) {
  auto in = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> perm = adaptor.getPerm();
  if (perm.size() != size_t(in.getRank()))
    return emitOptionalError(loc, "permutation size differs from the rank");
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= in.getRank() || seen[p])
      return emitOptionalError(loc, "invalid permutation");
    seen[p] = true;
    shape.push_back(in.getDimSize(p));
  }
  out.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &out) {
  auto in = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> starts = adaptor.getStarts(), ends = adaptor.getEnds(),
                    steps = adaptor.getSteps();
  int64_t rank = in.getRank();
  if (int64_t(starts.size()) != rank || int64_t(ends.size()) != rank ||
      int64_t(steps.size()) != rank)
    return emitOptionalError(loc, "starts, ends and steps need one entry per "
                                  "dimension");
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    int64_t dim = in.getDimSize(i), s = starts[i], e = ends[i], st = steps[i];
    if (st == 0)
      return emitOptionalError(loc, "slice step is zero on dimension ", i);
    bool ok = st > 0 ? (0 <= s && s <= e && e <= dim)
                     : (-1 <= e && e <= s && s <= dim - 1);
    if (!ok)
      return emitOptionalError(loc, "slice bounds not normalized on dimension ",
                               i);
    // ceil(span / |step|) in unsigned arithmetic: a step of +-2^63 - 1 or
    // -2^63 must not overflow.
    uint64_t span = st > 0 ? uint64_t(e - s) : uint64_t(s - e);
    uint64_t step = st > 0 ? uint64_t(st) : uint64_t(0) - uint64_t(st);
    shape.push_back(span == 0 ? 0 : int64_t(1 + (span - 1) / step));
  }
  out.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  if (adaptor.getInputs().empty())
    return emitOptionalError(loc, "concat needs at least one input");
  auto first = tensorOf(adaptor.getInputs().front());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= first.getRank())
    return emitOptionalError(loc, "concat axis out of range");
  SmallVector<int64_t> shape(first.getShape());
  shape[axis] = 0;
  for (Value v : adaptor.getInputs()) {
    auto t = tensorOf(v);
    if (t.getRank() != first.getRank() ||
        t.getElementType() != first.getElementType())
      return emitOptionalError(loc, "concat inputs differ in rank or type");
    for (int64_t i = 0; i < t.getRank(); ++i)
      if (i != axis && t.getDimSize(i) != first.getDimSize(i))
        return emitOptionalError(loc, "concat inputs differ on dimension ", i);
    if (__builtin_add_overflow(shape[axis], t.getDimSize(axis), &shape[axis]))
      return emitOptionalError(loc, "concat result dimension overflows int64");
  }
  out.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  auto data = tensorOf(adaptor.getData());
  auto idx = tensorOf(adaptor.getIndices());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= data.getRank())
    return emitOptionalError(loc, "gather axis out of range");
  if (!isa<IntegerType>(idx.getElementType()))
    return emitOptionalError(loc, "gather indices must be integers");
  SmallVector<int64_t> shape(data.getShape().take_front(axis));
  llvm::append_range(shape, idx.getShape());
  llvm::append_range(shape, data.getShape().drop_front(axis + 1));
  out.push_back(RankedTensorType::get(shape, data.getElementType()));
  return success();
}

LogicalResult GatherNdOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &out) {
  auto data = tensorOf(adaptor.getData());
  auto idx = tensorOf(adaptor.getIndices());
  int64_t b = adaptor.getBatchDims();
  if (idx.getRank() < 1 || b < 0 ||
      b >= std::min(data.getRank(), idx.getRank()))
    return emitOptionalError(loc, "invalid GatherND ranks or batch_dims");
  int64_t last = idx.getShape().back();
  if (last < 1 || last > data.getRank() - b)
    return emitOptionalError(loc, "GatherND index depth out of range");
  SmallVector<int64_t> shape(idx.getShape().drop_back());
  llvm::append_range(shape, data.getShape().drop_front(b + last));
  out.push_back(RankedTensorType::get(shape, data.getElementType()));
  return success();
}

LogicalResult GatherElementsOp::inferReturnTypes(MLIRContext *,
                                                 std::optional<Location> loc,
                                                 Adaptor adaptor,
                                                 SmallVectorImpl<Type> &out) {
  auto data = tensorOf(adaptor.getData());
  auto idx = tensorOf(adaptor.getIndices());
  int64_t axis = adaptor.getAxis();
  if (data.getRank() != idx.getRank() || axis < 0 || axis >= data.getRank())
    return emitOptionalError(loc, "invalid GatherElements ranks or axis");
  out.push_back(RankedTensorType::get(idx.getShape(), data.getElementType()));
  return success();
}

LogicalResult TileOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &out) {
  auto in = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> reps = adaptor.getRepeats();
  if (int64_t(reps.size()) != in.getRank())
    return emitOptionalError(loc, "tile needs one repeat per dimension");
  SmallVector<int64_t> shape;
  for (auto [d, r] : llvm::zip(in.getShape(), reps)) {
    int64_t n = 0;
    if (r < 0)
      return emitOptionalError(loc, "negative tile repeat");
    if (__builtin_mul_overflow(d, r, &n))
      return emitOptionalError(loc, "tile result dimension overflows int64");
    shape.push_back(n);
  }
  out.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions and normalizations
//===----------------------------------------------------------------------===//

LogicalResult ReduceOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  auto in = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> axes = adaptor.getAxes();
  int64_t prev = -1;
  for (int64_t a : axes) {
    if (a <= prev || a >= in.getRank())
      return emitOptionalError(loc, "reduce axes must be sorted, unique and "
                                    "in range");
    prev = a;
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < in.getRank(); ++i) {
    if (!llvm::is_contained(axes, i))
      shape.push_back(in.getDimSize(i));
    else if (adaptor.getKeepdims())
      shape.push_back(1);
  }
  out.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

LogicalResult SoftmaxOp::verify() {
  int64_t axis = getAxis();
  if (axis < 0 || axis >= getInput().getType().getRank())
    return emitOpError("axis out of range");
  return success();
}

/// Checks that a norm's parameter broadcasts onto the normalized dims.
static LogicalResult verifyNormParam(Operation *op, RankedTensorType in,
                                     int64_t axis, Value param,
                                     StringRef what) {
  auto t = cast<RankedTensorType>(param.getType());
  auto b = broadcastShapes(in.getShape().drop_front(axis), t.getShape());
  if (t.getRank() > in.getRank() - axis || failed(b) ||
      ArrayRef<int64_t>(*b) != in.getShape().drop_front(axis))
    return op->emitOpError() << what << " does not broadcast onto the "
                             << "normalized dimensions";
  return success();
}

LogicalResult LayerNormOp::verify() {
  auto in = getInput().getType();
  int64_t axis = getAxis();
  if (axis < 0 || axis >= in.getRank())
    return emitOpError("axis out of range");
  if (getType() != in)
    return emitOpError("result type differs from the input's");
  if (failed(verifyNormParam(*this, in, getAxis(), getScale(), "scale")))
    return failure();
  if (getBias() &&
      failed(verifyNormParam(*this, in, getAxis(), getBias(), "bias")))
    return failure();
  return success();
}

LogicalResult RmsNormOp::verify() {
  auto in = getInput().getType();
  int64_t axis = getAxis();
  if (axis < 0 || axis >= in.getRank())
    return emitOpError("axis out of range");
  if (getType() != in)
    return emitOpError("result type differs from the input's");
  return verifyNormParam(*this, in, getAxis(), getScale(), "scale");
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  auto a = tensorOf(adaptor.getA()), b = tensorOf(adaptor.getB());
  if (a.getRank() < 2 || b.getRank() < 2)
    return emitOptionalError(loc, "matmul operands need rank >= 2");
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "matmul operand element types differ");
  int64_t m = a.getDimSize(a.getRank() - 2), ka = a.getDimSize(a.getRank() - 1);
  if (adaptor.getTransposeA())
    std::swap(m, ka);
  int64_t kb = b.getDimSize(b.getRank() - 2), n = b.getDimSize(b.getRank() - 1);
  if (adaptor.getTransposeB())
    std::swap(kb, n);
  if (ka != kb)
    return emitOptionalError(loc, "matmul contraction sizes differ: ", ka,
                             " vs ", kb);
  auto batch =
      broadcastShapes(a.getShape().drop_back(2), b.getShape().drop_back(2));
  if (failed(batch))
    return emitOptionalError(loc, "matmul batch dimensions do not broadcast");
  SmallVector<int64_t> shape(*batch);
  shape.push_back(m);
  shape.push_back(n);
  out.push_back(RankedTensorType::get(shape, a.getElementType()));
  return success();
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &out) {
  auto x = tensorOf(adaptor.getInput()), w = tensorOf(adaptor.getWeight());
  if (x.getRank() < 1 || w.getRank() != 2)
    return emitOptionalError(loc, "linear needs input rank >= 1 and a 2-D "
                                  "weight");
  int64_t k = w.getDimSize(0), n = w.getDimSize(1);
  if (adaptor.getTransposeWeight())
    std::swap(k, n);
  if (x.getShape().back() != k)
    return emitOptionalError(loc, "linear contraction sizes differ: ",
                             x.getShape().back(), " vs ", k);
  if (Value bias = adaptor.getBias()) {
    auto bt = tensorOf(bias);
    if (bt.getRank() != 1 || bt.getDimSize(0) != n)
      return emitOptionalError(loc, "linear bias must be [", n, "]");
  }
  SmallVector<int64_t> shape(x.getShape().drop_back());
  shape.push_back(n);
  out.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

bool LinearOp::isCompatibleReturnTypes(TypeRange inferred, TypeRange actual) {
  if (inferred.size() != 1 || actual.size() != 1)
    return false;
  if (inferred == actual)
    return true;
  auto in = dyn_cast<RankedTensorType>(inferred[0]);
  auto out = dyn_cast<RankedTensorType>(actual[0]);
  return in && out && in.getShape() == out.getShape() &&
         (in.getElementType().isBF16() || in.getElementType().isF16()) &&
         out.getElementType().isF32();
}

LogicalResult LinearOp::verify() {
  Value residual = getResidual();
  if (getGeluTanh()) {
    // The GEMM epilogue adds the residual before the activation: that is
    // gelu(x @ W + r), not the gelu(x @ W) + r a block computes.
    if (residual)
      return emitOpError("cannot apply gelu_tanh together with a residual: "
                         "the epilogue would apply the GELU to the sum");
    if (getType().getElementType() != getInput().getType().getElementType())
      return emitOpError("cannot apply gelu_tanh to a widened ")
             << getType().getElementType() << " result of "
             << getInput().getType().getElementType() << " operands";
  }
  if (!residual)
    return success();
  if (residual.getType() != getType())
    return emitOpError("residual of type ")
           << residual.getType() << " must have exactly the result's type "
           << getType() << " (it is not broadcast)";
  // The widened result stores the f32 accumulator for the caller that wants
  // f32 logits; a residual there would be a compute-type value added in f32,
  // which no backend's epilogue reads.
  if (getType().getElementType() != getInput().getType().getElementType())
    return emitOpError("a residual cannot be added to a widened ")
           << getType().getElementType() << " result of "
           << getInput().getType().getElementType() << " operands";
  return success();
}

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &out) {
  auto table = tensorOf(adaptor.getTable()), ids = tensorOf(adaptor.getIds());
  if (table.getRank() != 2 || !isa<IntegerType>(ids.getElementType()))
    return emitOptionalError(loc, "embedding needs a 2-D table and integer "
                                  "ids");
  SmallVector<int64_t> shape(ids.getShape());
  shape.push_back(table.getDimSize(1));
  out.push_back(RankedTensorType::get(shape, table.getElementType()));
  return success();
}

LogicalResult RotaryOp::verify() {
  auto x = getInput().getType();
  if (getType() != x)
    return emitOpError("result type differs from the input's");
  auto c = getCos().getType(), s = getSin().getType();
  if (c != s)
    return emitOpError("cos and sin types differ");
  int64_t r = c.getShape().empty() ? 0 : c.getShape().back();
  if (r <= 0 || r % 2 || r > x.getShape().back())
    return emitOpError("rotary dim ")
           << r << " must be even and at most " << x.getShape().back();
  SmallVector<int64_t> head(x.getShape());
  head.back() = r;
  auto b = broadcastShapes(head, c.getShape());
  if (c.getRank() > x.getRank() || failed(b) ||
      ArrayRef<int64_t>(*b) != ArrayRef<int64_t>(head))
    return emitOpError("cos/sin do not broadcast onto the input");
  return success();
}

std::optional<int64_t> mlir::weft::elementCount(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > kMaxTensorElements)
      return std::nullopt;
  return n;
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &out) {
  auto q = tensorOf(adaptor.getQ()), k = tensorOf(adaptor.getK()),
       v = tensorOf(adaptor.getV());
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
    return emitOptionalError(loc, "attention needs 4-D q, k, v "
                                  "([batch, heads, seq, head_dim])");
  if (q.getDimSize(0) != k.getDimSize(0) ||
      k.getShape().drop_back() != v.getShape().drop_back())
    return emitOptionalError(loc, "attention batch or key shapes disagree");
  if (q.getDimSize(3) != k.getDimSize(3))
    return emitOptionalError(loc, "q and k head dims differ");
  const bool seqMajor = adaptor.getSeqMajor();
  const int64_t hd = seqMajor ? 2 : 1, sd = seqMajor ? 1 : 2;
  if (k.getDimSize(hd) == 0 || q.getDimSize(hd) % k.getDimSize(hd))
    return emitOptionalError(loc, "query heads (", q.getDimSize(hd),
                             ") are not a multiple of kv heads (",
                             k.getDimSize(hd), ")");
  SmallVector<int64_t> shape = {q.getDimSize(0), q.getDimSize(1),
                                q.getDimSize(2), v.getDimSize(3)};
  if (Value mask = adaptor.getMask()) {
    SmallVector<int64_t> scores = {q.getDimSize(0), q.getDimSize(hd),
                                   q.getDimSize(sd), k.getDimSize(sd)};
    auto b = broadcastShapes(scores, tensorOf(mask).getShape());
    if (failed(b) || ArrayRef<int64_t>(*b) != ArrayRef<int64_t>(scores))
      return emitOptionalError(loc, "mask does not broadcast onto the scores");
  }
  out.push_back(RankedTensorType::get(shape, q.getElementType()));
  return success();
}

LogicalResult KvCacheOp::verify() {
  auto t = cast<RankedTensorType>(getType());
  if (t.getRank() != 4 || t.getDimSize(0) != 0 ||
      llvm::any_of(t.getShape().drop_front(), [](int64_t d) { return d <= 0; }))
    return emitOpError("type must be [0, block_size, heads, dim] (its blocks "
                       "are chosen at run time), not ")
           << t;
  if (!isa<FloatType>(t.getElementType()))
    return emitOpError("must hold floats");
  return success();
}

LogicalResult PagedAttentionOp::verify() {
  auto q = getQ().getType(), k = getK().getType(), v = getV().getType();
  auto kc = cast<RankedTensorType>(getKCache().getType()),
       vc = cast<RankedTensorType>(getVCache().getType());
  auto pos = getPositions().getType(), seq = getTokenSeq().getType(),
       tables = getBlockTables().getType();
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4 ||
      q.getDimSize(0) != 1 ||
      k.getShape().take_front(2) != q.getShape().take_front(2) ||
      v.getShape().take_front(3) != k.getShape().take_front(3) ||
      q.getDimSize(3) != k.getDimSize(3))
    return emitOpError("q, k, v must be [1, T, Hq, D], [1, T, Hkv, D], "
                       "[1, T, Hkv, Dv]");
  int64_t hq = q.getDimSize(2), hkv = k.getDimSize(2), t = q.getDimSize(1);
  if (hkv <= 0 || hq % hkv)
    return emitOpError("query heads ") << hq << " are not a multiple of kv "
                                       << "heads " << hkv;
  int64_t bs = getBlockSize();
  if (bs <= 0 || kc.getDimSize(1) != bs || kc.getDimSize(2) != hkv ||
      kc.getDimSize(3) != k.getDimSize(3) ||
      vc.getShape().take_front(3) != kc.getShape().take_front(3) ||
      vc.getDimSize(3) != v.getDimSize(3))
    return emitOpError("caches must be [0, block_size, Hkv, D] and [.., Dv]");
  if (kc.getElementType() != k.getElementType() ||
      vc.getElementType() != v.getElementType())
    return emitOpError("caches must hold k's and v's element types");
  if (pos.getShape() != ArrayRef<int64_t>{1, t} ||
      !pos.getElementType().isInteger(64) ||
      seq.getShape() != ArrayRef<int64_t>{t} ||
      !seq.getElementType().isInteger(32) || tables.getRank() != 2 ||
      !tables.getElementType().isInteger(32))
    return emitOpError("positions must be i64 [1, T], token_seq i32 [T], "
                       "block_tables i32 [R, blocks]");
  SmallVector<int64_t> out(q.getShape());
  out[3] = v.getDimSize(3);
  auto r = cast<RankedTensorType>(getType());
  if (r.getShape() != ArrayRef<int64_t>(out) ||
      r.getElementType() != q.getElementType())
    return emitOpError("result must be [1, T, Hq, Dv] of q's element type");
  return success();
}

LogicalResult SampleOp::verify() {
  auto logits = getLogits().getType();
  auto params = getParams().getType(), seeds = getSeeds().getType();
  auto r = cast<RankedTensorType>(getType());
  ArrayRef<int64_t> shape = logits.getShape();
  if (shape.size() == 3 && shape[0] == 1)
    shape = shape.drop_front();
  if (shape.size() != 2 || !isa<FloatType>(logits.getElementType()))
    return emitOpError("logits must be float [R, V] or [1, R, V]");
  int64_t rows = shape[0];
  if (params.getShape() != ArrayRef<int64_t>{rows, 3} ||
      !params.getElementType().isF32() ||
      seeds.getShape() != ArrayRef<int64_t>{rows, 2} ||
      !seeds.getElementType().isInteger(64))
    return emitOpError("params must be f32 [R, 3] and seeds i64 [R, 2]");
  if (r.getShape() != ArrayRef<int64_t>{rows} ||
      !r.getElementType().isInteger(32))
    return emitOpError("result must be i32 [R]");
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Weft/WeftOps.cpp.inc"
