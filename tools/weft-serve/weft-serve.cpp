// weft-serve: the standalone, MLIR-free `weft serve` (what deploys to GPU
// machines). Built without the tokenizer in the runtime-only build, where
// prompts are token ids.
#include "runtime/support/CrashHandler.h"
#include "tools/common/ServeMain.h"

#if WEFT_HAVE_CUDA
#include "runtime/backends/cuda/CudaBackend.h"
#endif

int main(int argc, char **argv) {
  weft::runtime::installCrashHandler("weft-serve");
#if WEFT_HAVE_CUDA
  weft::runtime::cuda::registerCudaBackend();
#endif
  return weft::runtime::serveMain(argc, argv);
}
