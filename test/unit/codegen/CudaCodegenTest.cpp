// Tests of GPU kernel generation without a GPU: the generated kernels,
// compiled for the host (build time), run on random inputs and are compared
// with the CPU interpreter; deduplication, targets and NVRTC compilation.
#include "ElementwiseCases.h"

#include "compiler/codegen/CudaCodegen.h"
#include "compiler/codegen/CudaHostShim.h"
#include "runtime/artifact/DType.h"
#include "runtime/backends/cpu/CpuSupport.h"
#include "runtime/support/AlignedBuffer.h"
#include "runtime/support/Float16.h"

#include "llvm/Support/FormatVariadic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace weft::codegen_test;
using namespace weft::runtime;
using mlir::weft::ElementwiseSpec;
using mlir::weft::KernelModuleBuilder;
using mlir::weft::KernelOperand;
using weft::artifact::Instr;
namespace art = weft::artifact;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

//===----------------------------------------------------------------------===//
// Operands
//===----------------------------------------------------------------------===//

/// Bytes of a tensor at `offset` into a 64-byte aligned buffer (an offset
/// of one element misaligns it for the 16-byte path).
struct Tensor {
  art::DType dtype;
  Shape shape;
  AlignedBuffer storage;
  size_t offset = 0;

  std::byte *data() { return storage.data() + offset; }
  int64_t numel() const { return numElements(shape); }
};

Tensor makeTensor(const KernelOperand &op, size_t offset) {
  Tensor t{op.dtype, op.shape, {}, offset};
  t.storage.resize(offset + t.numel() * dtypeSize(op.dtype) + 16);
  return t;
}

void fillRandom(Tensor &t, std::mt19937 &rng) {
  fillRandomElements(t.dtype, t.data(), t.numel(), rng);
}

//===----------------------------------------------------------------------===//
// Running and comparing
//===----------------------------------------------------------------------===//

/// The launch the CUDA runtime would make, one (block, thread) at a time.
void launch(HostKernelCall call, void *out, const void *const *in,
            unsigned grid) {
  gridDim.x = grid;
  blockDim.x = 256;
  for (unsigned b = 0; b < grid; ++b)
    for (unsigned t = 0; t < 256; ++t) {
      blockIdx.x = b;
      threadIdx.x = t;
      call(out, in);
    }
}

/// The ulp-scale tolerance of a float dtype's rounding.
double relativeTolerance(art::DType d) {
  switch (d) {
  case art::BF16:
    return 0x1p-7;
  case art::F16:
    return 0x1p-10;
  default:
    return 4e-6;
  }
}

/// Element i of `got` and `want` agree: bit-equal values (NaN with NaN), or
/// close for an inexact case.
bool agree(art::DType d, const std::byte *got, const std::byte *want, int64_t i,
           bool exact, std::string &shown) {
  if (!isFloatDType(d)) {
    int64_t g = cpu::loadInt(d, got, i), w = cpu::loadInt(d, want, i);
    shown = llvm::formatv("{0} (interpreter {1})", g, w).str();
    return g == w;
  }
  double g = cpu::loadDouble(d, got, i), w = cpu::loadDouble(d, want, i);
  shown = llvm::formatv("{0} (interpreter {1})", g, w).str();
  if (std::isnan(g) || std::isnan(w))
    return std::isnan(g) && std::isnan(w);
  if (exact || std::isinf(g) || std::isinf(w))
    return g == w && std::signbit(g) == std::signbit(w);
  return std::fabs(g - w) <= 1e-6 + relativeTolerance(d) * std::fabs(w);
}

const HostKernel *hostKernelOf(const std::string &caseName) {
  for (size_t i = 0; i < kNumHostKernels; ++i)
    if (caseName == kHostKernels[i].caseName)
      return &kHostKernels[i];
  return nullptr;
}

