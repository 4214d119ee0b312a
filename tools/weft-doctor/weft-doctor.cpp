// weft-doctor: the standalone, MLIR-free `weft doctor` (no --topology).
#include "runtime/support/CrashHandler.h"
#include "tools/common/DoctorMain.h"

int main(int argc, char **argv) {
  weft::runtime::installCrashHandler("weft-doctor");
  return weft::runtime::doctorMain(argc, argv, {});
}
