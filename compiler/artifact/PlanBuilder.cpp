// Lowers a lifted weft graph to a per-rank execution plan: fused elementwise
// kernels, library steps and a static arena from liveness-based planning.
#include "compiler/artifact/PlanBuilder.h"

#include "dialects/Weft/WeftOps.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/DType.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::weft;
namespace art = ::weft::artifact;

art::DType mlir::weft::toArtifactDType(Type t) {
  if (t.isF32())
    return art::F32;
  if (t.isF16())
    return art::F16;
  if (t.isBF16())
    return art::BF16;
  if (t.isF64())
    return art::F64;
  if (t.isInteger(1))
    return art::BOOL;
  if (auto it = dyn_cast<IntegerType>(t)) {
    if (it.isUnsigned()) {
      switch (it.getWidth()) {
      case 64:
        return art::U64;
      case 32:
        return art::U32;
      case 16:
        return art::U16;
      case 8:
        return art::U8;
      }
      return art::DTYPE_UNSPECIFIED;
    }
    switch (it.getWidth()) {
    case 64:
      return art::I64;
    case 32:
      return art::I32;
    case 16:
      return art::I16;
    case 8:
      return art::I8;
    }
  }
  return art::DTYPE_UNSPECIFIED;
}

bool mlir::weft::isFusableElementwise(Operation *op) {
  // A broadcast is a plain read of its input with broadcast strides.
  return op->hasTrait<WeftElementwise>() || isa<BroadcastOp>(op);
}

int64_t mlir::weft::dtypeBytes(art::DType d) {
  return int64_t(::weft::runtime::dtypeSize(d));
}

namespace {
constexpr int64_t kAlignment = 64;

/// A region of the arena with the steps during which it must hold its value.
struct Alloc {
  int64_t bytes;
  int first; // step that writes it (-1: before the first step)
  int last;  // last step that reads it
  int64_t offset = -1;
};

bool isElementwise(Operation *op) { return isFusableElementwise(op); }

art::Instr::Op unaryOpcode(Operation *op) {
  return TypeSwitch<Operation *, art::Instr::Op>(op)
      .Case<NegOp>([](auto) { return art::Instr::NEG; })
      .Case<ExpOp>([](auto) { return art::Instr::EXP; })
      .Case<LogOp>([](auto) { return art::Instr::LOG; })
      .Case<ErfOp>([](auto) { return art::Instr::ERF; })
      .Case<TanhOp>([](auto) { return art::Instr::TANH; })
      .Case<SigmoidOp>([](auto) { return art::Instr::SIGMOID; })
      .Case<SqrtOp>([](auto) { return art::Instr::SQRT; })
      .Case<ReciprocalOp>([](auto) { return art::Instr::RECIPROCAL; })
      .Case<CosOp>([](auto) { return art::Instr::COS; })
      .Case<SinOp>([](auto) { return art::Instr::SIN; })
      .Case<AbsOp>([](auto) { return art::Instr::ABS; })
      .Case<ReluOp>([](auto) { return art::Instr::RELU; })
      .Case<NotOp>([](auto) { return art::Instr::NOT; })
      .Case<SiluOp>([](auto) { return art::Instr::SILU; })
      .Case<IsNanOp>([](auto) { return art::Instr::ISNAN; })
      .Case<CastOp>([](auto) { return art::Instr::CAST; })
      .Case<GeluOp>([](GeluOp g) {
        return g.getApproximate() == GeluApprox::tanh ? art::Instr::GELU_TANH
                                                      : art::Instr::GELU;
      })
      .Default([](auto) { return art::Instr::OP_UNSPECIFIED; });
}

art::Instr::Op binaryOpcode(Operation *op) {
  if (auto cmp = dyn_cast<CmpOp>(op)) {
    switch (cmp.getPredicate()) {
    case CmpPredicate::eq:
      return art::Instr::EQ;
    case CmpPredicate::lt:
      return art::Instr::LT;
    case CmpPredicate::le:
      return art::Instr::LE;
    case CmpPredicate::gt:
      return art::Instr::GT;
    case CmpPredicate::ge:
      return art::Instr::GE;
    }
  }
  return TypeSwitch<Operation *, art::Instr::Op>(op)
      .Case<AddOp>([](auto) { return art::Instr::ADD; })
      .Case<SubOp>([](auto) { return art::Instr::SUB; })
      .Case<MulOp>([](auto) { return art::Instr::MUL; })
      .Case<DivOp>([](auto) { return art::Instr::DIV; })
      .Case<PowOp>([](auto) { return art::Instr::POW; })
      .Case<MaxOp>([](auto) { return art::Instr::MAX; })
      .Case<MinOp>([](auto) { return art::Instr::MIN; })
      .Case<AndOp>([](auto) { return art::Instr::AND; })
      .Case<OrOp>([](auto) { return art::Instr::OR; })
      .Default([](auto) { return art::Instr::OP_UNSPECIFIED; });
}

std::string locationName(Location loc) {
  if (auto n = dyn_cast<NameLoc>(loc))
    return n.getName().str();
  if (auto f = dyn_cast<FusedLoc>(loc)) {
    std::string out;
    for (Location l : f.getLocations()) {
      std::string s = locationName(l);
      if (!s.empty()) {
        if (!out.empty())
          out += ',';
        out += s;
      }
    }
    return out;
  }
  return {};
}

/// Raw little-endian bytes of a constant, one byte per i1.
std::string constantBytes(DenseElementsAttr attr) {
  auto type = cast<RankedTensorType>(attr.getType());
  Type elem = type.getElementType();
  int64_t n = type.getNumElements();
  if (elem.isInteger(1)) {
    std::string out;
    out.reserve(n);
    for (bool b : attr.getValues<bool>())
      out.push_back(char(b));
    return out;
  }
  ArrayRef<char> raw = attr.getRawData();
  if (!attr.isSplat())
    return std::string(raw.begin(), raw.end());
  std::string out;
  int64_t width = dtypeBytes(toArtifactDType(elem));
  out.reserve(n * width);
  for (int64_t i = 0; i < n; ++i)
    out.append(raw.data(), width);
  return out;
}

class PlanBuilderImpl {
public:
  PlanBuilderImpl(
      func::FuncOp func,
      const std::function<std::optional<WeightInfo>(StringRef)> &weights,
      const RankLayout &layout,
      const llvm::DenseMap<Operation *, int64_t> *stages)
      : func(func), weights(weights), rank(layout.tpIndex), tp(layout.tp),
        layout(layout), stages(stages) {}

