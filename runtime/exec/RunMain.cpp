// The `weft run` command line: run an artifact on inputs from an .npz file.
#include "runtime/exec/RunMain.h"

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/exec/Executor.h"
#include "runtime/exec/Npz.h"

#include <charconv>
#include <iostream>
#include <map>
#include <optional>

namespace weft::runtime {

namespace {

constexpr int kExitData = 1, kExitUsage = 2;

struct RunOptions {
  std::string artifact, inputs, outputs, backend = "cpu";
  uint32_t rank = 0;
  unsigned threads = 0;
  bool help = false;
};

void printHelp(const std::string &prog, std::ostream &os) {
  os << "USAGE: " << prog
     << " ARTIFACT --inputs IN.npz --outputs OUT.npz [options]\n\n"
        "Runs a compiled weft artifact (the directory `weft compile -o` "
        "writes:\n"
        "manifest.pb, one plan per rank, packed weights if any) on the graph\n"
        "inputs in IN.npz and writes the graph outputs to OUT.npz, named as "
        "in\n"
        "the manifest. Weights referenced in the source model's files are "
        "read\n"
        "from there and checked against their recorded SHA-256.\n\n"
        "OPTIONS:\n"
        "  --inputs FILE      .npz with one array per graph input; names,\n"
        "                     dtypes and shapes must match the manifest\n"
        "                     exactly (np.savez or np.savez_compressed)\n"
        "  --outputs FILE     .npz to write (uncompressed); written to a\n"
        "                     temporary file and renamed, so a failed run\n"
        "                     leaves no partial file\n"
        "  --backend NAME     cpu (default) or cuda; this binary has only cpu\n"
        "  --rank N           the rank whose plan to run (default 0); plans\n"
        "                     with collectives need every rank and are "
        "refused\n"
        "  --threads N        worker threads (default: one per hardware\n"
        "                     thread)\n"
        "  -h, --help         print this help and exit\n\n"
        "EXIT STATUS:\n"
        "  0 success, 1 bad data (artifact, inputs, a failed step), 2 bad\n"
        "  command line.\n";
}

int usageError(const std::string &prog, const std::string &message) {
  std::cerr << "weft: error: " << message << "\nRun '" << prog
            << " --help' for usage.\n";
  return kExitUsage;
}

int dataError(const std::string &message) {
  std::cerr << "weft: error: " << message << "\n";
  return kExitData;
}

template <typename T> bool parseNumber(const std::string &text, T &out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

/// Applies one option whose value is `value`; returns an error message.
std::optional<std::string> applyOption(RunOptions &opts,
                                       const std::string &name,
                                       const std::string &value) {
  if (name == "--inputs")
    opts.inputs = value;
  else if (name == "--outputs")
    opts.outputs = value;
  else if (name == "--backend")
    opts.backend = value;
  else if (name == "--rank" && !parseNumber(value, opts.rank))
    return "--rank '" + value + "' is not a non-negative integer";
  else if (name == "--threads" && !parseNumber(value, opts.threads))
    return "--threads '" + value + "' is not a non-negative integer";
  return std::nullopt;
}

bool takesValue(const std::string &name) {
  return name == "--inputs" || name == "--outputs" || name == "--backend" ||
         name == "--rank" || name == "--threads";
}

std::optional<std::string> parseArgs(int argc, char **argv, RunOptions &opts) {
  std::map<std::string, bool> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      opts.help = true;
      return std::nullopt;
    }
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (!opts.artifact.empty())
        return "more than one ARTIFACT given ('" + opts.artifact + "', '" +
               arg + "')";
      opts.artifact = arg;
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    if (!takesValue(name))
      return "unknown option '" + name + "'";
    if (seen[name])
      return "option '" + name + "' is given more than once";
    seen[name] = true;
    if (eq == std::string::npos && i + 1 >= argc)
      return "option '" + name + "' needs a value";
    std::string value =
        eq == std::string::npos ? argv[++i] : arg.substr(eq + 1);
    if (auto err = applyOption(opts, name, value))
      return err;
  }
  if (opts.artifact.empty())
    return std::string("no ARTIFACT directory given");
  if (opts.inputs.empty() || opts.outputs.empty())
    return std::string("--inputs and --outputs are required");
  if (opts.backend != "cpu" && opts.backend != "cuda")
    return "unknown backend '" + opts.backend + "' (expected cpu or cuda)";
  return std::nullopt;
}

/// Matches the npz arrays to the manifest's inputs, by name.
Result<std::vector<const NpyArray *>>
matchInputs(const artifact::Manifest &manifest,
            const std::vector<NpyArray> &arrays, const std::string &file) {
  std::map<std::string, const NpyArray *> byName;
  for (const NpyArray &a : arrays)
    byName[a.name] = &a;
  std::vector<const NpyArray *> matched;
  for (const artifact::TensorSpec &spec : manifest.inputs()) {
    auto it = byName.find(spec.name());
    if (it == byName.end())
      return errorStatus(file + ": missing input '" + spec.name() +
                         "' (expected " + dtypeName(spec.dtype()) + " " +
                         shapeString(toShape(spec.shape())) + ")");
    const NpyArray &a = *it->second;
    if (a.dtype != spec.dtype())
      return errorStatus(file + ": input '" + spec.name() + "' has dtype " +
                         dtypeName(a.dtype) + ", expected " +
                         dtypeName(spec.dtype()));
    if (a.shape != toShape(spec.shape()))
      return errorStatus(file + ": input '" + spec.name() + "' has shape " +
                         shapeString(a.shape) + ", expected " +
                         shapeString(toShape(spec.shape())));
    matched.push_back(&a);
    byName.erase(it);
  }
  if (!byName.empty()) {
    std::string expected;
    for (const artifact::TensorSpec &spec : manifest.inputs())
      expected += (expected.empty() ? "'" : ", '") + spec.name() + "'";
    return errorStatus(file + ": unknown input '" + byName.begin()->first +
                       "' (the artifact's inputs are " +
                       (expected.empty() ? "none" : expected) + ")");
  }
  return matched;
}

Status writeOutputs(const Executor &exec, const artifact::Manifest &manifest,
                    const std::string &path) {
  std::vector<NpyView> views;
  for (size_t i = 0; i < exec.numOutputs(); ++i) {
    const InTensor &t = exec.output(i);
    views.push_back(NpyView{manifest.outputs(i).name(), t.dtype, t.shape,
                            t.data, t.bytes()});
  }
  return writeNpz(path, views);
}

int runArtifact(const RunOptions &opts, const std::string &prog) {
  auto artifact = readArtifact(opts.artifact);
  if (!artifact.ok())
    return dataError(artifact.message());
  uint32_t world = artifact->manifest.world_size();
  if (opts.rank >= world)
    return usageError(prog, "--rank " + std::to_string(opts.rank) +
                                " is out of range: the artifact has " +
                                std::to_string(world) + " rank(s)");
  if (Status s = loadRankWeights(*artifact, opts.rank); !s.ok())
    return dataError(s.message());
  auto arrays = readNpz(opts.inputs);
  if (!arrays.ok())
    return dataError(arrays.message());
  auto matched = matchInputs(artifact->manifest, *arrays, opts.inputs);
  if (!matched.ok())
    return dataError(matched.message());
  auto exec = Executor::create(artifact->ranks[opts.rank],
                               ExecutorOptions{opts.threads, world});
  if (!exec.ok())
    return dataError(exec.message());
  for (size_t i = 0; i < matched->size(); ++i)
    if (Status s = (*exec)->setInput(i, (*matched)[i]->data); !s.ok())
      return dataError(s.message());
  if (Status s = (*exec)->run(); !s.ok())
    return dataError(s.message());
  if (Status s = writeOutputs(**exec, artifact->manifest, opts.outputs);
      !s.ok())
    return dataError(s.message());
  return 0;
}

} // namespace

int runMain(int argc, char **argv) {
  std::string prog = argc > 0 ? argv[0] : "weft run";
  RunOptions opts;
  if (auto err = parseArgs(argc, argv, opts))
    return usageError(prog, *err);
  if (opts.help) {
    printHelp(prog, std::cout);
    return 0;
  }
  if (opts.backend == "cuda")
    return usageError(prog, "the CUDA backend is not built into this binary "
                            "(use --backend cpu)");
  try {
    return runArtifact(opts, prog);
  } catch (const std::bad_alloc &) {
    return dataError("out of memory");
  } catch (const std::exception &e) {
    return dataError(std::string("internal error: ") + e.what());
  }
}

} // namespace weft::runtime
