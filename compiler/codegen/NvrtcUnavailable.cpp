// NVRTC where CMake found no CUDA toolkit: it explains that this build
// lacks it.
#include "compiler/codegen/Nvrtc.h"

using namespace mlir;
using namespace mlir::weft;

bool mlir::weft::nvrtcAvailable() { return false; }

bool mlir::weft::compileWithNvrtc(llvm::StringRef, llvm::StringRef,
                                  const GpuArch &arch, NvrtcOutput &,
                                  NvrtcFailure &failure) {
  failure.message =
      std::string("cannot compile kernels for ")
          .append(arch.name)
          .append(": this weft was built without the CUDA toolkit "
                  "(WEFT_ENABLE_CUDA is off), so it has no NVRTC");
  return false;
}
