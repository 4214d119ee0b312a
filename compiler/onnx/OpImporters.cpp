// One importer per supported ONNX op (default domain, opsets 13 to 23).
#include "compiler/onnx/GraphImporter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <cmath>

using namespace mlir;
using namespace mlir::weft;

namespace {
RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

NamedAttribute named(GraphImporter &g, StringRef name, Attribute a) {
  return g.b.getNamedAttr(name, a);
}

LogicalResult setResult(NodeCtx &node, FailureOr<Value> v) {
  if (failed(v))
    return failure();
  node.results.push_back(*v);
  return success();
}

LogicalResult requireInputs(GraphImporter &g, NodeCtx &node, unsigned min) {
  for (unsigned i = 0; i < min; ++i)
    if (!node.input(i))
      return g.error(node) << "expects at least " << min << " inputs";
  return success();
}

template <typename OpTy>
LogicalResult importBinary(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  Value lhs = node.input(0), rhs = node.input(1);
  if (typeOf(lhs).getElementType() != typeOf(rhs).getElementType())
    return g.error(node) << "operand element types differ: "
                         << typeOf(lhs).getElementType() << " vs "
                         << typeOf(rhs).getElementType();
  auto r = g.emit<OpTy>(node, {}, {lhs, rhs});
  if (failed(r))
    return failure();
  node.results.push_back(*r);
  return success();
}

LogicalResult importPow(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  Value base = node.input(0), exp = node.input(1);
  Type elem = typeOf(base).getElementType();
  if (typeOf(exp).getElementType() != elem) {
    auto c = g.emit<CastOp>(
        node, RankedTensorType::get(typeOf(exp).getShape(), elem), exp);
    if (failed(c))
      return failure();
    exp = *c;
  }
  return setResult(node, g.emit<PowOp>(node, {}, {base, exp}));
}

/// Max and Min take any number of inputs.
template <typename OpTy>
LogicalResult importVariadic(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  Value acc = node.input(0);
  for (unsigned i = 1; i < node.inputs.size(); ++i) {
    auto r = g.emit<OpTy>(node, {}, {acc, node.input(i)});
    if (failed(r))
      return failure();
    acc = *r;
  }
  node.results.push_back(acc);
  return success();
}

template <CmpPredicate P>
LogicalResult importCmp(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  return setResult(
      node,
      g.emit<CmpOp>(node, {}, {node.input(0), node.input(1)},
                    {named(g, "predicate", CmpPredicateAttr::get(&g.ctx, P))}));
}

template <typename OpTy>
LogicalResult importUnary(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  return setResult(
      node, g.emit<OpTy>(node, node.input(0).getType(), {node.input(0)}));
}

LogicalResult importIsNaN(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  return setResult(node, g.emit<IsNanOp>(node, {}, {node.input(0)}));
}

LogicalResult importPassThrough(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  node.results.push_back(node.input(0));
  return success();
}

/// Dropout is the identity at inference. Training mode drops at random:
/// refuse it, and a mode known only at run time, unless the ratio is zero.
LogicalResult importDropout(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  if (Value modeInput = node.input(2)) {
    DenseElementsAttr mode = g.known(modeInput);
    DenseElementsAttr ratio = g.known(node.input(1));
    bool inference = mode && mode.getNumElements() == 1 &&
                     (*mode.getValues<APInt>().begin()).isZero();
    bool zeroRatio = ratio && ratio.getNumElements() == 1 &&
                     isa<FloatType>(ratio.getElementType()) &&
                     (*ratio.getValues<APFloat>().begin()).isZero();
    if (!inference && !zeroRatio)
      return g.error(node) << (mode ? "training mode (random dropout) is not "
                                      "supported"
                                    : "training_mode must be a compile-time "
                                      "constant; weft compiles inference");
  }
  node.results.push_back(node.input(0));
  return success();
}

LogicalResult importCast(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  Type elem = onnxElementType(g.ctx, int32_t(node.intAttr("to", 0)));
  if (!elem)
    return g.error(node) << "unsupported target type " << node.intAttr("to", 0);
  return setResult(
      node,
      g.emit<CastOp>(
          node, RankedTensorType::get(typeOf(node.input(0)).getShape(), elem),
          {node.input(0)}));
}

/// CastLike: cast input 0 to the element type of input 1.
LogicalResult importCastLike(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  Type elem = typeOf(node.input(1)).getElementType();
  return setResult(
      node,
      g.emit<CastOp>(
          node, RankedTensorType::get(typeOf(node.input(0)).getShape(), elem),
          {node.input(0)}));
}

LogicalResult importWhere(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 3)))
    return failure();
  return setResult(
      node, g.emit<SelectOp>(node, {},
                             {node.input(0), node.input(1), node.input(2)}));
}

//===----------------------------------------------------------------------===//
// Constants and shapes
//===----------------------------------------------------------------------===//

