// The constant evaluator behind every weft op's fold(): it computes an op on
// constant operands, which is how shape arithmetic disappears once the dims
// are bound.
#include "dialects/Weft/WeftOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::weft;

namespace {
/// A constant tensor in row-major order: doubles for floating-point element
/// types, int64 for integers and i1.
struct Lit {
  SmallVector<int64_t> shape;
  bool isFloat = false;
  std::vector<double> f;
  std::vector<int64_t> i;

  int64_t size() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t(1),
                           std::multiplies<>());
  }
  double getF(int64_t k) const { return isFloat ? f[k] : double(i[k]); }
  int64_t getI(int64_t k) const { return isFloat ? int64_t(f[k]) : i[k]; }
  void resize(int64_t n) {
    if (isFloat)
      f.assign(n, 0.0);
    else
      i.assign(n, 0);
  }
  /// Copies element `from` of `src` (same kind) into element `to`.
  void copyFrom(const Lit &src, int64_t from, int64_t to) {
    if (isFloat)
      f[to] = src.f[from];
    else
      i[to] = src.i[from];
  }
};

SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> s(shape.size(), 1);
  for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d)
    s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/// Strides that read `shape` as if broadcast to `out` (0 on broadcast dims).
SmallVector<int64_t> broadcastStrides(ArrayRef<int64_t> shape,
                                      ArrayRef<int64_t> out) {
  SmallVector<int64_t> s(out.size(), 0), own = stridesOf(shape);
  size_t off = out.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    s[d + off] = shape[d] == 1 ? 0 : own[d];
  return s;
}

/// Calls fn(outIndex, offsets...) for each element of `out`, with one offset
/// per input computed from its strides.
template <typename Fn>
void forEachIndex(ArrayRef<int64_t> out, ArrayRef<SmallVector<int64_t>> strides,
                  Fn fn) {
  int64_t n =
      std::accumulate(out.begin(), out.end(), int64_t(1), std::multiplies<>());
  size_t rank = out.size();
  SmallVector<int64_t> idx(rank, 0), offs(strides.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    fn(k, ArrayRef<int64_t>(offs));
    for (int64_t d = int64_t(rank) - 1; d >= 0; --d) {
      ++idx[d];
      for (size_t t = 0; t < strides.size(); ++t)
        offs[t] += strides[t][d];
      if (idx[d] < out[d])
        break;
      for (size_t t = 0; t < strides.size(); ++t)
        offs[t] -= strides[t][d] * idx[d];
      idx[d] = 0;
    }
  }
}

std::optional<Lit> toLit(Attribute attr) {
  auto dense = dyn_cast_or_null<DenseElementsAttr>(attr);
  if (!dense)
    return std::nullopt;
  auto type = cast<RankedTensorType>(dense.getType());
  Lit lit;
  lit.shape.assign(type.getShape().begin(), type.getShape().end());
  Type elem = type.getElementType();
  int64_t n = lit.size();
  if (isa<FloatType>(elem)) {
    lit.isFloat = true;
    lit.f.reserve(n);
    if (dense.isSplat()) {
      lit.f.assign(n, dense.getSplatValue<APFloat>().convertToDouble());
    } else if (elem.isF32()) {
      for (float v : dense.getValues<float>())
        lit.f.push_back(v);
    } else if (elem.isF64()) {
      for (double v : dense.getValues<double>())
        lit.f.push_back(v);
    } else {
      for (APFloat v : dense.getValues<APFloat>()) {
        bool loses;
        v.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &loses);
        lit.f.push_back(v.convertToDouble());
      }
    }
    return lit;
  }
  auto intType = dyn_cast<IntegerType>(elem);
  if (!intType)
    return std::nullopt;
  lit.i.reserve(n);
  bool isBool = intType.getWidth() == 1, isUnsigned = intType.isUnsigned();
  auto read = [&](const APInt &v) {
    return isBool || isUnsigned ? int64_t(v.getZExtValue()) : v.getSExtValue();
  };
  if (dense.isSplat())
    lit.i.assign(n, read(dense.getSplatValue<APInt>()));
  else
    for (const APInt &v : dense.getValues<APInt>())
      lit.i.push_back(read(v));
  return lit;
}

