// Emits the CUDA C++ kernel of an ELEMENTWISE step. The arithmetic follows
// the CPU backend's interpreter (runtime/backends/cpu/CpuElementwise.cpp):
// every instruction's value is rounded or wrapped to its dtype; f32, f16 and
// bf16 values compute in float (exact for + - * / sqrt, a few ulp for the
// transcendental functions), f64 and mixed integer/float operands in double,
// integers in 64 bits with wrap-around.
#include "compiler/codegen/ElementwiseKernel.h"

#include "runtime/artifact/DType.h"
#include "runtime/steps/StepArgs.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FormatVariadic.h"

#include <functional>

using namespace mlir;
using namespace mlir::weft;
namespace art = ::weft::artifact;
using art::DType;
using art::Instr;

//===----------------------------------------------------------------------===//
// Checks and keys
//===----------------------------------------------------------------------===//

llvm::Error mlir::weft::verifyElementwise(const ElementwiseSpec &spec) {
  art::Step step;
  step.set_kind(art::Step::ELEMENTWISE);
  for (const Instr &in : spec.program)
    *step.add_program() = in;
  std::vector<::weft::runtime::InTensor> inputs;
  for (const KernelOperand &op : spec.inputs)
    inputs.push_back({op.dtype, op.shape, nullptr});
  std::vector<::weft::runtime::OutTensor> outputs = {
      {spec.output.dtype, spec.output.shape, nullptr}};
  ::weft::runtime::steps::StepArgs args{step, inputs, outputs};
  ::weft::runtime::Status s = ::weft::runtime::steps::checkStep(args);
  if (!s.ok())
    return llvm::createStringError(s.message());
  for (const KernelOperand &op : spec.inputs)
    for (int64_t d : op.shape)
      if (d < 0)
        return llvm::createStringError("an input has a negative dim");
  for (int64_t d : spec.output.shape)
    if (d < 0)
      return llvm::createStringError("the output has a negative dim");
  return llvm::Error::success();
}

std::string mlir::weft::elementwiseKey(const ElementwiseSpec &spec) {
  std::string key;
  llvm::raw_string_ostream os(key);
  auto operand = [&](const KernelOperand &op) {
    os << op.dtype << '[';
    llvm::interleave(op.shape, os, ",");
    os << ']';
  };
  for (const Instr &in : spec.program) {
    os << in.op() << ':' << in.dtype() << ':' << in.index() << '(';
    llvm::interleave(in.args(), os, ",");
    os << ");";
  }
  os << '|';
  for (const KernelOperand &op : spec.inputs)
    operand(op);
  os << "->";
  operand(spec.output);
  return key;
}

//===----------------------------------------------------------------------===//
// Types and conversions
//===----------------------------------------------------------------------===//