LogicalResult importConstant(GraphImporter &g, NodeCtx &node) {
  if (const auto *a = node.attr("value")) {
    const auto &t = a->t();
    Type elem = onnxElementType(g.ctx, t.data_type());
    if (!elem)
      return g.error(node) << "unsupported constant element type "
                           << t.data_type();
    SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
    auto data =
        readTensorData(t, RankedTensorType::get(shape, elem), g.model.dir);
    if (!data)
      return g.error(node) << llvm::toString(data.takeError());
    node.results.push_back(g.constant(*data));
    return success();
  }
  if (const auto *a = node.attr("value_float")) {
    node.results.push_back(g.scalar(g.b.getF32Type(), a->f()));
    return success();
  }
  if (const auto *a = node.attr("value_int")) {
    node.results.push_back(g.scalar(g.b.getI64Type(), double(a->i())));
    return success();
  }
  if (const auto *a = node.attr("value_floats")) {
    SmallVector<float> v(a->floats().begin(), a->floats().end());
    auto type = RankedTensorType::get({int64_t(v.size())}, g.b.getF32Type());
    node.results.push_back(
        g.constant(DenseElementsAttr::get(type, ArrayRef(v))));
    return success();
  }
  if (const auto *a = node.attr("value_ints")) {
    SmallVector<int64_t> v(a->ints().begin(), a->ints().end());
    auto type = RankedTensorType::get({int64_t(v.size())}, g.b.getI64Type());
    node.results.push_back(
        g.constant(DenseElementsAttr::get(type, ArrayRef(v))));
    return success();
  }
  return g.error(node) << "only value, value_float(s) and value_int(s) "
                          "constants are supported";
}

Value intVector(GraphImporter &g, ArrayRef<int64_t> v) {
  auto type = RankedTensorType::get({int64_t(v.size())}, g.b.getI64Type());
  return g.constant(DenseElementsAttr::get(type, v));
}

LogicalResult importShape(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  ArrayRef<int64_t> shape = typeOf(node.input(0)).getShape();
  int64_t rank = shape.size();
  int64_t start = node.intAttr("start", 0), end = node.intAttr("end", rank);
  start = std::clamp(start < 0 ? start + rank : start, int64_t(0), rank);
  end = std::clamp(end < 0 ? end + rank : end, int64_t(0), rank);
  node.results.push_back(
      intVector(g, shape.slice(start, std::max(end - start, int64_t(0)))));
  return success();
}

LogicalResult importSize(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  node.results.push_back(g.scalar(
      g.b.getI64Type(), double(typeOf(node.input(0)).getNumElements())));
  return success();
}

LogicalResult importConstantOfShape(GraphImporter &g, NodeCtx &node) {
  auto shape = g.constInts(node, 0, "the shape input");
  if (failed(shape))
    return failure();
  for (int64_t d : *shape)
    if (d < 0)
      return g.error(node) << "negative dimension " << d;
  Attribute value = g.b.getF32FloatAttr(0);
  Type elem = g.b.getF32Type();
  if (const auto *a = node.attr("value")) {
    elem = onnxElementType(g.ctx, a->t().data_type());
    if (!elem)
      return g.error(node) << "unsupported value type";
    auto data =
        readTensorData(a->t(), RankedTensorType::get({1}, elem), g.model.dir);
    if (!data)
      return g.error(node) << llvm::toString(data.takeError());
    value = data->getSplatValue<Attribute>();
  }
  node.results.push_back(g.constant(
      DenseElementsAttr::get(RankedTensorType::get(*shape, elem), value)));
  return success();
}

