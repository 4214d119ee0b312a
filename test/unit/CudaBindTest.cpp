// Bind-time refusals of the CUDA library kernels. A refusal is decided on
// the host alone (no CUDA call), so these run without a GPU.
#include "runtime/backends/cuda/CudaStep.h"
#include "test/unit/RuntimeTestUtil.h"

#include <gtest/gtest.h>

namespace weft::runtime::test {
namespace {

using artifact::Step;
using cuda::DeviceTensor;

/// A fake device address: refusals never dereference it.
void *fakeDevicePointer() {
  alignas(256) static std::byte storage[256];
  return storage;
}

std::string bindError(const Step &step, std::vector<DeviceTensor> in,
                      std::vector<DeviceTensor> out) {
  for (DeviceTensor &t : in)
    t.data = fakeDevicePointer();
  for (DeviceTensor &t : out)
    t.data = fakeDevicePointer();
  auto bound = cuda::bindLibraryStep(step, in, out);
  EXPECT_FALSE(bound.ok());
  return bound.ok() ? "" : bound.message();
}

TEST(CudaBind, RefusesKindsTheExecutorRuns) {
  for (Step::Kind kind : {Step::ELEMENTWISE, Step::GEMM, Step::COPY,
                          Step::COLLECTIVE, Step::SEND, Step::RECV}) {
    std::string err =
        bindError(makeStep(kind), {{DType::F32, {4}}}, {{DType::F32, {4}}});
    EXPECT_NE(err.find(Step::Kind_Name(kind) + " step 'test'"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("not a library step"), std::string::npos) << err;
  }
}

TEST(CudaBind, RefusesUnknownKind) {
  Step step = makeStep(Step::KIND_UNSPECIFIED);
  step.set_kind(static_cast<Step::Kind>(99));
  std::string err = bindError(step, {}, {});
  EXPECT_NE(err.find("unknown step kind 99"), std::string::npos) << err;
}

TEST(CudaBind, RefusesWhatTheCpuChecksRefuse) {
  // Integer attention operands: the reason names the operand.
  std::string err = bindError(makeStep(Step::ATTENTION, {}, {{"scale", 1.0}}),
                              {{DType::I32, {1, 2, 3, 4}},
                               {DType::F32, {1, 2, 3, 4}},
                               {DType::F32, {1, 2, 3, 4}}},
                              {{DType::F32, {1, 2, 3, 4}}});
  EXPECT_NE(err.find("ATTENTION step 'test': q has dtype i32"),
            std::string::npos)
      << err;
  // A step without its kind's attributes.
  Step bare = makeStep(Step::RMS_NORM);
  bare.clear_attrs();
  err = bindError(bare, {{DType::BF16, {2, 8}}, {DType::BF16, {8}}},
                  {{DType::BF16, {2, 8}}});
  EXPECT_NE(err.find("RMS_NORM step 'test' carries no NormAttrs"),
            std::string::npos)
      << err;
  // A wrong output shape.
  err = bindError(makeStep(Step::TRANSPOSE, {}, {}, {{"perm", {1, 0}}}),
                  {{DType::F16, {2, 3}}}, {{DType::F16, {2, 3}}});
  EXPECT_NE(err.find("output has shape [2, 3], expected [3, 2]"),
            std::string::npos)
      << err;
}

TEST(CudaBind, RefusesHeadDimsNoKernelTakes) {
  // f32 runs on the row kernel, which holds at most 256 dims per row.
  std::string err = bindError(makeStep(Step::ATTENTION, {}, {{"scale", 1.0}}),
                              {{DType::F32, {1, 2, 3, 300}},
                               {DType::F32, {1, 2, 3, 300}},
                               {DType::F32, {1, 2, 3, 300}}},
                              {{DType::F32, {1, 2, 3, 300}}});
  EXPECT_NE(err.find("head dims 300 (q, k) and 300 (v)"), std::string::npos)
      << err;
}

TEST(CudaBind, RefusesIndexMapsBeyondTheKernelRank) {
  // A rank-9 transpose whose dims cannot be merged.
  Shape in{2, 3, 2, 3, 2, 3, 2, 3, 2}, perm{8, 7, 6, 5, 4, 3, 2, 1, 0}, out;
  for (int64_t p : perm)
    out.push_back(in[p]);
  std::string err =
      bindError(makeStep(Step::TRANSPOSE, {}, {}, {{"perm", perm}}),
                {{DType::F32, in}}, {{DType::F32, out}});
  EXPECT_NE(err.find("exceeds the kernels' limit of 8"), std::string::npos)
      << err;
}

TEST(CudaBind, BindsValidStepsWithoutTheGpu) {
  // Binding computes launch parameters on the host; only ATTENTION's
  // tensor-core kernel touches the runtime (its shared memory limit).
  struct Valid {
    Step step;
    std::vector<DeviceTensor> in, out;
  };
  const std::vector<Valid> steps = {
      {makeStep(Step::ATTENTION, {{"causal", 1}}, {{"scale", 0.5}}),
       {{DType::F32, {1, 4, 3, 8}},
        {DType::F32, {1, 2, 5, 8}},
        {DType::F32, {1, 2, 5, 8}}},
       {{DType::F32, {1, 4, 3, 8}}}},
      {makeStep(Step::RMS_NORM, {{"axis", -1}}, {{"epsilon", 1e-5}}),
       {{DType::BF16, {2, 8}}, {DType::F32, {8}}},
       {{DType::BF16, {2, 8}}}},
      {makeStep(Step::ROTARY, {{"interleaved", 1}}),
       {{DType::F16, {2, 3, 8}}, {DType::F16, {3, 8}}, {DType::F16, {3, 8}}},
       {{DType::F16, {2, 3, 8}}}},
      {makeStep(Step::SOFTMAX, {{"axis", 0}}),
       {{DType::F32, {4, 5}}},
       {{DType::F32, {4, 5}}}},
      {makeStep(Step::SWIGLU),
       {{DType::BF16, {6}}, {DType::BF16, {6}}},
       {{DType::BF16, {6}}}},
      {makeStep(Step::EMBEDDING, {{"vocab_start", 10}}),
       {{DType::BF16, {10, 4}}, {DType::I64, {3}}},
       {{DType::BF16, {3, 4}}}},
      {makeStep(Step::GATHER_ND, {{"batch_dims", 1}}),
       {{DType::F32, {2, 3, 4}}, {DType::I32, {2, 1}}},
       {{DType::F32, {2, 4}}}},
      {makeStep(Step::REDUCE, {{"kind", 2}}, {}, {{"axes", {0, 2}}}),
       {{DType::I32, {2, 3, 4}}},
       {{DType::I32, {3}}}},
      {makeStep(Step::TRANSPOSE, {}, {}, {{"perm", {2, 0, 1}}}),
       {{DType::F16, {2, 3, 4}}},
       {{DType::F16, {4, 2, 3}}}},
      {makeStep(Step::CONCAT, {{"axis", 1}}),
       {{DType::U8, {2, 3}}, {DType::U8, {2, 0}}, {DType::U8, {2, 1}}},
       {{DType::U8, {2, 4}}}},
      {makeStep(Step::TILE, {}, {}, {{"repeats", {3, 1}}}),
       {{DType::I64, {2, 5}}},
       {{DType::I64, {6, 5}}}},
  };
  for (const Valid &v : steps) {
    std::vector<DeviceTensor> in = v.in, out = v.out;
    for (DeviceTensor &t : in)
      t.data = fakeDevicePointer();
    for (DeviceTensor &t : out)
      t.data = fakeDevicePointer();
    auto bound = cuda::bindLibraryStep(v.step, in, out);
    EXPECT_TRUE(bound.ok())
        << Step::Kind_Name(v.step.kind()) << ": " << bound.message();
  }
}

} // namespace
} // namespace weft::runtime::test
