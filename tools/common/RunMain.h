// The `weft run` and `weft-run` command line: run an artifact on inputs from
// an .npz file, through the session API (runtime/session).
#ifndef WEFT_TOOLS_COMMON_RUNMAIN_H
#define WEFT_TOOLS_COMMON_RUNMAIN_H

namespace weft::runtime {

/// `--backend NAME` picks a backend of the registry
/// (runtime/backends/BackendRegistry.h): binaries that link a GPU backend
/// register it before calling runMain.

/// `weft run ARTIFACT --inputs in.npz --outputs out.npz ...`; argv[0] is
/// the program name (e.g. "weft run"). Returns the exit status: 0 on
/// success, 1 for bad data (artifact, inputs, a failed run), 2 for a bad
/// command line.
int runMain(int argc, char **argv);

} // namespace weft::runtime

#endif // WEFT_TOOLS_COMMON_RUNMAIN_H
