// The upstream shard dialect's ShardingInterface for weft ops: loop iterators
// and indexing maps that tell sharding propagation and shard-partition how
// each op may be split.
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Shard/Interfaces/ShardingInterface.h"
#include "mlir/Dialect/Shard/Interfaces/ShardingInterfaceImpl.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;
using namespace mlir::weft;
using shard::ReductionKind;
using utils::IteratorType;

namespace {
int64_t rankOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getRank();
}

/// Maps an operand that broadcasts (numpy rules) onto the given loop dims: its
/// dim d reads loop loopDims[d + offset], or constant 0 where it has size 1
/// and the loop does not.
AffineMap broadcastMap(Value operand, ArrayRef<int64_t> loopDims,
                       ArrayRef<int64_t> loopSizes, int64_t numLoops,
                       MLIRContext *ctx) {
  auto shape = cast<RankedTensorType>(operand.getType()).getShape();
  size_t off = loopDims.size() - shape.size();
  SmallVector<AffineExpr> exprs;
  for (size_t d = 0; d < shape.size(); ++d) {
    int64_t loop = loopDims[d + off];
    if (shape[d] == 1 && loopSizes[loop] != 1)
      exprs.push_back(getAffineConstantExpr(0, ctx));
    else
      exprs.push_back(getAffineDimExpr(loop, ctx));
  }
  return AffineMap::get(numLoops, 0, exprs, ctx);
}

/// The map from `numLoops` loops to their first `rank` dims (a result's map
/// when the reduction loops come last).
AffineMap leadingLoopsMap(int64_t numLoops, int64_t rank, MLIRContext *ctx) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < rank; ++i)
    exprs.push_back(getAffineDimExpr(i, ctx));
  return AffineMap::get(numLoops, 0, exprs, ctx);
}

SmallVector<int64_t> iota(int64_t n, int64_t from = 0) {
  SmallVector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = from + i;
  return v;
}

/// Elementwise ops (with broadcasting): one parallel loop per result dim.
template <typename Op>
struct ElementwiseModel
    : shard::ShardingInterface::ExternalModel<ElementwiseModel<Op>, Op> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    return SmallVector<IteratorType>(rankOf(op->getResult(0)),
                                     IteratorType::parallel);
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto shape = cast<RankedTensorType>(op->getResult(0).getType()).getShape();
    int64_t n = shape.size();
    SmallVector<AffineMap> maps;
    for (Value v : op->getOperands())
      maps.push_back(broadcastMap(v, iota(n), shape, n, op->getContext()));
    maps.push_back(AffineMap::getMultiDimIdentityMap(n, op->getContext()));
    return maps;
  }
  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<shard::Sharding> operandShardings,
                          ArrayRef<shard::Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    shard::partitionTriviallyShardableOperation(
        *op, partitionedOperands, operandShardings, resultShardings,
        partitionMap, symbolTable, builder);
    return success();
  }
};

/// Shared by ops with reduction loops: partitioning is local when only
/// parallel loops are split, and for sum reductions (the result is then a
/// partial sum that the partitioner all-reduces).
template <typename Derived, typename Op>
struct ReducingModel : shard::ShardingInterface::ExternalModel<Derived, Op> {
  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<shard::Sharding> operandShardings,
                          ArrayRef<shard::Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    auto self = static_cast<const Derived *>(this);
    SmallVector<IteratorType> iters = self->getLoopIteratorTypes(op);
    SmallVector<ReductionKind> kinds = self->getReductionLoopIteratorKinds(op);
    auto assignment = shard::getGridAxisAssignmentForLoopIterators(
        operandShardings, resultShardings, iters, self->getIndexingMaps(op));
    for (auto [i, it] : llvm::enumerate(iters)) {
      if (it != IteratorType::reduction || assignment[i].empty())
        continue;
      int64_t r =
          llvm::count(ArrayRef(iters).take_front(i), IteratorType::reduction);
      if (kinds[r] != ReductionKind::Sum)
        return op->emitOpError("cannot split loop ")
               << i << ": it is a non-sum reduction";
    }
    shard::partitionTriviallyShardableOperation(
        *op, partitionedOperands, operandShardings, resultShardings,
        partitionMap, symbolTable, builder);
    return success();
  }
};