/// Runs a case's kernel on random inputs with several grids, aligned and
/// misaligned, against the interpreter; every mismatch is a failure, the
/// first few shown.
void checkCase(const ElementwiseCase &c) {
  SCOPED_TRACE(std::string("case ").append(c.name));
  const HostKernel *kernel = hostKernelOf(c.name);
  ASSERT_NE(kernel, nullptr) << "no generated kernel";
  std::mt19937 rng(std::hash<std::string>()(c.name) & 0xffffffff);
  art::Step step;
  step.set_kind(art::Step::ELEMENTWISE);
  for (const Instr &in : c.spec.program)
    *step.add_program() = in;
  for (size_t misalign : {size_t(0), size_t(1)}) {
    std::vector<Tensor> inputs;
    for (const KernelOperand &op : c.spec.inputs) {
      inputs.push_back(makeTensor(op, misalign * dtypeSize(op.dtype)));
      fillRandom(inputs.back(), rng);
    }
    Tensor want =
        makeTensor(c.spec.output, misalign * dtypeSize(c.spec.output.dtype));
    std::vector<InTensor> views;
    std::vector<const void *> pointers;
    for (Tensor &t : inputs) {
      views.push_back({t.dtype, t.shape, t.data()});
      pointers.push_back(t.data());
    }
    std::vector<OutTensor> outs = {{want.dtype, want.shape, want.data()}};
    Status s = cpu::runStep(cpu::StepArgs{step, views, outs});
    ASSERT_TRUE(s.ok()) << s.message();
    int64_t n = want.numel();
    unsigned runtimeGrid = std::min<int64_t>((n + 1023) / 1024, 65535);
    for (unsigned grid : {1u, 3u, std::max(runtimeGrid, 1u)}) {
      Tensor got =
          makeTensor(c.spec.output, misalign * dtypeSize(c.spec.output.dtype));
      std::memset(got.storage.data(), 0xa5, got.storage.size());
      launch(kernel->call, got.data(), pointers.data(), grid);
      int mismatches = 0;
      std::string first;
      for (int64_t i = 0; i < n; ++i) {
        std::string shown;
        if (agree(want.dtype, got.data(), want.data(), i, c.exact, shown))
          continue;
        if (++mismatches <= 4) {
          first += llvm::formatv("\n  [{0}] = {1}; inputs", i, shown).str();
          // The inputs at the same linear index where they are full-size.
          for (Tensor &t : inputs)
            if (t.numel() == n)
              first.append(" ").append(
                  isFloatDType(t.dtype)
                      ? std::to_string(cpu::loadDouble(t.dtype, t.data(), i))
                      : std::to_string(cpu::loadInt(t.dtype, t.data(), i)));
        }
      }
      EXPECT_EQ(mismatches, 0)
          << mismatches << " of " << n << " elements differ (grid " << grid
          << ", " << (misalign ? "misaligned" : "aligned") << ")" << first;
      // Nothing written past the output.
      const std::byte *end = got.data() + n * dtypeSize(got.dtype);
      for (const std::byte *p = end;
           p < got.storage.data() + got.storage.size(); ++p)
        ASSERT_EQ(*p, std::byte{0xa5}) << "a write past the output";
    }
  }
}

} // namespace

TEST(CudaCodegen, HostKernelsMatchTheInterpreter) {
  ASSERT_EQ(kNumHostKernels, elementwiseCases().size());
  for (const ElementwiseCase &c : elementwiseCases())
    checkCase(c);
}

TEST(CudaCodegen, VectorPathWhereExpected) {
  for (const ElementwiseCase &c : elementwiseCases()) {
    if (!c.vector)
      continue;
    std::string text;
    llvm::raw_string_ostream os(text);
    mlir::weft::emitElementwiseKernel(c.spec, "k", os);
    EXPECT_TRUE(contains(text, "WfVec<")) << c.name << ":\n" << text;
  }
  // An odd innermost dim has none.
  const ElementwiseCase *odd = nullptr;
  for (const ElementwiseCase &c : elementwiseCases())
    if (c.name == "add_f32_row")
      odd = &c;
  ASSERT_NE(odd, nullptr);
  std::string text;
  llvm::raw_string_ostream os(text);
  mlir::weft::emitElementwiseKernel(odd->spec, "k", os);
  EXPECT_FALSE(contains(text, "WfVec<")) << text;
}

//===----------------------------------------------------------------------===//
// Modules, deduplication, refusals
//===----------------------------------------------------------------------===//

namespace {
ElementwiseSpec addSpec(art::DType d, std::vector<int64_t> shape) {
  ElementwiseSpec spec;
  Instr a, b, add;
  a.set_op(Instr::INPUT);
  a.set_dtype(d);
  b = a;
  b.set_index(1);
  add.set_op(Instr::ADD);
  add.set_dtype(d);
  add.add_args(0);
  add.add_args(1);
  spec.program = {a, b, add};
  spec.inputs = {{d, shape}, {d, shape}};
  spec.output = {d, shape};
  return spec;
}
} // namespace

