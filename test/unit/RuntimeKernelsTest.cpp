// Unit tests of the CPU kernels: every step kind on hand-computed cases.
#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <stdexcept>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Instr;
using weft::artifact::Step;

namespace {

const float kInf = INFINITY;

/// An ELEMENTWISE step running `program`.
Step program(std::initializer_list<Instr> instrs) {
  Step step = makeStep(Step::ELEMENTWISE);
  for (const Instr &in : instrs)
    *step.add_program() = in;
  return step;
}

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

} // namespace

//===----------------------------------------------------------------------===//
// ELEMENTWISE
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, ElementwiseAddBroadcasts) {
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::INPUT, DType::F32, {}, 1),
                       instr(Instr::ADD, DType::F32, {0, 1})});
  HostTensor out =
      runOne(step, {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({3}, {10, 20, 30})},
             DType::F32, {2, 3});
  EXPECT_EQ(floats(out), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  // A column against a row: [2, 1] + [1, 3].
  out = runOne(step, {f32({2, 1}, {1, 2}), f32({1, 3}, {10, 20, 30})},
               DType::F32, {2, 3});
  EXPECT_EQ(floats(out), (std::vector<float>{11, 21, 31, 12, 22, 32}));
}

TEST(RuntimeKernels, ElementwiseFusedProgram) {
  // (x * y - 1) / 2, max with 0.
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::INPUT, DType::F32, {}, 1),
                       instr(Instr::MUL, DType::F32, {0, 1}),
                       instr(Instr::INPUT, DType::F32, {}, 2),
                       instr(Instr::SUB, DType::F32, {2, 3}),
                       instr(Instr::INPUT, DType::F32, {}, 3),
                       instr(Instr::DIV, DType::F32, {4, 5}),
                       instr(Instr::RELU, DType::F32, {6})});
  HostTensor out = runOne(step,
                          {f32({4}, {1, 2, 3, -4}), f32({4}, {1, 2, 3, 4}),
                           f32({}, {1}), f32({}, {2})},
                          DType::F32, {4});
  EXPECT_EQ(floats(out), (std::vector<float>{0, 1.5f, 4, 0}));
}

TEST(RuntimeKernels, ElementwiseUnaryMath) {
  std::vector<float> x = {-1, 0, 0.5f, 2};
  auto unary = [&](Instr::Op op) {
    Step step = program(
        {instr(Instr::INPUT, DType::F32, {}, 0), instr(op, DType::F32, {0})});
    return floats(runOne(step, {f32({4}, x)}, DType::F32, {4}));
  };
  auto map = [&](double (*fn)(double)) {
    std::vector<float> out;
    for (float v : x)
      out.push_back(static_cast<float>(fn(v)));
    return out;
  };
  expectNear(unary(Instr::EXP), map([](double v) { return std::exp(v); }));
  expectNear(unary(Instr::TANH), map([](double v) { return std::tanh(v); }));
  expectNear(unary(Instr::ERF), map([](double v) { return std::erf(v); }));
  expectNear(unary(Instr::SIGMOID),
             map([](double v) { return 1 / (1 + std::exp(-v)); }));
  expectNear(unary(Instr::SILU),
             map([](double v) { return v / (1 + std::exp(-v)); }));
  expectNear(unary(Instr::GELU), map([](double v) {
               return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
             }));
  expectNear(unary(Instr::GELU_TANH), map([](double v) {
               return 0.5 * v *
                      (1 + std::tanh(std::sqrt(2 / M_PI) *
                                     (v + 0.044715 * v * v * v)));
             }));
  expectNear(unary(Instr::NEG), {1, 0, -0.5f, -2});
  expectNear(unary(Instr::ABS), {1, 0, 0.5f, 2});
  expectNear(unary(Instr::RECIPROCAL), {-1, kInf, 2, 0.5f});
  EXPECT_TRUE(std::isnan(unary(Instr::SQRT)[0]));
  EXPECT_EQ(unary(Instr::LOG)[1], -kInf);
  expectNear(unary(Instr::COS), map([](double v) { return std::cos(v); }));
  expectNear(unary(Instr::SIN), map([](double v) { return std::sin(v); }));
}

TEST(RuntimeKernels, ElementwiseComparisonsAndSelect) {
  // where(x > y, x, -1): comparisons yield bool.
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::INPUT, DType::F32, {}, 1),
                       instr(Instr::GT, DType::BOOL, {0, 1}),
                       instr(Instr::INPUT, DType::F32, {}, 2),
                       instr(Instr::SELECT, DType::F32, {2, 0, 3})});
  HostTensor out =
      runOne(step, {f32({3}, {1, 5, 3}), f32({3}, {2, 2, 3}), f32({}, {-1})},
             DType::F32, {3});
  EXPECT_EQ(floats(out), (std::vector<float>{-1, 5, -1}));
  Step cmp = program({instr(Instr::INPUT, DType::I64, {}, 0),
                      instr(Instr::INPUT, DType::I64, {}, 1),
                      instr(Instr::LE, DType::BOOL, {0, 1})});
  out = runOne(cmp, {i64({3}, {1, 2, 3}), i64({}, {2})}, DType::BOOL, {3});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 1, 0}));
}

TEST(RuntimeKernels, ElementwiseLogicAndIsNan) {
  Step step = program({instr(Instr::INPUT, DType::BOOL, {}, 0),
                       instr(Instr::INPUT, DType::BOOL, {}, 1),
                       instr(Instr::AND, DType::BOOL, {0, 1}),
                       instr(Instr::OR, DType::BOOL, {0, 1}),
                       instr(Instr::NOT, DType::BOOL, {2}),
                       instr(Instr::AND, DType::BOOL, {3, 4})}); // xor
  HostTensor out =
      runOne(step, {boolean({4}, {0, 0, 1, 1}), boolean({4}, {0, 1, 0, 1})},
             DType::BOOL, {4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{0, 1, 1, 0}));
  Step isnan = program({instr(Instr::INPUT, DType::F32, {}, 0),
                        instr(Instr::ISNAN, DType::BOOL, {0})});
  out = runOne(isnan, {f32({3}, {NAN, 1, kInf})}, DType::BOOL, {3});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 0, 0}));
}