LogicalResult importRange(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 3)))
    return failure();
  DenseElementsAttr start = g.known(node.input(0)),
                    limit = g.known(node.input(1)),
                    delta = g.known(node.input(2));
  if (!start || !limit || !delta || start.getNumElements() != 1 ||
      limit.getNumElements() != 1 || delta.getNumElements() != 1)
    return g.error(node) << "start, limit and delta must be compile-time "
                            "scalars once dims are bound";
  Type elem = start.getElementType();
  if (limit.getElementType() != elem || delta.getElementType() != elem)
    return g.error(node) << "start, limit and delta have different element "
                            "types: "
                         << elem << ", " << limit.getElementType() << ", "
                         << delta.getElementType();
  auto get = [&](DenseElementsAttr a) {
    if (isa<FloatType>(elem))
      return (*a.getValues<APFloat>().begin()).convertToDouble();
    return double((*a.getValues<APInt>().begin()).getSExtValue());
  };
  double s = get(start), l = get(limit), d = get(delta);
  if (d == 0)
    return g.error(node) << "delta is zero";
  // A Range is always folded: refuse NaN, infinite and huge counts.
  double count = std::ceil((l - s) / d);
  if (!(count <= double(kMaxFoldElements)))
    return g.error(node) << "start, limit and delta give " << count
                         << " elements; at most " << kMaxFoldElements
                         << " can be folded";
  int64_t n = count > 0 ? int64_t(count) : 0;
  auto type = RankedTensorType::get({n}, elem);
  if (isa<FloatType>(elem)) {
    SmallVector<APFloat> v;
    for (int64_t i = 0; i < n; ++i) {
      APFloat x(s + double(i) * d);
      bool loses;
      x.convert(cast<FloatType>(elem).getFloatSemantics(),
                APFloat::rmNearestTiesToEven, &loses);
      v.push_back(x);
    }
    node.results.push_back(g.constant(DenseElementsAttr::get(type, v)));
  } else {
    SmallVector<APInt> v;
    for (int64_t i = 0; i < n; ++i)
      v.push_back(APInt(elem.getIntOrFloatBitWidth(),
                        uint64_t(int64_t(s) + i * int64_t(d)), true, true));
    node.results.push_back(g.constant(DenseElementsAttr::get(type, v)));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

LogicalResult importReshape(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto spec = g.constInts(node, 1, "the shape input");
  if (failed(spec))
    return failure();
  auto in = typeOf(node.input(0));
  bool allowZero = node.intAttr("allowzero", 0);
  SmallVector<int64_t> shape;
  int64_t inferAt = -1, known = 1;
  for (auto [i, d] : llvm::enumerate(*spec)) {
    if (d == -1) {
      if (inferAt >= 0)
        return g.error(node) << "more than one -1 in the target shape";
      inferAt = i;
      shape.push_back(1);
      continue;
    }
    if (d == 0 && !allowZero) {
      if (int64_t(i) >= in.getRank())
        return g.error(node) << "0 at position " << i
                             << " copies a dimension the input lacks";
      d = in.getDimSize(i);
    }
    if (d < 0)
      return g.error(node) << "invalid dimension " << d << " in target shape";
    shape.push_back(d);
    if (__builtin_mul_overflow(known, d, &known))
      return g.error(node) << "the target shape's dimensions multiply past "
                              "the largest int64";
  }
  if (inferAt >= 0) {
    if (known == 0 || in.getNumElements() % known)
      return g.error(node) << "cannot infer the -1 dimension: "
                           << in.getNumElements() << " elements into " << known
                           << "-element blocks";
    shape[inferAt] = in.getNumElements() / known;
  }
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d; // no overflow: the product is `known` or the input's count
  if (count != in.getNumElements())
    return g.error(node) << "cannot reshape " << in << " ("
                         << in.getNumElements() << " elements) to " << count
                         << " elements";
  return setResult(node, g.reshape(node, node.input(0), shape));
}

LogicalResult importTranspose(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  int64_t rank = typeOf(node.input(0)).getRank();
  SmallVector<int64_t> perm;
  if (auto p = node.intsAttr("perm"))
    perm = *p;
  else
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  return setResult(
      node,
      g.emit<TransposeOp>(node, {}, {node.input(0)},
                          {named(g, "perm", g.b.getDenseI64ArrayAttr(perm))}));
}

/// Squeeze/Unsqueeze axes: from the input (opset >= 13) or the attribute.
FailureOr<SmallVector<int64_t>> axesOf(GraphImporter &g, NodeCtx &node,
                                       unsigned input) {
  if (node.input(input))
    return g.constInts(node, input, "the axes input");
  if (auto a = node.intsAttr("axes"))
    return *a;
  return SmallVector<int64_t>();
}

LogicalResult importSqueeze(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto in = typeOf(node.input(0));
  auto axes = axesOf(g, node, 1);
  if (failed(axes))
    return failure();
  SmallVector<bool> drop(in.getRank(), false);
  if (axes->empty()) {
    for (int64_t i = 0; i < in.getRank(); ++i)
      drop[i] = in.getDimSize(i) == 1;
  }
  for (int64_t a : *axes) {
    auto ax = g.axis(node, a, in.getRank());
    if (failed(ax))
      return failure();
    if (in.getDimSize(*ax) != 1)
      return g.error(node) << "cannot squeeze dimension " << *ax << " of size "
                           << in.getDimSize(*ax);
    drop[*ax] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < in.getRank(); ++i)
    if (!drop[i])
      shape.push_back(in.getDimSize(i));
  return setResult(node, g.reshape(node, node.input(0), shape));
}

LogicalResult importUnsqueeze(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto in = typeOf(node.input(0));
  auto axes = axesOf(g, node, 1);
  if (failed(axes))
    return failure();
  int64_t rank = in.getRank() + axes->size();
  SmallVector<bool> inserted(rank, false);
  for (int64_t a : *axes) {
    auto ax = g.axis(node, a, rank);
    if (failed(ax))
      return failure();
    if (inserted[*ax])
      return g.error(node) << "axis " << a << " repeats";
    inserted[*ax] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0, j = 0; i < rank; ++i)
    shape.push_back(inserted[i] ? 1 : in.getDimSize(j++));
  return setResult(node, g.reshape(node, node.input(0), shape));
}

LogicalResult importFlatten(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto in = typeOf(node.input(0));
  int64_t a = node.intAttr("axis", 1);
  if (a < 0)
    a += in.getRank();
  if (a < 0 || a > in.getRank())
    return g.error(node) << "axis out of range";
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < in.getRank(); ++i)
    (i < a ? outer : inner) *= in.getDimSize(i);
  return setResult(node, g.reshape(node, node.input(0), {outer, inner}));
}