TEST(CudaCodegen, IdenticalStepsShareAKernel) {
  KernelModuleBuilder builder;
  auto k0 = builder.addElementwise(addSpec(art::F32, {4, 8}), "step a");
  auto k1 = builder.addElementwise(addSpec(art::F32, {4, 8}), "step b");
  auto k2 = builder.addElementwise(addSpec(art::F32, {4, 9}), "step c");
  auto k3 = builder.addElementwise(addSpec(art::BF16, {4, 8}), "step d");
  ASSERT_TRUE(k0 && k1 && k2 && k3);
  EXPECT_EQ(*k0, "weft_ew_0");
  EXPECT_EQ(*k1, *k0);
  EXPECT_EQ(*k2, "weft_ew_1");
  EXPECT_EQ(*k3, "weft_ew_2");
  EXPECT_EQ(builder.numKernels(), 3u);
  std::string src = builder.source();
  EXPECT_TRUE(contains(src, "// Runs step a, step b.\nextern \"C\" __global__ "
                            "void weft_ew_0(void *out_, const void *in0_, "
                            "const void *in1_) {"))
      << src;
  // A different program over the same operands is another kernel.
  ElementwiseSpec sub = addSpec(art::F32, {4, 8});
  sub.program[2].set_op(Instr::SUB);
  auto k4 = builder.addElementwise(sub, "step e");
  ASSERT_TRUE(bool(k4));
  EXPECT_EQ(*k4, "weft_ew_3");
}

TEST(CudaCodegen, RefusesWhatTheInterpreterRefuses) {
  KernelModuleBuilder builder;
  ElementwiseSpec spec = addSpec(art::F32, {4, 8});
  spec.program[1].set_index(2);
  auto k = builder.addElementwise(spec, "step 'x' of rank 1");
  ASSERT_FALSE(bool(k));
  std::string msg = llvm::toString(k.takeError());
  EXPECT_TRUE(contains(msg, "cannot generate a kernel for step 'x' of rank 1"))
      << msg;
  EXPECT_TRUE(contains(msg, "INPUT 2 but the step has 2 inputs")) << msg;

  spec = addSpec(art::F32, {4, 8});
  spec.inputs[1].shape = {3};
  k = builder.addElementwise(spec, "s");
  ASSERT_FALSE(bool(k));
  EXPECT_TRUE(contains(llvm::toString(k.takeError()), "does not broadcast"));
  EXPECT_EQ(builder.numKernels(), 0u);
}

TEST(CudaCodegen, ElementwiseStepsHaveOneOutput) {
  art::Plan plan;
  for (uint32_t id = 0; id < 3; ++id) {
    art::Buffer *b = plan.add_buffers();
    b->set_id(id);
    b->set_dtype(art::F32);
    b->add_shape(4);
  }
  art::Step step;
  step.set_kind(art::Step::ELEMENTWISE);
  step.add_inputs(0);
  step.add_outputs(1);
  step.add_outputs(2);
  auto spec = mlir::weft::elementwiseSpecOf(plan, step);
  ASSERT_FALSE(bool(spec));
  EXPECT_TRUE(
      contains(llvm::toString(spec.takeError()), "one output, the step has 2"));
}

TEST(CudaCodegen, Targets) {
  auto a = mlir::weft::parseGpuArch("sm_90a");
  ASSERT_TRUE(bool(a));
  EXPECT_EQ(a->name, "sm_90a");
  EXPECT_EQ(a->virtualName, "compute_90");
  EXPECT_EQ(a->computeCapability, 90u);
  auto b = mlir::weft::parseGpuArch("sm_80");
  ASSERT_TRUE(bool(b));
  EXPECT_EQ(b->virtualName, "compute_80");
  for (const char *bad :
       {"gpu", "sm_75", "sm_", "sm_9x", "compute_90", "H100"}) {
    auto r = mlir::weft::parseGpuArch(bad);
    ASSERT_FALSE(bool(r)) << bad;
    EXPECT_TRUE(
        contains(llvm::toString(r.takeError()), "is not a GPU architecture"))
        << bad;
  }
}

//===----------------------------------------------------------------------===//
// NVRTC (builds with the CUDA toolkit)
//===----------------------------------------------------------------------===//

#ifdef WEFT_TEST_NVRTC
TEST(CudaCodegen, NvrtcCompilesEveryCase) {
  // Every case for sm_90a; every fourth for sm_80 (NVRTC takes tens of
  // milliseconds a kernel).
  for (auto [name, every] :
       {std::pair<const char *, size_t>{"sm_90a", 1}, {"sm_80", 4}}) {
    KernelModuleBuilder builder;
    for (auto [i, c] : llvm::enumerate(elementwiseCases()))
      if (i % every == 0) {
        ASSERT_TRUE(bool(builder.addElementwise(c.spec, c.name)));
      }
    std::string src = builder.source();
    auto arch = mlir::weft::parseGpuArch(name);
    ASSERT_TRUE(bool(arch));
    auto out = mlir::weft::compileKernelModule(builder, src, *arch);
    ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
    ASSERT_GE(out->cubin.size(), 4u);
    EXPECT_EQ(out->cubin.substr(0, 4), "\x7f"
                                       "ELF");
    std::string target =
        std::string(".target sm_")
            .append(arch->virtualName.substr(std::string("compute_").size()));
    EXPECT_TRUE(contains(out->ptx, target)) << out->ptx.substr(0, 400);
    for (size_t i = 0; i < builder.numKernels(); ++i)
      EXPECT_TRUE(contains(out->ptx, llvm::formatv(".entry weft_ew_{0}(", i)))
          << i;
  }
}