TEST(RuntimeKernels, ElementwiseIntegerArithmetic) {
  // Division truncates toward zero, like ONNX Div on integers.
  Step step = program({instr(Instr::INPUT, DType::I64, {}, 0),
                       instr(Instr::INPUT, DType::I64, {}, 1),
                       instr(Instr::DIV, DType::I64, {0, 1})});
  HostTensor out =
      runOne(step, {i64({4}, {7, -7, 7, -7}), i64({4}, {2, 2, -2, -2})},
             DType::I64, {4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{3, -3, -3, 3}));
  // i32 wraps at its width.
  Step add = program({instr(Instr::INPUT, DType::I32, {}, 0),
                      instr(Instr::INPUT, DType::I32, {}, 1),
                      instr(Instr::ADD, DType::I32, {0, 1})});
  out = runOne(add, {i32({1}, {2147483647}), i32({1}, {1})}, DType::I32, {1});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{-2147483648LL}));
}

TEST(RuntimeKernels, ElementwiseCasts) {
  Step toInt = program({instr(Instr::INPUT, DType::F32, {}, 0),
                        instr(Instr::CAST, DType::I64, {0})});
  HostTensor out =
      runOne(toInt, {f32({4}, {1.9f, -1.9f, 0.5f, NAN})}, DType::I64, {4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, -1, 0, 0}));
  Step toBool = program({instr(Instr::INPUT, DType::F32, {}, 0),
                         instr(Instr::CAST, DType::BOOL, {0})});
  out = runOne(toBool, {f32({3}, {0.5f, 0, -2})}, DType::BOOL, {3});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 0, 1}));
  Step toFloat = program({instr(Instr::INPUT, DType::I64, {}, 0),
                          instr(Instr::CAST, DType::F32, {0})});
  out = runOne(toFloat, {i64({2}, {3, -4})}, DType::F32, {2});
  EXPECT_EQ(floats(out), (std::vector<float>{3, -4}));
}

TEST(RuntimeKernels, ElementwiseLowPrecisionRoundsToNearestEven) {
  // 1 + 2^-11 is halfway between two f16 values: ties to even (1.0).
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::CAST, DType::F16, {0})});
  HostTensor out =
      runOne(step, {f32({3}, {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 70000.0f})},
             DType::F16, {3});
  EXPECT_EQ(floats(out), (std::vector<float>{1.0f, 1.0f + 0x1p-9f, kInf}));
  // bf16: 1 + 2^-8 ties to 1, 1 + 3 * 2^-8 to 1 + 2^-6.
  Step bstep = program({instr(Instr::INPUT, DType::F32, {}, 0),
                        instr(Instr::CAST, DType::BF16, {0})});
  out = runOne(bstep, {f32({2}, {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f})},
               DType::BF16, {2});
  EXPECT_EQ(floats(out), (std::vector<float>{1.0f, 1.0f + 0x1p-6f}));
  // bf16 arithmetic: every instruction rounds to bf16.
  Step add = program({instr(Instr::INPUT, DType::BF16, {}, 0),
                      instr(Instr::INPUT, DType::BF16, {}, 1),
                      instr(Instr::ADD, DType::BF16, {0, 1})});
  out = runOne(add, {bf16({1}, {256}), bf16({1}, {1})}, DType::BF16, {1});
  EXPECT_EQ(floats(out), (std::vector<float>{256}));
}

TEST(RuntimeKernels, ElementwiseMaxMinPropagateNan) {
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::INPUT, DType::F32, {}, 1),
                       instr(Instr::MAX, DType::F32, {0, 1}),
                       instr(Instr::MIN, DType::F32, {2, 1}),
                       instr(Instr::POW, DType::F32, {3, 1})});
  HostTensor out =
      runOne(step, {f32({2}, {NAN, 3}), f32({2}, {1, 2})}, DType::F32, {2});
  EXPECT_TRUE(std::isnan(floats(out)[0]));
  EXPECT_EQ(floats(out)[1], 4.0f);
}

TEST(RuntimeKernels, ElementwiseRefusesMalformedPrograms) {
  HostTensor x = f32({2}, {1, 2});
  Step forward = program({instr(Instr::INPUT, DType::F32, {}, 0),
                          instr(Instr::ADD, DType::F32, {0, 2})});
  EXPECT_TRUE(
      contains(runError(forward, {x}, DType::F32, {2}), "not an earlier one"));
  Step badInput = program({instr(Instr::INPUT, DType::F32, {}, 3)});
  EXPECT_TRUE(
      contains(runError(badInput, {x}, DType::F32, {2}), "has 1 inputs"));
  Step wrongType = program({instr(Instr::INPUT, DType::I64, {}, 0)});
  EXPECT_TRUE(
      contains(runError(wrongType, {x}, DType::I64, {2}), "INPUT 0 is f32"));
  Step cmpNotBool = program({instr(Instr::INPUT, DType::F32, {}, 0),
                             instr(Instr::LT, DType::F32, {0, 0})});
  EXPECT_TRUE(
      contains(runError(cmpNotBool, {x}, DType::F32, {2}), "must yield bool"));
  Step copy = program({instr(Instr::INPUT, DType::F32, {}, 0)});
  EXPECT_TRUE(contains(runError(copy, {f32({3}, {1, 2, 3})}, DType::F32, {2}),
                       "does not broadcast"));
  EXPECT_TRUE(
      contains(runError(copy, {x}, DType::F16, {2}), "the output is f16"));
  EXPECT_TRUE(
      contains(runError(program({}), {x}, DType::F32, {2}), "empty program"));
}