namespace {

/// a + b + c (GCC's -Wrestrict misreads "literal" + std::string).
std::string cat(llvm::StringRef a, llvm::StringRef b, llvm::StringRef c = "") {
  return (llvm::Twine(a) + b + c).str();
}

/// The C type an instruction's value is held in: float for f32, f16 and bf16
/// (already rounded to the dtype), double for f64, long long for integers
/// and bool (wrapped to the width; bool 0 or 1).
enum class Kind { Float, Double, Int };

Kind kindOf(DType d) {
  switch (d) {
  case art::F32:
  case art::F16:
  case art::BF16:
    return Kind::Float;
  case art::F64:
    return Kind::Double;
  default:
    return Kind::Int;
  }
}

const char *cType(Kind k) {
  switch (k) {
  case Kind::Float:
    return "float";
  case Kind::Double:
    return "double";
  case Kind::Int:
    return "long long";
  }
  return "";
}

/// The element type of a tensor in memory.
const char *storageType(DType d) {
  switch (d) {
  case art::F32:
    return "float";
  case art::F16:
    return "__half";
  case art::BF16:
    return "__nv_bfloat16";
  case art::F64:
    return "double";
  case art::I64:
    return "long long";
  case art::I32:
    return "int";
  case art::I16:
    return "short";
  case art::I8:
    return "signed char";
  case art::U16:
    return "unsigned short";
  case art::U32:
    return "unsigned int";
  case art::U64:
    return "unsigned long long";
  default: // U8, BOOL
    return "unsigned char";
  }
}

/// An element in memory (`ref`) as its value type.
std::string loadExpr(DType d, const std::string &ref) {
  switch (d) {
  case art::F32:
  case art::F64:
    return ref;
  case art::F16:
    return cat("__half2float(", ref, ")");
  case art::BF16:
    return cat("__bfloat162float(", ref, ")");
  case art::BOOL:
    return cat("(long long)(", ref, " != 0)");
  default:
    return cat("(long long)", ref);
  }
}

/// A value (already of the dtype) as the element type in memory.
std::string storeExpr(DType d, const std::string &v) {
  switch (d) {
  case art::F32:
  case art::F64:
  case art::I64:
    return v;
  case art::F16:
    return cat("__float2half_rn(", v, ")");
  case art::BF16:
    return cat("__float2bfloat16_rn(", v, ")");
  case art::BOOL:
    return cat("(unsigned char)(", v, " != 0)");
  default:
    return llvm::formatv("({0}){1}", storageType(d), v).str();
  }
}

/// A result before it is rounded or wrapped to the instruction's dtype.
struct Raw {
  std::string expr;
  Kind kind;
};

/// `raw` rounded or wrapped to `d`, as d's value type.
std::string settle(const Raw &raw, DType d) {
  const std::string &e = raw.expr;
  Kind target = kindOf(d);
  if (target == Kind::Float) {
    std::string f = raw.kind == Kind::Float ? e
                    : raw.kind == Kind::Double
                        ? cat("(float)(", e, ")")
                        : cat("(float)(double)(", e, ")");
    if (d == art::F16)
      return cat("wf_round_f16(", f, ")");
    if (d == art::BF16)
      return cat("wf_round_bf16(", f, ")");
    return f;
  }
  if (target == Kind::Double)
    return raw.kind == Kind::Double ? e : cat("(double)(", e, ")");
  if (raw.kind != Kind::Int) {
    if (d == art::BOOL)
      return cat("(long long)((", e, ") != 0)");
    if (d == art::U64)
      return cat("wf_f2u((double)(", e, "))");
    return settle({cat("wf_f2i((double)(", e, "))"), Kind::Int}, d);
  }
  switch (d) {
  case art::I32:
    return cat("(long long)(int)(unsigned int)(", e, ")");
  case art::I16:
    return cat("(long long)(short)(unsigned short)(", e, ")");
  case art::I8:
    return cat("(long long)(signed char)(unsigned char)(", e, ")");
  case art::U8:
    return cat("(long long)(unsigned char)(", e, ")");
  case art::U16:
    return cat("(long long)(unsigned short)(", e, ")");
  case art::U32:
    return cat("(long long)(unsigned int)(", e, ")");
  case art::BOOL:
    return cat("(long long)((", e, ") != 0)");
  default:
    return e;
  }
}

bool isComparison(Instr::Op op) { return op >= Instr::EQ && op <= Instr::GE; }

const char *comparisonOperator(Instr::Op op) {
  switch (op) {
  case Instr::EQ:
    return "==";
  case Instr::LT:
    return "<";
  case Instr::LE:
    return "<=";
  case Instr::GT:
    return ">";
  default:
    return ">=";
  }
}

/// The helper of a float operation (overloaded on float and double).
const char *floatHelper(Instr::Op op) {
  switch (op) {
  case Instr::ADD:
    return "wf_add";
  case Instr::SUB:
    return "wf_sub";
  case Instr::MUL:
    return "wf_mul";
  case Instr::DIV:
    return "wf_div";
  case Instr::POW:
    return "wf_pow";
  case Instr::MAX:
    return "wf_max";
  case Instr::MIN:
    return "wf_min";
  case Instr::NEG:
    return "wf_neg";
  case Instr::EXP:
    return "wf_exp";
  case Instr::LOG:
    return "wf_log";
  case Instr::ERF:
    return "wf_erf";
  case Instr::TANH:
    return "wf_tanh";
  case Instr::SIGMOID:
    return "wf_sigmoid";
  case Instr::SQRT:
    return "wf_sqrt";
  case Instr::RECIPROCAL:
    return "wf_reciprocal";
  case Instr::COS:
    return "wf_cos";
  case Instr::SIN:
    return "wf_sin";
  case Instr::ABS:
    return "wf_abs";
  case Instr::RELU:
    return "wf_relu";
  case Instr::SILU:
    return "wf_silu";
  case Instr::GELU:
    return "wf_gelu";
  default:
    return "wf_gelu_tanh";
  }
}

/// The helper of an integer operation on long long.
const char *intHelper(Instr::Op op) {
  switch (op) {
  case Instr::ADD:
    return "wf_iadd";
  case Instr::SUB:
    return "wf_isub";
  case Instr::MUL:
    return "wf_imul";
  case Instr::DIV:
    return "wf_idiv";
  case Instr::MAX:
    return "wf_imax";
  case Instr::MIN:
    return "wf_imin";
  case Instr::NEG:
    return "wf_ineg";
  case Instr::ABS:
    return "wf_iabs";
  default:
    return "wf_irelu";
  }
}

/// The helper of a u64 division, max or min on the long long holding its bits.
const char *unsignedHelper(Instr::Op op) {
  switch (op) {
  case Instr::DIV:
    return "wf_udiv";
  case Instr::MAX:
    return "wf_umax";
  default:
    return "wf_umin";
  }
}

//===----------------------------------------------------------------------===//
// The program
//===----------------------------------------------------------------------===//

/// Emits the instructions of a program as `const T vK = ...;` statements,
/// only those the result depends on.
class ProgramEmitter {
public:
  explicit ProgramEmitter(const std::vector<Instr> &prog)
      : prog(prog), live(prog.size(), false) {
    live.back() = true;
    for (size_t k = prog.size(); k-- > 0;) {
      if (!live[k])
        continue;
      // ISNAN of an integer is 0 whatever the value.
      if (prog[k].op() == Instr::ISNAN &&
          kindOfSlot(prog[k].args(0)) == Kind::Int)
        continue;
      for (uint32_t a : prog[k].args())
        live[a] = true;
    }
  }

