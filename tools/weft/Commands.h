// The weft CLI's subcommands.
#ifndef WEFT_TOOLS_WEFT_COMMANDS_H
#define WEFT_TOOLS_WEFT_COMMANDS_H

namespace weft::cli {
/// `weft compile MODEL.onnx ...`; argv[0] is "weft compile".
int runCompile(int argc, char **argv);
/// `weft inspect ARTIFACT`.
int runInspect(int argc, char **argv);
/// `weft plan MODEL.onnx --batch B --prompt P ...`.
int runPlan(int argc, char **argv);
/// `weft tokenize --tokenizer PATH`: JSON strings in, JSON id arrays out.
int runTokenize(int argc, char **argv);
/// `weft detokenize --tokenizer PATH`: JSON id arrays in, JSON strings out.
int runDetokenize(int argc, char **argv);
/// `weft calibrate -o FILE`: runs weft-calibrate (built with CUDA).
int runCalibrate(int argc, char **argv);
/// `weft launch`: a Slurm script, Kubernetes manifests or an mpirun script.
int runLaunch(int argc, char **argv);
} // namespace weft::cli

#endif // WEFT_TOOLS_WEFT_COMMANDS_H
