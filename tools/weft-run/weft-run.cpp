// weft-run: the standalone, MLIR-free runner of compiled artifacts.
#include "runtime/support/CrashHandler.h"
#include "tools/common/RunMain.h"

#if WEFT_HAVE_CUDA
#include "runtime/backends/cuda/CudaBackend.h"
#endif

int main(int argc, char **argv) {
  weft::runtime::installCrashHandler("weft-run");
#if WEFT_HAVE_CUDA
  weft::runtime::cuda::registerCudaBackend();
#endif
  return weft::runtime::runMain(argc, argv);
}