  /// Whether an INPUT instruction reads input `index`.
  bool readsInput(uint32_t index) const {
    for (auto [k, in] : llvm::enumerate(prog))
      if (live[k] && in.op() == Instr::INPUT && in.index() == index)
        return true;
    return false;
  }

  /// Writes the statements; `input(j)` is input j's value (of its dtype).
  /// Returns the result's variable.
  std::string emit(llvm::raw_ostream &os, llvm::StringRef indent,
                   const std::function<std::string(uint32_t)> &input) {
    for (auto [k, in] : llvm::enumerate(prog)) {
      if (!live[k])
        continue;
      std::string value = in.op() == Instr::INPUT
                              ? input(in.index())
                              : settle(compute(in), in.dtype());
      os << indent << "const " << cType(kindOf(in.dtype())) << " " << var(k)
         << " = " << value << ";\n";
    }
    return var(prog.size() - 1);
  }

private:
  static std::string var(size_t k) { return cat("v", std::to_string(k)); }
  Kind kindOfSlot(uint32_t k) const { return kindOf(prog[k].dtype()); }

  /// The precision a float operation computes in: float when the result is
  /// f32, f16 or bf16 and every operand is one of those; double otherwise
  /// (as the interpreter, which widens integers to double, not to float).
  Kind precision(DType result, llvm::ArrayRef<uint32_t> operands) const {
    if (kindOf(result) != Kind::Float)
      return Kind::Double;
    for (uint32_t a : operands)
      if (kindOfSlot(a) != Kind::Float)
        return Kind::Double;
    return Kind::Float;
  }

  /// Whether slot `a` holds the bits of a u64 in its long long.
  bool isU64(uint32_t a) const { return prog[a].dtype() == art::U64; }

  /// Operand `a` in float precision `p`.
  std::string asFloat(uint32_t a, Kind p) const {
    if (kindOfSlot(a) == p)
      return var(a);
    if (isU64(a))
      return llvm::formatv("({0})(unsigned long long){1}", cType(p), var(a))
          .str();
    return llvm::formatv("({0}){1}", cType(p), var(a)).str();
  }

  /// Operand `a` as an integer: floats truncated (NaN 0, saturated).
  std::string asInt(uint32_t a) const {
    return kindOfSlot(a) == Kind::Int ? var(a)
                                      : cat("wf_f2i((double)", var(a), ")");
  }

  std::string truthy(uint32_t a) const { return cat("(", var(a), " != 0)"); }