TEST(RuntimeKernels, ElementwiseLargeParallelMatchesSerial) {
  std::vector<float> a(10007), b(10007);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i) * 0.01f;
    b[i] = 1.0f + static_cast<float>(i % 7);
  }
  Step step = program({instr(Instr::INPUT, DType::F32, {}, 0),
                       instr(Instr::INPUT, DType::F32, {}, 1),
                       instr(Instr::DIV, DType::F32, {0, 1})});
  auto par = runKernel(step, {f32({10007}, a), f32({10007}, b)},
                       {{DType::F32, {10007}}}, 4);
  auto ser = runKernel(step, {f32({10007}, a), f32({10007}, b)},
                       {{DType::F32, {10007}}}, 0);
  ASSERT_TRUE(par.ok() && ser.ok());
  EXPECT_EQ((*par)[0].bytes, (*ser)[0].bytes);
  EXPECT_FLOAT_EQ(floats((*par)[0])[10006], a[10006] / b[10006]);
}

TEST(RuntimeKernels, Swiglu) {
  HostTensor out =
      runOne(makeStep(Step::SWIGLU), {f32({2}, {0, 1}), f32({2}, {3, 2})},
             DType::F32, {2});
  expectNear(floats(out), {0, 2.0f / (1.0f + std::exp(-1.0f))});
}

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, GemmPlainAndTransposed) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor out = runOne(makeStep(Step::GEMM), {a, b}, DType::F32, {2, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{4, 5, 10, 11}));
  // The weight as [N, K] (nn.Linear): transpose_b.
  HostTensor bt = f32({2, 3}, {1, 0, 1, 0, 1, 1});
  out = runOne(makeStep(Step::GEMM, {{"transpose_b", 1}}), {a, bt}, DType::F32,
               {2, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{4, 5, 10, 11}));
  // a stored [K, M]: transpose_a.
  HostTensor at = f32({3, 2}, {1, 4, 2, 5, 3, 6});
  out = runOne(makeStep(Step::GEMM, {{"transpose_a", 1}}), {at, b}, DType::F32,
               {2, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{4, 5, 10, 11}));
}

TEST(RuntimeKernels, GemmBiasAndLinearBatch) {
  // x [2, 1, 3] @ W [3, 2] + bias [2]: a linear over leading dims.
  HostTensor x = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor w = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor bias = f32({2}, {100, 200});
  HostTensor out =
      runOne(makeStep(Step::GEMM, {{"has_bias", 1}, {"linear", 1}}),
             {x, w, bias}, DType::F32, {2, 1, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{104, 205, 110, 211}));
}

TEST(RuntimeKernels, GemmResidual) {
  // x [2, 1, 3] @ W [3, 2] = [[4, 5]], [[10, 11]]; + bias [100, 200]; + the
  // residual, element for element.
  HostTensor x = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor w = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor bias = f32({2}, {100, 200});
  HostTensor r = f32({2, 1, 2}, {0.5f, -5, 1000, 0.25f});
  HostTensor out =
      runOne(makeStep(Step::GEMM, {{"has_bias", 1}, {"has_residual", 1}}),
             {x, w, bias, r}, DType::F32, {2, 1, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{104.5f, 200, 1110, 211.25f}));
  // Without a bias the residual is the third input.
  out = runOne(makeStep(Step::GEMM, {{"has_residual", 1}}), {x, w, r},
               DType::F32, {2, 1, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{4.5f, 0, 1010, 11.25f}));
  // bf16: 1 * 256 + 1 * 1 + 1 = 258 rounded once is 258; rounding the
  // product first (257 -> 256, ties to even) and then the sum (257 -> 256)
  // would give 256.
  out =
      runOne(makeStep(Step::GEMM, {{"has_residual", 1}}),
             {bf16({1, 2}, {1, 1}), bf16({2, 1}, {256, 1}), bf16({1, 1}, {1})},
             DType::BF16, {1, 1});
  EXPECT_EQ(floats(out), (std::vector<float>{258}));
}

TEST(RuntimeKernels, GemmResidualRefusals) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  Step step = makeStep(Step::GEMM, {{"has_residual", 1}});
  EXPECT_TRUE(
      contains(runError(step, {a, b}, DType::F32, {2, 2}), "has_residual: "));
  // No broadcast: a [2] residual of a [2, 2] product is refused.
  EXPECT_TRUE(
      contains(runError(step, {a, b, f32({2}, {1, 2})}, DType::F32, {2, 2}),
               "residual of shape [2] is not the output's [2, 2]"));
  EXPECT_TRUE(contains(
      runError(step, {a, b, f16({2, 2}, {1, 2, 3, 4})}, DType::F32, {2, 2}),
      "residual and output: dtypes f16 and f32 differ"));
  // The residual in the output's memory.
  HostTensor out{DType::F32, {2, 2}, std::vector<std::byte>(16)};
  std::vector<InTensor> ins = {a.view(), b.view(),
                               InTensor{DType::F32, {2, 2}, out.bytes.data()}};
  std::vector<OutTensor> outs = {
      OutTensor{DType::F32, {2, 2}, out.bytes.data() + 4}};
  Status s = steps::checkStep(cpu::StepArgs{step, ins, outs, nullptr});
  EXPECT_TRUE(contains(s.message(), "shares memory with the output"))
      << s.message();
}