Attribute fromLit(const Lit &lit, RankedTensorType type) {
  Type elem = type.getElementType();
  if (auto ft = dyn_cast<FloatType>(elem)) {
    if (elem.isF32()) {
      SmallVector<float> v(lit.f.begin(), lit.f.end());
      return DenseElementsAttr::get(type, ArrayRef<float>(v));
    }
    if (elem.isF64())
      return DenseElementsAttr::get(type, ArrayRef<double>(lit.f));
    SmallVector<APFloat> v;
    v.reserve(lit.f.size());
    for (double d : lit.f) {
      APFloat a(d);
      bool loses;
      a.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &loses);
      v.push_back(a);
    }
    return DenseElementsAttr::get(type, v);
  }
  auto it = dyn_cast<IntegerType>(elem);
  if (!it)
    return {};
  if (it.getWidth() == 1) {
    SmallVector<bool> v;
    for (int64_t x : lit.i)
      v.push_back(x != 0);
    return DenseElementsAttr::get(type, ArrayRef<bool>(v));
  }
  if (it.getWidth() == 64)
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(lit.i));
  SmallVector<APInt> v;
  for (int64_t x : lit.i)
    v.push_back(APInt(it.getWidth(), uint64_t(x), /*isSigned=*/true,
                      /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, v);
}

/// Rounds a value to what the element type can hold (integers wrap, i1
/// becomes 0/1), so folded chains match step-by-step execution.
Lit makeResult(RankedTensorType type) {
  Lit r;
  r.shape.assign(type.getShape().begin(), type.getShape().end());
  r.isFloat = isa<FloatType>(type.getElementType());
  r.resize(r.size());
  return r;
}

double applyBinaryF(Operation *op, double a, double b) {
  return TypeSwitch<Operation *, double>(op)
      .Case<AddOp>([&](auto) { return a + b; })
      .Case<SubOp>([&](auto) { return a - b; })
      .Case<MulOp>([&](auto) { return a * b; })
      .Case<DivOp>([&](auto) { return a / b; })
      .Case<PowOp>([&](auto) { return std::pow(a, b); })
      .Case<MaxOp>([&](auto) {
        return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
      })
      .Case<MinOp>([&](auto) {
        return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b);
      })
      .Default([&](auto) { return NAN; });
}

std::optional<int64_t> applyBinaryI(Operation *op, int64_t a, int64_t b) {
  auto wrap = [](uint64_t v) { return int64_t(v); };
  return TypeSwitch<Operation *, std::optional<int64_t>>(op)
      .Case<AddOp>([&](auto) { return wrap(uint64_t(a) + uint64_t(b)); })
      .Case<SubOp>([&](auto) { return wrap(uint64_t(a) - uint64_t(b)); })
      .Case<MulOp>([&](auto) { return wrap(uint64_t(a) * uint64_t(b)); })
      .Case<DivOp>([&](auto) -> std::optional<int64_t> {
        if (b == 0 || (a == INT64_MIN && b == -1))
          return std::nullopt;
        return a / b;
      })
      .Case<PowOp>(
          [&](auto) { return int64_t(std::pow(double(a), double(b))); })
      .Case<MaxOp>([&](auto) { return std::max(a, b); })
      .Case<MinOp>([&](auto) { return std::min(a, b); })
      .Case<AndOp>([&](auto) { return int64_t(a && b); })
      .Case<OrOp>([&](auto) { return int64_t(a || b); })
      .Default([&](auto) { return std::nullopt; });
}

