// The importer core: model checks, initializers, inputs, node dispatch and
// outputs.
#include "compiler/onnx/GraphImporter.h"
#include "compiler/onnx/ModelChecker.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

using namespace mlir;
using namespace mlir::weft;

//===----------------------------------------------------------------------===//
// NodeCtx
//===----------------------------------------------------------------------===//

const onnx::AttributeProto *NodeCtx::attr(llvm::StringRef name) const {
  for (const auto &a : proto.attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}

int64_t NodeCtx::intAttr(llvm::StringRef name, int64_t dflt) const {
  const auto *a = attr(name);
  return a ? a->i() : dflt;
}

float NodeCtx::floatAttr(llvm::StringRef name, float dflt) const {
  const auto *a = attr(name);
  return a ? a->f() : dflt;
}

std::optional<SmallVector<int64_t>>
NodeCtx::intsAttr(llvm::StringRef name) const {
  const auto *a = attr(name);
  if (!a)
    return std::nullopt;
  return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
}

//===----------------------------------------------------------------------===//
// GraphImporter helpers
//===----------------------------------------------------------------------===//

GraphImporter::GraphImporter(MLIRContext &ctx, OnnxModel &model,
                             const ImportOptions &options)
    : ctx(ctx), model(model), b(&ctx), options(options) {}

InFlightDiagnostic GraphImporter::error(const NodeCtx &node) {
  return emitError(node.loc)
         << "node '" << node.name << "' (" << node.proto.op_type() << "): ";
}

FailureOr<Value> GraphImporter::emitOp(NodeCtx &node, llvm::StringRef opName,
                                       Type resultType, ValueRange operands,
                                       ArrayRef<NamedAttribute> attrs) {
  // An omitted input (an empty name) where the op needs a value.
  if (llvm::is_contained(operands, Value())) {
    auto omitted = llvm::find(node.inputs, Value());
    return error(node) << "input "
                       << std::distance(node.inputs.begin(), omitted)
                       << " is omitted (an empty name) but required";
  }
  // Type inference and verifiers report at the node's location, which the
  // driver does not print: report their first error as error() does, naming
  // the node.
  std::string why;
  bool capturing = true;
  ScopedDiagnosticHandler capture(&ctx, [&](Diagnostic &diag) {
    if (!capturing || diag.getSeverity() != DiagnosticSeverity::Error)
      return failure();
    if (why.empty())
      why = diag.str();
    return success();
  });
  auto fail = [&](Operation *op) -> FailureOr<Value> {
    op->erase();
    capturing = false;
    if (why.empty())
      why = "invalid " + opName.str();
    return error(node) << why;
  };

  OperationState state(node.loc, opName);
  state.addOperands(operands);
  state.addAttributes(attrs);
  state.addTypes(resultType ? resultType : b.getNoneType());
  Operation *op = b.create(state);
  if (!resultType) {
    auto iface = cast<InferTypeOpInterface>(op);
    SmallVector<Type> types;
    if (failed(iface.inferReturnTypes(
            &ctx, node.loc, op->getOperands(), op->getRawDictionaryAttrs(),
            op->getPropertiesStorage(), op->getRegions(), types)))
      return fail(op);
    op->getResult(0).setType(types.front());
  }
  if (auto t = dyn_cast<RankedTensorType>(op->getResult(0).getType());
      t && !elementCount(t.getShape())) {
    op->erase();
    capturing = false;
    return error(node) << "the result " << t << " has more than 2^53 elements";
  }
  if (failed(verify(op)))
    return fail(op);
  SmallVector<Value> folded;
  if (succeeded(b.tryFold(op, folded)) && !folded.empty()) {
    op->erase();
    return folded.front();
  }
  return op->getResult(0);
}

Value GraphImporter::constant(DenseElementsAttr attr) {
  return arith::ConstantOp::create(b, b.getUnknownLoc(), attr.getType(), attr);
}

Value GraphImporter::scalar(Type elem, double value) {
  auto type = RankedTensorType::get({}, elem);
  if (isa<FloatType>(elem))
    return constant(DenseElementsAttr::get(type, b.getFloatAttr(elem, value)));
  return constant(
      DenseElementsAttr::get(type, b.getIntegerAttr(elem, int64_t(value))));
}

DenseElementsAttr GraphImporter::known(Value v) {
  if (!v)
    return {};
  Operation *def = v.getDefiningOp();
  if (!def)
    return {};
  if (auto c = dyn_cast<arith::ConstantOp>(def))
    return dyn_cast<DenseElementsAttr>(c.getValue());
  auto w = dyn_cast<WeightOp>(def);
  // Small weights that meet only constants are read (rotary frequencies,
  // scalars); large ones never are.
  constexpr int64_t kReadableWeightElements = 4096;
  if (!w || w.getType().getNumElements() > kReadableWeightElements)
    return {};
  auto it = weightCache.find(def);
  if (it != weightCache.end())
    return it->second;
  DenseElementsAttr attr;
  auto init = initializers.find(w.getName());
  if (init != initializers.end()) {
    auto data = readTensorData(*init->second, w.getType(), model.dir);
    if (data)
      attr = *data;
    else
      llvm::consumeError(data.takeError());
  }
  weightCache[def] = attr;
  return attr;
}

FailureOr<SmallVector<int64_t>>
GraphImporter::constInts(NodeCtx &node, unsigned i, llvm::StringRef what) {
  Value v = node.input(i);
  DenseElementsAttr attr = known(v);
  if (!attr || !isa<IntegerType>(attr.getElementType())) {
    if (auto w = v ? v.getDefiningOp<WeightOp>() : WeightOp()) {
      auto init = initializers.find(w.getName());
      if (init != initializers.end()) {
        auto data = readTensorData(*init->second, w.getType(), model.dir);
        if (!data)
          return error(node)
                 << what << " needs the bytes of initializer '" << w.getName()
                 << "': " << llvm::toString(data.takeError());
      }
    }
    return error(node) << what
                       << " must be a compile-time integer constant once dims "
                          "are bound; it depends on runtime data";
  }
  SmallVector<int64_t> out;
  for (const APInt &x : attr.getValues<APInt>())
    out.push_back(x.getSExtValue());
  return out;
}

FailureOr<Value> GraphImporter::reshape(NodeCtx &node, Value v,
                                        ArrayRef<int64_t> shape) {
  auto t = cast<RankedTensorType>(v.getType());
  return emit<ReshapeOp>(node, RankedTensorType::get(shape, t.getElementType()),
                         v);
}

FailureOr<int64_t> GraphImporter::axis(NodeCtx &node, int64_t axis,
                                       int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return error(node) << "axis " << axis << " is out of range for rank "
                       << rank;
  return a;
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

static RankedTensorType tensorType(MLIRContext &ctx,
                                   const onnx::TensorProto &t) {
  Type elem = onnxElementType(ctx, t.data_type());
  if (!elem)
    return {};
  SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
  return RankedTensorType::get(shape, elem);
}

LogicalResult GraphImporter::importInitializers() {
  Location loc = FileLineColLoc::get(&ctx, model.path, 0, 0);
  for (const auto &init : model.proto.graph().initializer()) {
    auto type = tensorType(ctx, init);
    if (!type)
      return emitError(loc)
             << "initializer '" << init.name()
             << "' has unsupported element type " << init.data_type();
    if (auto bytes = tensorBytes(init, type.getElementType()); !bytes)
      return emitError(loc) << llvm::toString(bytes.takeError());
    // Refuse unsafe external references up front, even for unused weights.
    if (llvm::Error err = checkExternalData(init, type, model.dir))
      return emitError(loc) << llvm::toString(std::move(err));
    initializers[init.name()] = &init;
    // Scalars and tiny tensors (exponents, epsilons, scales) are constants,
    // so that patterns can read them; everything else is a weight by name.
    constexpr int64_t kEmbeddedInitializerElements = 16;
    if (type.getNumElements() <= kEmbeddedInitializerElements) {
      auto data = readTensorData(init, type, model.dir);
      if (data) {
        values[init.name()] = constant(*data);
        continue;
      }
      llvm::consumeError(data.takeError());
    }
    values[init.name()] = WeightOp::create(
        b, NameLoc::get(b.getStringAttr(init.name())), type, init.name());
  }
  return success();
}

LogicalResult GraphImporter::importInputs(
    SmallVectorImpl<std::pair<std::string, Type>> &inputs) {
  Location loc = FileLineColLoc::get(&ctx, model.path, 0, 0);
  for (const auto &in : model.proto.graph().input()) {
    if (initializers.count(in.name()))
      continue; // an initializer listed as input (old exporters)
    if (!in.type().has_tensor_type())
      return emitError(loc)
             << "graph input '" << in.name() << "' is not a tensor";
    const auto &tt = in.type().tensor_type();
    Type elem = onnxElementType(ctx, tt.elem_type());
    if (!elem)
      return emitError(loc)
             << "graph input '" << in.name()
             << "' has unsupported element type " << tt.elem_type();
    if (!tt.has_shape())
      return emitError(loc) << "graph input '" << in.name()
                            << "' has no shape; weft needs its rank";
    SmallVector<int64_t> shape;
    for (auto [i, dim] : llvm::enumerate(tt.shape().dim())) {
      if (dim.has_dim_value()) {
        if (dim.dim_value() < 0)
          return emitError(loc) << "graph input '" << in.name() << "' dim " << i
                                << " is negative";
        shape.push_back(dim.dim_value());
        continue;
      }
      if (!dim.has_dim_param() || dim.dim_param().empty())
        return emitError(loc) << "graph input '" << in.name() << "' dim " << i
                              << " has neither a size nor a name; weft "
                                 "cannot bind it";
      auto it = options.dims.find(dim.dim_param());
      if (it == options.dims.end())
        return emitError(loc)
               << "graph input '" << in.name() << "' dim " << i
               << " is the unbound symbol '" << dim.dim_param()
               << "'; bind it with --dim " << dim.dim_param() << "=VALUE";
      shape.push_back(it->second);
    }
    if (options.batchChunks > 1) {
      if (shape.empty() || shape[0] % options.batchChunks)
        return emitError(loc)
               << "graph input '" << in.name() << "' dim 0 ("
               << (shape.empty() ? 0 : shape[0]) << ") does not split into "
               << options.batchChunks
               << " equal chunks (data-parallel replicas x micro-batches)";
      shape[0] /= options.batchChunks;
    }
    if (!elementCount(shape))
      return emitError(loc)
             << "graph input '" << in.name() << "' has more than 2^53 elements";
    inputs.push_back({in.name(), RankedTensorType::get(shape, elem)});
  }
  return success();
}

LogicalResult GraphImporter::importNode(const onnx::NodeProto &proto,
                                        int index) {
  std::string name = proto.name().empty()
                         ? proto.op_type() + "#" + std::to_string(index)
                         : proto.name();
  NodeCtx node{proto, name, NameLoc::get(b.getStringAttr(name)), {}, {}};
  bool defaultDomain = proto.domain().empty() || proto.domain() == "ai.onnx";
  const auto &table = opImporters();
  auto it = table.find(proto.op_type());
  if (!defaultDomain || it == table.end()) {
    auto diag = error(node)
                << "unsupported ONNX op '" << proto.op_type() << "'";
    if (!defaultDomain)
      diag << " of domain '" << proto.domain() << "'";
    return diag << " at opset " << model.opset;
  }
  for (const std::string &in : proto.input()) {
    if (in.empty()) {
      node.inputs.push_back(Value());
      continue;
    }
    auto v = values.find(in);
    if (v == values.end())
      return error(node) << "input '" << in
                         << "' is not produced by any earlier node, "
                            "initializer or graph input";
    node.inputs.push_back(v->second);
  }
  // When every input is known at compile time, read small weights as
  // constants so that the node folds.
  // Pass-through nodes (aliases of a weight) keep the weight's name.
  bool passThrough =
      proto.op_type() == "Identity" || proto.op_type() == "Dropout";
  bool allKnown =
      llvm::all_of(node.inputs, [&](Value v) { return !v || known(v); });
  if (allKnown && !passThrough)
    for (Value &v : node.inputs)
      if (v && v.getDefiningOp<WeightOp>())
        v = constant(known(v));
  if (failed(it->second(*this, node)))
    return failure();
  for (auto [i, out] : llvm::enumerate(proto.output())) {
    if (out.empty())
      continue;
    if (i >= node.results.size() || !node.results[i])
      return error(node) << "output " << i << " ('" << out
                         << "') is not supported";
    values[out] = node.results[i];
  }
  return success();
}

void GraphImporter::eraseDeadOps() {
  Block &body = func.getBody().front();
  bool changed = true;
  while (changed) {
    changed = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body))) {
      if (op.hasTrait<OpTrait::IsTerminator>() || !op.use_empty() ||
          !isPure(&op))
        continue;
      op.erase();
      changed = true;
    }
  }
}