/// matmul: loops (batch..., m, n, k), k a sum reduction.
struct MatmulModel : ReducingModel<MatmulModel, MatmulOp> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    SmallVector<IteratorType> it(rankOf(op->getResult(0)),
                                 IteratorType::parallel);
    it.push_back(IteratorType::reduction);
    return it;
  }
  SmallVector<ReductionKind> getReductionLoopIteratorKinds(Operation *) const {
    return {ReductionKind::Sum};
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto mm = cast<MatmulOp>(op);
    MLIRContext *ctx = op->getContext();
    auto out = mm.getType().getShape();
    int64_t r = out.size(), nl = r + 1, m = r - 2, n = r - 1, k = r;
    auto batchExprs = [&](Value v) {
      auto t = cast<RankedTensorType>(v.getType());
      SmallVector<AffineExpr> exprs;
      int64_t nb = t.getRank() - 2, off = (r - 2) - nb;
      for (int64_t d = 0; d < nb; ++d)
        exprs.push_back(t.getDimSize(d) == 1 && out[d + off] != 1
                            ? getAffineConstantExpr(0, ctx)
                            : getAffineDimExpr(d + off, ctx));
      return exprs;
    };
    auto a = batchExprs(mm.getA());
    if (mm.getTransposeA())
      a.append({getAffineDimExpr(k, ctx), getAffineDimExpr(m, ctx)});
    else
      a.append({getAffineDimExpr(m, ctx), getAffineDimExpr(k, ctx)});
    auto b = batchExprs(mm.getB());
    if (mm.getTransposeB())
      b.append({getAffineDimExpr(n, ctx), getAffineDimExpr(k, ctx)});
    else
      b.append({getAffineDimExpr(k, ctx), getAffineDimExpr(n, ctx)});
    return {AffineMap::get(nl, 0, a, ctx), AffineMap::get(nl, 0, b, ctx),
            leadingLoopsMap(nl, r, ctx)};
  }
};

/// linear: loops (rows..., n, k), k a sum reduction.
struct LinearModel : ReducingModel<LinearModel, LinearOp> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    SmallVector<IteratorType> it(rankOf(op->getResult(0)),
                                 IteratorType::parallel);
    it.push_back(IteratorType::reduction);
    return it;
  }
  SmallVector<ReductionKind> getReductionLoopIteratorKinds(Operation *) const {
    return {ReductionKind::Sum};
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto lin = cast<LinearOp>(op);
    MLIRContext *ctx = op->getContext();
    int64_t r = lin.getType().getRank(), nl = r + 1, n = r - 1, k = r;
    auto d = [&](int64_t i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineExpr> x;
    for (int64_t i = 0; i < r - 1; ++i)
      x.push_back(d(i));
    x.push_back(d(k));
    SmallVector<AffineMap> maps = {AffineMap::get(nl, 0, x, ctx)};
    maps.push_back(AffineMap::get(nl, 0,
                                  lin.getTransposeWeight()
                                      ? ArrayRef<AffineExpr>{d(n), d(k)}
                                      : ArrayRef<AffineExpr>{d(k), d(n)},
                                  ctx));
    if (lin.getBias())
      maps.push_back(AffineMap::get(nl, 0, {d(n)}, ctx));
    if (lin.getResidual())
      maps.push_back(leadingLoopsMap(nl, r, ctx));
    maps.push_back(leadingLoopsMap(nl, r, ctx));
    return maps;
  }
  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<shard::Sharding> operandShardings,
                          ArrayRef<shard::Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    // With k split each rank's result is a partial sum that is all-reduced
    // afterwards: a bias or residual added in every partial would count once
    // per rank, and a GELU of each partial is not the GELU of the sum.
    auto lin = cast<LinearOp>(op);
    auto assignment = shard::getGridAxisAssignmentForLoopIterators(
        operandShardings, resultShardings, getLoopIteratorTypes(op),
        getIndexingMaps(op));
    if (!assignment.back().empty() && lin.getGeluTanh())
      return op->emitOpError("cannot split the contraction of a linear with "
                             "gelu_tanh: each rank's partial sum would take "
                             "the GELU");
    if (!assignment.back().empty() && (lin.getBias() || lin.getResidual()))
      return op->emitOpError("cannot split the contraction of a linear with a ")
             << (lin.getResidual() ? "residual" : "bias")
             << ": each rank's partial sum would add it";
    return ReducingModel::partition(op, partitionedOperands, operandShardings,
                                    resultShardings, partitionMap, symbolTable,
                                    builder);
  }
};