TEST(RuntimeKernels, GemmGelu) {
  // x [2, 1, 3] @ W [3, 2] = [[4, 5]], [[10, 11]]; + bias [-4, -6] gives
  // 0, -1, 6, 5; then the tanh GELU, here written from its definition
  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
  auto gelu = [](double v) {
    return 0.5 * v *
           (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  };
  HostTensor x = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor w = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor out = runOne(makeStep(Step::GEMM, {{"has_bias", 1}, {"gelu", 1}}),
                          {x, w, f32({2}, {-4, -6})}, DType::F32, {2, 1, 2});
  std::vector<float> got = floats(out);
  const double pre[] = {0, -1, 6, 5};
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(got[i], gelu(pre[i]), 1e-6) << i;
  EXPECT_NEAR(got[1], -0.158808, 1e-6); // not the erf GELU's -0.158655
  // Without a bias the GELU reads the product.
  out = runOne(makeStep(Step::GEMM, {{"gelu", 1}}), {x, w}, DType::F32,
               {2, 1, 2});
  got = floats(out);
  const double product[] = {4, 5, 10, 11};
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(got[i], gelu(product[i]), 1e-5) << i;
}

TEST(RuntimeKernels, GemmGeluRefusals) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor r = f32({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(contains(
      runError(makeStep(Step::GEMM, {{"has_residual", 1}, {"gelu", 1}}),
               {a, b, r}, DType::F32, {2, 2}),
      "gelu cannot be combined with has_residual"));
}

TEST(RuntimeKernels, RefusesStepsWithoutTheirKindsAttrs) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  Step bare = makeStep(Step::GEMM);
  bare.set_name("proj");
  bare.clear_attrs();
  EXPECT_TRUE(contains(runError(bare, {a, b}, DType::F32, {2, 2}),
                       "GEMM step 'proj' carries no GemmAttrs"));
  Step wrong = makeStep(Step::GEMM);
  wrong.set_name("proj");
  wrong.mutable_norm()->set_axis(-1);
  EXPECT_TRUE(contains(runError(wrong, {a, b}, DType::F32, {2, 2}),
                       "GEMM step 'proj' carries NormAttrs, expected "
                       "GemmAttrs"));
  Step extra = makeStep(Step::SWIGLU);
  extra.mutable_gemm();
  EXPECT_TRUE(contains(
      runError(extra, {f32({2}, {0, 1}), f32({2}, {3, 2})}, DType::F32, {2}),
      "SWIGLU step 'test' takes no attributes but carries "
      "GemmAttrs"));
}

TEST(RuntimeKernels, GemmBroadcastsBatchDims) {
  // a [2, 1, 1, 2] @ b [3, 2, 1]: batch [2, 1] x [3] -> [2, 3].
  HostTensor a = f32({2, 1, 1, 2}, {1, 2, 3, 4});
  HostTensor b = f32({3, 2, 1}, {1, 1, 1, 0, 0, 1});
  HostTensor out =
      runOne(makeStep(Step::GEMM), {a, b}, DType::F32, {2, 3, 1, 1});
  EXPECT_EQ(floats(out), (std::vector<float>{3, 1, 2, 7, 3, 4}));
}

TEST(RuntimeKernels, GemmVectorAndLowPrecision) {
  HostTensor v = f16({3}, {1, 2, 3});
  HostTensor b = f16({3, 2}, {1, 0, 0, 1, 1, 1});
  HostTensor out = runOne(makeStep(Step::GEMM), {v, b}, DType::F16, {2});
  EXPECT_EQ(floats(out), (std::vector<float>{4, 5}));
  out = runOne(makeStep(Step::GEMM),
               {bf16({1, 2}, {1, 1}), bf16({2, 1}, {256, 1})}, DType::BF16,
               {1, 1});
  EXPECT_EQ(floats(out), (std::vector<float>{256})); // 257 rounds to even
}

TEST(RuntimeKernels, GemmLargeSplitsMatchReference) {
  int64_t m = 37, k = 19, n = 53;
  std::vector<float> a(m * k), b(k * n);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = static_cast<float>((i * 7) % 11) - 5;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<float>((i * 5) % 13) - 6;
  HostTensor out = runOne(makeStep(Step::GEMM),
                          {f32({m, k}, a), f32({k, n}, b)}, DType::F32, {m, n});
  std::vector<float> got = floats(out);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float want = 0;
      for (int64_t p = 0; p < k; ++p)
        want += a[i * k + p] * b[p * n + j];
      ASSERT_EQ(got[i * n + j], want) << i << "," << j;
    }
}

TEST(RuntimeKernels, GemmRefusals) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(
      contains(runError(makeStep(Step::GEMM), {a, a}, DType::F32, {2, 3}),
               "contraction dims differ"));
  EXPECT_TRUE(contains(runError(makeStep(Step::GEMM, {{"transpose_b", 1}}),
                                {a, a}, DType::F32, {3, 3}),
                       "output has shape [3, 3], expected [2, 2]"));
  EXPECT_TRUE(contains(runError(makeStep(Step::GEMM, {{"has_bias", 1}}),
                                {a, f32({3, 2}, {1, 2, 3, 4, 5, 6})},
                                DType::F32, {2, 2}),
                       "expects 3 inputs"));
  EXPECT_TRUE(contains(runError(makeStep(Step::GEMM),
                                {i64({1, 1}, {1}), f32({1, 1}, {1})},
                                DType::F32, {1, 1}),
                       "a has dtype i64"));
}

//===----------------------------------------------------------------------===//
// ATTENTION
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, AttentionHandComputed) {
  // One query [1, 0] over keys [1, 0], [0, 1]: weights e/(e+1), 1/(e+1).
  HostTensor q = f32({1, 1, 1, 2}, {1, 0});
  HostTensor k = f32({1, 1, 2, 2}, {1, 0, 0, 1});
  HostTensor v = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  HostTensor out = runOne(makeStep(Step::ATTENTION, {}, {{"scale", 1.0}}),
                          {q, k, v}, DType::F32, {1, 1, 1, 2});
  float e = std::exp(1.0f), w0 = e / (e + 1), w1 = 1 / (e + 1);
  expectNear(floats(out), {w0 * 1 + w1 * 3, w0 * 2 + w1 * 4});
}

