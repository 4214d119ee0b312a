// --weft-tensor-parallel: rewrites the graph into one tensor-parallel rank's
// graph (Megatron-style column/row-parallel projections, head-split
// attention, vocab-parallel embeddings), with all-reduce and all-gather.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::weft {
#define GEN_PASS_DEF_TENSORPARALLEL
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

RankedTensorType withDim(RankedTensorType t, int64_t dim, int64_t size) {
  SmallVector<int64_t> shape(t.getShape());
  shape[dim] = size;
  return RankedTensorType::get(shape, t.getElementType());
}

class Partitioner {
public:
  Partitioner(func::FuncOp func, int64_t tp)
      : func(func), tp(tp), b(func.getContext()) {}
  LogicalResult run();

private:
  func::FuncOp func;
  int64_t tp;
  OpBuilder b;
  llvm::DenseMap<Value, int64_t> split;  // value -> split dim
  llvm::DenseMap<Value, Value> gathered; // value -> its all-gathered form
  // Values split into fewer than tp parts: grouped-query kv heads, each part
  // held by tp / parts ranks. They may only flow into attention.
  llvm::DenseMap<Value, int64_t> parts;
  // Projections feeding k or v of attention whose kv heads do not divide
  // by tp: how many ranks share each kv head.
  llvm::DenseMap<Operation *, int64_t> kvReplicas;
  bool invalid = false;

  std::optional<int64_t> splitOf(Value v) const {
    auto it = split.find(v);
    if (it == split.end())
      return std::nullopt;
    return it->second;
  }
  int64_t partsOf(Value v) const {
    auto it = parts.find(v);
    return it == parts.end() ? tp : it->second;
  }
  /// Marks r split on dim into n parts (default tp) and gives it its local
  /// type.
  void setSplit(Value r, int64_t dim, int64_t n = 0) {
    n = n ? n : tp;
    auto t = tensorType(r);
    r.setType(withDim(t, dim, t.getDimSize(dim) / n));
    split[r] = dim;
    if (n != tp)
      parts[r] = n;
  }
  void findGroupedKv();
  Value whole(Value v, Operation *before);
  void gatherOperands(Operation *op);
  WeightOp shardWeight(WeightOp w, int64_t dim, int64_t size, int64_t base,
                       Operation *before, int64_t replicas = 1);
  LogicalResult checkHeads();
  void partitionLinear(LinearOp op);
  void partitionEmbedding(EmbeddingOp op);
  void partitionElementwise(Operation *op);
  void partitionReshape(ReshapeOp op);
  void partition(Operation *op);
};

/// The whole (all-gathered) form of v, created once.
Value Partitioner::whole(Value v, Operation *before) {
  auto d = splitOf(v);
  if (!d)
    return v;
  if (partsOf(v) != tp) {
    // Grouped kv heads are shared by several ranks: they cannot be gathered.
    before->emitError("grouped-query kv heads replicated over ranks reach an "
                      "op that needs them whole; only attention can take them");
    invalid = true;
    return v;
  }
  auto it = gathered.find(v);
  if (it != gathered.end())
    return it->second;
  OpBuilder::InsertionGuard guard(b);
  if (Operation *def = v.getDefiningOp())
    b.setInsertionPointAfter(def);
  else
    b.setInsertionPoint(before);
  auto t = tensorType(v);
  auto g =
      AllGatherOp::create(b, v.getLoc(), withDim(t, *d, t.getDimSize(*d) * tp),
                          v, b.getI64IntegerAttr(*d));
  gathered[v] = g.getResult();
  return g.getResult();
}

void Partitioner::gatherOperands(Operation *op) {
  for (OpOperand &o : op->getOpOperands())
    if (splitOf(o.get()))
      o.set(whole(o.get(), op));
}

WeightOp Partitioner::shardWeight(WeightOp w, int64_t dim, int64_t size,
                                  int64_t base, Operation *before,
                                  int64_t replicas) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(before);
  auto op = WeightOp::create(b, w.getLoc(), withDim(w.getType(), dim, size),
                             w.getName());
  op.setShardDimAttr(b.getI64IntegerAttr(dim));
  op.setShardSizeAttr(b.getI64IntegerAttr(size));
  op.setShardBaseAttr(b.getI64IntegerAttr(base));
  if (replicas > 1)
    op.setShardReplicasAttr(b.getI64IntegerAttr(replicas));
  return op;
}