TEST(CudaCodegen, NvrtcErrorsNameTheStep) {
  KernelModuleBuilder builder;
  ASSERT_TRUE(bool(builder.addElementwise(addSpec(art::F32, {8}), "step a")));
  ASSERT_TRUE(bool(builder.addElementwise(addSpec(art::I32, {8}), "step b")));
  std::string src = builder.source();
  // Break the second kernel's body.
  size_t at = src.find("{\n", src.find("weft_ew_1("));
  ASSERT_NE(at, std::string::npos);
  src.insert(at + 2, "  this is not C++;\n");
  auto arch = mlir::weft::parseGpuArch("sm_90a");
  auto out = mlir::weft::compileKernelModule(builder, src, *arch);
  ASSERT_FALSE(bool(out));
  std::string msg = llvm::toString(out.takeError());
  EXPECT_TRUE(contains(msg, "in the kernel of step b")) << msg;
  EXPECT_TRUE(contains(msg, "kernels.cu(")) << msg; // NVRTC's log
}

namespace {
/// A plan of one ELEMENTWISE step (in0 + in1 over `shape`) and a GEMM.
art::Plan planWithAdd(std::vector<int64_t> shape) {
  art::Plan plan;
  for (uint32_t id = 0; id < 3; ++id) {
    art::Buffer *b = plan.add_buffers();
    b->set_id(id);
    b->set_dtype(art::F32);
    for (int64_t d : shape)
      b->add_shape(d);
  }
  art::Step *s = plan.add_steps();
  s->set_kind(art::Step::ELEMENTWISE);
  s->set_name("fused_add");
  s->add_inputs(0);
  s->add_inputs(1);
  s->add_outputs(2);
  for (const Instr &in : addSpec(art::F32, shape).program)
    *s->add_program() = in;
  art::Step *g = plan.add_steps();
  g->set_kind(art::Step::GEMM);
  g->mutable_gemm();
  return plan;
}
} // namespace

TEST(CudaCodegen, GenerateKernelsNamesStepsAcrossRanks) {
  std::vector<art::Plan> plans = {planWithAdd({4, 8}), planWithAdd({4, 8}),
                                  planWithAdd({2, 8})};
  auto arch = mlir::weft::parseGpuArch("sm_80");
  auto gen = mlir::weft::generateKernels(plans, *arch);
  ASSERT_TRUE(bool(gen)) << llvm::toString(gen.takeError());
  EXPECT_EQ(gen->numKernels, 2u);
  EXPECT_EQ(gen->numSteps, 3u);
  EXPECT_EQ(plans[0].steps(0).kernel(), "weft_ew_0");
  EXPECT_EQ(plans[1].steps(0).kernel(), "weft_ew_0");
  EXPECT_EQ(plans[2].steps(0).kernel(), "weft_ew_1");
  EXPECT_EQ(plans[0].steps(1).kernel(), "");
  EXPECT_TRUE(contains(gen->source, "// Runs step 0 'fused_add' of rank 0, "
                                    "step 0 'fused_add' of rank 1."));
  EXPECT_EQ(gen->cubin.substr(0, 4), "\x7f"
                                     "ELF");
}

TEST(CudaCodegen, GenerateKernelsLeavesPlansOnFailure) {
  std::vector<art::Plan> plans = {planWithAdd({4, 8})};
  std::string dir = ::testing::TempDir() + "/no-cuda-here";
  const char *old = getenv("CUDA_HOME");
  std::string saved = old ? old : "";
  setenv("CUDA_HOME", dir.c_str(), 1);
  auto arch = mlir::weft::parseGpuArch("sm_90a");
  auto gen = mlir::weft::generateKernels(plans, *arch);
  if (old)
    setenv("CUDA_HOME", saved.c_str(), 1);
  else
    unsetenv("CUDA_HOME");
  ASSERT_FALSE(bool(gen));
  EXPECT_TRUE(contains(llvm::toString(gen.takeError()), "has no cuda_fp16.h"));
  EXPECT_EQ(plans[0].steps(0).kernel(), "");
}
#endif