bool compare(CmpPredicate p, double a, double b) {
  switch (p) {
  case CmpPredicate::eq:
    return a == b;
  case CmpPredicate::lt:
    return a < b;
  case CmpPredicate::le:
    return a <= b;
  case CmpPredicate::gt:
    return a > b;
  case CmpPredicate::ge:
    return a >= b;
  }
  return false;
}

bool compareI(CmpPredicate p, int64_t a, int64_t b) {
  switch (p) {
  case CmpPredicate::eq:
    return a == b;
  case CmpPredicate::lt:
    return a < b;
  case CmpPredicate::le:
    return a <= b;
  case CmpPredicate::gt:
    return a > b;
  case CmpPredicate::ge:
    return a >= b;
  }
  return false;
}

std::optional<double> applyUnary(Operation *op, double x) {
  constexpr double kSqrt2 = 1.4142135623730951, kPi = 3.141592653589793;
  return TypeSwitch<Operation *, std::optional<double>>(op)
      .Case<NegOp>([&](auto) { return -x; })
      .Case<ExpOp>([&](auto) { return std::exp(x); })
      .Case<LogOp>([&](auto) { return std::log(x); })
      .Case<ErfOp>([&](auto) { return std::erf(x); })
      .Case<TanhOp>([&](auto) { return std::tanh(x); })
      .Case<SigmoidOp>([&](auto) { return 1.0 / (1.0 + std::exp(-x)); })
      .Case<SqrtOp>([&](auto) { return std::sqrt(x); })
      .Case<ReciprocalOp>([&](auto) { return 1.0 / x; })
      .Case<CosOp>([&](auto) { return std::cos(x); })
      .Case<SinOp>([&](auto) { return std::sin(x); })
      .Case<AbsOp>([&](auto) { return std::fabs(x); })
      .Case<ReluOp>([&](auto) { return x > 0 ? x : 0.0; })
      .Case<NotOp>([&](auto) { return double(x == 0); })
      .Case<SiluOp>([&](auto) { return x / (1.0 + std::exp(-x)); })
      .Case<GeluOp>([&](GeluOp g) {
        if (g.getApproximate() == GeluApprox::tanh)
          return 0.5 * x *
                 (1 +
                  std::tanh(std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1 + std::erf(x / kSqrt2));
      })
      .Default([&](auto) { return std::nullopt; });
}

/// Integer Neg and Abs wrap at the type's minimum, as two's complement does.
std::optional<int64_t> applyUnaryI(Operation *op, int64_t x) {
  auto neg = [](int64_t v) { return int64_t(uint64_t(0) - uint64_t(v)); };
  return TypeSwitch<Operation *, std::optional<int64_t>>(op)
      .Case<NegOp>([&](auto) { return neg(x); })
      .Case<AbsOp>([&](auto) { return x < 0 ? neg(x) : x; })
      .Case<ReluOp>([&](auto) { return x > 0 ? x : 0; })
      .Case<NotOp>([&](auto) { return int64_t(x == 0); })
      .Default([&](auto) { return std::nullopt; });
}

std::optional<Lit> evalElementwise(Operation *op, ArrayRef<Lit> in,
                                   RankedTensorType type) {
  Lit r = makeResult(type);
  SmallVector<SmallVector<int64_t>> strides;
  for (const Lit &l : in)
    strides.push_back(broadcastStrides(l.shape, type.getShape()));
  bool ok = true;
  if (auto cmp = dyn_cast<CmpOp>(op)) {
    bool f = in[0].isFloat;
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      r.i[k] = f ? compare(cmp.getPredicate(), in[0].f[o[0]], in[1].f[o[1]])
                 : compareI(cmp.getPredicate(), in[0].i[o[0]], in[1].i[o[1]]);
    });
  } else if (isa<SelectOp>(op)) {
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      const Lit &src = in[0].i[o[0]] ? in[1] : in[2];
      r.copyFrom(src, in[0].i[o[0]] ? o[1] : o[2], k);
    });
  } else if (isa<IsNanOp>(op)) {
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      r.i[k] = in[0].isFloat && std::isnan(in[0].f[o[0]]);
    });
  } else if (isa<CastOp>(op)) {
    bool toBool = type.getElementType().isInteger(1);
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      if (r.isFloat)
        r.f[k] = in[0].getF(o[0]);
      else if (toBool)
        r.i[k] = in[0].getF(o[0]) != 0;
      else if (in[0].isFloat &&
               !(in[0].f[o[0]] >= -0x1p63 && in[0].f[o[0]] < 0x1p63))
        ok = false; // NaN, infinite or beyond int64: left to the runtime
      else
        r.i[k] = in[0].getI(o[0]);
    });
  } else if (in.size() == 2) {
    bool f = r.isFloat;
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      if (f) {
        r.f[k] = applyBinaryF(op, in[0].f[o[0]], in[1].f[o[1]]);
        return;
      }
      auto v = applyBinaryI(op, in[0].i[o[0]], in[1].i[o[1]]);
      ok &= v.has_value();
      r.i[k] = v.value_or(0);
    });
  } else if (r.isFloat) {
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      auto v = applyUnary(op, in[0].getF(o[0]));
      ok &= v.has_value();
      r.f[k] = v.value_or(0);
    });
  } else {
    // Integers fold in integer arithmetic (a double holds neither every
    // int64 nor Reciprocal's 1/0); the other unary ops are not folded.
    forEachIndex(type.getShape(), strides, [&](int64_t k, ArrayRef<int64_t> o) {
      auto v = applyUnaryI(op, in[0].i[o[0]]);
      ok &= v.has_value();
      r.i[k] = v.value_or(0);
    });
  }
  if (!ok)
    return std::nullopt;
  return r;
}

