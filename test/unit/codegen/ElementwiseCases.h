// ELEMENTWISE programs whose generated kernels are checked against the CPU
// interpreter: every Instr op, broadcasts, vector and scalar paths, every
// dtype.
#ifndef WEFT_TEST_UNIT_CODEGEN_ELEMENTWISECASES_H
#define WEFT_TEST_UNIT_CODEGEN_ELEMENTWISECASES_H

#include "compiler/codegen/ElementwiseKernel.h"

#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace weft::codegen_test {

struct ElementwiseCase {
  std::string name;
  mlir::weft::ElementwiseSpec spec;
  /// Bit-equal to the interpreter (basic arithmetic, casts, integers);
  /// else within a few ulp (transcendental functions in float).
  bool exact = true;
  /// Whether the kernel must have the 16-byte vector path.
  bool vector = false;
};

/// The cases, each name unique.
const std::vector<ElementwiseCase> &elementwiseCases();

/// n random elements of `dtype`: floats mostly in [-4, 4], integers in their
/// range, with edge values (0, -0, inf, NaN, extremes) among them.
void fillRandomElements(weft::artifact::DType dtype, std::byte *data, int64_t n,
                        std::mt19937 &rng);

/// A generated host kernel: calls the kernel with inputs in[0..n).
using HostKernelCall = void (*)(void *out, const void *const *in);
struct HostKernel {
  const char *caseName;
  const char *kernel;
  HostKernelCall call;
};

/// Defined by the source weft-gen-host-kernels writes at build time.
extern const HostKernel kHostKernels[];
extern const size_t kNumHostKernels;

} // namespace weft::codegen_test

#endif // WEFT_TEST_UNIT_CODEGEN_ELEMENTWISECASES_H