LogicalResult importConcat(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", 0), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  // Inputs with no extent on the axis add nothing; so do empty inputs of
  // another rank (legacy exporters' placeholders). An empty input that does
  // extend along the axis still counts.
  int64_t rank = typeOf(node.input(0)).getRank();
  SmallVector<Value> inputs;
  for (Value v : node.inputs) {
    if (!v)
      continue;
    auto t = typeOf(v);
    if (t.getNumElements() == 0 &&
        (t.getRank() != rank || t.getDimSize(*ax) == 0))
      continue;
    inputs.push_back(v);
  }
  if (inputs.empty())
    inputs.push_back(node.input(0));
  return setResult(
      node, g.emit<ConcatOp>(node, {}, inputs,
                             {named(g, "axis", g.b.getI64IntegerAttr(*ax))}));
}

/// A static slice of `v` on one axis.
FailureOr<Value> sliceAxis(GraphImporter &g, NodeCtx &node, Value v,
                           int64_t axis, int64_t start, int64_t end) {
  auto t = typeOf(v);
  SmallVector<int64_t> starts(t.getRank(), 0), ends(t.getShape()),
      steps(t.getRank(), 1);
  starts[axis] = start;
  ends[axis] = end;
  return g.emit<SliceOp>(node, {}, {v},
                         {named(g, "starts", g.b.getDenseI64ArrayAttr(starts)),
                          named(g, "ends", g.b.getDenseI64ArrayAttr(ends)),
                          named(g, "steps", g.b.getDenseI64ArrayAttr(steps))});
}

LogicalResult importSplit(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto in = typeOf(node.input(0));
  auto ax = g.axis(node, node.intAttr("axis", 0), in.getRank());
  if (failed(ax))
    return failure();
  int64_t dim = in.getDimSize(*ax), outs = node.proto.output_size();
  SmallVector<int64_t> sizes;
  if (node.input(1)) {
    auto s = g.constInts(node, 1, "the split input");
    if (failed(s))
      return failure();
    sizes = *s;
  } else if (auto s = node.intsAttr("split")) {
    sizes = *s;
  } else {
    int64_t parts = node.intAttr("num_outputs", outs);
    if (parts != outs)
      return g.error(node) << "num_outputs is " << parts << " but the node has "
                           << outs << " outputs";
    if (parts <= 0)
      return g.error(node) << "num_outputs must be positive, got " << parts;
    int64_t chunk = (dim + parts - 1) / parts;
    for (int64_t i = 0; i < parts; ++i)
      sizes.push_back(std::clamp(dim - i * chunk, int64_t(0), chunk));
  }
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0 || s > dim)
      return g.error(node) << "split size " << s << " is out of range for "
                           << "dimension " << *ax << " (" << dim << ")";
    total += s;
  }
  if (int64_t(sizes.size()) != outs || total != dim)
    return g.error(node) << "split sizes do not add up to dimension " << *ax
                         << " (" << dim << ") over " << outs << " outputs";
  int64_t at = 0;
  for (int64_t s : sizes) {
    auto part = sliceAxis(g, node, node.input(0), *ax, at, at + s);
    if (failed(part))
      return failure();
    node.results.push_back(*part);
    at += s;
  }
  return success();
}

LogicalResult importSlice(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 3)))
    return failure();
  auto in = typeOf(node.input(0));
  int64_t rank = in.getRank();
  auto starts = g.constInts(node, 1, "starts");
  auto ends = g.constInts(node, 2, "ends");
  if (failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (node.input(3)) {
    auto a = g.constInts(node, 3, "axes");
    if (failed(a))
      return failure();
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i)
      axes.push_back(i);
  }
  if (node.input(4)) {
    auto s = g.constInts(node, 4, "steps");
    if (failed(s))
      return failure();
    steps = *s;
  } else {
    steps.assign(starts->size(), 1);
  }
  if (ends->size() != starts->size() || axes.size() != starts->size() ||
      steps.size() != starts->size())
    return g.error(node) << "starts, ends, axes and steps differ in length";
  SmallVector<int64_t> s(rank, 0), e(in.getShape()), st(rank, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    auto ax = g.axis(node, axes[i], rank);
    if (failed(ax))
      return failure();
    int64_t dim = in.getDimSize(*ax), b = (*starts)[i], f = (*ends)[i],
            step = steps[i];
    if (step == 0)
      return g.error(node) << "step is zero on axis " << *ax;
    if (b < 0)
      b += dim;
    if (f < 0)
      f += dim;
    if (step > 0) {
      b = std::clamp(b, int64_t(0), dim);
      f = std::clamp(f, int64_t(0), dim);
      f = std::max(f, b);
    } else {
      b = std::clamp(b, int64_t(0), dim - 1);
      f = std::clamp(f, int64_t(-1), dim - 1);
      f = std::min(f, b);
      if (dim == 0)
        b = f = -1, step = -1;
    }
    s[*ax] = b;
    e[*ax] = f;
    st[*ax] = step;
  }
  return setResult(
      node, g.emit<SliceOp>(node, {}, {node.input(0)},
                            {named(g, "starts", g.b.getDenseI64ArrayAttr(s)),
                             named(g, "ends", g.b.getDenseI64ArrayAttr(e)),
                             named(g, "steps", g.b.getDenseI64ArrayAttr(st))}));
}

