// --weft-convert-compute-type: runs the f32 computation in f16 or bf16,
// keeping the function's signature.
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace mlir::weft {
#define GEN_PASS_DEF_CONVERTCOMPUTETYPE
#include "passes/Passes.h.inc"
} // namespace mlir::weft

using namespace mlir;
using namespace mlir::weft;

namespace {
Type convert(Type t, Type compute) {
  auto rt = dyn_cast<RankedTensorType>(t);
  if (!rt || !rt.getElementType().isF32())
    return t;
  return RankedTensorType::get(rt.getShape(), compute);
}

struct ConvertComputeTypePass
    : mlir::weft::impl::ConvertComputeTypeBase<ConvertComputeTypePass> {
  using ConvertComputeTypeBase::ConvertComputeTypeBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    OpBuilder b(func.getContext());
    Type compute;
    if (dtype == "bf16")
      compute = b.getBF16Type();
    else if (dtype == "f16")
      compute = b.getF16Type();
    else {
      func.emitError("compute type must be f16 or bf16, not '") << dtype << "'";
      return signalPassFailure();
    }
    Block &body = func.getBody().front();
    // Inputs: cast on entry.
    b.setInsertionPointToStart(&body);
    for (BlockArgument arg : body.getArguments()) {
      Type t = convert(arg.getType(), compute);
      if (t == arg.getType())
        continue;
      auto cast = CastOp::create(b, arg.getLoc(), t, arg);
      arg.replaceAllUsesExcept(cast.getResult(), cast);
    }
    // Everything else: results change type; constants convert their data.
    func.walk([&](Operation *op) {
      if (isa<func::ReturnOp, func::FuncOp>(op))
        return;
      if (auto c = dyn_cast<arith::ConstantOp>(op)) {
        auto attr = dyn_cast<DenseElementsAttr>(c.getValue());
        Type t = convert(c.getType(), compute);
        if (!attr || t == c.getType())
          return;
        SmallVector<APFloat> values;
        const llvm::fltSemantics &sem =
            cast<FloatType>(compute).getFloatSemantics();
        for (APFloat v : attr.getValues<APFloat>()) {
          bool loses;
          v.convert(sem, APFloat::rmNearestTiesToEven, &loses);
          values.push_back(v);
        }
        auto converted =
            DenseElementsAttr::get(cast<RankedTensorType>(t), values);
        c.setValueAttr(converted);
        c.getResult().setType(t);
        return;
      }
      if (auto castOp = dyn_cast<CastOp>(op)) {
        // An explicit upcast to f32 (an exporter's norm) stays in the
        // compute type.
        castOp->getResult(0).setType(convert(castOp.getType(), compute));
        return;
      }
      for (Value r : op->getResults())
        r.setType(convert(r.getType(), compute));
    });
    // Results: cast back to the declared type.
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    b.setInsertionPoint(ret);
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      Type declared = func.getResultTypes()[i];
      if (v.getType() != declared)
        ret.setOperand(i, CastOp::create(b, ret.getLoc(),
                                         cast<RankedTensorType>(declared), v));
    }
  }
};
} // namespace
