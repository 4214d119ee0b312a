// weft-run: the standalone, MLIR-free runner of compiled artifacts.
#include "runtime/exec/RunMain.h"

int main(int argc, char **argv) { return weft::runtime::runMain(argc, argv); }
