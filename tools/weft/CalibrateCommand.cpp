// `weft calibrate`: runs the weft-calibrate microbenchmarks (a CUDA program
// installed beside weft when built with CUDA) on this machine's GPU.
#include "tools/weft/Commands.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

int ::weft::cli::runCalibrate(int argc, char **argv) {
  static int anchor;
  std::string self = llvm::sys::fs::getMainExecutable(argv[0], &anchor);
  llvm::SmallString<256> tool(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(tool, "weft-calibrate");
  if (!llvm::sys::fs::can_execute(tool)) {
    llvm::errs() << "weft: error: '" << tool
                 << "' is not built: it needs CUDA (configure with "
                    "-DWEFT_ENABLE_CUDA=ON) and must run on the GPU to "
                    "calibrate; see docs/planner.md\n";
    return 1;
  }
  // The arguments go to weft-calibrate unchanged (-o FILE, --gpu, --quick).
  std::vector<llvm::StringRef> args = {tool};
  for (int i = 1; i < argc; ++i)
    args.push_back(argv[i]);
  std::string error;
  int status =
      llvm::sys::ExecuteAndWait(tool, args, std::nullopt, {}, 0, 0, &error);
  if (status < 0) {
    llvm::errs() << "weft: error: cannot run '" << tool << "': " << error
                 << "\n";
    return 1;
  }
  return status;
}