/// Gathers result element k from source offset src(k).
template <typename Fn>
Lit gatherBy(const Lit &src, RankedTensorType type, Fn srcOffset) {
  Lit r = makeResult(type);
  for (int64_t k = 0, n = r.size(); k < n; ++k)
    r.copyFrom(src, srcOffset(k), k);
  return r;
}

/// Unravels a flat index of `shape` into per-dim indices.
void unravel(int64_t k, ArrayRef<int64_t> shape,
             SmallVectorImpl<int64_t> &idx) {
  idx.resize(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? k % shape[d] : 0;
    k = shape[d] ? k / shape[d] : 0;
  }
}

std::optional<Lit> evalMovement(Operation *op, ArrayRef<Lit> in,
                                RankedTensorType type) {
  const Lit &x = in[0];
  ArrayRef<int64_t> out = type.getShape();
  SmallVector<int64_t> idx, xs = stridesOf(x.shape);
  if (isa<ReshapeOp>(op)) {
    Lit r = x;
    r.shape.assign(out.begin(), out.end());
    return r;
  }
  if (isa<BroadcastOp>(op)) {
    Lit r = makeResult(type);
    forEachIndex(
        out, {broadcastStrides(x.shape, out)},
        [&](int64_t k, ArrayRef<int64_t> o) { r.copyFrom(x, o[0], k); });
    return r;
  }
  if (auto t = dyn_cast<TransposeOp>(op)) {
    return gatherBy(x, type, [&](int64_t k) {
      unravel(k, out, idx);
      int64_t off = 0;
      for (auto [d, p] : llvm::enumerate(t.getPerm()))
        off += idx[d] * xs[p];
      return off;
    });
  }
  if (auto s = dyn_cast<SliceOp>(op)) {
    return gatherBy(x, type, [&](int64_t k) {
      unravel(k, out, idx);
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d)
        off += (s.getStarts()[d] + idx[d] * s.getSteps()[d]) * xs[d];
      return off;
    });
  }
  if (auto t = dyn_cast<TileOp>(op)) {
    return gatherBy(x, type, [&](int64_t k) {
      unravel(k, out, idx);
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d)
        off += (idx[d] % x.shape[d]) * xs[d];
      return off;
    });
  }
  if (auto c = dyn_cast<ConcatOp>(op)) {
    Lit r = makeResult(type);
    int64_t axis = c.getAxis(), base = 0;
    for (const Lit &part : in) {
      SmallVector<int64_t> ps = stridesOf(part.shape), pidx;
      SmallVector<int64_t> rs = stridesOf(out);
      for (int64_t k = 0, n = part.size(); k < n; ++k) {
        unravel(k, part.shape, pidx);
        int64_t off = 0;
        for (size_t d = 0; d < pidx.size(); ++d)
          off += (pidx[d] + (int64_t(d) == axis ? base : 0)) * rs[d];
        r.copyFrom(part, k, off);
      }
      base += part.shape[axis];
    }
    return r;
  }
  return std::nullopt;
}