/// Checks that every inline tensor of `graph` (initializers, sparse
/// initializers' values and indices, tensor attributes, and those of
/// subgraphs) holds as many raw bytes as its dims and type say.
static llvm::Error checkInlineTensors(MLIRContext &ctx,
                                      const onnx::GraphProto &graph) {
  auto check = [&](const onnx::TensorProto &t,
                   const std::string &what) -> llvm::Error {
    Type elem = onnxElementType(ctx, t.data_type());
    if (!elem || !t.has_raw_data())
      return llvm::Error::success();
    auto bytes = tensorBytes(t, elem, what);
    if (!bytes)
      return bytes.takeError();
    if (uint64_t(*bytes) != t.raw_data().size())
      return llvm::createStringError(
          what + ": raw_data size does not match its shape and type");
    return llvm::Error::success();
  };
  for (const auto &init : graph.initializer())
    if (llvm::Error err = check(init, "initializer '" + init.name() + "'"))
      return err;
  for (const auto &sparse : graph.sparse_initializer()) {
    std::string what = "sparse initializer '" + sparse.values().name() + "'";
    if (llvm::Error err = check(sparse.values(), what + " values"))
      return err;
    if (llvm::Error err = check(sparse.indices(), what + " indices"))
      return err;
  }
  for (const auto &node : graph.node())
    for (const auto &attr : node.attribute()) {
      std::string what = "node '" + node.name() + "' (" + node.op_type() +
                         "): attribute '" + attr.name() + "'";
      if (attr.has_t())
        if (llvm::Error err = check(attr.t(), what))
          return err;
      for (const auto &t : attr.tensors())
        if (llvm::Error err = check(t, what))
          return err;
      if (attr.has_sparse_tensor())
        if (llvm::Error err = check(attr.sparse_tensor().values(), what))
          return err;
      for (const auto &sparse : attr.sparse_tensors())
        if (llvm::Error err = check(sparse.values(), what))
          return err;
      if (attr.has_g())
        if (llvm::Error err = checkInlineTensors(ctx, attr.g()))
          return err;
      for (const auto &g : attr.graphs())
        if (llvm::Error err = checkInlineTensors(ctx, g))
          return err;
    }
  return llvm::Error::success();
}