  Raw floatCall(const Instr &in, llvm::ArrayRef<uint32_t> operands) const {
    Kind p = precision(in.dtype(), operands);
    std::string call = std::string(floatHelper(in.op())) + "(";
    for (auto [i, a] : llvm::enumerate(operands))
      call += i ? cat(", ", asFloat(a, p)) : asFloat(a, p);
    return {call + ")", p};
  }

  Raw compute(const Instr &in) const {
    Instr::Op op = in.op();
    bool fl = kindOf(in.dtype()) != Kind::Int;
    llvm::SmallVector<uint32_t> args(in.args().begin(), in.args().end());
    if (op == Instr::POW)
      return floatCall(in, args);
    if (op >= Instr::ADD && op <= Instr::MIN) {
      if (fl)
        return floatCall(in, args);
      bool u = in.dtype() == art::U64 &&
               (op == Instr::DIV || op == Instr::MAX || op == Instr::MIN);
      return {llvm::formatv("{0}({1}, {2})",
                            u ? unsignedHelper(op) : intHelper(op),
                            asInt(args[0]), asInt(args[1])),
              Kind::Int};
    }
    if (op == Instr::AND || op == Instr::OR)
      return {llvm::formatv("(long long)({0} {1} {2})", truthy(args[0]),
                            op == Instr::AND ? "&&" : "||", truthy(args[1])),
              Kind::Int};
    if (isComparison(op)) {
      Kind kx = kindOfSlot(args[0]), ky = kindOfSlot(args[1]);
      std::string a = var(args[0]), b = var(args[1]);
      if (kx != Kind::Int || ky != Kind::Int) {
        Kind p =
            kx == Kind::Float && ky == Kind::Float ? Kind::Float : Kind::Double;
        a = asFloat(args[0], p);
        b = asFloat(args[1], p);
      } else if (isU64(args[0]) || isU64(args[1])) {
        a = cat("(unsigned long long)", a);
        b = cat("(unsigned long long)", b);
      }
      return {llvm::formatv("(long long)({0} {1} {2})", a,
                            comparisonOperator(op), b),
              Kind::Int};
    }
    switch (op) {
    case Instr::SELECT: {
      if (fl) {
        Kind p = precision(in.dtype(), {args[1], args[2]});
        return {llvm::formatv("({0} ? {1} : {2})", truthy(args[0]),
                              asFloat(args[1], p), asFloat(args[2], p)),
                p};
      }
      return {llvm::formatv("({0} ? {1} : {2})", truthy(args[0]),
                            asInt(args[1]), asInt(args[2])),
              Kind::Int};
    }
    case Instr::NOT: {
      uint32_t a = args[0];
      if (in.dtype() == art::BOOL || kindOfSlot(a) != Kind::Int ||
          prog[a].dtype() == art::BOOL)
        return {cat("(long long)!", truthy(a)), Kind::Int};
      return {"~" + var(a), Kind::Int}; // bitwise, like numpy.invert
    }
    case Instr::ISNAN:
      if (kindOfSlot(args[0]) == Kind::Int)
        return {"0LL", Kind::Int};
      return {llvm::formatv("(long long)({0} != {0})", var(args[0])),
              Kind::Int};
    case Instr::CAST:
      if (isU64(args[0]) && fl)
        return {asFloat(args[0], Kind::Double), Kind::Double};
      return {var(args[0]), kindOfSlot(args[0])};
    case Instr::NEG:
    case Instr::ABS:
    case Instr::RELU:
      if (!fl && kindOfSlot(args[0]) == Kind::Int) {
        if (isU64(args[0]) && op != Instr::NEG)
          return {var(args[0]), Kind::Int}; // |x| and relu(x) of a u64
        return {llvm::formatv("{0}({1})", intHelper(op), var(args[0])),
                Kind::Int};
      }
      [[fallthrough]];
    default:
      return floatCall(in, args);
    }
  }

  const std::vector<Instr> &prog;
  std::vector<bool> live;
};

//===----------------------------------------------------------------------===//
// Index math
//===----------------------------------------------------------------------===//

/// The output's shape with size-1 dims dropped and dims merged where every
/// input's strides allow, and each input's element strides over it (0 on
/// broadcast dims).
struct Layout {
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> strides;