  FailureOr<art::Plan> build();

private:
  func::FuncOp func;
  const std::function<std::optional<WeightInfo>(StringRef)> &weights;
  int64_t rank, tp; // this rank's index in its tensor-parallel group
  RankLayout layout;
  const llvm::DenseMap<Operation *, int64_t> *stages;
  llvm::DenseMap<Value, int64_t> tags; // values crossing stages
  art::Plan plan;
  llvm::DenseMap<Value, uint32_t> bufferOf;
  llvm::DenseMap<uint32_t, int> allocOf; // arena buffers -> allocation
  std::vector<Alloc> allocs;
  llvm::StringMap<uint32_t> weightIndex;
  llvm::DenseSet<Operation *> inlined; // elementwise ops fused into a user
  int step = 0;

  art::Buffer &newBuffer(Value v, art::Buffer::Kind kind);
  uint32_t newArenaBuffer(Value v, art::Buffer::Kind kind, int first);
  uint32_t operand(Value v);
  art::Step &newStep(art::Step::Kind kind, Operation *op, StringRef name);
  void markInlinable();
  LogicalResult lowerOp(Operation *op);
  void lowerElementwise(Operation *root);
  void lowerReshape(ReshapeOp op);
  LogicalResult lowerReturn(func::ReturnOp ret);
  void assignOffsets();
  SmallVector<int64_t> tpGroup() const {
    SmallVector<int64_t> g;
    int64_t base = layout.rankOf(layout.stage) - layout.tpIndex;
    for (int64_t r = 0; r < tp; ++r)
      g.push_back(base + r);
    return g;
  }
  /// The pipeline stage of an op; -1 for weights, constants and return.
  int64_t stageOf(Operation *op) const {
    if (isa<WeightOp, arith::ConstantOp, KvCacheOp, func::ReturnOp>(op))
      return isa<func::ReturnOp>(op) ? layout.pp - 1 : -1;
    if (!stages)
      return 0; // one stage
    auto it = stages->find(op);
    return it == stages->end() ? 0 : it->second;
  }
  int64_t producerStage(Value v) const {
    Operation *def = v.getDefiningOp();
    return def ? stageOf(def) : -1;
  }
  bool usedInStage(Operation *op, int64_t s) const {
    return llvm::any_of(op->getUsers(),
                        [&](Operation *u) { return stageOf(u) == s; });
  }
  void receiveOperands(Block &body);
  void sendResults(Operation *op);
};

art::Buffer &PlanBuilderImpl::newBuffer(Value v, art::Buffer::Kind kind) {
  auto type = cast<RankedTensorType>(v.getType());
  art::Buffer *b = plan.add_buffers();
  b->set_id(plan.buffers_size() - 1);
  b->set_kind(kind);
  b->set_dtype(toArtifactDType(type.getElementType()));
  for (int64_t d : type.getShape())
    b->add_shape(d);
  b->set_bytes(type.getNumElements() * dtypeBytes(b->dtype()));
  bufferOf[v] = b->id();
  return *b;
}

uint32_t PlanBuilderImpl::newArenaBuffer(Value v, art::Buffer::Kind kind,
                                         int first) {
  art::Buffer &b = newBuffer(v, kind);
  allocOf[b.id()] = allocs.size();
  allocs.push_back({int64_t(b.bytes()), first, first});
  return b.id();
}

uint32_t PlanBuilderImpl::operand(Value v) {
  uint32_t id = bufferOf.at(v);
  auto it = allocOf.find(id);
  if (it != allocOf.end())
    allocs[it->second].last = std::max(allocs[it->second].last, step);
  return id;
}

art::Step &PlanBuilderImpl::newStep(art::Step::Kind kind, Operation *op,
                                    StringRef name) {
  art::Step *s = plan.add_steps();
  s->set_kind(kind);
  s->set_name(name.str());
  s->set_location(locationName(op->getLoc()));
  return *s;
}

/// An elementwise op is fused into its user when that user is the only one
/// and is elementwise too.
void PlanBuilderImpl::markInlinable() {
  func.walk([&](Operation *op) {
    if (!isElementwise(op) || !op->getResult(0).hasOneUse())
      return;
    Operation *user = *op->getResult(0).getUsers().begin();
    if (isElementwise(user) && stageOf(user) == stageOf(op))
      inlined.insert(op);
  });
}

void PlanBuilderImpl::lowerElementwise(Operation *root) {
  SmallVector<Value> inputs;
  art::Step s;
  llvm::DenseMap<Value, uint32_t> instrOf;
  std::string name;
  // Emits the program for v (post-order) and returns its instruction index.
  std::function<uint32_t(Value)> emit = [&](Value v) -> uint32_t {
    auto it = instrOf.find(v);
    if (it != instrOf.end())
      return it->second;
    Operation *def = v.getDefiningOp();
    art::Instr instr;
    instr.set_dtype(
        toArtifactDType(cast<RankedTensorType>(v.getType()).getElementType()));
    if (def && (def == root || inlined.contains(def))) {
      if (!name.empty())
        name += '_';
      name += def->getName().stripDialect().str();
      SmallVector<uint32_t> args;
      for (Value o : def->getOperands())
        args.push_back(emit(o));
      if (isa<BroadcastOp>(def)) {
        instrOf[v] = args[0];
        return args[0];
      }
      if (auto sw = dyn_cast<SwigluOp>(def)) {
        art::Instr silu;
        silu.set_op(art::Instr::SILU);
        silu.add_args(args[0]);
        silu.set_dtype(instr.dtype());
        *s.add_program() = silu;
        instr.set_op(art::Instr::MUL);
        instr.add_args(s.program_size() - 1);
        instr.add_args(args[1]);
      } else if (isa<SelectOp>(def)) {
        instr.set_op(art::Instr::SELECT);
        for (uint32_t a : args)
          instr.add_args(a);
      } else if (def->getNumOperands() == 2) {
        instr.set_op(binaryOpcode(def));
        for (uint32_t a : args)
          instr.add_args(a);
      } else {
        instr.set_op(unaryOpcode(def));
        instr.add_args(args[0]);
      }
    } else {
      auto pos = llvm::find(inputs, v);
      instr.set_op(art::Instr::INPUT);
      instr.set_index(pos - inputs.begin());
      if (pos == inputs.end())
        inputs.push_back(v);
    }
    *s.add_program() = instr;
    instrOf[v] = s.program_size() - 1;
    return s.program_size() - 1;
  };
  emit(root->getResult(0));
  art::Step &st = newStep(art::Step::ELEMENTWISE, root, "");
  *st.mutable_program() = s.program();
  st.set_name("fused_" + (name.size() > 48 ? name.substr(0, 48) : name));
  for (Value v : inputs)
    st.add_inputs(operand(v));
  st.add_outputs(newArenaBuffer(root->getResult(0), art::Buffer::ARENA, step));
}

void PlanBuilderImpl::lowerReshape(ReshapeOp op) {
  uint32_t src = operand(op.getInput());
  art::Buffer srcBuf = plan.buffers(src);
  art::Buffer &b = newBuffer(op.getResult(), srcBuf.kind() == art::Buffer::INPUT
                                                 ? art::Buffer::ARENA
                                                 : srcBuf.kind());
  b.set_weight(srcBuf.weight());
  b.set_data(srcBuf.data());
  auto it = allocOf.find(src);
  if (it != allocOf.end())
    allocOf[b.id()] = it->second; // an alias of the same region
}

LogicalResult PlanBuilderImpl::lowerOp(Operation *op) {
  auto list = [](google::protobuf::RepeatedField<int64_t> *field,
                 ArrayRef<int64_t> v) { field->Add(v.begin(), v.end()); };
  auto simple = [&](art::Step::Kind kind, StringRef name) -> art::Step & {
    art::Step &s = newStep(kind, op, name);
    for (Value v : op->getOperands())
      s.add_inputs(operand(v));
    s.add_outputs(newArenaBuffer(op->getResult(0), art::Buffer::ARENA, step));
    return s;
  };
  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case<WeightOp>([&](WeightOp w) -> LogicalResult {
        auto info = weights(w.getName());
        if (!info)
          return w.emitError("weight '") << w.getName() << "' is unknown";
        std::string key = w.getName().str();
        if (auto dim = w.getShardDim())
          key += llvm::formatv("#{0}:{1}:{2}", int64_t(*dim),
                               int64_t(*w.getShardBase()),
                               int64_t(*w.getShardSize()))
                     .str();
        auto [it, fresh] = weightIndex.try_emplace(key, plan.weights_size());
        if (fresh) {
          art::WeightRef *ref = plan.add_weights();
          ref->set_name(w.getName().str());
          ref->set_dtype(info->dtype);
          for (int64_t d : info->shape)
            ref->add_shape(d);
          if (auto dim = w.getShardDim()) {
            // This rank's slice of the full tensor.
            for (auto [d, full] : llvm::enumerate(info->shape)) {
              bool sharded = int64_t(d) == int64_t(*dim);
              int64_t size = sharded ? int64_t(*w.getShardSize()) : full;
              int64_t replicas =
                  w.getShardReplicas() ? int64_t(*w.getShardReplicas()) : 1;
              ref->add_slice_begin(sharded ? int64_t(*w.getShardBase()) +
                                                 rank / replicas * size
                                           : 0);
              ref->add_slice_size(size);
            }
          }
        }
        newBuffer(w.getResult(), art::Buffer::WEIGHT).set_weight(it->second);
        return success();
      })
      .Case<arith::ConstantOp>([&](arith::ConstantOp c) -> LogicalResult {
        auto attr = dyn_cast<DenseElementsAttr>(c.getValue());
        if (!attr)
          return c.emitError("only dense tensor constants can be planned");
        newBuffer(c.getResult(), art::Buffer::CONSTANT)
            .set_data(constantBytes(attr));
        return success();
      })
      .Case<KvCacheOp>([&](KvCacheOp c) {
        // One block's bytes: the session chooses the number of blocks.
        art::Buffer &b = newBuffer(c.getResult(), art::Buffer::STATE);
        auto type = cast<RankedTensorType>(c.getType());
        int64_t block = dtypeBytes(b.dtype());
        for (int64_t d : type.getShape().drop_front())
          block *= d;
        b.set_bytes(block);
        b.set_name(c.getName().str());
        return success();
      })
      .Case<PagedAttentionOp>([&](PagedAttentionOp a) {
        art::PagedAttentionAttrs *attrs =
            simple(art::Step::PAGED_ATTENTION, "paged_attention")
                .mutable_paged_attention();
        attrs->set_scale(a.getScale().convertToDouble());
        attrs->set_block_size(a.getBlockSize());
        return success();
      })
      .Case<SampleOp>([&](SampleOp) {
        simple(art::Step::SAMPLE, "sample");
        return success();
      })
      .Case<ReshapeOp>([&](ReshapeOp r) {
        lowerReshape(r);
        return success();
      })
      .Case<LinearOp>([&](LinearOp l) {
        art::GemmAttrs *a = simple(art::Step::GEMM, "linear").mutable_gemm();
        a->set_linear(true);
        a->set_transpose_b(l.getTransposeWeight());
        a->set_has_bias(l.getBias() != nullptr);
        // The residual is the last input (after the bias): the plan keeps
        // input and output apart, so it is never overwritten while read.
        a->set_has_residual(l.getResidual() != nullptr);
        a->set_gelu(l.getGeluTanh());
        return success();
      })
      .Case<MatmulOp>([&](MatmulOp m) {
        art::GemmAttrs *a = simple(art::Step::GEMM, "matmul").mutable_gemm();
        a->set_transpose_a(m.getTransposeA());
        a->set_transpose_b(m.getTransposeB());
        return success();
      })
      .Case<AttentionOp>([&](AttentionOp a) {
        art::AttentionAttrs *attrs =
            simple(art::Step::ATTENTION, "attention").mutable_attention();
        attrs->set_scale(a.getScale().convertToDouble());
        attrs->set_causal(a.getCausal());
        attrs->set_has_mask(a.getMask() != nullptr);
        attrs->set_seq_major(a.getSeqMajor());
        return success();
      })
      .Case<LayerNormOp>([&](LayerNormOp n) {
        art::NormAttrs *a =
            simple(art::Step::LAYER_NORM, "layer_norm").mutable_norm();
        a->set_axis(n.getAxis());
        a->set_has_bias(n.getBias() != nullptr);
        a->set_epsilon(n.getEpsilon().convertToDouble());
        return success();
      })
      .Case<RmsNormOp>([&](RmsNormOp n) {
        art::NormAttrs *a =
            simple(art::Step::RMS_NORM, "rms_norm").mutable_norm();
        a->set_axis(n.getAxis());
        a->set_epsilon(n.getEpsilon().convertToDouble());
        return success();
      })
      .Case<RotaryOp>([&](RotaryOp r) {
        simple(art::Step::ROTARY, "rotary")
            .mutable_rotary()
            ->set_interleaved(r.getInterleaved());
        return success();
      })
      .Case<SoftmaxOp>([&](SoftmaxOp s) {
        simple(art::Step::SOFTMAX, "softmax")
            .mutable_softmax()
            ->set_axis(s.getAxis());
        return success();
      })
      .Case<EmbeddingOp>([&](EmbeddingOp e) {
        art::EmbeddingAttrs *a =
            simple(art::Step::EMBEDDING, "embedding").mutable_embedding();
        auto table = e.getTable().getDefiningOp<WeightOp>();
        if (table && table.getShardDim() && *table.getShardDim() == 0)
          a->set_vocab_start(int64_t(*table.getShardBase()) +
                             rank * int64_t(*table.getShardSize()));
        return success();
      })
      .Case<AllReduceOp>([&](auto) {
        art::CollectiveAttrs *a =
            simple(art::Step::COLLECTIVE, "all_reduce").mutable_collective();
        a->set_op(0);
        list(a->mutable_group(), tpGroup());
        return success();
      })
      .Case<AllGatherOp>([&](AllGatherOp g) {
        art::CollectiveAttrs *a =
            simple(art::Step::COLLECTIVE, "all_gather").mutable_collective();
        a->set_op(1);
        a->set_axis(g.getAxis());
        list(a->mutable_group(), tpGroup());
        return success();
      })
      .Case<GatherOp>([&](GatherOp g) {
        simple(art::Step::GATHER, "gather")
            .mutable_gather()
            ->set_axis(g.getAxis());
        return success();
      })
      .Case<GatherNdOp>([&](GatherNdOp g) {
        simple(art::Step::GATHER_ND, "gather_nd")
            .mutable_gather()
            ->set_batch_dims(g.getBatchDims());
        return success();
      })
      .Case<GatherElementsOp>([&](GatherElementsOp g) {
        simple(art::Step::GATHER_ELEMENTS, "gather_elements")
            .mutable_gather()
            ->set_axis(g.getAxis());
        return success();
      })
      .Case<ReduceOp>([&](ReduceOp r) {
        art::ReduceAttrs *a =
            simple(art::Step::REDUCE, "reduce").mutable_reduce();
        a->set_kind(int64_t(r.getKind()));
        a->set_keepdims(r.getKeepdims());
        list(a->mutable_axes(), r.getAxes());
        return success();
      })
      .Case<TransposeOp>([&](TransposeOp t) {
        list(simple(art::Step::TRANSPOSE, "transpose")
                 .mutable_transpose()
                 ->mutable_perm(),
             t.getPerm());
        return success();
      })
      .Case<SliceOp>([&](SliceOp sl) {
        art::SliceAttrs *a = simple(art::Step::SLICE, "slice").mutable_slice();
        list(a->mutable_starts(), sl.getStarts());
        list(a->mutable_ends(), sl.getEnds());
        list(a->mutable_steps(), sl.getSteps());
        return success();
      })
      .Case<ConcatOp>([&](ConcatOp c) {
        simple(art::Step::CONCAT, "concat")
            .mutable_concat()
            ->set_axis(c.getAxis());
        return success();
      })
      .Case<CumSumOp>([&](CumSumOp c) {
        art::CumsumAttrs *a =
            simple(art::Step::CUMSUM, "cumsum").mutable_cumsum();
        a->set_axis(c.getAxis());
        a->set_exclusive(c.getExclusive());
        a->set_reverse(c.getReverse());
        return success();
      })
      .Case<TriluOp>([&](TriluOp t) {
        art::TriluAttrs *a = simple(art::Step::TRILU, "trilu").mutable_trilu();
        a->set_upper(t.getUpper());
        a->set_k(int64_t(t.getK()));
        return success();
      })
      .Case<TileOp>([&](TileOp t) {
        list(simple(art::Step::TILE, "tile").mutable_tile()->mutable_repeats(),
             t.getRepeats());
        return success();
      })
      .Case<func::ReturnOp>([&](func::ReturnOp r) { return lowerReturn(r); })
      .Default([&](Operation *o) -> LogicalResult {
        if (isElementwise(o)) {
          if (!inlined.contains(o))
            lowerElementwise(o);
          return success();
        }
        return o->emitError("no execution step for '") << o->getName() << "'";
      });
}

LogicalResult PlanBuilderImpl::lowerReturn(func::ReturnOp ret) {
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    auto nameAttr = func.getResultAttrOfType<StringAttr>(i, "weft.name");
    std::string name =
        nameAttr ? nameAttr.str() : llvm::formatv("output{0}", i).str();
    uint32_t id = operand(v);
    art::Buffer &b = *plan.mutable_buffers(id);
    bool ownArena = b.kind() == art::Buffer::ARENA && allocOf.count(id) &&
                    allocs[allocOf[id]].first >= 0;
    if (ownArena) {
      b.set_kind(art::Buffer::OUTPUT);
      b.set_name(name);
      allocs[allocOf[id]].last = INT32_MAX;
      plan.add_outputs(id);
      continue;
    }
    // Inputs, weights, constants and repeated outputs are copied out.
    art::Step &s = newStep(art::Step::COPY, ret, "copy_output");
    s.add_inputs(id);
    uint32_t out = newArenaBuffer(v, art::Buffer::OUTPUT, step);
    art::Buffer &ob = *plan.mutable_buffers(out);
    ob.set_name(name);
    allocs[allocOf[out]].last = INT32_MAX;
    s.add_outputs(out);
    plan.add_outputs(out);
    ++step;
  }
  return success();
}