LogicalResult Partitioner::checkHeads() {
  WalkResult r = func.walk([&](AttentionOp a) {
    int64_t hq = a.getQ().getType().getDimSize(a.headsDim());
    int64_t hkv = a.getK().getType().getDimSize(a.headsDim());
    // kv heads either split, or each is replicated over its query group.
    if (hq % tp == 0 && (hkv % tp == 0 || tp % hkv == 0))
      return WalkResult::advance();
    a.emitError() << "attention heads do not divide by tp " << tp << ": " << hq
                  << " query heads, " << hkv
                  << " kv heads (query heads must divide by tp, and kv heads "
                     "divide tp or by it)";
    return WalkResult::interrupt();
  });
  return failure(r.wasInterrupted());
}

/// The parts a projection's output is sliced into on its last dim (a fused
/// QKV), or 1.
int64_t equalSliceParts(Value out) {
  auto t = tensorType(out);
  int64_t n = t.getShape().back(), last = t.getRank() - 1;
  SmallVector<std::pair<int64_t, int64_t>> ranges;
  for (Operation *user : out.getUsers()) {
    auto s = dyn_cast<SliceOp>(user);
    if (!s)
      return 1;
    for (int64_t d = 0; d < t.getRank(); ++d) {
      bool full = s.getStarts()[d] == 0 && s.getEnds()[d] == t.getDimSize(d);
      if (s.getSteps()[d] != 1 || (d != last && !full))
        return 1;
    }
    ranges.push_back({s.getStarts()[last], s.getEnds()[last]});
  }
  llvm::sort(ranges);
  ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
  int64_t parts = ranges.size();
  if (parts < 2 || n % parts)
    return 1;
  for (auto [i, r] : llvm::enumerate(ranges))
    if (r.first != int64_t(i) * (n / parts) ||
        r.second != int64_t(i + 1) * (n / parts))
      return 1;
  return parts;
}

void Partitioner::partitionLinear(LinearOp op) {
  auto w = op.getWeight().getDefiningOp<WeightOp>();
  auto biasW =
      op.getBias() ? op.getBias().getDefiningOp<WeightOp>() : WeightOp();
  int64_t nDim = op.getTransposeWeight() ? 0 : 1, kDim = 1 - nDim;
  int64_t last = tensorType(op.getInput()).getRank() - 1;
  auto inSplit = splitOf(op.getInput());
  if (w && inSplit && *inSplit == last) {
    // Row-parallel: this rank's input features times its weight rows, summed.
    int64_t k = w.getType().getDimSize(kDim) / tp;
    WeightOp ws = shardWeight(w, kDim, k, 0, op);
    b.setInsertionPoint(op);
    auto partial = LinearOp::create(
        b, op.getLoc(), op.getType(), op.getInput(), ws.getResult(), Value(),
        /*residual=*/Value(), op.getTransposeWeightAttr(),
        /*gelu_tanh=*/BoolAttr());
    Value sum = AllReduceOp::create(b, op.getLoc(), partial.getResult());
    if (Value bias = op.getBias())
      sum = AddOp::create(b, op.getLoc(), op.getType(), sum, bias);
    // The activation follows the whole sum (it is not linear).
    if (op.getGeluTanh())
      sum =
          GeluOp::create(b, op.getLoc(), sum.getType(), sum, GeluApprox::tanh);
    // Added once to the total: in each rank's partial sum it would count tp
    // times.
    if (Value residual = op.getResidual())
      sum =
          AddOp::create(b, op.getLoc(), op.getType(), sum, whole(residual, op));
    op.getResult().replaceAllUsesWith(sum);
    op.erase();
    return;
  }
  gatherOperands(op);
  // A column-parallel result is split on its last dim, and the residual
  // would have to be split alike: such a projection stays replicated.
  if (op.getResidual())
    return;
  int64_t n = op.getType().getShape().back();
  int64_t parts = equalSliceParts(op.getResult());
  int64_t replicas = kvReplicas.lookup(op) ? kvReplicas.lookup(op) : 1;
  int64_t ways = tp / replicas; // distinct shards
  bool biasOk = !op.getBias() || biasW;
  if (!w || !biasOk || (n / parts) % ways)
    return; // replicated
  // Column-parallel, part by part for a fused projection.
  int64_t part = n / parts, local = part / ways;
  auto shardParts = [&](WeightOp src, int64_t dim) -> Value {
    SmallVector<Value> pieces;
    for (int64_t p = 0; p < parts; ++p)
      pieces.push_back(shardWeight(src, dim, local, p * part, op, replicas));
    if (pieces.size() == 1)
      return pieces.front();
    b.setInsertionPoint(op);
    return ConcatOp::create(b, op.getLoc(), pieces, b.getI64IntegerAttr(dim));
  };
  Value wl = shardParts(w, nDim);
  op.getWeightMutable().assign(wl);
  if (biasW)
    op.getBiasMutable().assign(shardParts(biasW, 0));
  setSplit(op.getResult(), last, ways);
  // The slices of a fused projection take their part of this rank's share.
  if (parts == 1)
    return;
  for (Operation *user : llvm::make_early_inc_range(op->getUsers())) {
    auto s = cast<SliceOp>(user);
    SmallVector<int64_t> starts(s.getStarts()), ends(s.getEnds());
    int64_t p = starts[last] / part;
    starts[last] = p * local;
    ends[last] = (p + 1) * local;
    s.setStarts(starts);
    s.setEnds(ends);
    setSplit(s.getResult(), last);
  }
}