  int64_t rank() const { return shape.size(); }
  /// Input j is read at the output's linear index.
  bool contiguous(size_t j) const {
    int64_t expected = 1;
    for (int64_t d = rank() - 1; d >= 0; --d) {
      if (strides[j][d] != expected)
        return false;
      expected *= shape[d];
    }
    return true;
  }
  bool scalar(size_t j) const {
    return llvm::all_of(strides[j], [](int64_t s) { return s == 0; });
  }
  int64_t lastStride(size_t j) const { return strides[j].back(); }
};

Layout makeLayout(const ElementwiseSpec &spec) {
  const std::vector<int64_t> &out = spec.output.shape;
  size_t rank = out.size();
  std::vector<std::vector<int64_t>> full;
  for (const KernelOperand &in : spec.inputs) {
    // Row-major strides of the input, right-aligned with the output.
    std::vector<int64_t> s(rank, 0);
    int64_t stride = 1;
    for (size_t d = in.shape.size(); d-- > 0;) {
      size_t od = rank - in.shape.size() + d;
      s[od] = in.shape[d] == 1 && out[od] != 1 ? 0 : stride;
      stride *= in.shape[d];
    }
    full.push_back(std::move(s));
  }
  Layout l;
  l.strides.resize(spec.inputs.size());
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1)
      continue;
    bool merge = !l.shape.empty();
    for (size_t j = 0; merge && j < full.size(); ++j)
      merge = l.strides[j].back() == full[j][d] * out[d];
    if (merge) {
      l.shape.back() *= out[d];
      for (size_t j = 0; j < full.size(); ++j)
        l.strides[j].back() = full[j][d];
      continue;
    }
    l.shape.push_back(out[d]);
    for (size_t j = 0; j < full.size(); ++j)
      l.strides[j].push_back(full[j][d]);
  }
  if (l.shape.empty()) {
    l.shape.push_back(1);
    for (auto &s : l.strides)
      s.push_back(0);
  }
  return l;
}

/// The kernel's text, statement by statement.
class KernelWriter {
public:
  KernelWriter(const ElementwiseSpec &spec, llvm::raw_ostream &os)
      : spec(spec), os(os), layout(makeLayout(spec)), program(spec.program) {
    numel = 1;
    for (int64_t d : spec.output.shape)
      numel *= d;
    wide = numel > int64_t(UINT32_MAX);
    index = wide ? "unsigned long long" : "unsigned int";
    suffix = wide ? "ull" : "u";
    for (uint32_t j = 0; j < spec.inputs.size(); ++j)
      used.push_back(program.readsInput(j));
  }

  void write(llvm::StringRef name) {
    os << "extern \"C\" __global__ void " << name << "(void *out_";
    for (size_t j = 0; j < spec.inputs.size(); ++j)
      os << ", const void *in" << j << "_";
    os << ") {\n";
    if (numel == 0) {
      os << "}\n";
      return;
    }
    os << "  " << storageType(spec.output.dtype)
       << " *__restrict__ out = static_cast<" << storageType(spec.output.dtype)
       << " *>(out_);\n";
    for (size_t j = 0; j < spec.inputs.size(); ++j) {
      if (!used[j])
        continue;
      const char *t = storageType(spec.inputs[j].dtype);
      os << llvm::formatv("  const {0} *__restrict__ in{1} = static_cast<const "
                          "{0} *>(in{1}_);\n",
                          t, j);
    }
    os << "  const unsigned long long first = (unsigned long long)blockIdx.x "
          "* blockDim.x + threadIdx.x;\n"
       << "  const unsigned long long step = (unsigned long long)gridDim.x * "
          "blockDim.x;\n";
    if (int64_t lanes = vectorLanes(); lanes > 1)
      writeVectorLoop(lanes);
    writeScalarLoop();
    os << "}\n";
  }

private:
  /// Elements per thread of the 16-byte path: 16 bytes (or fewer, to divide
  /// the innermost dim) of the widest tensor read along it; 1 if none fits.
  int64_t vectorLanes() const {
    size_t widest = ::weft::runtime::dtypeSize(spec.output.dtype);
    for (size_t j = 0; j < spec.inputs.size(); ++j)
      if (used[j] && layout.lastStride(j) != 0)
        widest =
            std::max(widest, ::weft::runtime::dtypeSize(spec.inputs[j].dtype));
    int64_t lanes = 16 / widest;
    while (lanes > 1 && layout.shape.back() % lanes)
      lanes /= 2;
    return lanes;
  }

