// Compiling generated CUDA C++ with NVRTC (where this build found the CUDA
// toolkit; elsewhere every call explains that it did not).
#ifndef WEFT_COMPILER_CODEGEN_NVRTC_H
#define WEFT_COMPILER_CODEGEN_NVRTC_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir::weft {

/// A GPU architecture to compile for: a cubin for `name` (e.g. sm_90a) and
/// PTX for `virtualName` (compute_90: the generated kernels use no
/// architecture-specific feature, so the PTX stays loadable on later GPUs).
struct GpuArch {
  std::string name;
  std::string virtualName;
  unsigned computeCapability = 0; // 90 for sm_90a
};

/// Parses a GPU --target: `sm_` and a compute capability of at least 80
/// (Ampere: bf16), optionally with the `a` or `f` suffix.
llvm::Expected<GpuArch> parseGpuArch(llvm::StringRef name);

/// Whether this build can compile CUDA C++ (built with WEFT_ENABLE_CUDA).
bool nvrtcAvailable();

/// What NVRTC made of a module.
struct NvrtcOutput {
  std::string cubin; // an ELF file for arch.name
  std::string ptx;   // for arch.virtualName
  double seconds = 0;
};

/// A failed compilation: NVRTC's log, and the first source line it reports
/// an error at (0 if it names none).
struct NvrtcFailure {
  std::string message;
  std::string log;
  unsigned line = 0;
};

/// Compiles `source` (one translation unit; `fileName` names it in the log)
/// for `arch`, with the CUDA headers of $CUDA_HOME/include or, if unset, of
/// the toolkit this build found. On failure returns false and fills
/// `failure`.
bool compileWithNvrtc(llvm::StringRef source, llvm::StringRef fileName,
                      const GpuArch &arch, NvrtcOutput &output,
                      NvrtcFailure &failure);

} // namespace mlir::weft

#endif // WEFT_COMPILER_CODEGEN_NVRTC_H
