// weft-generate: the standalone, MLIR-free `weft generate` (what deploys to
// GPU machines). Built without the tokenizer in the runtime-only build.
#include "runtime/support/CrashHandler.h"
#include "tools/common/GenerateMain.h"

#if WEFT_HAVE_CUDA
#include "runtime/backends/cuda/CudaBackend.h"
#endif

int main(int argc, char **argv) {
  weft::runtime::installCrashHandler("weft-generate");
#if WEFT_HAVE_CUDA
  weft::runtime::cuda::registerCudaBackend();
#endif
  return weft::runtime::generateMain(argc, argv);
}
