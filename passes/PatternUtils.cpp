// Small matchers shared by the recognition passes.
#include "passes/PatternUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Matchers.h"

#include <cmath>

using namespace mlir;
using namespace mlir::weft;

std::optional<double> mlir::weft::splatValue(Value v) {
  DenseElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)) || !attr.isSplat())
    return std::nullopt;
  if (isa<FloatType>(attr.getElementType()))
    return attr.getSplatValue<APFloat>().convertToDouble();
  if (isa<IntegerType>(attr.getElementType()))
    return double(attr.getSplatValue<APInt>().getSExtValue());
  return std::nullopt;
}

bool mlir::weft::isSplatNear(Value v, double expected) {
  auto s = splatValue(v);
  return s &&
         std::fabs(*s - expected) <= 1e-3 * std::max(1.0, std::fabs(expected));
}

Value mlir::weft::stripCasts(Value v) {
  while (auto c = v.getDefiningOp<CastOp>())
    v = c.getInput();
  return v;
}

Value mlir::weft::otherOperand(Operation *op, Value known) {
  if (op->getNumOperands() != 2)
    return {};
  if (op->getOperand(0) == known)
    return op->getOperand(1);
  if (op->getOperand(1) == known)
    return op->getOperand(0);
  return {};
}

Operation *mlir::weft::soleUser(Value v) {
  if (!v.hasOneUse())
    return nullptr;
  return *v.getUsers().begin();
}

bool mlir::weft::isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

bool mlir::weft::isParameter(Value v) {
  return v.getDefiningOp<WeightOp>() || v.getDefiningOp<arith::ConstantOp>();
}

std::optional<EpilogueSite> mlir::weft::freeEpilogueSite(Value v) {
  EpilogueSite site;
  site.reshape = v.getDefiningOp<ReshapeOp>();
  if (site.reshape && !site.reshape->hasOneUse())
    return std::nullopt;
  site.linear =
      (site.reshape ? site.reshape.getInput() : v).getDefiningOp<LinearOp>();
  if (!site.linear || !site.linear->hasOneUse() || site.linear.getResidual() ||
      site.linear.getGeluTanh() ||
      site.linear.getType().getElementType() !=
          site.linear.getInput().getType().getElementType())
    return std::nullopt;
  return site;
}
