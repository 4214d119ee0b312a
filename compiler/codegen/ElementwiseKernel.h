// CUDA C++ for one ELEMENTWISE plan step: its program over broadcast inputs,
// specialized to the operands' static shapes and dtypes.
#ifndef WEFT_COMPILER_CODEGEN_ELEMENTWISEKERNEL_H
#define WEFT_COMPILER_CODEGEN_ELEMENTWISEKERNEL_H

#include "runtime/artifact/artifact.pb.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::weft {

/// A tensor operand as a kernel sees it: element type and static shape.
struct KernelOperand {
  ::weft::artifact::DType dtype = ::weft::artifact::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
};

/// An ELEMENTWISE step with the types of its operands: everything its
/// kernel depends on.
struct ElementwiseSpec {
  std::vector<::weft::artifact::Instr> program;
  std::vector<KernelOperand> inputs;
  KernelOperand output;
};

/// Which compiler a kernel module's source is for: NVRTC, or a host C++
/// compiler through compiler/codegen/CudaHostShim.h (to test the generated
/// code without a GPU).
enum class KernelDialect { Cuda, Host };

/// Checks the spec exactly as the CPU backend checks the step (program
/// order and arity, dtypes, broadcasts); the message says what is wrong.
llvm::Error verifyElementwise(const ElementwiseSpec &spec);

/// Equal for two specs if and only if they make the same kernel.
std::string elementwiseKey(const ElementwiseSpec &spec);

/// Writes the kernel of a verified spec:
///   extern "C" __global__ void NAME(void *out, const void *in0, ...)
/// with the inputs in the step's order. A grid-stride loop over the output
/// elements makes any grid and block size correct.
void emitElementwiseKernel(const ElementwiseSpec &spec, llvm::StringRef name,
                           llvm::raw_ostream &os);

/// The includes and helpers every kernel uses, emitted once before them.
void emitKernelPrelude(KernelDialect dialect, llvm::raw_ostream &os);

} // namespace mlir::weft

#endif // WEFT_COMPILER_CODEGEN_ELEMENTWISEKERNEL_H
