// The CPU reference kernels: one per plan step kind.
#ifndef WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
#define WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/exec/Tensor.h"
#include "runtime/support/Status.h"
#include "runtime/support/ThreadPool.h"

#include <span>

namespace weft::runtime::comm {
class Transport;
} // namespace weft::runtime::comm

namespace weft::runtime::cpu {

/// A step with its operands bound. Outputs never overlap inputs (the
/// executor stages an overlapping output elsewhere).
struct StepArgs {
  const artifact::Step &step;
  std::span<const InTensor> inputs;
  std::span<const OutTensor> outputs;
  ThreadPool *pool = nullptr;      // null: run serially
  comm::Transport *comm = nullptr; // COLLECTIVE, SEND, RECV; null: alone
};

/// Checks arity, dtypes, shapes and attributes without touching data.
Status checkStep(const StepArgs &args);

/// Converts n elements between float dtypes (or copies within one dtype),
/// rounding to nearest even.
void convertElements(DType from, const std::byte *src, DType to, std::byte *dst,
                     int64_t n);

/// out[i] = parts[0][i] + parts[1][i] + ..., added in that order: f32 and
/// f64 in their own type, f16 and bf16 in f32 and rounded once, integers
/// wrapped to their width, BOOL as a logical or. `out` may be one of the
/// parts.
void sumElements(DType dtype, std::span<const std::byte *const> parts,
                 std::byte *out, int64_t n);

/// Checks, then computes the step's outputs. Data-dependent errors (an
/// index out of range) are returned too.
Status runStep(const StepArgs &args);

} // namespace weft::runtime::cpu

#endif // WEFT_RUNTIME_BACKENDS_CPU_CPUKERNELS_H
