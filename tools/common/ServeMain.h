// The serve command line that `weft serve` and the standalone, MLIR-free
// weft-serve share: an OpenAI-compatible HTTP server over a generation
// artifact, with every rank of the artifact driven by rank 0.
#ifndef WEFT_TOOLS_COMMON_SERVEMAIN_H
#define WEFT_TOOLS_COMMON_SERVEMAIN_H

namespace weft::runtime {
/// Runs `weft serve` with `argv[0]` the program's name; returns the exit
/// status: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when the model
/// or a rank failed, 2 for a usage error.
int serveMain(int argc, char **argv);
} // namespace weft::runtime

#endif // WEFT_TOOLS_COMMON_SERVEMAIN_H