LogicalResult importGather(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", 0), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  return setResult(
      node, g.emit<GatherOp>(node, {}, {node.input(0), node.input(1)},
                             {named(g, "axis", g.b.getI64IntegerAttr(*ax))}));
}

LogicalResult importGatherElements(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", 0), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  return setResult(node, g.emit<GatherElementsOp>(
                             node, {}, {node.input(0), node.input(1)},
                             {named(g, "axis", g.b.getI64IntegerAttr(*ax))}));
}

LogicalResult importGatherND(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  return setResult(
      node, g.emit<GatherNdOp>(
                node, {}, {node.input(0), node.input(1)},
                {named(g, "batch_dims",
                       g.b.getI64IntegerAttr(node.intAttr("batch_dims", 0)))}));
}

LogicalResult importExpand(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto shape = g.constInts(node, 1, "the shape input");
  if (failed(shape))
    return failure();
  for (int64_t d : *shape)
    if (d < 0)
      return g.error(node) << "negative dimension " << d
                           << " in the requested shape";
  auto in = typeOf(node.input(0));
  auto out = broadcastShapes(in.getShape(), *shape);
  if (failed(out))
    return g.error(node) << "input shape does not broadcast to the requested "
                            "shape";
  return setResult(node,
                   g.emit<BroadcastOp>(
                       node, RankedTensorType::get(*out, in.getElementType()),
                       {node.input(0)}));
}

LogicalResult importTile(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto reps = g.constInts(node, 1, "repeats");
  if (failed(reps))
    return failure();
  return setResult(
      node,
      g.emit<TileOp>(node, {}, {node.input(0)},
                     {named(g, "repeats", g.b.getDenseI64ArrayAttr(*reps))}));
}

LogicalResult importCumSum(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto a = g.constInts(node, 1, "axis");
  if (failed(a))
    return failure();
  if (a->size() != 1)
    return g.error(node) << "axis must be a scalar";
  auto ax = g.axis(node, (*a)[0], typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  return setResult(
      node,
      g.emit<CumSumOp>(
          node, node.input(0).getType(), {node.input(0)},
          {named(g, "axis", g.b.getI64IntegerAttr(*ax)),
           named(g, "exclusive", g.b.getBoolAttr(node.intAttr("exclusive", 0))),
           named(g, "reverse", g.b.getBoolAttr(node.intAttr("reverse", 0)))}));
}

LogicalResult importTrilu(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  if (typeOf(node.input(0)).getRank() < 2)
    return g.error(node) << "input must have rank >= 2";
  int64_t k = 0;
  if (node.input(1)) {
    auto kv = g.constInts(node, 1, "k");
    if (failed(kv))
      return failure();
    if (kv->size() != 1)
      return g.error(node) << "k must be a scalar";
    k = (*kv)[0];
  }
  return setResult(
      node, g.emit<TriluOp>(
                node, node.input(0).getType(), {node.input(0)},
                {named(g, "upper", g.b.getBoolAttr(node.intAttr("upper", 1))),
                 named(g, "k", g.b.getI64IntegerAttr(k))}));
}

//===----------------------------------------------------------------------===//
// Reductions, normalizations, products
//===----------------------------------------------------------------------===//

/// ReduceSum takes axes as an input from opset 13, the others from 18.
template <ReduceKind K>
LogicalResult importReduce(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto in = typeOf(node.input(0));
  SmallVector<int64_t> axes;
  if (node.input(1)) {
    auto a = g.constInts(node, 1, "the axes input");
    if (failed(a))
      return failure();
    axes = *a;
  } else if (auto a = node.intsAttr("axes")) {
    axes = *a;
  }
  if (axes.empty()) {
    if (node.intAttr("noop_with_empty_axes", 0)) {
      node.results.push_back(node.input(0));
      return success();
    }
    for (int64_t i = 0; i < in.getRank(); ++i)
      axes.push_back(i);
  }
  for (int64_t &a : axes) {
    auto ax = g.axis(node, a, in.getRank());
    if (failed(ax))
      return failure();
    a = *ax;
  }
  llvm::sort(axes);
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  return setResult(
      node,
      g.emit<ReduceOp>(node, {}, {node.input(0)},
                       {named(g, "kind", ReduceKindAttr::get(&g.ctx, K)),
                        named(g, "axes", g.b.getDenseI64ArrayAttr(axes)),
                        named(g, "keepdims",
                              g.b.getBoolAttr(node.intAttr("keepdims", 1)))}));
}

LogicalResult importSoftmax(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 1)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", -1), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  return setResult(
      node, g.emit<SoftmaxOp>(node, node.input(0).getType(), {node.input(0)},
                              {named(g, "axis", g.b.getI64IntegerAttr(*ax))}));
}