OwningOpRef<ModuleOp> GraphImporter::run() {
  Location fileLoc = FileLineColLoc::get(&ctx, model.path, 0, 0);
  if (model.opset < kMinOpset || model.opset > kMaxOpset) {
    emitError(fileLoc) << "model imports opset " << model.opset
                       << " of the default ONNX domain; weft supports opsets "
                       << kMinOpset << " to " << kMaxOpset;
    return {};
  }
  // Inline tensor bytes must match their dims and type before the ONNX
  // library's shape inference reads them (by their dims, past the end of
  // shorter ones, and longer ones past the end of what it allocates).
  if (llvm::Error err = checkInlineTensors(ctx, model.proto.graph())) {
    emitError(fileLoc) << llvm::toString(std::move(err));
    return {};
  }
  // The ONNX format and operator schemas first, so that what weft imports
  // is valid ONNX (ModelChecker.h).
  if (llvm::Error err = checkOnnxModel(model.proto)) {
    emitError(fileLoc) << llvm::toString(std::move(err));
    return {};
  }
  module = ModuleOp::create(fileLoc);
  OwningOpRef<ModuleOp> owned(module);
  module->setAttr("weft.source", b.getStringAttr(model.path));
  module->setAttr("weft.opset", b.getI64IntegerAttr(model.opset));

  // Initializers go first in the body; the function type comes from inputs.
  func = func::FuncOp::create(fileLoc, "main", b.getFunctionType({}, {}));
  module.push_back(func);
  Block *body = func.addEntryBlock();
  b.setInsertionPointToStart(body);

  if (failed(importInitializers()))
    return {};
  SmallVector<std::pair<std::string, Type>> inputs;
  if (failed(importInputs(inputs)))
    return {};
  SmallVector<Type> argTypes;
  for (auto [i, in] : llvm::enumerate(inputs)) {
    Value arg = body->addArgument(in.second, fileLoc);
    values[in.first] = arg;
    argTypes.push_back(in.second);
  }

  for (auto [i, proto] : llvm::enumerate(model.proto.graph().node()))
    if (failed(importNode(proto, int(i))))
      return {};

  SmallVector<Value> results;
  SmallVector<Type> resultTypes;
  for (const auto &out : model.proto.graph().output()) {
    auto it = values.find(out.name());
    if (it == values.end()) {
      emitError(fileLoc) << "graph output '" << out.name()
                         << "' is not produced by any node";
      return {};
    }
    // A declared element type must be the one the graph computes.
    int32_t declared = out.type().tensor_type().elem_type();
    Type computed = getElementTypeOrSelf(it->second.getType());
    Type expected = declared ? onnxElementType(ctx, declared) : Type();
    bool agree =
        !expected || expected == computed ||
        (expected.isInteger() && computed.isInteger() &&
         expected.getIntOrFloatBitWidth() == computed.getIntOrFloatBitWidth());
    if (!agree) {
      emitError(fileLoc) << "graph output '" << out.name() << "' is declared "
                         << expected << " but the graph computes " << computed;
      return {};
    }
    results.push_back(it->second);
    resultTypes.push_back(it->second.getType());
  }
  if (results.empty()) {
    emitError(fileLoc) << "the graph has no outputs";
    return {};
  }
  func::ReturnOp::create(b, fileLoc, results);
  func.setType(b.getFunctionType(argTypes, resultTypes));
  for (auto [i, in] : llvm::enumerate(inputs))
    func.setArgAttr(i, "weft.name", b.getStringAttr(in.first));
  for (auto [i, out] : llvm::enumerate(model.proto.graph().output()))
    func.setResultAttr(i, "weft.name", b.getStringAttr(out.name()));
  eraseDeadOps();
  if (failed(verify(module)))
    return {};
  return owned;
}

OwningOpRef<ModuleOp>
mlir::weft::importOnnxModel(MLIRContext &ctx, llvm::StringRef path,
                            const ImportOptions &options) {
  ctx.loadDialect<WeftDialect, func::FuncDialect, arith::ArithDialect>();
  auto model = loadOnnxModel(path);
  if (!model) {
    emitError(FileLineColLoc::get(&ctx, path, 0, 0))
        << llvm::toString(model.takeError());
    return {};
  }
  GraphImporter importer(ctx, *model, options);
  return importer.run();
}
