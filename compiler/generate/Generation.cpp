// Rewrites a compiled bucket graph into a prefill or decode entry point:
// paged attention over per-layer KV caches, positions from inputs, the LM
// head at the sampled rows only, sampling at the end.
#include "compiler/generate/Generation.h"

#include "compiler/onnx/OnnxModel.h"
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mlir;
using namespace mlir::weft;

llvm::Expected<TokenInput> mlir::weft::findTokenInput(StringRef modelPath) {
  llvm::Expected<OnnxModel> model = loadOnnxModel(modelPath);
  if (!model)
    return model.takeError();
  std::set<std::string> initializers;
  for (const onnx::TensorProto &t : model->proto.graph().initializer())
    initializers.insert(t.name());
  for (const onnx::ValueInfoProto &in : model->proto.graph().input()) {
    if (initializers.count(in.name()) || !in.type().has_tensor_type())
      continue;
    const onnx::TypeProto::Tensor &t = in.type().tensor_type();
    bool integer = t.elem_type() == onnx::TensorProto::INT64 ||
                   t.elem_type() == onnx::TensorProto::INT32;
    if (!integer || t.shape().dim_size() != 2 ||
        t.shape().dim(1).dim_param().empty())
      continue;
    const onnx::TensorShapeProto::Dimension &batch = t.shape().dim(0);
    if (batch.dim_param().empty() && batch.dim_value() != 1)
      continue;
    if (batch.dim_param() == t.shape().dim(1).dim_param())
      continue;
    return TokenInput{in.name(), batch.dim_param(),
                      t.shape().dim(1).dim_param()};
  }
  return llvm::createStringError(
      llvm::formatv("{0}: no graph input of token ids to generate from: an "
                    "integer input [batch, seq] whose seq is symbolic and "
                    "whose batch is symbolic or 1",
                    modelPath)
          .str());
}

std::vector<GenerationEntry>
mlir::weft::generationEntries(const GenerationOptions &options) {
  std::vector<GenerationEntry> entries;
  for (int64_t t : options.promptBuckets) {
    int64_t tokens = std::min(t, options.maxSeq);
    entries.push_back({llvm::formatv("prefill@{0}", tokens).str(), true,
                       std::max<int64_t>(tokens, 2),
                       std::min(tokens, options.prefillRows), tokens});
  }
  for (int64_t b : options.batchBuckets) {
    int64_t slots = std::max<int64_t>(b, 2);
    entries.push_back(
        {llvm::formatv("decode@{0}", b).str(), false, slots, slots, b});
  }
  return entries;
}

namespace {

/// Whether `v` is computed from constants alone (through any pure ops).
bool fromConstants(Value v) {
  Operation *def = v.getDefiningOp();
  if (!def || isa<WeightOp, KvCacheOp>(def) || !isPure(def))
    return false;
  return llvm::all_of(def->getOperands(), fromConstants);
}

/// Clones the constant computation of `v` (in another function) before
/// the builder's insertion point.
Value cloneConstants(Value v, OpBuilder &b, IRMapping &map) {
  if (Value done = map.lookupOrNull(v))
    return done;
  Operation *def = v.getDefiningOp();
  for (Value o : def->getOperands())
    cloneConstants(o, b, map);
  b.clone(*def, map);
  return map.lookup(v);
}

/// The ops of `f` that compute (constants and weights left out), in order.
SmallVector<Operation *> computeOps(func::FuncOp f) {
  SmallVector<Operation *> ops;
  for (Operation &op : f.getBody().front())
    if (!isa<arith::ConstantOp, WeightOp>(op))
      ops.push_back(&op);
  return ops;
}

/// Whether `a` and `b` list the same ops in the same order.
bool sameStructure(ArrayRef<Operation *> a, ArrayRef<Operation *> b) {
  return a.size() == b.size() && llvm::all_of(llvm::zip(a, b), [](auto p) {
           return std::get<0>(p)->getName() == std::get<1>(p)->getName();
         });
}

/// Erases ops whose results nothing uses, until none is left.
void removeDeadOps(func::FuncOp f) {
  Block &body = f.getBody().front();
  bool changed = true;
  while (changed) {
    changed = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
      if (isOpTriviallyDead(&op)) {
        op.erase();
        changed = true;
      }
  }
}

/// Drops every attention's mask operand (and what computed it): a paged
/// attention masks by positions. Returns the attentions that had a mask
/// and are not causal: their masks are not the causal mask the fusion
/// recognizes, so they cannot be paged.
llvm::DenseSet<Operation *> dropAttentionMasks(func::FuncOp f) {
  llvm::DenseSet<Operation *> masked;
  SmallVector<AttentionOp> withMask;
  f.walk([&](AttentionOp a) {
    if (a.getMask())
      withMask.push_back(a);
  });
  for (AttentionOp a : withMask) {
    OpBuilder b(a);
    auto plain = AttentionOp::create(
        b, a.getLoc(), a.getType(), a.getQ(), a.getK(), a.getV(), Value(),
        a.getScaleAttr(), a.getCausalAttr(), a.getSeqMajorAttr());
    if (!a.getCausal())
      masked.insert(plain);
    a.replaceAllUsesWith(plain.getResult());
    a.erase();
  }
  removeDeadOps(f);
  return masked;
}

class EntryBuilder {
public:
  EntryBuilder(func::FuncOp func, func::FuncOp reference,
               ArrayRef<PositionalOperand> positional,
               const GenerationEntry &entry, const GenerationOptions &options)
      : func(func), reference(reference), positional(positional), entry(entry),
        options(options), ctx(func.getContext()), b(ctx), loc(func.getLoc()) {}