  std::string constant(int64_t v) const { return std::to_string(v) + suffix; }

  /// `const INDEX oJ = ...;` for the element at linear index `e` of every
  /// input read, with the dims' indices computed once.
  void writeOffsets(llvm::StringRef indent) {
    int64_t rank = layout.rank();
    // Dims some input's offset depends on (beyond the linear index).
    std::vector<bool> needed(rank, false);
    for (size_t j = 0; j < spec.inputs.size(); ++j)
      if (used[j] && !layout.contiguous(j))
        for (int64_t d = 0; d < rank; ++d)
          needed[d] = needed[d] || layout.strides[j][d] != 0;
    int64_t outer = llvm::find(needed, true) - needed.begin();
    if (outer < rank) {
      // i<d>: the index along collapsed dim d.
      os << indent << index << " q = e;\n";
      for (int64_t d = rank - 1; d > outer; --d) {
        if (needed[d])
          os << indent << "const " << index << " i" << d << " = q % "
             << constant(layout.shape[d]) << ";\n";
        os << indent << "q /= " << constant(layout.shape[d]) << ";\n";
      }
      os << indent << "const " << index << " i" << outer << " = q";
      if (outer > 0)
        os << " % " << constant(layout.shape[outer]);
      os << ";\n";
    }
    for (size_t j = 0; j < spec.inputs.size(); ++j) {
      if (!used[j])
        continue;
      std::string expr;
      if (layout.contiguous(j)) {
        expr = "e";
      } else if (layout.scalar(j)) {
        expr = "0";
      } else {
        for (int64_t d = 0; d < rank; ++d) {
          int64_t s = layout.strides[j][d];
          if (s == 0)
            continue;
          if (!expr.empty())
            expr += " + ";
          expr += cat("i", std::to_string(d));
          if (s != 1)
            expr += cat(" * ", constant(s));
        }
      }
      os << indent << "const " << index << " o" << j << " = " << expr << ";\n";
    }
  }

  void writeScalarLoop() {
    os << "  for (unsigned long long i = first; i < " << numel
       << "ull; i += step) {\n"
       << "    const " << index << " e = (" << index << ")i;\n";
    writeOffsets("    ");
    std::string result = program.emit(os, "    ", [&](uint32_t j) {
      return loadExpr(spec.inputs[j].dtype, llvm::formatv("in{0}[o{0}]", j));
    });
    os << "    out[e] = " << storeExpr(spec.output.dtype, result) << ";\n"
       << "  }\n";
  }

  /// Each thread takes `lanes` consecutive outputs along the innermost dim:
  /// one 16-byte (or narrower) load per input that varies along it, one
  /// element of each input broadcast along it, one store. Taken when every
  /// pointer it loads or stores vectors through is aligned to its width.
  void writeVectorLoop(int64_t lanes) {
    auto vecType = [&](DType d) {
      return llvm::formatv("WfVec<{0}, {1}>", storageType(d), lanes).str();
    };
    auto alignMask = [&](DType d) {
      return ::weft::runtime::dtypeSize(d) * lanes - 1;
    };
    os << "  if (((reinterpret_cast<unsigned long long>(out_) & "
       << alignMask(spec.output.dtype) << ")";
    for (size_t j = 0; j < spec.inputs.size(); ++j)
      if (used[j] && layout.lastStride(j) != 0)
        os << " | (reinterpret_cast<unsigned long long>(in" << j << "_) & "
           << alignMask(spec.inputs[j].dtype) << ")";
    os << ") == 0) {\n"
       << "    for (unsigned long long i = first; i < " << numel / lanes
       << "ull; i += step) {\n"
       << "      const " << index << " e = (" << index << ")i * " << lanes
       << ";\n";
    writeOffsets("      ");
    for (size_t j = 0; j < spec.inputs.size(); ++j) {
      if (!used[j])
        continue;
      DType d = spec.inputs[j].dtype;
      if (layout.lastStride(j) != 0)
        os << llvm::formatv("      const {0} x{1} = *reinterpret_cast<const "
                            "{0} *>(in{1} + o{1});\n",
                            vecType(d), j);
      else
        os << llvm::formatv("      const {0} s{1} = {2};\n", cType(kindOf(d)),
                            j, loadExpr(d, llvm::formatv("in{0}[o{0}]", j)));
    }
    os << "      " << vecType(spec.output.dtype) << " y;\n"
       << "      WF_UNROLL\n"
       << "      for (int l = 0; l < " << lanes << "; ++l) {\n";
    std::string result = program.emit(os, "        ", [&](uint32_t j) {
      if (layout.lastStride(j) == 0)
        return cat("s", std::to_string(j));
      return loadExpr(spec.inputs[j].dtype, llvm::formatv("x{0}.v[l]", j));
    });
    os << "        y.v[l] = " << storeExpr(spec.output.dtype, result) << ";\n"
       << "      }\n"
       << "      *reinterpret_cast<" << vecType(spec.output.dtype)
       << " *>(out + e) = y;\n"
       << "    }\n"
       << "    return;\n"
       << "  }\n";
  }

