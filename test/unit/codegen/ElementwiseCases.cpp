// The ELEMENTWISE programs of the codegen tests.
#include "ElementwiseCases.h"

#include "runtime/artifact/DType.h"
#include "runtime/backends/cpu/CpuSupport.h"

#include <initializer_list>
#include <limits>

using namespace weft::codegen_test;
using mlir::weft::ElementwiseSpec;
using mlir::weft::KernelOperand;
using weft::artifact::DType;
using weft::artifact::Instr;
namespace art = weft::artifact;

namespace {

Instr input(uint32_t index, DType dtype) {
  Instr in;
  in.set_op(Instr::INPUT);
  in.set_index(index);
  in.set_dtype(dtype);
  return in;
}

Instr op(Instr::Op code, DType dtype, std::initializer_list<uint32_t> args) {
  Instr in;
  in.set_op(code);
  in.set_dtype(dtype);
  for (uint32_t a : args)
    in.add_args(a);
  return in;
}

KernelOperand t(DType dtype, std::vector<int64_t> shape) {
  return {dtype, std::move(shape)};
}

class CaseList {
public:
  void add(std::string name, std::vector<Instr> program,
           std::vector<KernelOperand> inputs, KernelOperand output,
           bool exact = true, bool vector = false) {
    ElementwiseCase c;
    c.name = std::move(name);
    c.spec = ElementwiseSpec{std::move(program), std::move(inputs),
                             std::move(output)};
    c.exact = exact;
    c.vector = vector;
    cases.push_back(std::move(c));
  }
  std::vector<ElementwiseCase> cases;
};

const char *dtypeTag(DType d) {
  switch (d) {
  case art::F32:
    return "f32";
  case art::F16:
    return "f16";
  case art::BF16:
    return "bf16";
  case art::F64:
    return "f64";
  case art::I64:
    return "i64";
  case art::I32:
    return "i32";
  case art::I16:
    return "i16";
  case art::I8:
    return "i8";
  case art::U8:
    return "u8";
  case art::U16:
    return "u16";
  case art::U32:
    return "u32";
  case art::U64:
    return "u64";
  default:
    return "bool";
  }
}

/// A float drawn mostly from [-4, 4], sometimes a value that tests edges.
double randomFloat(std::mt19937 &rng) {
  static const double specials[] = {0.0,
                                    -0.0,
                                    1.0,
                                    -1.0,
                                    0.5,
                                    2.5,
                                    -3.5,
                                    1e30,
                                    -1e30,
                                    1e-30,
                                    65504.0,
                                    70000.0,
                                    -2147483904.0,
                                    3e9,
                                    9.3e18,
                                    -9.3e18,
                                    std::numeric_limits<double>::infinity(),
                                    -std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::quiet_NaN()};
  std::uniform_int_distribution<int> pick(0, 99);
  if (pick(rng) < 8)
    return specials[pick(rng) % std::size(specials)];
  return std::uniform_real_distribution<double>(-4.0, 4.0)(rng);
}

int64_t randomInt(std::mt19937 &rng, art::DType d) {
  int64_t lo = -1000, hi = 1000;
  switch (d) {
  case art::BOOL:
    lo = 0, hi = 1;
    break;
  case art::U8:
    lo = 0, hi = 255;
    break;
  case art::I8:
    lo = -128, hi = 127;
    break;
  case art::I16:
    lo = -32768, hi = 32767;
    break;
  case art::U16:
    lo = 0, hi = 65535;
    break;
  case art::U32:
    lo = 0, hi = 4294967295;
    break;
  default:
    break;
  }
  static const int64_t specials[] = {0,
                                     -1,
                                     1,
                                     2,
                                     std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max(),
                                     std::numeric_limits<int32_t>::min(),
                                     std::numeric_limits<int32_t>::max()};
  std::uniform_int_distribution<int> pick(0, 99);
  if (d != art::BOOL && pick(rng) < 10)
    return weft::runtime::cpu::wrapInt(
        d, specials[pick(rng) % std::size(specials)]);
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

std::vector<ElementwiseCase> makeCases() {
  CaseList l;
  using I = Instr;
  const DType f32 = art::F32, f16 = art::F16, bf16 = art::BF16, f64 = art::F64,
              i64 = art::I64, i32 = art::I32, u8 = art::U8, i8 = art::I8,
              i16 = art::I16, u16 = art::U16, u32 = art::U32, u64 = art::U64,
              b = art::BOOL;

  // Broadcasts and the index math.
  l.add("add_f32_row", {input(0, f32), input(1, f32), op(I::ADD, f32, {0, 1})},
        {t(f32, {4, 5, 67}), t(f32, {67})}, t(f32, {4, 5, 67}));
  l.add("add_f32_rank5",
        {input(0, f32), input(1, f32), op(I::ADD, f32, {0, 1}), input(2, f32),
         op(I::MUL, f32, {2, 3})},
        {t(f32, {3, 1, 5, 1}), t(f32, {2, 1, 4, 1, 6}), t(f32, {})},
        t(f32, {2, 3, 4, 5, 6}));
  l.add("add_f32_column",
        {input(0, f32), input(1, f32), op(I::SUB, f32, {0, 1})},
        {t(f32, {3, 5, 7}), t(f32, {5, 1})}, t(f32, {3, 5, 7}));
  l.add("add_f32_large",
        {input(0, f32), input(1, f32), op(I::ADD, f32, {0, 1})},
        {t(f32, {2, 1000, 130}), t(f32, {130})}, t(f32, {2, 1000, 130}), true,
        /*vector=*/false);
  l.add("add_f32_scalar",
        {input(0, f32), input(1, f32), op(I::ADD, f32, {0, 1})},
        {t(f32, {}), t(f32, {})}, t(f32, {}));
  l.add("add_f32_empty",
        {input(0, f32), input(1, f32), op(I::ADD, f32, {0, 1})},
        {t(f32, {0, 4}), t(f32, {4})}, t(f32, {0, 4}));
  l.add("dead_code",
        {input(0, f32), input(1, f32), op(I::EXP, f32, {1}),
         op(I::ADD, f32, {0, 0})},
        {t(f32, {9}), t(f32, {9})}, t(f32, {9}));

  // Arithmetic chains: float, f16, bf16 (vector path), f64.
  l.add("arith_f32_vec",
        {input(0, f32), input(1, f32), op(I::MUL, f32, {0, 1}),
         op(I::SUB, f32, {2, 0}), op(I::DIV, f32, {3, 1}),
         op(I::MAX, f32, {4, 0}), op(I::MIN, f32, {5, 1})},
        {t(f32, {8, 64}), t(f32, {8, 1})}, t(f32, {8, 64}), true, true);
  l.add("arith_bf16_vec",
        {input(0, bf16), input(1, bf16), op(I::MUL, bf16, {0, 1}),
         input(2, bf16), op(I::ADD, bf16, {2, 3}), op(I::DIV, bf16, {4, 1}),
         op(I::MAX, bf16, {5, 0})},
        {t(bf16, {2, 3, 16}), t(bf16, {3, 1}), t(bf16, {16})},
        t(bf16, {2, 3, 16}), true, true);
  l.add("mul_bf16_lane_broadcast",
        {input(0, bf16), input(1, bf16), op(I::MUL, bf16, {0, 1})},
        {t(bf16, {4, 32}), t(bf16, {4, 1})}, t(bf16, {4, 32}), true, true);
  l.add("arith_f16",
        {input(0, f16), input(1, f16), op(I::ADD, f16, {0, 1}),
         op(I::MUL, f16, {2, 0}), op(I::DIV, f16, {3, 1}),
         op(I::MIN, f16, {4, 1}), op(I::CAST, f32, {5})},
        {t(f16, {5, 7}), t(f16, {})}, t(f32, {5, 7}));
  l.add("arith_f64",
        {input(0, f64), input(1, f64), op(I::SUB, f64, {0, 1}),
         op(I::DIV, f64, {2, 1}), op(I::CAST, f32, {3})},
        {t(f64, {6, 4}), t(f64, {4})}, t(f32, {6, 4}), true, true);
  l.add("cast_chain",
        {input(0, f32), op(I::CAST, f16, {0}), input(1, f16),
         op(I::ADD, f16, {1, 2}), op(I::CAST, bf16, {3}), op(I::CAST, f32, {4}),
         op(I::CAST, f64, {5}), input(2, f64), op(I::ADD, f64, {6, 7}),
         op(I::CAST, i32, {8})},
        {t(f32, {33}), t(f16, {1}), t(f64, {33})}, t(i32, {33}));
  l.add("mixed_f32_plus_i32",
        {input(0, f32), input(1, i32), op(I::ADD, f32, {0, 1})},
        {t(f32, {4, 10}), t(i32, {10})}, t(f32, {4, 10}));
  l.add("mixed_f16_of_f32_f64",
        {input(0, f32), input(1, f64), op(I::MUL, f16, {0, 1})},
        {t(f32, {12}), t(f64, {12})}, t(f16, {12}));

  // Unary float ops in each float dtype, INPUT -> OP.
  const std::pair<I::Op, bool> unary[] = {
      {I::NEG, true},   {I::EXP, false},       {I::LOG, false},
      {I::ERF, false},  {I::TANH, false},      {I::SIGMOID, false},
      {I::SQRT, true},  {I::RECIPROCAL, true}, {I::COS, false},
      {I::SIN, false},  {I::ABS, true},        {I::RELU, true},
      {I::SILU, false}, {I::GELU, false},      {I::GELU_TANH, false}};
  for (auto [code, exact] : unary)
    for (DType d : {f32, bf16, f16})
      l.add(std::string(I::Op_Name(code)) + "_" + dtypeTag(d),
            {input(0, d), op(code, d, {0})}, {t(d, {3, 40})}, t(d, {3, 40}),
            exact, true);
  for (I::Op code :
       {I::EXP, I::ERF, I::TANH, I::GELU, I::GELU_TANH, I::SIGMOID, I::LOG})
    l.add(std::string(I::Op_Name(code)) + "_f64",
          {input(0, f64), op(code, f64, {0})}, {t(f64, {17})}, t(f64, {17}),
          false);
  l.add("pow_f32", {input(0, f32), input(1, f32), op(I::POW, f32, {0, 1})},
        {t(f32, {6, 10}), t(f32, {10})}, t(f32, {6, 10}), false);
  l.add("pow_bf16", {input(0, bf16), input(1, bf16), op(I::POW, bf16, {0, 1})},
        {t(bf16, {6, 10}), t(bf16, {10})}, t(bf16, {6, 10}), false);
  l.add("pow_i32", {input(0, i32), input(1, i32), op(I::POW, i32, {0, 1})},
        {t(i32, {6, 10}), t(i32, {10})}, t(i32, {6, 10}));

  // Integer arithmetic, wrapped to each width.
  for (DType d : {i64, i32, i16, i8, u8, u16, u32, u64})
    l.add(std::string("int_arith_") + dtypeTag(d),
          {input(0, d), input(1, d), op(I::ADD, d, {0, 1}),
           op(I::SUB, d, {2, 1}), op(I::MUL, d, {3, 0}), op(I::DIV, d, {4, 1}),
           op(I::MAX, d, {5, 0}), op(I::MIN, d, {6, 1})},
          {t(d, {6, 16}), t(d, {16})}, t(d, {6, 16}));
  for (DType d : {i64, i32, i8, u64})
    for (I::Op code : {I::NEG, I::ABS, I::RELU})
      l.add(std::string("int_") + I::Op_Name(code) + "_" + dtypeTag(d),
            {input(0, d), op(code, d, {0})}, {t(d, {40})}, t(d, {40}));
  l.add("int_div_i64", {input(0, i64), input(1, i64), op(I::DIV, i64, {0, 1})},
        {t(i64, {5, 6}), t(i64, {6})}, t(i64, {5, 6}), true, true);

  // Comparisons, logic, NaN tests.
  for (I::Op code : {I::EQ, I::LT, I::LE, I::GT, I::GE}) {
    l.add(std::string("cmp_") + I::Op_Name(code) + "_f32",
          {input(0, f32), input(1, f32), op(code, b, {0, 1})},
          {t(f32, {4, 16}), t(f32, {4, 16})}, t(b, {4, 16}), true, true);
    l.add(std::string("cmp_") + I::Op_Name(code) + "_i64",
          {input(0, i64), input(1, i64), op(code, b, {0, 1})},
          {t(i64, {4, 8}), t(i64, {8})}, t(b, {4, 8}));
    l.add(std::string("cmp_") + I::Op_Name(code) + "_u64",
          {input(0, u64), input(1, u64), op(code, b, {0, 1})},
          {t(u64, {4, 8}), t(u64, {8})}, t(b, {4, 8}));
  }
  l.add("cmp_mixed_i32_bf16",
        {input(0, i32), input(1, bf16), op(I::LT, b, {0, 1})},
        {t(i32, {30}), t(bf16, {30})}, t(b, {30}));
  l.add("cmp_f16_f64", {input(0, f16), input(1, f64), op(I::GE, b, {0, 1})},
        {t(f16, {30}), t(f64, {30})}, t(b, {30}));
  l.add("logic_bool",
        {input(0, b), input(1, b), op(I::AND, b, {0, 1}), op(I::OR, b, {2, 0}),
         op(I::NOT, b, {3}), op(I::OR, b, {4, 1})},
        {t(b, {3, 16}), t(b, {16})}, t(b, {3, 16}), true, true);
  l.add("not_i32", {input(0, i32), op(I::NOT, i32, {0})}, {t(i32, {20})},
        t(i32, {20}));
  l.add("not_f32", {input(0, f32), op(I::NOT, b, {0})}, {t(f32, {20})},
        t(b, {20}));
  l.add("and_f32_i8", {input(0, f32), input(1, i8), op(I::AND, b, {0, 1})},
        {t(f32, {20}), t(i8, {20})}, t(b, {20}));
  l.add("isnan_f32", {input(0, f32), op(I::ISNAN, b, {0})}, {t(f32, {64})},
        t(b, {64}), true, true);
  l.add("isnan_i32", {input(0, i32), op(I::ISNAN, b, {0})}, {t(i32, {64})},
        t(b, {64}));

  // SELECT: bool, float and integer conditions.
  l.add("select_f32",
        {input(0, b), input(1, f32), input(2, f32),
         op(I::SELECT, f32, {0, 1, 2})},
        {t(b, {4, 1}), t(f32, {4, 8}), t(f32, {8})}, t(f32, {4, 8}), true,
        true);
  l.add("select_bf16_cond_f32",
        {input(0, f32), input(1, bf16), input(2, bf16),
         op(I::SELECT, bf16, {0, 1, 2})},
        {t(f32, {24}), t(bf16, {24}), t(bf16, {})}, t(bf16, {24}));
  l.add("select_i64_cond_i32",
        {input(0, i32), input(1, i64), input(2, f32),
         op(I::SELECT, i64, {0, 1, 2})},
        {t(i32, {24}), t(i64, {24}), t(f32, {24})}, t(i64, {24}));

  // Casts between every kind.
  const std::pair<DType, DType> casts[] = {
      {f32, i64},  {f32, i32},  {f32, i8},  {f32, u8},   {f32, b},
      {bf16, i16}, {f16, i32},  {i64, f16}, {i64, bf16}, {i64, f32},
      {b, f32},    {i32, f64},  {u8, i8},   {i64, i8},   {f64, f16},
      {f32, bf16}, {bf16, f16}, {i32, b},   {u32, f32},  {f32, u32},
      {u16, i64},  {i64, u16},  {u64, f32}, {u64, f64},  {f64, u64},
      {f32, u64},  {u64, i32}};
  for (auto [from, to] : casts)
    l.add(std::string("cast_") + dtypeTag(from) + "_" + dtypeTag(to),
          {input(0, from), op(I::CAST, to, {0})}, {t(from, {48})}, t(to, {48}),
          true, true);
  // Float results stored as integers: truncated, NaN 0, saturated, wrapped.
  l.add("exp_to_i32", {input(0, f32), op(I::EXP, i32, {0})}, {t(f32, {30})},
        t(i32, {30}));
  return l.cases;
}

} // namespace

const std::vector<ElementwiseCase> &weft::codegen_test::elementwiseCases() {
  static const std::vector<ElementwiseCase> cases = makeCases();
  return cases;
}

void weft::codegen_test::fillRandomElements(art::DType dtype, std::byte *data,
                                            int64_t n, std::mt19937 &rng) {
  using namespace weft::runtime;
  for (int64_t i = 0; i < n; ++i) {
    if (isFloatDType(dtype))
      cpu::storeDouble(dtype, data, i, randomFloat(rng));
    else
      cpu::storeInt(dtype, data, i, randomInt(rng, dtype));
  }
}
