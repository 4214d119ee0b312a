// The `weft run` command line: run an artifact on inputs from an .npz file.
#ifndef WEFT_RUNTIME_EXEC_RUNMAIN_H
#define WEFT_RUNTIME_EXEC_RUNMAIN_H

namespace weft::runtime {

/// `weft run ARTIFACT --inputs in.npz --outputs out.npz ...`; argv[0] is
/// the program name (e.g. "weft run"). Returns the exit status: 0 on
/// success, 1 for bad data (artifact, inputs, a failed run), 2 for a bad
/// command line.
int runMain(int argc, char **argv);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_EXEC_RUNMAIN_H
