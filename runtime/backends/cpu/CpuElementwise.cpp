// CPU kernels of ELEMENTWISE programs (over broadcast inputs) and SWIGLU.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cmath>
#include <limits>

namespace weft::runtime::cpu {

using artifact::Instr;

double geluTanh(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

namespace {

constexpr int64_t kBlock = 256;

double sigmoid(double x) {
  if (x >= 0)
    return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

double nanMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return a > b ? a : b;
}

double nanMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return a < b ? a : b;
}

double floatBinary(Instr::Op op, double a, double b) {
  switch (op) {
  case Instr::ADD:
    return a + b;
  case Instr::SUB:
    return a - b;
  case Instr::MUL:
    return a * b;
  case Instr::DIV:
    return a / b;
  case Instr::MAX:
    return nanMax(a, b);
  default:
    return nanMin(a, b);
  }
}

int64_t intDiv(int64_t a, int64_t b) {
  if (b == 0)
    return 0;
  if (b == -1)
    return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
  return a / b; // truncates, like ONNX Div on integers
}

/// Integers are held in int64; a U64 holds its bits, so that +, - and *
/// wrap alike and only /, max and min read them as unsigned.
int64_t intBinary(Instr::Op op, int64_t a, int64_t b, bool u64) {
  uint64_t ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
  if (u64 && (op == Instr::DIV || op == Instr::MAX || op == Instr::MIN)) {
    if (op == Instr::DIV)
      return ub ? static_cast<int64_t>(ua / ub) : 0;
    return static_cast<int64_t>(op == Instr::MAX ? std::max(ua, ub)
                                                 : std::min(ua, ub));
  }
  switch (op) {
  case Instr::ADD:
    return static_cast<int64_t>(ua + ub);
  case Instr::SUB:
    return static_cast<int64_t>(ua - ub);
  case Instr::MUL:
    return static_cast<int64_t>(ua * ub);
  case Instr::DIV:
    return intDiv(a, b);
  case Instr::MAX:
    return a > b ? a : b;
  default:
    return a < b ? a : b;
  }
}

double floatUnary(Instr::Op op, double x) {
  switch (op) {
  case Instr::NEG:
    return -x;
  case Instr::EXP:
    return std::exp(x);
  case Instr::LOG:
    return std::log(x);
  case Instr::ERF:
    return std::erf(x);
  case Instr::TANH:
    return std::tanh(x);
  case Instr::SIGMOID:
    return sigmoid(x);
  case Instr::SQRT:
    return std::sqrt(x);
  case Instr::RECIPROCAL:
    return 1.0 / x;
  case Instr::COS:
    return std::cos(x);
  case Instr::SIN:
    return std::sin(x);
  case Instr::ABS:
    return std::fabs(x);
  case Instr::RELU:
    return x < 0 ? 0.0 : x;
  case Instr::SILU:
    return x * sigmoid(x);
  case Instr::GELU:
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  default:
    return geluTanh(x);
  }
}

int64_t intUnary(Instr::Op op, int64_t x, bool u64) {
  uint64_t ux = static_cast<uint64_t>(x);
  if (u64 && op != Instr::NEG)
    return x; // |x| and relu(x) of an unsigned x
  switch (op) {
  case Instr::NEG:
    return static_cast<int64_t>(0 - ux);
  case Instr::ABS:
    return x < 0 ? static_cast<int64_t>(0 - ux) : x;
  default: // RELU
    return x < 0 ? 0 : x;
  }
}

bool compare(Instr::Op op, auto a, auto b) {
  switch (op) {
  case Instr::EQ:
    return a == b;
  case Instr::LT:
    return a < b;
  case Instr::LE:
    return a <= b;
  case Instr::GT:
    return a > b;
  default:
    return a >= b;
  }
}

/// Evaluates the program over a range of output elements, kBlock at a time.
/// Each instruction's values are doubles (float dtypes) or int64 (integer
/// dtypes and bool), rounded or wrapped to its dtype.
class ProgramEval {
public:
  explicit ProgramEval(const StepArgs &args)
      : args(args), prog(args.step.program()), out(args.outputs[0]),
        fvals(prog.size() * kBlock), ivals(prog.size() * kBlock) {
    for (auto &t : tmpF)
      t.resize(kBlock);
    for (auto &t : tmpI)
      t.resize(kBlock);
    std::vector<Shape> strides;
    for (const InTensor &in : args.inputs)
      strides.push_back(broadcastStrides(in.shape, out.shape));
    walker = std::make_unique<StridedWalker>(out.shape, std::move(strides));
    offsets.resize(args.inputs.size() * kBlock);
  }

  void runRange(int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kBlock) {
      int64_t n = std::min(kBlock, end - b);
      computeOffsets(b, n);
      for (int k = 0; k < prog.size(); ++k)
        settle(k, evalInto(k, n), n);
      store(b, n);
    }
  }

private:
  bool slotFloat(uint32_t k) const { return isFloatDType(prog[k].dtype()); }
  bool slotU64(uint32_t k) const { return prog[k].dtype() == DType::U64; }
  double *fSlot(uint32_t k) { return &fvals[k * kBlock]; }
  int64_t *iSlot(uint32_t k) { return &ivals[k * kBlock]; }

  void computeOffsets(int64_t begin, int64_t n) {
    walker->seek(begin);
    size_t inputs = args.inputs.size();
    for (int64_t i = 0; i < n; ++i, walker->next())
      for (size_t j = 0; j < inputs; ++j)
        offsets[j * kBlock + i] = walker->offset(j);
  }

  /// Slot k as doubles; integer slots converted into scratch `pos`.
  const double *getF(uint32_t k, int pos, int64_t n) {
    if (slotFloat(k))
      return fSlot(k);
    for (int64_t i = 0; i < n; ++i)
      tmpF[pos][i] = intToDouble(prog[k].dtype(), iSlot(k)[i]);
    return tmpF[pos].data();
  }

  /// Slot k as int64; float slots truncated into scratch `pos`.
  const int64_t *getI(uint32_t k, int pos, int64_t n) {
    if (!slotFloat(k))
      return iSlot(k);
    for (int64_t i = 0; i < n; ++i)
      tmpI[pos][i] = doubleToInt(fSlot(k)[i]);
    return tmpI[pos].data();
  }

  bool truthy(uint32_t k, int64_t i) {
    return slotFloat(k) ? fSlot(k)[i] != 0 : iSlot(k)[i] != 0;
  }

  /// Computes instruction k into its double or int64 slot; returns whether
  /// it wrote doubles.
  bool evalInto(int k, int64_t n) {
    const Instr &in = prog[k];
    Instr::Op op = in.op();
    bool fl = isFloatDType(in.dtype());
    double *f = fSlot(k);
    int64_t *iv = iSlot(k);
    if (op == Instr::INPUT)
      return loadInput(in, f, iv, n);
    if (op == Instr::POW) {
      const double *a = getF(in.args(0), 0, n), *b = getF(in.args(1), 1, n);
      for (int64_t i = 0; i < n; ++i)
        f[i] = std::pow(a[i], b[i]);
      return true;
    }
    if (op >= Instr::ADD && op <= Instr::MIN)
      return binaryArith(op, in, fl, f, iv, n);
    if (op == Instr::AND || op == Instr::OR) {
      for (int64_t i = 0; i < n; ++i) {
        bool a = truthy(in.args(0), i), b = truthy(in.args(1), i);
        iv[i] = op == Instr::AND ? (a && b) : (a || b);
      }
      return false;
    }
    if (steps::isComparison(op))
      return comparison(op, in, iv, n);
    return unaryOrSelect(op, in, fl, f, iv, n);
  }

  bool loadInput(const Instr &in, double *f, int64_t *iv, int64_t n) {
    const InTensor &t = args.inputs[in.index()];
    const int64_t *offs = &offsets[in.index() * kBlock];
    if (isFloatDType(t.dtype)) {
      for (int64_t i = 0; i < n; ++i)
        f[i] = loadDouble(t.dtype, t.data, offs[i]);
      return true;
    }
    for (int64_t i = 0; i < n; ++i)
      iv[i] = loadInt(t.dtype, t.data, offs[i]);
    return false;
  }

  bool binaryArith(Instr::Op op, const Instr &in, bool fl, double *f,
                   int64_t *iv, int64_t n) {
    if (fl) {
      const double *a = getF(in.args(0), 0, n), *b = getF(in.args(1), 1, n);
      for (int64_t i = 0; i < n; ++i)
        f[i] = floatBinary(op, a[i], b[i]);
      return true;
    }
    const int64_t *a = getI(in.args(0), 0, n), *b = getI(in.args(1), 1, n);
    bool u64 = in.dtype() == DType::U64;
    for (int64_t i = 0; i < n; ++i)
      iv[i] = intBinary(op, a[i], b[i], u64);
    return false;
  }

  bool comparison(Instr::Op op, const Instr &in, int64_t *iv, int64_t n) {
    uint32_t x = in.args(0), y = in.args(1);
    if (slotFloat(x) || slotFloat(y)) {
      const double *a = getF(x, 0, n), *b = getF(y, 1, n);
      for (int64_t i = 0; i < n; ++i)
        iv[i] = compare(op, a[i], b[i]);
      return false;
    }
    const int64_t *a = getI(x, 0, n), *b = getI(y, 1, n);
    if (slotU64(x) || slotU64(y)) {
      for (int64_t i = 0; i < n; ++i)
        iv[i] = compare(op, static_cast<uint64_t>(a[i]),
                        static_cast<uint64_t>(b[i]));
      return false;
    }
    for (int64_t i = 0; i < n; ++i)
      iv[i] = compare(op, a[i], b[i]);
    return false;
  }

  bool select(const Instr &in, bool fl, double *f, int64_t *iv, int64_t n) {
    uint32_t c = in.args(0);
    if (fl) {
      const double *a = getF(in.args(1), 1, n), *b = getF(in.args(2), 2, n);
      for (int64_t i = 0; i < n; ++i)
        f[i] = truthy(c, i) ? a[i] : b[i];
      return true;
    }
    const int64_t *a = getI(in.args(1), 1, n), *b = getI(in.args(2), 2, n);
    for (int64_t i = 0; i < n; ++i)
      iv[i] = truthy(c, i) ? a[i] : b[i];
    return false;
  }

  bool notOp(const Instr &in, int64_t *iv, int64_t n) {
    uint32_t a = in.args(0);
    if (in.dtype() == DType::BOOL || slotFloat(a) ||
        prog[a].dtype() == DType::BOOL) {
      for (int64_t i = 0; i < n; ++i)
        iv[i] = !truthy(a, i);
      return false;
    }
    const int64_t *x = getI(a, 0, n);
    for (int64_t i = 0; i < n; ++i)
      iv[i] = ~x[i]; // bitwise on integers, like numpy.invert
    return false;
  }

  bool unaryOrSelect(Instr::Op op, const Instr &in, bool fl, double *f,
                     int64_t *iv, int64_t n) {
    uint32_t a = in.args(0);
    switch (op) {
    case Instr::SELECT:
      return select(in, fl, f, iv, n);
    case Instr::NOT:
      return notOp(in, iv, n);
    case Instr::ISNAN:
      for (int64_t i = 0; i < n; ++i)
        iv[i] = slotFloat(a) && std::isnan(fSlot(a)[i]);
      return false;
    case Instr::CAST:
      return cast(a, fl, f, iv, n);
    case Instr::NEG:
    case Instr::ABS:
    case Instr::RELU:
      if (!fl && !slotFloat(a)) {
        const int64_t *x = iSlot(a);
        bool u64 = slotU64(a);
        for (int64_t i = 0; i < n; ++i)
          iv[i] = intUnary(op, x[i], u64);
        return false;
      }
      [[fallthrough]];
    default: {
      const double *x = getF(a, 0, n);
      for (int64_t i = 0; i < n; ++i)
        f[i] = floatUnary(op, x[i]);
      return true;
    }
    }
  }

  bool cast(uint32_t a, bool toFloat, double *f, int64_t *iv, int64_t n) {
    if (slotFloat(a) || toFloat) {
      std::copy_n(getF(a, 0, n), n, f);
      return true;
    }
    std::copy(iSlot(a), iSlot(a) + n, iv);
    return false;
  }

  /// Moves a result into its dtype's slot kind, rounded or wrapped.
  void settle(int k, bool wroteFloat, int64_t n) {
    DType dt = prog[k].dtype();
    double *f = fSlot(k);
    int64_t *iv = iSlot(k);
    if (isFloatDType(dt)) {
      if (!wroteFloat)
        for (int64_t i = 0; i < n; ++i)
          f[i] = static_cast<double>(iv[i]);
      if (dt != DType::F64)
        for (int64_t i = 0; i < n; ++i)
          f[i] = roundToFloat(dt, f[i]);
      return;
    }
    if (wroteFloat)
      for (int64_t i = 0; i < n; ++i)
        iv[i] = dt == DType::BOOL  ? f[i] != 0
                : dt == DType::U64 ? doubleToU64Bits(f[i])
                                   : doubleToInt(f[i]);
    if (dt != DType::I64)
      for (int64_t i = 0; i < n; ++i)
        iv[i] = wrapInt(dt, iv[i]);
  }

  void store(int64_t begin, int64_t n) {
    uint32_t last = prog.size() - 1;
    if (slotFloat(last)) {
      for (int64_t i = 0; i < n; ++i)
        storeDouble(out.dtype, out.data, begin + i, fSlot(last)[i]);
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      storeInt(out.dtype, out.data, begin + i, iSlot(last)[i]);
  }

  const StepArgs &args;
  const google::protobuf::RepeatedPtrField<Instr> &prog;
  const OutTensor &out;
  std::vector<double> fvals;
  std::vector<int64_t> ivals;
  std::vector<double> tmpF[3];
  std::vector<int64_t> tmpI[3];
  std::unique_ptr<StridedWalker> walker;
  std::vector<int64_t> offsets;
};

} // namespace

Status runElementwise(const StepArgs &args) {
  parallelFor(args, args.outputs[0].numElements(), 4 * kBlock,
              [&](int64_t begin, int64_t end) {
                ProgramEval(args).runRange(begin, end);
              });
  return okStatus();
}

Status runSwiglu(const StepArgs &args) {
  FloatInput gate(args.inputs[0]), up(args.inputs[1]);
  FloatOutput out(args.outputs[0]);
  const float *g = gate.data(), *u = up.data();
  float *o = out.data();
  parallelFor(args, args.outputs[0].numElements(), 4096,
              [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i)
                  o[i] = static_cast<float>(g[i] * sigmoid(g[i]) * u[i]);
              });
  out.commit();
  return okStatus();
}

} // namespace weft::runtime::cpu