  LogicalResult run();

private:
  func::FuncOp func, reference;
  ArrayRef<PositionalOperand> positional;
  const GenerationEntry &entry;
  const GenerationOptions &options;
  MLIRContext *ctx;
  OpBuilder b;
  Location loc;
  Value positions, tokenSeq, blockTables, logitRows, params, seeds;

  InFlightDiagnostic fail(Operation *op, const Twine &msg) {
    return op->emitError("weft compile --generate: ") << msg;
  }
  Value addInput(StringRef name, ArrayRef<int64_t> shape, Type elem);
  LogicalResult bindPositions();
  LogicalResult pageAttention();
  FailureOr<Value> logitsAtRows(Value logits);
  llvm::DenseSet<Operation *> maskedAttention;
};

Value EntryBuilder::addInput(StringRef name, ArrayRef<int64_t> shape,
                             Type elem) {
  unsigned index = func.getNumArguments();
  auto attrs =
      b.getDictionaryAttr(b.getNamedAttr("weft.name", b.getStringAttr(name)));
  (void)func.insertArgument(index, RankedTensorType::get(shape, elem), attrs,
                            loc);
  return func.getArgument(index);
}

/// Positional constants (compiled for `entry.tokens` positions 0..T-1)
/// become gathers at weft.positions from the reference's tables, which
/// hold every position a sequence can reach.
LogicalResult EntryBuilder::bindPositions() {
  for (auto [i, arg] : llvm::enumerate(func.getArguments())) {
    auto name = func.getArgAttrOfType<StringAttr>(i, "weft.name");
    if (name && name.getValue() == "position_ids" &&
        arg.getType() == positions.getType())
      arg.replaceAllUsesWith(positions);
  }
  SmallVector<Operation *> mine = computeOps(func),
                           theirs = computeOps(reference);
  if (!sameStructure(mine, theirs))
    return fail(func, "the graphs compiled for ")
           << entry.tokens << " and " << options.maxSeq
           << " positions differ in their ops";
  for (const PositionalOperand &p : positional) {
    OpOperand &use = mine[p.op]->getOpOperand(p.operand);
    Value full = theirs[p.op]->getOperand(p.operand);
    auto have = cast<RankedTensorType>(use.get().getType());
    if (!fromConstants(use.get()) || have.getDimSize(p.dim) != entry.tokens)
      return fail(use.getOwner(), "operand ")
             << p.operand << " is not the positional constant it is at "
             << "other lengths";
    b.setInsertionPoint(use.getOwner());
    IRMapping map;
    Value table = cloneConstants(full, b, map);
    Value rows =
        GatherOp::create(b, loc, table, positions, b.getI64IntegerAttr(p.dim));
    use.set(ReshapeOp::create(b, loc, have, rows));
  }
  return success();
}

LogicalResult EntryBuilder::pageAttention() {
  SmallVector<AttentionOp> attentions;
  func.walk([&](AttentionOp a) { attentions.push_back(a); });
  if (attentions.empty())
    return fail(func, "the model has no attention to keep a cache for");
  for (auto [layer, a] : llvm::enumerate(attentions)) {
    if (maskedAttention.contains(a))
      return fail(a, "attention is not causal: only decoder models generate "
                     "(its mask is not a causal mask weft recognizes; an "
                     "export's causal mask is recognized in graphs of at "
                     "most 2048 positions, so keep prompt buckets at 2048 "
                     "or below)");
    if (!a.getCausal())
      return fail(a, "attention is not causal: only decoder models generate");
    if (!a.getSeqMajor())
      return fail(a, "attention is not in the projections' [B, S, H, D] "
                     "layout");
    auto k = cast<RankedTensorType>(a.getK().getType());
    auto v = cast<RankedTensorType>(a.getV().getType());
    auto q = cast<RankedTensorType>(a.getQ().getType());
    if (q.getDimSize(0) != 1 || q.getDimSize(1) != entry.tokens ||
        k.getDimSize(1) != entry.tokens)
      return fail(a, "attention does not take the ")
             << entry.tokens << " tokens of the step as its sequence";
    b.setInsertionPoint(a);
    auto cache = [&](RankedTensorType t, StringRef which) {
      auto type = RankedTensorType::get(
          {0, options.blockSize, t.getDimSize(2), t.getDimSize(3)},
          t.getElementType());
      return KvCacheOp::create(
          b, a.getLoc(), type,
          b.getStringAttr(llvm::formatv("kv.{0}.{1}", layer, which).str()));
    };
    Value kc = cache(k, "k"), vc = cache(v, "v");
    auto paged = PagedAttentionOp::create(
        b, a.getLoc(), a.getType(), a.getQ(), a.getK(), a.getV(), kc, vc,
        positions, tokenSeq, blockTables, a.getScaleAttr(),
        b.getI64IntegerAttr(options.blockSize));
    a.replaceAllUsesWith(paged.getResult());
    a.erase();
  }
  return success();
}

/// A prefill's logits at weft.logit_rows only: the rows gathered before the
/// LM head, which and what follows it (casts, the all-gather of a
/// vocabulary split) recomputed for them.
FailureOr<Value> EntryBuilder::logitsAtRows(Value logits) {
  SmallVector<Operation *> chain;
  Value v = logits;
  while (Operation *def = v.getDefiningOp()) {
    chain.push_back(def);
    if (isa<LinearOp>(def))
      break;
    if (!isa<AllGatherOp, CastOp>(def) || def->getNumOperands() != 1)
      return fail(def, "the logits are not computed by a projection of the "
                       "hidden states (followed by casts or an all-gather)")
          .
          operator LogicalResult();
    v = def->getOperand(0);
  }
  auto linear =
      dyn_cast_or_null<LinearOp>(chain.empty() ? nullptr : chain.back());
  if (!linear || linear.getResidual())
    return fail(func, "the logits are not the output of a projection");
  auto x = cast<RankedTensorType>(linear.getInput().getType());
  if (x.getRank() != 3 || x.getDimSize(1) != entry.tokens)
    return fail(linear, "the LM head's input is not [1, T, hidden]");
  int64_t hidden = x.getDimSize(2), rows = entry.rows;
  b.setInsertionPoint(linear);
  Value flat = ReshapeOp::create(
      b, loc, RankedTensorType::get({entry.tokens, hidden}, x.getElementType()),
      linear.getInput());
  Value picked =
      GatherOp::create(b, loc, flat, logitRows, b.getI64IntegerAttr(0));
  Value input = ReshapeOp::create(
      b, loc, RankedTensorType::get({1, rows, hidden}, x.getElementType()),
      picked);
  IRMapping map;
  map.map(linear.getInput(), input);
  Value out;
  for (Operation *op : llvm::reverse(chain)) {
    Operation *copy = b.clone(*op, map);
    auto t = cast<RankedTensorType>(copy->getResult(0).getType());
    SmallVector<int64_t> shape(t.getShape());
    shape[1] = rows;
    copy->getResult(0).setType(t.clone(shape));
    out = copy->getResult(0);
  }
  return out;
}

LogicalResult EntryBuilder::run() {
  Type i64 = b.getI64Type(), i32 = b.getI32Type(), f32 = b.getF32Type();
  int64_t t = entry.tokens, r = entry.rows;
  int64_t blocks = (options.maxSeq + options.blockSize - 1) / options.blockSize;
  positions = addInput("weft.positions", {1, t}, i64);
  tokenSeq = addInput("weft.token_seq", {t}, i32);
  blockTables = addInput("weft.block_tables", {r, blocks}, i32);
  if (entry.prefill)
    logitRows = addInput("weft.logit_rows", {r}, i64);
  params = addInput("weft.sample_params", {r, 3}, f32);
  seeds = addInput("weft.sample_seeds", {r, 2}, i64);

  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  int64_t logitsIndex = -1;
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    auto type = cast<RankedTensorType>(v.getType());
    if (isa<FloatType>(type.getElementType()) && type.getRank() == 3 &&
        type.getDimSize(0) == 1 && type.getDimSize(1) == t) {
      logitsIndex = i;
      break;
    }
  }
  if (logitsIndex < 0)
    return fail(ret, "no graph output is logits [1, seq, vocab]");
  std::string logitsName = "logits";
  if (auto name =
          func.getResultAttrOfType<StringAttr>(logitsIndex, "weft.name"))
    logitsName = name.str();