void Partitioner::partitionEmbedding(EmbeddingOp op) {
  gatherOperands(op);
  auto table = op.getTable().getDefiningOp<WeightOp>();
  int64_t vocab = op.getTable().getType().getDimSize(0);
  if (!table || vocab % tp)
    return;
  // Vocab-parallel: ids outside this rank's rows give zeros; then sum.
  WeightOp ts = shardWeight(table, 0, vocab / tp, 0, op);
  op.getTableMutable().assign(ts.getResult());
  b.setInsertionPointAfter(op);
  auto sum = AllReduceOp::create(b, op.getLoc(), op.getResult());
  op.getResult().replaceAllUsesExcept(sum.getResult(), sum);
}

void Partitioner::partitionElementwise(Operation *op) {
  auto out = tensorType(op->getResult(0));
  int64_t rank = out.getRank();
  std::optional<int64_t> dim;
  bool ok = true;
  for (Value v : op->getOperands()) {
    auto t = tensorType(v);
    int64_t off = rank - t.getRank();
    if (auto d = splitOf(v)) {
      if (dim && *dim != *d + off)
        ok = false;
      dim = *d + off;
    }
  }
  if (dim)
    for (Value v : op->getOperands()) {
      auto t = tensorType(v);
      int64_t local = *dim - (rank - t.getRank());
      if (!splitOf(v) && local >= 0 && t.getDimSize(local) != 1)
        ok = false;
    }
  if (!dim)
    return;
  int64_t n = 0;
  for (Value v : op->getOperands())
    if (splitOf(v)) {
      if (n && n != partsOf(v))
        ok = false;
      n = partsOf(v);
    }
  if (!ok || (isa<RotaryOp>(op) && *dim == rank - 1)) {
    gatherOperands(op);
    return;
  }
  setSplit(op->getResult(0), *dim, n);
}

/// A split dim survives a reshape when the dims before it hold the same
/// number of elements on both sides and both sides divide by tp.
void Partitioner::partitionReshape(ReshapeOp op) {
  auto d = splitOf(op.getInput());
  if (!d)
    return;
  auto in = tensorType(op.getInput()).getShape();
  int64_t n = partsOf(op.getInput());
  int64_t globalIn = in[*d] * n;
  int64_t before = 1;
  for (int64_t i = 0; i < *d; ++i)
    before *= in[i];
  auto out = op.getType().getShape();
  int64_t prefix = 1;
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    if (prefix == before && out[i] % n == 0 && globalIn % n == 0 &&
        out[i] > 1) {
      setSplit(op.getResult(), i, n);
      return;
    }
    prefix *= out[i];
  }
  gatherOperands(op);
}

