// GPU kernel generation for a compiled model: one CUDA C++ kernel per
// distinct ELEMENTWISE step of the ranks' plans, compiled with NVRTC into a
// module shared by every rank.
#ifndef WEFT_COMPILER_CODEGEN_CUDACODEGEN_H
#define WEFT_COMPILER_CODEGEN_CUDACODEGEN_H

#include "compiler/codegen/ElementwiseKernel.h"
#include "compiler/codegen/Nvrtc.h"

#include "runtime/artifact/artifact.pb.h"

#include "llvm/ADT/StringMap.h"

#include <string>
#include <vector>

namespace mlir::weft {

/// The translation unit of a kernel module, built kernel by kernel:
/// identical kernels (same program, dtypes and shapes) are made once.
class KernelModuleBuilder {
public:
  explicit KernelModuleBuilder(KernelDialect dialect = KernelDialect::Cuda)
      : dialect(dialect) {}

  /// The kernel of an ELEMENTWISE step, added if new; returns its name
  /// (weft_ew_<N>). `user` names the step in comments and errors. Fails,
  /// saying why, on a step the CPU backend would refuse.
  llvm::Expected<std::string> addElementwise(const ElementwiseSpec &spec,
                                             llvm::StringRef user);

  /// The whole source: prelude, then the kernels in the order added.
  std::string source() const;
  size_t numKernels() const { return kernels.size(); }

  /// The steps that use the kernel spanning `line` (1-based) of source(),
  /// empty for a line outside every kernel.
  std::vector<std::string> usersAtLine(unsigned line) const;

private:
  struct Kernel {
    std::string name, text;
    std::vector<std::string> users;
  };
  KernelDialect dialect;
  std::vector<Kernel> kernels;
  llvm::StringMap<size_t> byKey;
};

/// A kernel module for one GPU architecture.
struct GeneratedKernels {
  std::string source; // CUDA C++
  std::string cubin;
  std::string ptx;
  size_t numKernels = 0;
  size_t numSteps = 0; // ELEMENTWISE steps over all ranks
  double nvrtcSeconds = 0;
};

/// Generates and compiles the kernels of every ELEMENTWISE step of `plans`
/// for `arch`, and names each step's kernel in Step.kernel. On failure
/// (a step it cannot generate, an NVRTC error: the message names the step
/// and holds NVRTC's log) `plans` are left unchanged.
llvm::Expected<GeneratedKernels>
generateKernels(std::vector<::weft::artifact::Plan> &plans,
                const GpuArch &arch);

/// Compiles a module's source (from `builder`); errors name the steps of
/// the kernel NVRTC reports the first error in.
llvm::Expected<NvrtcOutput>
compileKernelModule(const KernelModuleBuilder &builder, llvm::StringRef source,
                    const GpuArch &arch);

/// The ELEMENTWISE step's spec from its plan's buffers.
llvm::Expected<ElementwiseSpec>
elementwiseSpecOf(const ::weft::artifact::Plan &plan,
                  const ::weft::artifact::Step &step);

} // namespace mlir::weft

#endif // WEFT_COMPILER_CODEGEN_CUDACODEGEN_H
