// --weft-fuse-attention: softmax(scale * q k^T + mask) v becomes one
// weft.attention, in the forms the PyTorch exporters produce.
#include "passes/Passes.h"
#include "passes/PatternUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace mlir::weft {
#define GEN_PASS_DEF_FUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
/// Scores at or below this count as masked out (HF uses the dtype's lowest).
constexpr double kMaskedScore = -1e4;

/// Peels multiplications and divisions by scalar constants off v,
/// accumulating them into `scale`.
Value peelScalarScale(Value v, double &scale) {
  while (true) {
    if (auto mul = v.getDefiningOp<MulOp>()) {
      Value rest;
      matchEitherOrder(mul, [&](Value a, Value c) {
        auto s = splatValue(c);
        if (!s || cast<RankedTensorType>(c.getType()).getNumElements() >
                      cast<RankedTensorType>(a.getType()).getNumElements())
          return false;
        scale *= *s;
        rest = a;
        return true;
      });
      if (!rest)
        return v;
      v = rest;
      continue;
    }
    if (auto div = v.getDefiningOp<DivOp>()) {
      auto s = splatValue(div.getRhs());
      if (!s || *s == 0)
        return v;
      scale /= *s;
      v = div.getLhs();
      continue;
    }
    return v;
  }
}

/// Undoes grouped-query repetition: reshape(broadcast(reshape(x))) that turns
/// [B, Hkv, T, D] into [B, Hkv * n, T, D]. Returns x, or v when not repeated.
Value unrepeatHeads(Value v) {
  auto outer = v.getDefiningOp<ReshapeOp>();
  if (!outer)
    return v;
  auto bc = outer.getInput().getDefiningOp<BroadcastOp>();
  if (!bc)
    return v;
  auto inner = bc.getInput().getDefiningOp<ReshapeOp>();
  if (!inner)
    return v;
  Value x = inner.getInput();
  auto xs = cast<RankedTensorType>(x.getType()).getShape();
  auto mid = bc.getInput().getType().getShape();
  auto rep = bc.getType().getShape();
  auto out = outer.getType().getShape();
  if (xs.size() != 4 || mid.size() != 5 || out.size() != 4)
    return v;
  bool ok = mid[0] == xs[0] && mid[1] == xs[1] && mid[2] == 1 &&
            mid[3] == xs[2] && mid[4] == xs[3] && rep[0] == xs[0] &&
            rep[1] == xs[1] && rep[3] == xs[2] && rep[4] == xs[3] &&
            out[0] == xs[0] && out[1] == xs[1] * rep[2] && out[2] == xs[2] &&
            out[3] == xs[3];
  return ok ? x : v;
}

/// Classifies a constant additive mask over [S, T] query/key positions.
enum class MaskKind { None, Causal, Other };

/// Classifications of mask constants already scanned: every layer of a
/// model usually reads the same uniqued [S, T] constant, and scanning it per
/// layer costs seconds at long sequences.
using MaskCache =
    llvm::DenseMap<std::tuple<Attribute, int64_t, int64_t>, MaskKind>;

MaskKind scanMask(DenseElementsAttr attr, int64_t s, int64_t t);

MaskKind classifyMask(Value mask, int64_t s, int64_t t, MaskCache &cache) {
  DenseElementsAttr attr;
  if (!matchPattern(mask, m_Constant(&attr)) ||
      !isa<FloatType>(attr.getElementType()))
    return MaskKind::Other;
  auto [it, fresh] = cache.try_emplace({attr, s, t}, MaskKind::Other);
  if (fresh)
    it->second = scanMask(attr, s, t);
  return it->second;
}