/// LayerNormalization's optional outputs Mean and InvStdDev: the statistics
/// over the axes from `axis` on, kept as dims of 1, computed in stash_type
/// (float unless the model says otherwise), as ONNX defines them.
LogicalResult layerNormStatistics(GraphImporter &g, NodeCtx &node, int64_t axis,
                                  double epsilon) {
  Value x = node.input(0);
  auto xt = typeOf(x);
  int64_t stash = node.intAttr("stash_type", onnx::TensorProto::FLOAT);
  Type elem = onnxElementType(g.ctx, int32_t(stash));
  if (!elem || !isa<FloatType>(elem))
    return g.error(node) << "stash_type " << stash
                         << " is not a floating-point type";
  if (xt.getElementType() != elem) {
    auto c =
        g.emit<CastOp>(node, RankedTensorType::get(xt.getShape(), elem), x);
    if (failed(c))
      return failure();
    x = *c;
  }
  SmallVector<int64_t> axes;
  for (int64_t a = axis; a < xt.getRank(); ++a)
    axes.push_back(a);
  auto mean = [&](Value v) {
    return g.emit<ReduceOp>(
        node, {}, {v},
        {named(g, "kind", ReduceKindAttr::get(&g.ctx, ReduceKind::mean)),
         named(g, "axes", g.b.getDenseI64ArrayAttr(axes)),
         named(g, "keepdims", g.b.getBoolAttr(true))});
  };
  auto mu = mean(x);
  if (failed(mu))
    return failure();
  auto d = g.emit<SubOp>(node, {}, {x, *mu});
  if (failed(d))
    return failure();
  auto sq = g.emit<MulOp>(node, {}, {*d, *d});
  if (failed(sq))
    return failure();
  auto var = mean(*sq);
  if (failed(var))
    return failure();
  auto shifted = g.emit<AddOp>(node, {}, {*var, g.scalar(elem, epsilon)});
  if (failed(shifted))
    return failure();
  auto root = g.emit<SqrtOp>(node, shifted->getType(), {*shifted});
  if (failed(root))
    return failure();
  auto inv = g.emit<ReciprocalOp>(node, root->getType(), {*root});
  if (failed(inv))
    return failure();
  node.results.append({*mu, *inv});
  return success();
}

LogicalResult importLayerNorm(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", -1), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  double epsilon = node.floatAttr("epsilon", 1e-5f);
  SmallVector<Value> operands = {node.input(0), node.input(1)};
  if (node.input(2))
    operands.push_back(node.input(2));
  if (failed(setResult(
          node, g.emit<LayerNormOp>(
                    node, node.input(0).getType(), operands,
                    {named(g, "axis", g.b.getI64IntegerAttr(*ax)),
                     named(g, "epsilon", g.b.getF64FloatAttr(epsilon))}))))
    return failure();
  bool statistics =
      llvm::any_of(llvm::drop_begin(node.proto.output()),
                   [](const std::string &n) { return !n.empty(); });
  return statistics ? layerNormStatistics(g, node, *ax, epsilon) : success();
}

LogicalResult needsOpset(GraphImporter &g, NodeCtx &node, int64_t opset) {
  if (g.model.opset < opset)
    return g.error(node) << "unsupported ONNX op '" << node.proto.op_type()
                         << "' at opset " << g.model.opset
                         << " (it exists from "
                         << "opset " << opset << ")";
  return success();
}

LogicalResult importRmsNorm(GraphImporter &g, NodeCtx &node) {
  if (failed(needsOpset(g, node, 23)) || failed(requireInputs(g, node, 2)))
    return failure();
  auto ax =
      g.axis(node, node.intAttr("axis", -1), typeOf(node.input(0)).getRank());
  if (failed(ax))
    return failure();
  return setResult(
      node,
      g.emit<RmsNormOp>(
          node, node.input(0).getType(), {node.input(0), node.input(1)},
          {named(g, "axis", g.b.getI64IntegerAttr(*ax)),
           named(g, "epsilon",
                 g.b.getF64FloatAttr(node.floatAttr("epsilon", 1e-5f)))}));
}