/// Ops that reduce over their trailing dims with a non-sum reduction
/// (softmax, norms, rotary): those loops must stay whole.
template <typename Op>
struct TrailingReductionModel : ReducingModel<TrailingReductionModel<Op>, Op> {
  static int64_t firstReduced(Operation *op) {
    if (auto s = dyn_cast<SoftmaxOp>(op))
      return s.getAxis();
    if (auto n = dyn_cast<LayerNormOp>(op))
      return n.getAxis();
    if (auto n = dyn_cast<RmsNormOp>(op))
      return n.getAxis();
    return rankOf(op->getResult(0)) - 1; // rotary: the head dim
  }
  static int64_t lastReduced(Operation *op) {
    if (auto s = dyn_cast<SoftmaxOp>(op))
      return s.getAxis();
    return rankOf(op->getResult(0)) - 1;
  }
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    SmallVector<IteratorType> it(rankOf(op->getResult(0)),
                                 IteratorType::parallel);
    for (int64_t i = firstReduced(op); i <= lastReduced(op); ++i)
      it[i] = IteratorType::reduction;
    return it;
  }
  SmallVector<ReductionKind>
  getReductionLoopIteratorKinds(Operation *op) const {
    return SmallVector<ReductionKind>(lastReduced(op) - firstReduced(op) + 1,
                                      ReductionKind::Generic);
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto shape = cast<RankedTensorType>(op->getResult(0).getType()).getShape();
    int64_t n = shape.size();
    SmallVector<AffineMap> maps;
    for (Value v : op->getOperands())
      maps.push_back(broadcastMap(v, iota(n), shape, n, op->getContext()));
    maps.push_back(AffineMap::getMultiDimIdentityMap(n, op->getContext()));
    return maps;
  }
};

/// attention: loops (b, h, s, e, t, d) with b, h, s, e (value dim) parallel and
/// t (keys), d (q.k contraction) reductions that must stay whole. Splitting h
/// splits query and kv heads alike, which keeps grouped-query heads together.
struct AttentionModel : ReducingModel<AttentionModel, AttentionOp> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *) const {
    return {IteratorType::parallel,  IteratorType::parallel,
            IteratorType::parallel,  IteratorType::parallel,
            IteratorType::reduction, IteratorType::reduction};
  }
  SmallVector<ReductionKind> getReductionLoopIteratorKinds(Operation *) const {
    return {ReductionKind::Generic, ReductionKind::Generic};
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto att = cast<AttentionOp>(op);
    MLIRContext *ctx = op->getContext();
    auto d = [&](int64_t i) { return getAffineDimExpr(i, ctx); };
    enum { B, H, S, E, T, D };
    // [B, H, seq, dim], or [B, seq, H, dim] when seq_major.
    bool seqMajor = att.getSeqMajor();
    auto map = [&](int64_t seq, int64_t dim) {
      return seqMajor ? AffineMap::get(6, 0, {d(B), d(seq), d(H), d(dim)}, ctx)
                      : AffineMap::get(6, 0, {d(B), d(H), d(seq), d(dim)}, ctx);
    };
    SmallVector<AffineMap> maps = {map(S, D), map(T, D), map(T, E)};
    if (Value mask = att.getMask()) {
      auto q = att.getQ().getType().getShape();
      SmallVector<int64_t> sizes = {
          q[0],
          q[att.headsDim()],
          q[att.seqDim()],
          0,
          att.getK().getType().getShape()[att.seqDim()],
          0};
      maps.push_back(broadcastMap(mask, {B, H, S, T}, sizes, 6, ctx));
    }
    maps.push_back(map(S, E));
    return maps;
  }
};