/// Greedy by size: the largest regions first, each at the lowest offset
/// that overlaps no placed region alive at the same time.
void PlanBuilderImpl::assignOffsets() {
  std::vector<int> order(allocs.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  llvm::stable_sort(
      order, [&](int a, int b) { return allocs[a].bytes > allocs[b].bytes; });
  std::vector<int> placed;
  int64_t peak = 0;
  for (int i : order) {
    Alloc &a = allocs[i];
    int64_t size = (a.bytes + kAlignment - 1) / kAlignment * kAlignment;
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int j : placed) {
      const Alloc &p = allocs[j];
      if (p.first <= a.last && a.first <= p.last)
        busy.push_back({p.offset, p.offset + ((p.bytes + kAlignment - 1) /
                                              kAlignment * kAlignment)});
    }
    llvm::sort(busy);
    int64_t offset = 0;
    for (auto [lo, hi] : busy) {
      if (offset + size <= lo)
        break;
      offset = std::max(offset, hi);
    }
    a.offset = offset;
    peak = std::max(peak, offset + size);
    placed.push_back(i);
  }
  for (auto [id, idx] : allocOf)
    plan.mutable_buffers(id)->set_offset(allocs[idx].offset);
  plan.set_arena_bytes(peak);
}

FailureOr<art::Plan> PlanBuilderImpl::build() {
  plan.set_format_version(::weft::runtime::kArtifactFormatVersion);
  plan.set_rank(layout.rank());
  markInlinable();
  Block &body = func.getBody().front();
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    uint32_t id = newArenaBuffer(arg, art::Buffer::INPUT, -1);
    auto nameAttr = func.getArgAttrOfType<StringAttr>(i, "weft.name");
    plan.mutable_buffers(id)->set_name(
        nameAttr ? nameAttr.str() : llvm::formatv("input{0}", i).str());
    plan.add_inputs(id);
  }
  int64_t values = 0;
  for (Operation &op : body)
    for (Value r : op.getResults())
      tags[r] = values++;
  receiveOperands(body);
  for (Operation &op : body) {
    int64_t s = stageOf(&op);
    // Weights and constants are materialized where they are used.
    if (s < 0 ? !usedInStage(&op, layout.stage) : s != layout.stage)
      continue;
    int before = plan.steps_size();
    if (failed(lowerOp(&op)))
      return failure();
    if (plan.steps_size() != before && !isa<func::ReturnOp>(op))
      ++step;
    if (s >= 0)
      sendResults(&op);
  }
  assignOffsets();
  return plan;
}