/// Scaled dot-product attention of one [S, D] query block over [T, D] keys
/// and values, written out from the definition: softmax(scale q k^T + mask)
/// v, where `visible(i, j)` says whether query row i sees key j (a row that
/// sees none is zero).
std::vector<float>
attentionRows(const std::vector<float> &q, const std::vector<float> &k,
              const std::vector<float> &v, int64_t s, int64_t t, int64_t d,
              double scale,
              const std::function<bool(int64_t, int64_t)> &visible) {
  std::vector<float> out(s * d, 0.0f);
  for (int64_t i = 0; i < s; ++i) {
    std::vector<double> w(t, 0.0);
    double top = -kInf, sum = 0;
    for (int64_t j = 0; j < t; ++j)
      if (visible(i, j)) {
        for (int64_t c = 0; c < d; ++c)
          w[j] += q[i * d + c] * k[j * d + c];
        w[j] *= scale;
        top = std::max(top, w[j]);
      }
    for (int64_t j = 0; j < t; ++j)
      sum += w[j] = visible(i, j) ? std::exp(w[j] - top) : 0.0;
    for (int64_t j = 0; j < t && sum > 0; ++j)
      for (int64_t c = 0; c < d; ++c)
        out[i * d + c] += static_cast<float>(w[j] / sum * v[j * d + c]);
  }
  return out;
}

TEST(RuntimeKernels, AttentionCausalAndGroupedHeads) {
  // Hq = 4 query heads over Hkv = 2: heads 0 and 1 read kv head 0, heads 2
  // and 3 kv head 1. Distinct queries and keys, so that the output depends
  // on the scores, the causal cut and the head grouping.
  const int64_t s = 3, t = 3, d = 2;
  std::vector<float> qd = {1,  2,   -1, 0.5, 0,   3,   -2, 1,  0.5, -1, 2, 2,
                           -1, 0.5, 1,  -2,  0.5, 0.5, 2,  -1, 1,   3,  0, -1};
  std::vector<float> kd = {1, -1, 0.5, 2, -1, 1, 2, 0.5, -1, -2, 0, 1};
  std::vector<float> vd = {10, 20, -5, 7, 3, -4, 1, 2, -3, 8, 6, 0.5};
  HostTensor q = f32({1, 4, s, d}, qd);
  HostTensor k = f32({1, 2, t, d}, kd);
  HostTensor v = f32({1, 2, t, d}, vd);
  auto slice = [](const std::vector<float> &x, int64_t head, int64_t n) {
    return std::vector<float>(x.begin() + head * n, x.begin() + (head + 1) * n);
  };
  auto expected = [&](int64_t rows, int64_t offset,
                      const std::vector<float> &qs) {
    std::vector<float> want;
    for (int64_t h = 0; h < 4; ++h) {
      auto rowsOut =
          attentionRows(slice(qs, h, rows * d), slice(kd, h / 2, t * d),
                        slice(vd, h / 2, t * d), rows, t, d, 0.5,
                        [&](int64_t i, int64_t j) { return j <= i + offset; });
      want.insert(want.end(), rowsOut.begin(), rowsOut.end());
    }
    return want;
  };
  HostTensor out =
      runOne(makeStep(Step::ATTENTION, {{"causal", 1}}, {{"scale", 0.5}}),
             {q, k, v}, DType::F32, {1, 4, s, d});
  expectNear(floats(out), expected(s, 0, qd));
  // Decode: S = 1 query per head against T = 3 keys sees all of them
  // (j <= 0 + (T - S)).
  std::vector<float> q1d = {1, -1, 0.5, 2, -2, 0, 1, 1};
  HostTensor q1 = f32({1, 4, 1, d}, q1d);
  out = runOne(makeStep(Step::ATTENTION, {{"causal", 1}}, {{"scale", 0.5}}),
               {q1, k, v}, DType::F32, {1, 4, 1, d});
  expectNear(floats(out), expected(1, t - 1, q1d));
}

TEST(RuntimeKernels, AttentionMaskBroadcastsAndFullyMaskedRowsAreZero) {
  std::vector<float> qd = {1, -2, 0.5, 1}, kd = {2, 1, -1, 0.5, 1, -1},
                     vd = {10, 20, -4, 6, 3, 1};
  HostTensor q = f32({1, 1, 2, 2}, qd);
  HostTensor k = f32({1, 1, 3, 2}, kd);
  HostTensor v = f32({1, 1, 3, 2}, vd);
  // Mask [S, T] broadcast to [B, H, S, T]: row 0 hides key 1; row 1 all.
  HostTensor mask = f32({2, 3}, {0, -kInf, 0, -kInf, -kInf, -kInf});
  HostTensor out =
      runOne(makeStep(Step::ATTENTION, {{"has_mask", 1}}, {{"scale", 1.0}}),
             {q, k, v, mask}, DType::F32, {1, 1, 2, 2});
  expectNear(floats(out),
             attentionRows(qd, kd, vd, 2, 3, 2, 1.0, [](int64_t i, int64_t j) {
               return i == 0 && j != 1;
             }));
}

TEST(RuntimeKernels, AttentionLowPrecisionInputs) {
  // Weights e / (e + 1) and 1 / (e + 1) on distinct keys, in bf16.
  HostTensor q = bf16({1, 1, 1, 2}, {1, 0});
  HostTensor k = bf16({1, 1, 2, 2}, {1, 0, 0, 1});
  HostTensor v = bf16({1, 1, 2, 2}, {1, 2, 3, 4});
  HostTensor out = runOne(makeStep(Step::ATTENTION, {}, {{"scale", 1.0}}),
                          {q, k, v}, DType::BF16, {1, 1, 1, 2});
  float w1 = 1 / (std::exp(1.0f) + 1);
  expectNear(floats(out), {1 + 2 * w1, 2 + 2 * w1}, 1e-2f);
}