void Partitioner::partition(Operation *op) {
  if (isa<WeightOp, arith::ConstantOp>(op))
    return;
  // Already partitioned by its producer (the slices of a fused projection).
  if (op->getNumResults() == 1 && splitOf(op->getResult(0)))
    return;
  if (auto l = dyn_cast<LinearOp>(op))
    return partitionLinear(l);
  if (auto e = dyn_cast<EmbeddingOp>(op))
    return partitionEmbedding(e);
  if (auto r = dyn_cast<ReshapeOp>(op))
    return partitionReshape(r);
  if (isa<func::ReturnOp>(op))
    return gatherOperands(op);
  bool anySplit = llvm::any_of(op->getOperands(),
                               [&](Value v) { return splitOf(v).has_value(); });
  if (!anySplit)
    return;
  if (auto t = dyn_cast<TransposeOp>(op)) {
    int64_t d = *splitOf(t.getInput());
    for (auto [i, p] : llvm::enumerate(t.getPerm()))
      if (p == d)
        setSplit(t.getResult(), i, partsOf(t.getInput()));
    return;
  }
  if (auto a = dyn_cast<AttentionOp>(op)) {
    int64_t h = a.headsDim();
    bool heads = splitOf(a.getQ()) == h && splitOf(a.getK()) == h &&
                 splitOf(a.getV()) == h &&
                 (!a.getMask() || (!splitOf(a.getMask()) &&
                                   a.getMask().getType().getDimSize(1) == 1));
    if (!heads)
      return gatherOperands(op);
    setSplit(a.getResult(), h);
    return;
  }
  if (auto s = dyn_cast<SliceOp>(op)) {
    int64_t d = *splitOf(s.getInput());
    int64_t local = s.getInput().getType().getDimSize(d);
    if (s.getStarts()[d] == 0 && s.getEnds()[d] == local * tp &&
        s.getSteps()[d] == 1) {
      SmallVector<int64_t> ends(s.getEnds());
      ends[d] = local;
      s.setEnds(ends);
      setSplit(s.getResult(), d);
      return;
    }
    return gatherOperands(op);
  }
  if (isa<SoftmaxOp, LayerNormOp, RmsNormOp>(op)) {
    int64_t axis = isa<SoftmaxOp>(op)     ? cast<SoftmaxOp>(op).getAxis()
                   : isa<LayerNormOp>(op) ? cast<LayerNormOp>(op).getAxis()
                                          : cast<RmsNormOp>(op).getAxis();
    auto d = splitOf(op->getOperand(0));
    bool paramsWhole = llvm::all_of(op->getOperands().drop_front(),
                                    [&](Value v) { return !splitOf(v); });
    if (d && *d < axis && paramsWhole)
      return setSplit(op->getResult(0), *d);
    return gatherOperands(op);
  }
  // Rotary splits as an elementwise op over its rows.
  if (op->hasTrait<WeftElementwise>() || isa<RotaryOp>(op))
    return partitionElementwise(op);
  gatherOperands(op);
}

/// For attention whose kv heads are fewer than tp (and divide it), finds the
/// projections of k and v through reshape, transpose and rotary.
void Partitioner::findGroupedKv() {
  func.walk([&](AttentionOp a) {
    int64_t hkv = a.getK().getType().getDimSize(a.headsDim());
    if (hkv % tp == 0)
      return;
    for (Value v : {a.getK(), a.getV()}) {
      while (Operation *def = v.getDefiningOp()) {
        if (auto l = dyn_cast<LinearOp>(def)) {
          kvReplicas[l] = tp / hkv;
          break;
        }
        if (!isa<ReshapeOp, TransposeOp, RotaryOp>(def))
          break;
        v = def->getOperand(0);
      }
    }
  });
}

LogicalResult Partitioner::run() {
  if (tp <= 1)
    return success();
  if (failed(checkHeads()))
    return failure();
  findGroupedKv();
  Block &body = func.getBody().front();
  for (Operation &op : llvm::make_early_inc_range(body))
    partition(&op);
  if (invalid)
    return failure();
  // Weights replaced by their shards are no longer used.
  for (Operation &op : llvm::make_early_inc_range(body))
    if (isa<WeightOp>(op) && op.use_empty())
      op.erase();
  return success();
}

struct TensorParallelPass
    : mlir::weft::impl::TensorParallelBase<TensorParallelPass> {
  using TensorParallelBase::TensorParallelBase;
  void runOnOperation() override {
    if (tp < 1) {
      getOperation().emitError("tp must be at least 1");
      return signalPassFailure();
    }
    if (failed(Partitioner(getOperation(), tp).run()))
      signalPassFailure();
  }
};
} // namespace