/// Operands produced by an earlier stage arrive by RECV from the rank of
/// that stage with the same tensor-parallel index, all at the start of the
/// plan in tag order: the order in which the producing stage sends them
/// (in program order). Point-to-point transports without tags (NCCL) pair
/// a peer's sends and receives by order alone.
void PlanBuilderImpl::receiveOperands(Block &body) {
  llvm::SmallVector<std::pair<int64_t, std::pair<Value, Operation *>>> recvs;
  llvm::DenseSet<Value> seen;
  for (Operation &op : body) {
    if (stageOf(&op) != layout.stage)
      continue;
    for (Value v : op.getOperands()) {
      int64_t from = producerStage(v);
      if (from < 0 || from == layout.stage ||
          inlined.contains(v.getDefiningOp()) || !seen.insert(v).second)
        continue;
      recvs.push_back({tags.lookup(v), {v, &op}});
    }
  }
  llvm::sort(recvs,
             [](const auto &a, const auto &b) { return a.first < b.first; });
  for (auto &[tag, use] : recvs) {
    auto [v, op] = use;
    art::Step &s = newStep(art::Step::RECV, op, "recv");
    s.mutable_send_recv()->set_peer(layout.rankOf(producerStage(v)));
    s.mutable_send_recv()->set_tag(tag);
    s.add_outputs(newArenaBuffer(v, art::Buffer::ARENA, step));
    ++step;
  }
}

