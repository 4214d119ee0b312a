// The weft dialect: op classes, enums and the constant evaluator's entry point.
#ifndef WEFT_DIALECTS_WEFT_WEFTOPS_H
#define WEFT_DIALECTS_WEFT_WEFTOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Weft/WeftDialect.h.inc"

namespace mlir::weft {
/// Marks an elementwise op (Weft_Elementwise in Weft.td).
template <typename ConcreteType>
class WeftElementwise
    : public OpTrait::TraitBase<ConcreteType, WeftElementwise> {};
} // namespace mlir::weft

#include "dialects/Weft/WeftEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Weft/WeftAttrs.h.inc"

namespace mlir::weft {
/// Evaluates a weft op whose operands are all constant (DenseElementsAttr);
/// returns null when it cannot (non-constant operand, result too large, an op
/// without an evaluator), or the operand itself for identity forms.
OpFoldResult foldWeftOp(Operation *op, ArrayRef<Attribute> operands);

/// Results larger than this many elements are not folded into constants.
constexpr int64_t kMaxFoldElements = int64_t(1) << 22;

/// The most elements one tensor may have: 2^53, so that element counts,
/// offsets and byte sizes stay exact in int64 and in double.
constexpr int64_t kMaxTensorElements = int64_t(1) << 53;

/// The element count of a static shape, or nullopt when a dim is dynamic
/// or negative or the count passes kMaxTensorElements (MLIR's own
/// getNumElements would overflow).
std::optional<int64_t> elementCount(ArrayRef<int64_t> shape);

/// Infers the numpy-broadcast shape of two shapes, or fails.
FailureOr<SmallVector<int64_t>> broadcastShapes(ArrayRef<int64_t> a,
                                                ArrayRef<int64_t> b);
} // namespace mlir::weft

#define GET_OP_CLASSES
#include "dialects/Weft/WeftOps.h.inc"

namespace mlir::weft {
/// Registers the weft ops' external ShardingInterface models.
void registerShardingInterfaceExternalModels(DialectRegistry &registry);
} // namespace mlir::weft

#endif // WEFT_DIALECTS_WEFT_WEFTOPS_H