/// ONNX RotaryEmbedding (opset 23): caches hold rotary_dim / 2 columns, looked
/// up by position ids when given; weft.rotary takes full-width cos/sin.
LogicalResult importRotaryEmbedding(GraphImporter &g, NodeCtx &node) {
  if (failed(needsOpset(g, node, 23)) || failed(requireInputs(g, node, 3)))
    return failure();
  Value x = node.input(0), cos = node.input(1), sin = node.input(2);
  auto xt = typeOf(x);
  bool interleaved = node.intAttr("interleaved", 0);
  int64_t heads = node.intAttr("num_heads", 0);
  if (xt.getRank() != 4 && xt.getRank() != 3)
    return g.error(node) << "input must be [batch, heads, seq, head_dim] or "
                            "[batch, seq, hidden]";
  if (xt.getRank() == 3 && (heads <= 0 || xt.getDimSize(2) % heads))
    return g.error(node) << "a 3-D input needs num_heads dividing its hidden "
                            "size";
  int64_t batch = xt.getDimSize(0);
  int64_t seq = xt.getRank() == 4 ? xt.getDimSize(2) : xt.getDimSize(1);
  int64_t headDim =
      xt.getRank() == 4 ? xt.getDimSize(3) : xt.getDimSize(2) / heads;
  if (Value pos = node.input(3)) {
    for (Value *c : {&cos, &sin}) {
      auto r = g.emit<GatherOp>(node, {}, {*c, pos},
                                {named(g, "axis", g.b.getI64IntegerAttr(0))});
      if (failed(r))
        return failure();
      *c = *r;
    }
  }
  auto ct = typeOf(cos);
  if (ct.getRank() != 3 || ct.getDimSize(0) != batch || ct.getDimSize(1) != seq)
    return g.error(node)
           << "cos/sin caches must give [batch, seq, rotary_dim/2]"
              " values, got "
           << ct;
  int64_t half = ct.getDimSize(2), rot = 2 * half;
  int64_t rotAttr = node.intAttr("rotary_embedding_dim", 0);
  if ((rotAttr && rotAttr != rot) || rot > headDim)
    return g.error(node) << "rotary dim " << rot << " does not fit head dim "
                         << headDim;
  // Widen [B, S, r/2] to the full-width [B, 1, S, r] form.
  for (Value *c : {&cos, &sin}) {
    FailureOr<Value> wide;
    if (interleaved) {
      auto col = g.reshape(node, *c, {batch, seq, half, 1});
      if (failed(col))
        return failure();
      auto pair = g.emit<BroadcastOp>(
          node,
          RankedTensorType::get({batch, seq, half, 2}, ct.getElementType()),
          {*col});
      if (failed(pair))
        return failure();
      wide = g.reshape(node, *pair, {batch, seq, rot});
    } else {
      wide = g.emit<ConcatOp>(node, {}, {*c, *c},
                              {named(g, "axis", g.b.getI64IntegerAttr(2))});
    }
    if (failed(wide))
      return failure();
    // 4-D input [B, H, S, D]: cos [B, 1, S, r]. 3-D: x as [B, S, H, D], cos
    // [B, S, 1, r].
    SmallVector<int64_t> shape = xt.getRank() == 4
                                     ? SmallVector<int64_t>{batch, 1, seq, rot}
                                     : SmallVector<int64_t>{batch, seq, 1, rot};
    auto r = g.reshape(node, *wide, shape);
    if (failed(r))
      return failure();
    *c = *r;
  }
  if (typeOf(cos).getElementType() != xt.getElementType())
    return g.error(node) << "cos/sin element type differs from the input's";
  Value in = x;
  if (xt.getRank() == 3) {
    auto r = g.reshape(node, x, {batch, seq, heads, headDim});
    if (failed(r))
      return failure();
    in = *r;
  }
  auto out =
      g.emit<RotaryOp>(node, in.getType(), {in, cos, sin},
                       {named(g, "interleaved", g.b.getBoolAttr(interleaved))});
  if (failed(out))
    return failure();
  if (xt.getRank() == 3)
    return setResult(node, g.reshape(node, *out, xt.getShape()));
  node.results.push_back(*out);
  return success();
}

LogicalResult importMatMul(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  Value a = node.input(0), b = node.input(1);
  auto at = typeOf(a), bt = typeOf(b);
  if (at.getRank() == 0 || bt.getRank() == 0)
    return g.error(node) << "operands must have rank >= 1";
  // numpy promotes 1-D operands to matrices and drops that dim afterwards.
  bool vecA = at.getRank() == 1, vecB = bt.getRank() == 1;
  if (vecA) {
    auto r = g.reshape(node, a, {1, at.getDimSize(0)});
    if (failed(r))
      return failure();
    a = *r;
  }
  if (vecB) {
    auto r = g.reshape(node, b, {bt.getDimSize(0), 1});
    if (failed(r))
      return failure();
    b = *r;
  }
  auto mm = g.emit<MatmulOp>(node, {}, {a, b});
  if (failed(mm))
    return failure();
  if (!vecA && !vecB) {
    node.results.push_back(*mm);
    return success();
  }
  SmallVector<int64_t> shape(typeOf(*mm).getShape());
  if (vecB)
    shape.erase(shape.end() - 1);
  if (vecA)
    shape.erase(shape.end() - (vecB ? 1 : 2));
  return setResult(node, g.reshape(node, *mm, shape));
}