/// Results used by later stages go to each of them once.
void PlanBuilderImpl::sendResults(Operation *op) {
  for (Value r : op->getResults()) {
    if (inlined.contains(op))
      continue;
    llvm::SmallSetVector<int64_t, 4> later;
    for (Operation *u : r.getUsers())
      if (stageOf(u) > layout.stage)
        later.insert(stageOf(u));
    for (int64_t to : later) {
      art::Step &s = newStep(art::Step::SEND, op, "send");
      s.mutable_send_recv()->set_peer(layout.rankOf(to));
      s.mutable_send_recv()->set_tag(tags.lookup(r));
      s.add_inputs(operand(r));
      ++step;
    }
  }
}

} // namespace

FailureOr<art::Plan> mlir::weft::buildPlan(
    func::FuncOp func,
    const std::function<std::optional<WeightInfo>(StringRef)> &weights,
    const RankLayout &layout,
    const llvm::DenseMap<Operation *, int64_t> *stages) {
  PlanBuilderImpl builder(func, weights, layout, stages);
  return builder.build();
}

llvm::DenseMap<Operation *, int64_t>
mlir::weft::assignStages(func::FuncOp func, int64_t pp,
                         ArrayRef<int64_t> layerCuts) {
  auto numel = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getNumElements();
  };
  auto cost = [&](Operation *op) -> double {
    if (auto l = dyn_cast<LinearOp>(op))
      return 2.0 * numel(l.getResult()) *
             l.getInput().getType().getShape().back();
    if (auto m = dyn_cast<MatmulOp>(op)) {
      auto a = m.getA().getType();
      int64_t k = m.getTransposeA() ? a.getDimSize(a.getRank() - 2)
                                    : a.getShape().back();
      return 2.0 * numel(m.getResult()) * k;
    }
    if (auto a = dyn_cast<AttentionOp>(op))
      return 4.0 * numel(a.getResult()) *
             a.getK().getType().getDimSize(a.seqDim());
    return op->getNumResults() ? double(numel(op->getResult(0))) : 0.0;
  };
  SmallVector<Operation *> ops;
  llvm::DenseMap<Operation *, int64_t> index;
  for (Operation &op : func.getBody().front())
    if (!isa<WeightOp, arith::ConstantOp, KvCacheOp, func::ReturnOp>(op)) {
      index[&op] = ops.size();
      ops.push_back(&op);
    }
  int64_t n = ops.size();
  // prefix[b]: cost of ops before b; crossing[b]: bytes of the values made
  // before b and read at or after it (what a cut at b would send).
  std::vector<double> prefix(n + 1, 0.0), crossing(n + 2, 0.0);
  for (int64_t i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + cost(ops[i]);
  for (int64_t i = 0; i < n; ++i)
    for (Value r : ops[i]->getResults()) {
      int64_t last = i;
      for (Operation *u : r.getUsers())
        last = std::max(last, isa<func::ReturnOp>(u) ? n : index.lookup(u));
      auto t = cast<RankedTensorType>(r.getType());
      double bytes = double(t.getNumElements()) *
                     std::max<int64_t>(1, t.getElementTypeBitWidth() / 8);
      crossing[i + 1] += bytes;
      crossing[last + 1] -= bytes;
    }
  for (int64_t b = 1; b <= n; ++b)
    crossing[b] += crossing[b - 1];
  SmallVector<int64_t> cuts = {0};
  if (!layerCuts.empty()) {
    // Each cut between the attention of the layer before it and its own,
    // where the fewest bytes cross.
    SmallVector<int64_t> attention;
    for (int64_t i = 0; i < n; ++i)
      if (isa<AttentionOp, PagedAttentionOp>(ops[i]))
        attention.push_back(i);
    for (int64_t layer : layerCuts) {
      int64_t lo = layer > 0 && layer <= int64_t(attention.size())
                       ? attention[layer - 1] + 1
                       : cuts.back() + 1;
      int64_t hi = layer < int64_t(attention.size()) ? attention[layer] : n;
      int64_t best = std::max(lo, cuts.back() + 1);
      for (int64_t b = best; b <= hi && b < n; ++b)
        if (crossing[b] < crossing[best])
          best = b;
      cuts.push_back(std::min(best, n));
    }
    pp = cuts.size();
  }
  // Each cut: near its share of the cost (within half a stage), where the
  // fewest bytes cross (between layers, only the residual stream does).
  double total = prefix[n];
  for (int64_t s = cuts.size(); s < pp; ++s) {
    double target = total * s / pp, window = total / (2.0 * pp);
    int64_t best = -1;
    for (int64_t b = cuts.back() + 1; b < n; ++b) {
      if (std::abs(prefix[b] - target) > window)
        continue;
      if (best < 0 || crossing[b] < crossing[best] ||
          (crossing[b] == crossing[best] &&
           std::abs(prefix[b] - target) < std::abs(prefix[best] - target)))
        best = b;
    }
    cuts.push_back(best < 0 ? std::min(n, cuts.back() + 1) : best);
  }
  llvm::DenseMap<Operation *, int64_t> stages;
  int64_t stage = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (stage + 1 < int64_t(cuts.size()) && i >= cuts[stage + 1])
      ++stage;
    stages[ops[i]] = stage;
  }
  return stages;
}

SmallVector<int64_t>
mlir::weft::stageLayerCuts(func::FuncOp func,
                           const llvm::DenseMap<Operation *, int64_t> &stages) {
  SmallVector<int64_t> cuts;
  int64_t layer = 0, stage = 0;
  for (Operation &op : func.getBody().front()) {
    if (!isa<AttentionOp, PagedAttentionOp>(op))
      continue;
    int64_t s = stages.lookup(&op);
    for (; stage < s; ++stage)
      cuts.push_back(layer);
    ++layer;
  }
  return cuts;
}