TEST(RuntimeKernels, AttentionRefusals) {
  HostTensor q = f32({1, 3, 1, 2}, {1, 2, 3, 4, 5, 6});
  HostTensor k = f32({1, 2, 1, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(contains(runError(makeStep(Step::ATTENTION, {}, {{"scale", 1}}),
                                {q, k, k}, DType::F32, {1, 3, 1, 2}),
                       "Hq a multiple of Hkv"));
  Step bare = makeStep(Step::ATTENTION);
  bare.clear_attrs();
  EXPECT_TRUE(contains(runError(bare, {k, k, k}, DType::F32, {1, 2, 1, 2}),
                       "ATTENTION step 'test' carries no AttentionAttrs"));
}

//===----------------------------------------------------------------------===//
// Norms, softmax, rotary
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, LayerNormWithScaleAndBias) {
  // x = [1, 2, 3, 4]: mean 2.5, var 1.25.
  HostTensor out =
      runOne(makeStep(Step::LAYER_NORM, {{"axis", -1}, {"has_bias", 1}},
                      {{"epsilon", 0.0}}),
             {f32({1, 4}, {1, 2, 3, 4}), f32({4}, {1, 1, 2, 2}),
              f32({4}, {0, 0, 0, 1})},
             DType::F32, {1, 4});
  float s = 1 / std::sqrt(1.25f);
  expectNear(floats(out),
             {-1.5f * s, -0.5f * s, 2 * 0.5f * s, 2 * 1.5f * s + 1});
}

TEST(RuntimeKernels, LayerNormOverSeveralDims) {
  // axis 1 of [1, 2, 2]: normalize all four values together.
  HostTensor out = runOne(
      makeStep(Step::LAYER_NORM, {{"axis", 1}}, {{"epsilon", 0.0}}),
      {f32({1, 2, 2}, {1, 2, 3, 4}), f32({}, {1})}, DType::F32, {1, 2, 2});
  float s = 1 / std::sqrt(1.25f);
  expectNear(floats(out), {-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s});
}

TEST(RuntimeKernels, RmsNorm) {
  // rows [3, 4] and [0, 0]: rms 3.5355, eps keeps the zero row finite.
  HostTensor out =
      runOne(makeStep(Step::RMS_NORM, {{"axis", 1}}, {{"epsilon", 1e-6}}),
             {f32({2, 2}, {3, 4, 0, 0}), f32({2}, {1, 2})}, DType::F32, {2, 2});
  float r = 1 / std::sqrt(12.5f + 1e-6f);
  expectNear(floats(out), {3 * r, 8 * r, 0, 0});
  Step bare = makeStep(Step::RMS_NORM);
  bare.clear_attrs();
  EXPECT_TRUE(contains(runError(bare, {f32({1, 2}, {1, 2}), f32({2}, {1, 1})},
                                DType::F32, {1, 2}),
                       "RMS_NORM step 'test' carries no NormAttrs"));
}

TEST(RuntimeKernels, SoftmaxAlongAnAxis) {
  HostTensor x = f32({2, 2}, {0, 0, 1, 3});
  HostTensor out =
      runOne(makeStep(Step::SOFTMAX, {{"axis", -1}}), {x}, DType::F32, {2, 2});
  float e2 = std::exp(2.0f);
  expectNear(floats(out), {0.5f, 0.5f, 1 / (1 + e2), e2 / (1 + e2)});
  out = runOne(makeStep(Step::SOFTMAX, {{"axis", 0}}), {x}, DType::F32, {2, 2});
  float e1 = std::exp(1.0f), e3 = std::exp(3.0f);
  expectNear(floats(out),
             {1 / (1 + e1), 1 / (1 + e3), e1 / (1 + e1), e3 / (1 + e3)});
  // -inf entries get 0; large values do not overflow.
  out = runOne(makeStep(Step::SOFTMAX, {{"axis", 0}}),
               {f32({3}, {1000, -kInf, 1000})}, DType::F32, {3});
  expectNear(floats(out), {0.5f, 0, 0.5f});
}

TEST(RuntimeKernels, RotaryHalfAndInterleaved) {
  // x of width 6, rotary dim 4: the last 2 pass through.
  HostTensor x = f32({1, 6}, {1, 2, 3, 4, 5, 6});
  HostTensor cos = f32({1, 4}, {0, 0, 0, 0});
  HostTensor sin = f32({1, 4}, {1, 1, 1, 1});
  HostTensor out =
      runOne(makeStep(Step::ROTARY), {x, cos, sin}, DType::F32, {1, 6});
  // rotate-half of [1, 2, 3, 4] is [-3, -4, 1, 2].
  EXPECT_EQ(floats(out), (std::vector<float>{-3, -4, 1, 2, 5, 6}));
  out = runOne(makeStep(Step::ROTARY, {{"interleaved", 1}}), {x, cos, sin},
               DType::F32, {1, 6});
  // Pairs (1, 2), (3, 4) rotate to (-2, 1), (-4, 3).
  EXPECT_EQ(floats(out), (std::vector<float>{-2, 1, -4, 3, 5, 6}));
  // cos = 1, sin = 0 is the identity; cos/sin broadcast over rows.
  HostTensor x2 = f32({2, 1, 2}, {1, 2, 3, 4});
  out = runOne(makeStep(Step::ROTARY), {x2, f32({2}, {1, 1}), f32({2}, {0, 0})},
               DType::F32, {2, 1, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(contains(runError(makeStep(Step::ROTARY),
                                {x, f32({3}, {1, 1, 1}), f32({3}, {0, 0, 0})},
                                DType::F32, {1, 6}),
                       "must be even"));
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, ReduceKinds) {
  HostTensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  auto reduce = [&](int kind, Shape axes, bool keep, Shape outShape) {
    return floats(
        runOne(makeStep(Step::REDUCE, {{"kind", kind}, {"keepdims", keep}}, {},
                        {{"axes", axes}}),
               {x}, DType::F32, outShape));
  };
  EXPECT_EQ(reduce(0, {1}, false, {2}), (std::vector<float>{6, 15}));
  EXPECT_EQ(reduce(1, {0}, true, {1, 3}),
            (std::vector<float>{2.5f, 3.5f, 4.5f}));
  EXPECT_EQ(reduce(2, {0, 1}, false, {}), (std::vector<float>{6}));
  EXPECT_EQ(reduce(3, {1}, true, {2, 1}), (std::vector<float>{1, 4}));
  EXPECT_EQ(reduce(4, {1}, false, {2}), (std::vector<float>{6, 120}));
  HostTensor ids = i64({3}, {5, -2, 7});
  HostTensor out =
      runOne(makeStep(Step::REDUCE, {{"kind", 0}}, {}, {{"axes", {0}}}), {ids},
             DType::I64, {});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{10}));
  EXPECT_TRUE(contains(
      runError(makeStep(Step::REDUCE, {{"kind", 0}}, {}, {{"axes", {1, 0}}}),
               {x}, DType::F32, {}),
      "must be sorted"));
}

TEST(RuntimeKernels, CumsumExclusiveAndReverse) {
  HostTensor x = i64({2, 3}, {1, 2, 3, 4, 5, 6});
  auto cumsum = [&](int64_t axis, bool exclusive, bool reverse) {
    return ints(runOne(makeStep(Step::CUMSUM, {{"axis", axis},
                                               {"exclusive", exclusive},
                                               {"reverse", reverse}}),
                       {x}, DType::I64, {2, 3}));
  };
  EXPECT_EQ(cumsum(1, false, false), (std::vector<int64_t>{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(cumsum(-1, true, false), (std::vector<int64_t>{0, 1, 3, 0, 4, 9}));
  EXPECT_EQ(cumsum(1, false, true), (std::vector<int64_t>{6, 5, 3, 15, 11, 6}));
  EXPECT_EQ(cumsum(0, true, true), (std::vector<int64_t>{4, 5, 6, 0, 0, 0}));
  HostTensor out = runOne(makeStep(Step::CUMSUM, {{"axis", 0}}),
                          {f32({3}, {0.5f, 0.25f, 1})}, DType::F32, {3});
  EXPECT_EQ(floats(out), (std::vector<float>{0.5f, 0.75f, 1.75f}));
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, CopyReshapes) {
  HostTensor out = runOne(makeStep(Step::COPY), {i64({2, 2}, {1, 2, 3, 4})},
                          DType::I64, {4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(contains(runError(makeStep(Step::COPY),
                                {i64({2, 2}, {1, 2, 3, 4})}, DType::I64, {3}),
                       "different element counts"));
}

TEST(RuntimeKernels, Transpose) {
  HostTensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor out = runOne(makeStep(Step::TRANSPOSE, {}, {}, {{"perm", {1, 0}}}),
                          {x}, DType::F32, {3, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // [1, 2, 3] -> perm [2, 0, 1] -> [3, 1, 2].
  HostTensor y = i64({1, 2, 3}, {1, 2, 3, 4, 5, 6});
  out = runOne(makeStep(Step::TRANSPOSE, {}, {}, {{"perm", {2, 0, 1}}}), {y},
               DType::I64, {3, 1, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 4, 2, 5, 3, 6}));
  EXPECT_TRUE(
      contains(runError(makeStep(Step::TRANSPOSE, {}, {}, {{"perm", {0, 0}}}),
                        {x}, DType::F32, {2, 2}),
               "not a permutation"));
}

TEST(RuntimeKernels, SliceForwardAndBackward) {
  HostTensor x = i64({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
  HostTensor out = runOne(
      makeStep(Step::SLICE, {}, {},
               {{"starts", {0, 1}}, {"ends", {2, 4}}, {"steps", {1, 2}}}),
      {x}, DType::I64, {2, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 3, 5, 7}));
  // Negative step with end -1: through index 0 (a reversal).
  out = runOne(
      makeStep(Step::SLICE, {}, {},
               {{"starts", {1, 3}}, {"ends", {-1, -1}}, {"steps", {-1, -1}}}),
      {x}, DType::I64, {2, 4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1, 0}));
  // Step -2 from 3 down to (not including) 0: indices 3, 1.
  out = runOne(
      makeStep(Step::SLICE, {}, {},
               {{"starts", {0, 3}}, {"ends", {1, 0}}, {"steps", {1, -2}}}),
      {x}, DType::I64, {1, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(contains(
      runError(
          makeStep(Step::SLICE, {}, {},
                   {{"starts", {0, 0}}, {"ends", {2, 5}}, {"steps", {1, 1}}}),
          {x}, DType::I64, {2, 5}),
      "0 <= start <= end <= dim"));
}

TEST(RuntimeKernels, Concat) {
  HostTensor a = f32({2, 1}, {1, 2}), b = f32({2, 2}, {3, 4, 5, 6});
  HostTensor out = runOne(makeStep(Step::CONCAT, {{"axis", -1}}), {a, b},
                          DType::F32, {2, 3});
  EXPECT_EQ(floats(out), (std::vector<float>{1, 3, 4, 2, 5, 6}));
  out =
      runOne(makeStep(Step::CONCAT, {{"axis", 0}}), {b, b}, DType::F32, {4, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{3, 4, 5, 6, 3, 4, 5, 6}));
  EXPECT_TRUE(contains(runError(makeStep(Step::CONCAT, {{"axis", 0}}), {a, b},
                                DType::F32, {4, 1}),
                       "does not match the others"));
}

TEST(RuntimeKernels, TileAndBroadcast) {
  HostTensor x = i64({1, 2}, {1, 2});
  HostTensor out = runOne(makeStep(Step::TILE, {}, {}, {{"repeats", {2, 2}}}),
                          {x}, DType::I64, {2, 4});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 2, 1, 2, 1, 2, 1, 2}));
  out = runOne(makeStep(Step::BROADCAST), {i64({2, 1}, {1, 2})}, DType::I64,
               {2, 2, 3});
  EXPECT_EQ(ints(out),
            (std::vector<int64_t>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}));
  EXPECT_TRUE(
      contains(runError(makeStep(Step::BROADCAST), {x}, DType::I64, {3}),
               "does not broadcast"));
}

TEST(RuntimeKernels, Trilu) {
  HostTensor x = f32({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  HostTensor out =
      runOne(makeStep(Step::TRILU, {{"upper", 1}}), {x}, DType::F32, {3, 3});
  EXPECT_EQ(floats(out), (std::vector<float>{1, 2, 3, 0, 5, 6, 0, 0, 9}));
  out = runOne(makeStep(Step::TRILU, {{"upper", 0}, {"k", -1}}), {x},
               DType::F32, {3, 3});
  EXPECT_EQ(floats(out), (std::vector<float>{0, 0, 0, 4, 0, 0, 7, 8, 0}));
  HostTensor b = boolean({2, 2}, {1, 1, 1, 1});
  out = runOne(makeStep(Step::TRILU, {{"upper", 1}, {"k", 1}}), {b},
               DType::BOOL, {2, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{0, 1, 0, 0}));
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, Embedding) {
  HostTensor table = f32({3, 2}, {0, 1, 10, 11, 20, 21});
  HostTensor out =
      runOne(makeStep(Step::EMBEDDING), {table, i64({2, 2}, {2, 0, 1, 2})},
             DType::F32, {2, 2, 2});
  EXPECT_EQ(floats(out), (std::vector<float>{20, 21, 0, 1, 10, 11, 20, 21}));
  std::string err = runError(makeStep(Step::EMBEDDING), {table, i64({1}, {3})},
                             DType::F32, {1, 2});
  EXPECT_TRUE(contains(err, "index 3")) << err;
  EXPECT_TRUE(contains(err, "out of range")) << err;
}

TEST(RuntimeKernels, GatherAlongAnAxis) {
  HostTensor data = i64({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor out = runOne(makeStep(Step::GATHER, {{"axis", 1}}),
                          {data, i32({2}, {-1, 0})}, DType::I64, {2, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{3, 1, 6, 4}));
  // A scalar index drops the axis.
  out = runOne(makeStep(Step::GATHER, {{"axis", 0}}), {data, i64({}, {1})},
               DType::I64, {3});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_TRUE(contains(runError(makeStep(Step::GATHER, {{"axis", 0}}),
                                {data, i64({1}, {-3})}, DType::I64, {1, 3}),
                       "out of range"));
}

TEST(RuntimeKernels, GatherNd) {
  HostTensor data = i64({2, 2}, {0, 1, 2, 3});
  HostTensor out = runOne(makeStep(Step::GATHER_ND),
                          {data, i64({2, 2}, {0, 0, 1, 1})}, DType::I64, {2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{0, 3}));
  out = runOne(makeStep(Step::GATHER_ND), {data, i64({2, 1}, {1, 0})},
               DType::I64, {2, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{2, 3, 0, 1}));
  // batch_dims 1: row b indexes data[b].
  out = runOne(makeStep(Step::GATHER_ND, {{"batch_dims", 1}}),
               {data, i64({2, 1}, {1, 0})}, DType::I64, {2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 2}));
}

TEST(RuntimeKernels, GatherElements) {
  HostTensor data = i64({2, 2}, {1, 2, 3, 4});
  HostTensor out =
      runOne(makeStep(Step::GATHER_ELEMENTS, {{"axis", 1}}),
             {data, i64({2, 2}, {0, 0, 1, 0})}, DType::I64, {2, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{1, 1, 4, 3}));
  out = runOne(makeStep(Step::GATHER_ELEMENTS, {{"axis", 0}}),
               {data, i64({1, 2}, {1, -2})}, DType::I64, {1, 2});
  EXPECT_EQ(ints(out), (std::vector<int64_t>{3, 2}));
}

//===----------------------------------------------------------------------===//
// Multi-rank steps and dispatch
//===----------------------------------------------------------------------===//

TEST(RuntimeKernels, MultiRankStepsAreRefusedWithoutATransport) {
  // RuntimeCollectivesTest runs them over a transport.
  HostTensor x = f32({1}, {1});
  auto collective = runKernel(
      makeStep(Step::COLLECTIVE, {{"op", 0}}, {}, {{"group", {0, 1}}}), {x},
      {{DType::F32, {1}}});
  auto send = runKernel(makeStep(Step::SEND, {{"peer", 1}}), {x}, {});
  auto recv =
      runKernel(makeStep(Step::RECV, {{"peer", 1}}), {}, {{DType::F32, {1}}});
  for (auto *r : {&collective, &send, &recv}) {
    ASSERT_FALSE(r->ok());
    EXPECT_TRUE(contains(r->message(), "needs other ranks, and this rank "
                                       "runs alone (no transport)"))
        << r->message();
  }
  EXPECT_TRUE(
      contains(runError(makeStep(Step::KIND_UNSPECIFIED), {}, DType::F32, {1}),
               "unknown step kind"));
}

//===----------------------------------------------------------------------===//
// The thread pool under the kernels
//===----------------------------------------------------------------------===//

TEST(RuntimeThreadPool, CoversEveryIndexOnceAndRethrows) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  for (int round = 0; round < 3; ++round)
    pool.parallelFor(1000, 7, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        ++hits[i];
      // A nested loop runs serially instead of deadlocking.
      pool.parallelFor(2, 1, [](int64_t, int64_t) {});
    });
  for (const auto &h : hits)
    ASSERT_EQ(h.load(), 3);
  EXPECT_THROW(pool.parallelFor(100, 1,
                                [](int64_t begin, int64_t) {
                                  if (begin >= 50)
                                    throw std::runtime_error("boom");
                                }),
               std::runtime_error);
  int64_t total = 0;
  pool.parallelFor(10, 1, [&](int64_t b, int64_t e) {
    static std::mutex m;
    std::lock_guard<std::mutex> lock(m);
    total += e - b;
  });
  EXPECT_EQ(total, 10);
}
