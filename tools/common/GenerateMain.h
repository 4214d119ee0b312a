// The generate command line that `weft generate` and the standalone,
// MLIR-free weft-generate share: prompts in, generated text (or ids) out,
// through a generation artifact's prefill and decode entry points.
#ifndef WEFT_TOOLS_COMMON_GENERATEMAIN_H
#define WEFT_TOOLS_COMMON_GENERATEMAIN_H

namespace weft::runtime {
/// Runs `weft generate` with `argv[0]` the program's name; returns the exit
/// status. Where this binary was built without the tokenizer (the
/// runtime-only build), prompts must be token ids.
int generateMain(int argc, char **argv);
} // namespace weft::runtime

#endif // WEFT_TOOLS_COMMON_GENERATEMAIN_H