std::optional<Lit> evalGather(Operation *op, ArrayRef<Lit> in,
                              RankedTensorType type) {
  const Lit &data = in[0], &ind = in[1];
  SmallVector<int64_t> ds = stridesOf(data.shape), idx;
  ArrayRef<int64_t> out = type.getShape();
  // Every index into empty data is out of range: nothing to copy from.
  if (data.size() == 0 && type.getNumElements() != 0)
    return std::nullopt;
  bool ok = true;
  auto norm = [&](int64_t i, int64_t dim) {
    if (i < 0)
      i += dim;
    if (i < 0 || i >= dim) {
      ok = false;
      return int64_t(0);
    }
    return i;
  };
  std::optional<Lit> r;
  if (auto g = dyn_cast<GatherOp>(op)) {
    int64_t axis = g.getAxis(), ir = ind.shape.size();
    SmallVector<int64_t> is = stridesOf(ind.shape);
    r = gatherBy(data, type, [&](int64_t k) {
      unravel(k, out, idx);
      int64_t ioff = 0;
      for (int64_t d = 0; d < ir; ++d)
        ioff += idx[axis + d] * is[d];
      int64_t off = norm(ind.i[ioff], data.shape[axis]) * ds[axis];
      for (int64_t d = 0; d < axis; ++d)
        off += idx[d] * ds[d];
      for (int64_t d = axis + 1; d < int64_t(data.shape.size()); ++d)
        off += idx[d - 1 + ir] * ds[d];
      return off;
    });
  } else if (auto g = dyn_cast<GatherElementsOp>(op)) {
    int64_t axis = g.getAxis();
    r = gatherBy(data, type, [&](int64_t k) {
      unravel(k, out, idx);
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d)
        off += (int64_t(d) == axis ? norm(ind.i[k], data.shape[d]) : idx[d]) *
               ds[d];
      return off;
    });
  } else if (auto g = dyn_cast<GatherNdOp>(op)) {
    int64_t b = g.getBatchDims(), depth = ind.shape.back();
    SmallVector<int64_t> is = stridesOf(ind.shape);
    int64_t inner = 1;
    for (size_t d = b + depth; d < data.shape.size(); ++d)
      inner *= data.shape[d];
    r = gatherBy(data, type, [&](int64_t k) {
      int64_t tuple = k / inner, rest = k % inner;
      // tuple indexes the index tensor's leading dims; its first b dims are
      // batch dims shared with data.
      unravel(tuple, ArrayRef<int64_t>(ind.shape).drop_back(), idx);
      int64_t off = rest;
      for (int64_t d = 0; d < b; ++d)
        off += idx[d] * ds[d];
      for (int64_t j = 0; j < depth; ++j)
        off += norm(ind.i[tuple * depth + j], data.shape[b + j]) * ds[b + j];
      return off;
    });
  }
  if (!ok)
    return std::nullopt;
  return r;
}

/// The larger (or smaller) of two doubles; NaN propagates, as in the
/// kernels.
double extremum(bool max, double acc, double v) {
  if (std::isnan(acc) || std::isnan(v))
    return std::isnan(acc) ? acc : v;
  return (max ? v > acc : v < acc) ? v : acc;
}