/// embedding: loops (ids..., hidden, vocab); vocab is a sum reduction: a rank
/// holding part of the table contributes zeros for ids it does not hold.
struct EmbeddingModel : ReducingModel<EmbeddingModel, EmbeddingOp> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    SmallVector<IteratorType> it(rankOf(op->getResult(0)),
                                 IteratorType::parallel);
    it.push_back(IteratorType::reduction);
    return it;
  }
  SmallVector<ReductionKind> getReductionLoopIteratorKinds(Operation *) const {
    return {ReductionKind::Sum};
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    auto emb = cast<EmbeddingOp>(op);
    MLIRContext *ctx = op->getContext();
    int64_t r = emb.getType().getRank(), nl = r + 1;
    auto d = [&](int64_t i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineExpr> ids;
    for (int64_t i = 0; i < r - 1; ++i)
      ids.push_back(d(i));
    return {AffineMap::get(nl, 0, {d(r), d(r - 1)}, ctx),
            AffineMap::get(nl, 0, ids, ctx), leadingLoopsMap(nl, r, ctx)};
  }
  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<shard::Sharding> operandShardings,
                          ArrayRef<shard::Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    // A vocab-split table needs ids rebased per rank; that rewrite belongs to
    // the layout pass, which emits it before partitioning.
    auto assignment = shard::getGridAxisAssignmentForLoopIterators(
        operandShardings, resultShardings, getLoopIteratorTypes(op),
        getIndexingMaps(op));
    if (!assignment.back().empty())
      return op->emitOpError("a vocab-split embedding must be rewritten by the "
                             "layout pass before partitioning");
    return ReducingModel::partition(op, partitionedOperands, operandShardings,
                                    resultShardings, partitionMap, symbolTable,
                                    builder);
  }
};

/// weight: one parallel loop per dim. Partitioning gives each rank a weight
/// of its local shape; which slice of the named tensor it holds follows from
/// the sharding annotation, which the artifact's slice table records.
struct WeightModel
    : shard::ShardingInterface::ExternalModel<WeightModel, WeightOp> {
  SmallVector<IteratorType> getLoopIteratorTypes(Operation *op) const {
    return SmallVector<IteratorType>(rankOf(op->getResult(0)),
                                     IteratorType::parallel);
  }
  SmallVector<AffineMap> getIndexingMaps(Operation *op) const {
    return {AffineMap::getMultiDimIdentityMap(rankOf(op->getResult(0)),
                                              op->getContext())};
  }
  LogicalResult partition(Operation *op, ArrayRef<Value> partitionedOperands,
                          ArrayRef<shard::Sharding> operandShardings,
                          ArrayRef<shard::Sharding> resultShardings,
                          IRMapping &partitionMap,
                          SymbolTableCollection &symbolTable,
                          OpBuilder &builder) const {
    shard::partitionTriviallyShardableOperation(
        *op, partitionedOperands, operandShardings, resultShardings,
        partitionMap, symbolTable, builder);
    return success();
  }
};

/// Attaches the elementwise model to `Op` when it has the trait.
template <typename Op> void attachIfElementwise(MLIRContext *ctx) {
  if constexpr (Op::template hasTrait<WeftElementwise>())
    Op::template attachInterface<ElementwiseModel<Op>>(*ctx);
}

/// The elementwise model on every op of the dialect with the trait.
template <typename... Ops> void attachElementwise(MLIRContext *ctx) {
  (attachIfElementwise<Ops>(ctx), ...);
}
} // namespace

void mlir::weft::registerShardingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, WeftDialect *) {
    attachElementwise<
#define GET_OP_LIST
#include "dialects/Weft/WeftOps.cpp.inc"
        >(ctx);
    WeightOp::attachInterface<WeightModel>(*ctx);
    MatmulOp::attachInterface<MatmulModel>(*ctx);
    LinearOp::attachInterface<LinearModel>(*ctx);
    AttentionOp::attachInterface<AttentionModel>(*ctx);
    EmbeddingOp::attachInterface<EmbeddingModel>(*ctx);
    SoftmaxOp::attachInterface<TrailingReductionModel<SoftmaxOp>>(*ctx);
    LayerNormOp::attachInterface<TrailingReductionModel<LayerNormOp>>(*ctx);
    RmsNormOp::attachInterface<TrailingReductionModel<RmsNormOp>>(*ctx);
    RotaryOp::attachInterface<TrailingReductionModel<RotaryOp>>(*ctx);
  });
}
