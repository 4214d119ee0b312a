// The `weft run` command line: run an artifact on inputs from an .npz file.
#ifndef WEFT_RUNTIME_EXEC_RUNMAIN_H
#define WEFT_RUNTIME_EXEC_RUNMAIN_H

#include "runtime/exec/MultiRank.h"

#include <string>

namespace weft::runtime {

/// Makes a rank's executor for `--backend NAME` (see RankBackend::create).
using BackendFactory = decltype(RankBackend::create);

/// Makes `--backend NAME` available to runMain; binaries that link a GPU
/// backend register it before calling runMain.
void registerBackend(const std::string &name, BackendFactory factory);

/// `weft run ARTIFACT --inputs in.npz --outputs out.npz ...`; argv[0] is
/// the program name (e.g. "weft run"). Returns the exit status: 0 on
/// success, 1 for bad data (artifact, inputs, a failed run), 2 for a bad
/// command line.
int runMain(int argc, char **argv);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_RUNMAIN_H