MaskKind scanMask(DenseElementsAttr attr, int64_t s, int64_t t) {
  if (attr.isSplat())
    return attr.getSplatValue<APFloat>().isZero() ? MaskKind::None
                                                  : MaskKind::Other;
  auto shape = cast<RankedTensorType>(attr.getType()).getShape();
  if (shape.size() < 2 || shape[shape.size() - 2] != s || shape.back() != t)
    return MaskKind::Other;
  // With more queries than keys, the first rows of a causal mask see no key:
  // the graph gives them the softmax of equal masked scores, the causal
  // kernel zeros. Only a mask keeps that.
  bool causal = s <= t, zero = true;
  int64_t i = 0;
  for (APFloat f : attr.getValues<APFloat>()) {
    int64_t col = i % t, row = (i / t) % s;
    double v = f.convertToDouble();
    bool visible = col <= row + (t - s);
    causal &= visible ? v == 0.0 : v <= kMaskedScore;
    zero &= v == 0.0;
    if (!causal && !zero)
      return MaskKind::Other;
    ++i;
  }
  return zero ? MaskKind::None : MaskKind::Causal;
}

struct AttentionPattern : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  mutable MaskCache maskCache;

  LogicalResult matchAndRewrite(MatmulOp pv,
                                PatternRewriter &rewriter) const override {
    if (pv.getTransposeA() || pv.getTransposeB() || pv.getType().getRank() != 4)
      return failure();
    Value p = pv.getA();
    // The SDPA decomposition zeroes fully masked rows: where(isnan(p), 0, p).
    if (auto sel = p.getDefiningOp<SelectOp>()) {
      auto nan = sel.getCond().getDefiningOp<IsNanOp>();
      if (nan && nan.getInput() == sel.getOnFalse() &&
          isSplatNear(sel.getOnTrue(), 0.0))
        p = sel.getOnFalse();
    }
    auto sm = p.getDefiningOp<SoftmaxOp>();
    if (!sm || int64_t(sm.getAxis()) != sm.getType().getRank() - 1)
      return failure();

    // Scores: peel scale factors and one mask (additive or boolean select).
    Value s = sm.getInput(), mask, keep;
    double scale = 1.0, maskScale = 1.0, keepFill = 0.0;
    while (true) {
      Value peeled = peelScalarScale(s, scale);
      if (peeled != s) {
        s = peeled;
        continue;
      }
      if (auto add = s.getDefiningOp<AddOp>(); add && !mask && !keep) {
        Value scores;
        matchEitherOrder(add, [&](Value a, Value m) {
          double ignored = 1.0;
          if (!peelScalarScale(a, ignored).getDefiningOp<MatmulOp>() ||
              a.getType() != add.getType())
            return false;
          scores = a;
          mask = m;
          return true;
        });
        if (!scores)
          return failure();
        maskScale = scale;
        s = scores;
        continue;
      }
      if (auto sel = s.getDefiningOp<SelectOp>(); sel && !mask && !keep) {
        auto lowest = splatValue(sel.getOnFalse());
        if (!lowest || *lowest > kMaskedScore ||
            sel.getOnTrue().getType() != sel.getType())
          return failure();
        keep = sel.getCond();
        // The scales peeled so far apply to the masked scores as well.
        keepFill = *lowest * scale;
        s = sel.getOnTrue();
        continue;
      }
      break;
    }
    auto qk = s.getDefiningOp<MatmulOp>();
    if (!qk || qk.getTransposeA() || qk.getType().getRank() != 4)
      return failure();
    Value q = peelScalarScale(qk.getA(), scale);
    Value kt = peelScalarScale(qk.getB(), scale);

    // k as [B, H, T, D]: undo the transpose that made k^T, or add one.
    Value kSource = kt;
    SmallVector<int64_t> kPerm; // empty: kSource is k
    if (!qk.getTransposeB()) {
      if (auto tr = kt.getDefiningOp<TransposeOp>()) {
        kPerm.assign(tr.getPerm().begin(), tr.getPerm().end());
        kSource = peelScalarScale(tr.getInput(), scale);
      } else {
        kPerm = {0, 1, 2, 3}; // k^T as computed; swapped below into k
      }
      if (kPerm.size() != 4)
        return failure();
      std::swap(kPerm[2], kPerm[3]);
      if (llvm::equal(kPerm, ArrayRef<int64_t>{0, 1, 2, 3}))
        kPerm.clear();
    }
    auto srcShape = cast<RankedTensorType>(kSource.getType()).getShape();
    if (srcShape.size() != 4)
      return failure();
    SmallVector<int64_t> kShape(srcShape);
    if (!kPerm.empty())
      for (int64_t i = 0; i < 4; ++i)
        kShape[i] = srcShape[kPerm[i]];
    Value v = pv.getB();
    auto qt = cast<RankedTensorType>(q.getType());
    auto vt = cast<RankedTensorType>(v.getType());
    if (qt.getRank() != 4 || vt.getRank() != 4 ||
        qt.getDimSize(0) != kShape[0] ||
        ArrayRef<int64_t>(kShape).drop_back() != vt.getShape().drop_back() ||
        qt.getDimSize(3) != kShape[3] || kShape[1] == 0 ||
        qt.getDimSize(1) % kShape[1])
      return failure();
    int64_t S = qt.getDimSize(2), T = kShape[2];
    Type elem = qt.getElementType();
    if (Value m = keep ? keep : mask) {
      auto mt = cast<RankedTensorType>(m.getType());
      SmallVector<int64_t> scores = {qt.getDimSize(0), qt.getDimSize(1), S, T};
      auto b = broadcastShapes(scores, mt.getShape());
      if ((!keep && mt.getElementType() != elem) ||
          (keep && !mt.getElementType().isInteger(1)) || failed(b) ||
          ArrayRef<int64_t>(*b) != ArrayRef<int64_t>(scores))
        return failure();
    }

    // Matched: build.
    Location loc = pv.getLoc();
    rewriter.setInsertionPoint(pv);
    Value k =
        kPerm.empty()
            ? kSource
            : TransposeOp::create(rewriter, loc, kSource, kPerm).getResult();
    auto scalarTy = RankedTensorType::get({}, elem);
    auto scalarConst = [&](double x) {
      return arith::ConstantOp::create(
          rewriter, loc, scalarTy,
          DenseElementsAttr::get(scalarTy, rewriter.getFloatAttr(elem, x)));
    };
    if (keep) {
      // A boolean keep-mask becomes additive: 0 where kept, elsewhere the
      // score the graph gives masked positions (its fill, times the scales
      // applied after the select: a negative one makes it the largest).
      mask = rewriter.createOrFold<SelectOp>(
          loc,
          RankedTensorType::get(
              cast<RankedTensorType>(keep.getType()).getShape(), elem),
          keep, scalarConst(0.0), scalarConst(keepFill));
    } else if (mask && maskScale != 1.0) {
      mask = rewriter.createOrFold<MulOp>(loc, mask.getType(), mask,
                                          scalarConst(maskScale));
    }
    bool causal = false;
    if (mask) {
      switch (classifyMask(mask, S, T, maskCache)) {
      case MaskKind::None:
        mask = {};
        break;
      case MaskKind::Causal:
        mask = {};
        causal = true;
        break;
      case MaskKind::Other:
        break;
      }
    }
    auto att = AttentionOp::create(rewriter, loc, pv.getType(), q, k, v, mask,
                                   rewriter.getF64FloatAttr(scale),
                                   rewriter.getBoolAttr(causal));
    rewriter.replaceOp(pv, att.getResult());
    return success();
  }
};

/// Grouped-query heads: attend to the kv heads before their repetition.
struct UnrepeatKvHeads : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getSeqMajor())
      return failure();
    Value k = unrepeatHeads(op.getK()), v = unrepeatHeads(op.getV());
    if (k == op.getK() || v == op.getV() ||
        cast<RankedTensorType>(k.getType()).getDimSize(1) !=
            cast<RankedTensorType>(v.getType()).getDimSize(1))
      return failure();
    rewriter.modifyOpInPlace(op, [&] {
      op.getKMutable().assign(k);
      op.getVMutable().assign(v);
    });
    return success();
  }
};

struct FuseAttentionPass
    : mlir::weft::impl::FuseAttentionBase<FuseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<AttentionPattern, UnrepeatKvHeads>(&getContext());
    // Transpose and reshape clean-ups expose repeated kv heads behind k^T.
    TransposeOp::getCanonicalizationPatterns(patterns, &getContext());
    ReshapeOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