std::optional<Lit> evalReduce(ReduceOp op, const Lit &x,
                              RankedTensorType type) {
  SmallVector<int64_t> keep(x.shape);
  for (int64_t a : op.getAxes())
    keep[a] = 1;
  Lit r = makeResult(type);
  if (r.isFloat != x.isFloat)
    return std::nullopt;
  ReduceKind kind = op.getKind();
  // Floats accumulate in double; integers in int64, wrapping as the
  // kernels do (a double holds neither every int64 nor their sums).
  std::vector<double> acc(r.isFloat ? r.size() : 0);
  std::vector<int64_t> iacc(r.isFloat ? 0 : r.size());
  std::vector<int64_t> count(r.size(), 0);
  std::fill(acc.begin(), acc.end(),
            kind == ReduceKind::max    ? -INFINITY
            : kind == ReduceKind::min  ? INFINITY
            : kind == ReduceKind::prod ? 1.0
                                       : 0.0);
  std::fill(iacc.begin(), iacc.end(), kind == ReduceKind::prod ? 1 : 0);
  SmallVector<int64_t> ks = stridesOf(keep), idx;
  for (int64_t k = 0, n = x.size(); k < n; ++k) {
    unravel(k, x.shape, idx);
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d)
      o += (keep[d] == 1 && x.shape[d] != 1 ? 0 : idx[d]) * ks[d];
    bool first = count[o]++ == 0;
    if (!r.isFloat) {
      int64_t v = x.i[k], &a = iacc[o];
      switch (kind) {
      case ReduceKind::sum:
      case ReduceKind::mean:
        a = int64_t(uint64_t(a) + uint64_t(v));
        break;
      case ReduceKind::max:
        a = first ? v : std::max(a, v);
        break;
      case ReduceKind::min:
        a = first ? v : std::min(a, v);
        break;
      case ReduceKind::prod:
        a = int64_t(uint64_t(a) * uint64_t(v));
        break;
      }
      continue;
    }
    double v = x.getF(k);
    switch (kind) {
    case ReduceKind::sum:
    case ReduceKind::mean:
      acc[o] += v;
      break;
    case ReduceKind::max:
    case ReduceKind::min:
      acc[o] = extremum(kind == ReduceKind::max, acc[o], v);
      break;
    case ReduceKind::prod:
      acc[o] *= v;
      break;
    }
  }
  for (int64_t k = 0, n = r.size(); k < n; ++k) {
    if (r.isFloat) {
      r.f[k] = kind == ReduceKind::mean ? acc[k] / count[k] : acc[k];
      continue;
    }
    // The max, min or mean of no integers has no value: not folded.
    bool needsOne = kind == ReduceKind::max || kind == ReduceKind::min ||
                    kind == ReduceKind::mean;
    if (needsOne && count[k] == 0)
      return std::nullopt;
    if (kind != ReduceKind::mean) {
      r.i[k] = iacc[k];
      continue;
    }
    // The kernels divide in double and convert.
    double mean = double(iacc[k]) / double(count[k]);
    if (!(mean >= -0x1p63 && mean < 0x1p63))
      return std::nullopt;
    r.i[k] = int64_t(mean);
  }
  return r;
}

