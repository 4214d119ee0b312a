// The state of one graph import, shared by the importer core and the per-op
// importers.
#ifndef WEFT_COMPILER_ONNX_GRAPHIMPORTER_H
#define WEFT_COMPILER_ONNX_GRAPHIMPORTER_H

#include "compiler/onnx/Importer.h"
#include "compiler/onnx/OnnxModel.h"
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::weft {

/// One ONNX node being imported: its proto, its location, its inputs (null
/// for omitted optional inputs) and the results the op importer produces.
struct NodeCtx {
  const onnx::NodeProto &proto;
  std::string name;
  Location loc;
  SmallVector<Value> inputs;
  SmallVector<Value> results;

  Value input(unsigned i) const {
    return i < inputs.size() ? inputs[i] : Value();
  }
  const onnx::AttributeProto *attr(llvm::StringRef name) const;
  int64_t intAttr(llvm::StringRef name, int64_t dflt) const;
  float floatAttr(llvm::StringRef name, float dflt) const;
  std::optional<SmallVector<int64_t>> intsAttr(llvm::StringRef name) const;
};

class GraphImporter {
public:
  GraphImporter(MLIRContext &ctx, OnnxModel &model,
                const ImportOptions &options);
  OwningOpRef<ModuleOp> run();

  MLIRContext &ctx;
  OnnxModel &model;
  OpBuilder b;

  /// Emits an error at the node, prefixed with its name and op type.
  InFlightDiagnostic error(const NodeCtx &node);

  /// Creates an op (inferring its result type when `resultType` is null),
  /// verifies it and folds it when it can. A failure has been reported.
  template <typename OpTy>
  FailureOr<Value> emit(NodeCtx &node, Type resultType, ValueRange operands,
                        ArrayRef<NamedAttribute> attrs = {}) {
    return emitOp(node, OpTy::getOperationName(), resultType, operands, attrs);
  }
  FailureOr<Value> emitOp(NodeCtx &node, llvm::StringRef opName,
                          Type resultType, ValueRange operands,
                          ArrayRef<NamedAttribute> attrs);

  /// A constant of the given attribute.
  Value constant(DenseElementsAttr attr);
  /// A scalar constant of `elem` type (0-D tensor).
  Value scalar(Type elem, double value);

  /// The compile-time value of v (a constant, or a small weight whose bytes
  /// are at hand), or null.
  DenseElementsAttr known(Value v);
  /// Input i as int64s; reports an error naming `what` if it is not known.
  FailureOr<SmallVector<int64_t>> constInts(NodeCtx &node, unsigned i,
                                            llvm::StringRef what);

  /// Reshape to `shape` (same element count).
  FailureOr<Value> reshape(NodeCtx &node, Value v, ArrayRef<int64_t> shape);
  /// Normalizes a possibly negative axis against `rank`, or reports.
  FailureOr<int64_t> axis(NodeCtx &node, int64_t axis, int64_t rank);

private:
  const ImportOptions &options;
  ModuleOp module;
  func::FuncOp func;
  llvm::StringMap<Value> values;
  llvm::StringMap<const onnx::TensorProto *> initializers;
  llvm::DenseMap<Operation *, DenseElementsAttr> weightCache;

  LogicalResult importInitializers();
  LogicalResult importInputs(SmallVectorImpl<std::pair<std::string, Type>> &);
  LogicalResult importNode(const onnx::NodeProto &proto, int index);
  void eraseDeadOps();
};

using OpImporterFn = LogicalResult (*)(GraphImporter &, NodeCtx &);
/// The op importers by ONNX op type (default domain).
const llvm::StringMap<OpImporterFn> &opImporters();

} // namespace mlir::weft

#endif // WEFT_COMPILER_ONNX_GRAPHIMPORTER_H