  const ElementwiseSpec &spec;
  llvm::raw_ostream &os;
  Layout layout;
  ProgramEmitter program;
  std::vector<bool> used;
  int64_t numel;
  bool wide;
  const char *index;
  const char *suffix;
};

} // namespace

void mlir::weft::emitElementwiseKernel(const ElementwiseSpec &spec,
                                       llvm::StringRef name,
                                       llvm::raw_ostream &os) {
  KernelWriter(spec, os).write(name);
}

//===----------------------------------------------------------------------===//
// The prelude
//===----------------------------------------------------------------------===//

namespace {

/// Helpers for both compilers. Float versions of the float operations use
/// the accurate (not fast-math) single-precision functions; GELU's forms
/// avoid the cancellation of 1 + erf(x) and 1 + tanh(x) for negative x. The
/// double versions spell the interpreter's formulas. The kernel module is
/// compiled without FMA contraction, so that each instruction rounds as the
/// interpreter's does.
constexpr const char *kHelpers =
    R"(#define WF_INLINE static __device__ __forceinline__

template <typename T, int N> struct alignas(sizeof(T) * N) WfVec {
  T v[N];
};

WF_INLINE long long wf_f2i(double v) {
  if (v != v)
    return 0;
  if (v >= 9223372036854775807.0)
    return 9223372036854775807LL;
  if (v <= -9223372036854775808.0)
    return -9223372036854775807LL - 1;
  return (long long)v;
}
WF_INLINE long long wf_iadd(long long a, long long b) {
  return (long long)((unsigned long long)a + (unsigned long long)b);
}
WF_INLINE long long wf_isub(long long a, long long b) {
  return (long long)((unsigned long long)a - (unsigned long long)b);
}
WF_INLINE long long wf_imul(long long a, long long b) {
  return (long long)((unsigned long long)a * (unsigned long long)b);
}
WF_INLINE long long wf_ineg(long long a) {
  return (long long)(0ull - (unsigned long long)a);
}
WF_INLINE long long wf_idiv(long long a, long long b) {
  if (b == 0)
    return 0;
  if (b == -1)
    return wf_ineg(a);
  return a / b;
}
WF_INLINE long long wf_imax(long long a, long long b) { return a > b ? a : b; }
WF_INLINE long long wf_imin(long long a, long long b) { return a < b ? a : b; }
WF_INLINE long long wf_iabs(long long a) { return a < 0 ? wf_ineg(a) : a; }
WF_INLINE long long wf_irelu(long long a) { return a < 0 ? 0 : a; }
// u64 values are held as their bits in a long long.
WF_INLINE long long wf_f2u(double v) {
  if (v != v || v < 0)
    return wf_f2i(v);
  if (v >= 18446744073709551616.0)
    return -1;
  return (long long)(unsigned long long)v;
}
WF_INLINE long long wf_udiv(long long a, long long b) {
  return b ? (long long)((unsigned long long)a / (unsigned long long)b) : 0;
}
WF_INLINE long long wf_umax(long long a, long long b) {
  return (unsigned long long)a > (unsigned long long)b ? a : b;
}
WF_INLINE long long wf_umin(long long a, long long b) {
  return (unsigned long long)a < (unsigned long long)b ? a : b;
}

WF_INLINE float wf_round_f16(float x) {
  return __half2float(__float2half_rn(x));
}
WF_INLINE float wf_round_bf16(float x) {
  return __bfloat162float(__float2bfloat16_rn(x));
}

WF_INLINE float wf_add(float a, float b) { return a + b; }
WF_INLINE float wf_sub(float a, float b) { return a - b; }
WF_INLINE float wf_mul(float a, float b) { return a * b; }
WF_INLINE float wf_div(float a, float b) { return a / b; }
WF_INLINE float wf_pow(float a, float b) { return powf(a, b); }
WF_INLINE float wf_max(float a, float b) {
  return a != a || b != b ? a + b : (a > b ? a : b);
}
WF_INLINE float wf_min(float a, float b) {
  return a != a || b != b ? a + b : (a < b ? a : b);
}
WF_INLINE float wf_neg(float x) { return -x; }
WF_INLINE float wf_exp(float x) { return expf(x); }
WF_INLINE float wf_log(float x) { return logf(x); }
WF_INLINE float wf_erf(float x) { return erff(x); }
WF_INLINE float wf_tanh(float x) { return tanhf(x); }
WF_INLINE float wf_sqrt(float x) { return sqrtf(x); }
WF_INLINE float wf_reciprocal(float x) { return 1.0f / x; }
WF_INLINE float wf_cos(float x) { return cosf(x); }
WF_INLINE float wf_sin(float x) { return sinf(x); }
WF_INLINE float wf_abs(float x) { return fabsf(x); }
WF_INLINE float wf_relu(float x) { return x < 0 ? 0.0f : x; }
WF_INLINE float wf_sigmoid(float x) {
  if (x >= 0)
    return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}
WF_INLINE float wf_silu(float x) { return x * wf_sigmoid(x); }
WF_INLINE float wf_gelu(float x) {
  // 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2).
  return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}
WF_INLINE float wf_gelu_tanh(float x) {
  // 0.5 x (1 + tanh(u)) = x sigmoid(2 u).
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * u));
}