std::optional<Lit> evalMatmul(MatmulOp op, const Lit &a, const Lit &b,
                              RankedTensorType type) {
  if (!a.isFloat)
    return std::nullopt;
  ArrayRef<int64_t> out = type.getShape();
  int64_t rank = out.size(), m = out[rank - 2], n = out[rank - 1];
  int64_t kdim =
      op.getTransposeA() ? a.shape[a.shape.size() - 2] : a.shape.back();
  SmallVector<int64_t> batch(out.drop_back(2));
  auto as = broadcastStrides(ArrayRef<int64_t>(a.shape).drop_back(2), batch);
  auto bs = broadcastStrides(ArrayRef<int64_t>(b.shape).drop_back(2), batch);
  int64_t aMat = a.shape[a.shape.size() - 2] * a.shape.back();
  int64_t bMat = b.shape[b.shape.size() - 2] * b.shape.back();
  Lit r = makeResult(type);
  int64_t ar = a.shape.back(), br = b.shape.back();
  forEachIndex(batch, {as, bs}, [&](int64_t bi, ArrayRef<int64_t> o) {
    const double *pa = a.f.data() + o[0] * aMat, *pb = b.f.data() + o[1] * bMat;
    double *pr = r.f.data() + bi * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t k = 0; k < kdim; ++k)
          s += (op.getTransposeA() ? pa[k * ar + i] : pa[i * ar + k]) *
               (op.getTransposeB() ? pb[j * br + k] : pb[k * br + j]);
        pr[i * n + j] = s;
      }
  });
  return r;
}

std::optional<Lit> evalScan(Operation *op, const Lit &x,
                            RankedTensorType type) {
  ArrayRef<int64_t> shape = type.getShape();
  SmallVector<int64_t> idx;
  Lit r = makeResult(type);
  if (auto t = dyn_cast<TriluOp>(op)) {
    int64_t rank = shape.size();
    for (int64_t k = 0, n = r.size(); k < n; ++k) {
      unravel(k, shape, idx);
      int64_t row = idx[rank - 2], col = idx[rank - 1];
      int64_t diag = t.getK();
      bool keep = t.getUpper() ? col - row >= diag : col - row <= diag;
      if (keep)
        r.copyFrom(x, k, k);
    }
    return r;
  }
  auto c = cast<CumSumOp>(op);
  int64_t axis = c.getAxis(), len = shape[axis];
  int64_t stride = stridesOf(shape)[axis];
  for (int64_t k = 0, n = r.size(); k < n; ++k) {
    unravel(k, shape, idx);
    if (idx[axis] != 0)
      continue;
    double accF = 0;
    int64_t accI = 0;
    for (int64_t s = 0; s < len; ++s) {
      int64_t pos = c.getReverse() ? len - 1 - s : s;
      int64_t off = k + pos * stride;
      if (c.getExclusive()) {
        if (r.isFloat)
          r.f[off] = accF;
        else
          r.i[off] = accI;
      }
      if (r.isFloat)
        accF += x.f[off];
      else
        accI += x.i[off];
      if (!c.getExclusive()) {
        if (r.isFloat)
          r.f[off] = accF;
        else
          r.i[off] = accI;
      }
    }
  }
  return r;
}

/// x op c -> x when c is a splat neutral element and the result is x's type.
Value foldNeutralOperand(Operation *op, ArrayRef<Attribute> operands) {
  if (op->getNumOperands() != 2 || operands.size() != 2)
    return {};
  auto neutral = [&](unsigned i) -> std::optional<double> {
    if (isa<AddOp, OrOp>(op) || (isa<SubOp>(op) && i == 1))
      return 0.0;
    if (isa<MulOp, AndOp>(op) || (isa<DivOp>(op) && i == 1))
      return 1.0;
    return std::nullopt;
  };
  for (unsigned i = 0; i < 2; ++i) {
    auto c = dyn_cast_or_null<DenseElementsAttr>(operands[i]);
    Value other = op->getOperand(1 - i);
    auto n = neutral(i);
    if (!c || !c.isSplat() || !n ||
        other.getType() != op->getResult(0).getType())
      continue;
    auto lit = toLit(
        DenseElementsAttr::get(RankedTensorType::get({}, c.getElementType()),
                               c.getSplatValue<Attribute>()));
    if (lit && lit->getF(0) == *n)
      return other;
  }
  return {};
}