LogicalResult importGemm(GraphImporter &g, NodeCtx &node) {
  if (failed(requireInputs(g, node, 2)))
    return failure();
  Value a = node.input(0), b = node.input(1);
  if (typeOf(a).getRank() != 2 || typeOf(b).getRank() != 2)
    return g.error(node) << "A and B must be matrices";
  auto mm = g.emit<MatmulOp>(
      node, {}, {a, b},
      {named(g, "transpose_a", g.b.getBoolAttr(node.intAttr("transA", 0))),
       named(g, "transpose_b", g.b.getBoolAttr(node.intAttr("transB", 0)))});
  if (failed(mm))
    return failure();
  Value acc = *mm;
  Type elem = typeOf(acc).getElementType();
  float alpha = node.floatAttr("alpha", 1.f),
        beta = node.floatAttr("beta", 1.f);
  if (alpha != 1.f) {
    auto r = g.emit<MulOp>(node, {}, {acc, g.scalar(elem, alpha)});
    if (failed(r))
      return failure();
    acc = *r;
  }
  if (Value c = node.input(2); c && beta != 0.f) {
    if (beta != 1.f) {
      auto r = g.emit<MulOp>(node, {}, {c, g.scalar(elem, beta)});
      if (failed(r))
        return failure();
      c = *r;
    }
    auto r = g.emit<AddOp>(node, {}, {acc, c});
    if (failed(r))
      return failure();
    if (typeOf(*r) != typeOf(acc))
      return g.error(node) << "C does not broadcast to the product's shape";
    acc = *r;
  }
  node.results.push_back(acc);
  return success();
}
} // namespace

const llvm::StringMap<OpImporterFn> &mlir::weft::opImporters() {
  static const llvm::StringMap<OpImporterFn> table = {
      {"Add", importBinary<AddOp>},
      {"Sub", importBinary<SubOp>},
      {"Mul", importBinary<MulOp>},
      {"Div", importBinary<DivOp>},
      {"Pow", importPow},
      {"And", importBinary<AndOp>},
      {"Or", importBinary<OrOp>},
      {"Max", importVariadic<MaxOp>},
      {"Min", importVariadic<MinOp>},
      {"Equal", importCmp<CmpPredicate::eq>},
      {"Less", importCmp<CmpPredicate::lt>},
      {"LessOrEqual", importCmp<CmpPredicate::le>},
      {"Greater", importCmp<CmpPredicate::gt>},
      {"GreaterOrEqual", importCmp<CmpPredicate::ge>},
      {"Neg", importUnary<NegOp>},
      {"Exp", importUnary<ExpOp>},
      {"Log", importUnary<LogOp>},
      {"Erf", importUnary<ErfOp>},
      {"Tanh", importUnary<TanhOp>},
      {"Sigmoid", importUnary<SigmoidOp>},
      {"Sqrt", importUnary<SqrtOp>},
      {"Reciprocal", importUnary<ReciprocalOp>},
      {"Cos", importUnary<CosOp>},
      {"Sin", importUnary<SinOp>},
      {"Abs", importUnary<AbsOp>},
      {"Relu", importUnary<ReluOp>},
      {"Not", importUnary<NotOp>},
      {"IsNaN", importIsNaN},
      {"Cast", importCast},
      {"CastLike", importCastLike},
      {"Where", importWhere},
      {"Identity", importPassThrough},
      {"Dropout", importDropout},
      {"Constant", importConstant},
      {"ConstantOfShape", importConstantOfShape},
      {"Shape", importShape},
      {"Size", importSize},
      {"Range", importRange},
      {"Reshape", importReshape},
      {"Transpose", importTranspose},
      {"Squeeze", importSqueeze},
      {"Unsqueeze", importUnsqueeze},
      {"Flatten", importFlatten},
      {"Concat", importConcat},
      {"Split", importSplit},
      {"Slice", importSlice},
      {"Gather", importGather},
      {"GatherElements", importGatherElements},
      {"GatherND", importGatherND},
      {"Expand", importExpand},
      {"Tile", importTile},
      {"CumSum", importCumSum},
      {"Trilu", importTrilu},
      {"ReduceMean", importReduce<ReduceKind::mean>},
      {"ReduceSum", importReduce<ReduceKind::sum>},
      {"ReduceMax", importReduce<ReduceKind::max>},
      {"ReduceMin", importReduce<ReduceKind::min>},
      {"ReduceProd", importReduce<ReduceKind::prod>},
      {"Softmax", importSoftmax},
      {"LayerNormalization", importLayerNorm},
      {"RMSNormalization", importRmsNorm},
      {"RotaryEmbedding", importRotaryEmbedding},
      {"MatMul", importMatMul},
      {"Gemm", importGemm},
  };
  return table;
}