WF_INLINE double wf_add(double a, double b) { return a + b; }
WF_INLINE double wf_sub(double a, double b) { return a - b; }
WF_INLINE double wf_mul(double a, double b) { return a * b; }
WF_INLINE double wf_div(double a, double b) { return a / b; }
WF_INLINE double wf_pow(double a, double b) { return pow(a, b); }
WF_INLINE double wf_max(double a, double b) {
  return a != a || b != b ? a + b : (a > b ? a : b);
}
WF_INLINE double wf_min(double a, double b) {
  return a != a || b != b ? a + b : (a < b ? a : b);
}
WF_INLINE double wf_neg(double x) { return -x; }
WF_INLINE double wf_exp(double x) { return exp(x); }
WF_INLINE double wf_log(double x) { return log(x); }
WF_INLINE double wf_erf(double x) { return erf(x); }
WF_INLINE double wf_tanh(double x) { return tanh(x); }
WF_INLINE double wf_sqrt(double x) { return sqrt(x); }
WF_INLINE double wf_reciprocal(double x) { return 1.0 / x; }
WF_INLINE double wf_cos(double x) { return cos(x); }
WF_INLINE double wf_sin(double x) { return sin(x); }
WF_INLINE double wf_abs(double x) { return fabs(x); }
WF_INLINE double wf_relu(double x) { return x < 0 ? 0.0 : x; }
WF_INLINE double wf_sigmoid(double x) {
  if (x >= 0)
    return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}
WF_INLINE double wf_silu(double x) { return x * wf_sigmoid(x); }
WF_INLINE double wf_gelu(double x) {
  return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}
WF_INLINE double wf_gelu_tanh(double x) {
  const double c = sqrt(2.0 / 3.14159265358979323846);
  return 0.5 * x * (1.0 + tanh(c * (x + 0.044715 * x * x * x)));
}
)";

} // namespace

void mlir::weft::emitKernelPrelude(KernelDialect dialect,
                                   llvm::raw_ostream &os) {
  if (dialect == KernelDialect::Cuda)
    os << "#include <cuda_bf16.h>\n"
          "#include <cuda_fp16.h>\n\n"
          "#define WF_UNROLL _Pragma(\"unroll\")\n";
  else
    os << "#include \"compiler/codegen/CudaHostShim.h\"\n\n"
          "#define WF_UNROLL\n";
  os << kHelpers;
}