/// Identity forms that fold to their operand without constants.
Value foldIdentity(Operation *op) {
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  Value in = op->getOperand(0);
  if (in.getType() != type)
    return {};
  if (isa<ReshapeOp, BroadcastOp, CastOp>(op))
    return in;
  if (auto t = dyn_cast<TransposeOp>(op))
    for (auto [i, p] : llvm::enumerate(t.getPerm()))
      if (int64_t(i) != p)
        return {};
  if (auto s = dyn_cast<SliceOp>(op))
    for (int64_t st : s.getSteps())
      if (st != 1)
        return {};
  if (isa<TransposeOp, SliceOp, TileOp>(op))
    return in;
  return {};
}

bool isElementwise(Operation *op) {
  if (isa<CumSumOp, TriluOp>(op))
    return false;
  return op->hasTrait<OpTrait::SameOperandsAndResultType>() ||
         isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp,
             CmpOp, SelectOp, IsNanOp, CastOp>(op);
}
} // namespace

OpFoldResult mlir::weft::foldWeftOp(Operation *op,
                                    ArrayRef<Attribute> operands) {
  if (op->getNumResults() != 1)
    return {};
  if (Value id = foldIdentity(op))
    return id;
  if (Value id = foldNeutralOperand(op, operands))
    return id;
  if (operands.empty() || llvm::any_of(operands, [](Attribute a) {
        return !isa_and_nonnull<DenseElementsAttr>(a);
      }))
    return {};
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  std::optional<int64_t> count = elementCount(type.getShape());
  if (!count)
    return {};
  if (isa<CumSumOp, TriluOp>(op) &&
      cast<DenseElementsAttr>(operands[0]).isSplat() == false &&
      *count > kMaxFoldElements)
    return {};

  // Splat operands through elementwise or data-movement ops stay splats, at
  // any size.
  bool allSplat = llvm::all_of(operands, [](Attribute a) {
    return cast<DenseElementsAttr>(a).isSplat();
  });
  bool movement = isa<ReshapeOp, BroadcastOp, TransposeOp, SliceOp, TileOp>(op);
  if (allSplat && (isElementwise(op) || movement) &&
      !isa<CumSumOp, TriluOp>(op)) {
    SmallVector<Lit> scalars;
    for (Attribute a : operands) {
      auto d = cast<DenseElementsAttr>(a);
      auto t = RankedTensorType::get({}, d.getElementType());
      auto s = toLit(DenseElementsAttr::get(t, d.getSplatValue<Attribute>()));
      if (!s)
        return {};
      scalars.push_back(*s);
    }
    auto scalarType = RankedTensorType::get({}, type.getElementType());
    std::optional<Lit> v = movement ? std::optional<Lit>(scalars[0])
                                    : evalElementwise(op, scalars, scalarType);
    if (!v)
      return {};
    auto s = cast<DenseElementsAttr>(fromLit(*v, scalarType));
    return DenseElementsAttr::get(type, s.getSplatValue<Attribute>());
  }
  if (*count > kMaxFoldElements)
    return {};

  SmallVector<Lit> in;
  for (Attribute a : operands) {
    auto l = toLit(a);
    if (!l)
      return {};
    in.push_back(std::move(*l));
  }
  std::optional<Lit> r;
  if (isElementwise(op))
    r = evalElementwise(op, in, type);
  else if (isa<ReshapeOp, BroadcastOp, TransposeOp, SliceOp, TileOp, ConcatOp>(
               op))
    r = evalMovement(op, in, type);
  else if (isa<GatherOp, GatherNdOp, GatherElementsOp>(op))
    r = evalGather(op, in, type);
  else if (auto red = dyn_cast<ReduceOp>(op))
    r = evalReduce(red, in[0], type);
  else if (auto mm = dyn_cast<MatmulOp>(op))
    r = evalMatmul(mm, in[0], in[1], type);
  else if (isa<CumSumOp, TriluOp>(op))
    r = evalScan(op, in[0], type);
  if (!r)
    return {};
  return fromLit(*r, type);
}
