// weft-doctor: the standalone, MLIR-free `weft doctor` (no --topology).
#include "tools/common/DoctorMain.h"

int main(int argc, char **argv) {
  return weft::runtime::doctorMain(argc, argv, {});
}