  maskedAttention = dropAttentionMasks(func);
  if (failed(bindPositions()) || failed(pageAttention()))
    return failure();
  Value logits = ret.getOperand(logitsIndex);
  if (entry.prefill) {
    auto atRows = logitsAtRows(logits);
    if (failed(atRows))
      return failure();
    logits = *atRows;
  }
  b.setInsertionPoint(ret);
  Value ids = SampleOp::create(b, loc, RankedTensorType::get({r}, i32), logits,
                               params, seeds);
  func::ReturnOp::create(b, ret.getLoc(), ValueRange{ids, logits});
  ret.erase();
  SmallVector<Type> args(func.getArgumentTypes());
  func.setType(FunctionType::get(ctx, args, {ids.getType(), logits.getType()}));
  func.setAllResultAttrs(ArrayRef<DictionaryAttr>{
      b.getDictionaryAttr(
          b.getNamedAttr("weft.name", b.getStringAttr("weft.next_ids"))),
      b.getDictionaryAttr(
          b.getNamedAttr("weft.name", b.getStringAttr(logitsName)))});
  removeDeadOps(func);
  return success();
}

} // namespace

FailureOr<SmallVector<PositionalOperand>>
mlir::weft::findPositionalOperands(func::FuncOp probe, int64_t probeTokens,
                                   func::FuncOp reference, int64_t maxSeq) {
  dropAttentionMasks(probe);
  dropAttentionMasks(reference);
  SmallVector<Operation *> mine = computeOps(probe),
                           theirs = computeOps(reference);
  if (!sameStructure(mine, theirs))
    return probe.emitError("weft compile --generate: the graphs compiled for ")
           << probeTokens << " and " << maxSeq
           << " positions differ in their ops (does --max-seq exceed the "
              "positions the model knows?)";
  SmallVector<PositionalOperand> out;
  for (auto [i, ops] : llvm::enumerate(llvm::zip(mine, theirs))) {
    auto [op, ref] = ops;
    for (OpOperand &use : op->getOpOperands()) {
      auto have = cast<RankedTensorType>(use.get().getType());
      auto full = cast<RankedTensorType>(
          ref->getOperand(use.getOperandNumber()).getType());
      if (have == full || !fromConstants(use.get()))
        continue;
      int64_t dim = -1;
      if (have.getRank() == full.getRank() &&
          have.getElementType() == full.getElementType())
        for (int64_t d = 0; d < have.getRank(); ++d)
          if (have.getDimSize(d) != full.getDimSize(d))
            dim = dim == -1 && have.getDimSize(d) == probeTokens &&
                          full.getDimSize(d) == maxSeq
                      ? d
                      : -2;
      if (dim < 0)
        return op->emitError("weft compile --generate: a constant operand of "
                             "type ")
               << have << " depends on the sequence length other than "
               << "through one positions dim (" << full << " at " << maxSeq
               << " positions)";
      out.push_back({i, use.getOperandNumber(), dim});
    }
  }
  return out;
}

LogicalResult
mlir::weft::makeGenerationEntry(func::FuncOp func, func::FuncOp reference,
                                ArrayRef<PositionalOperand> positional,
                                const GenerationEntry &entry,
                                const GenerationOptions &options) {
  return EntryBuilder(func, reference, positional, entry, options).run();
}
