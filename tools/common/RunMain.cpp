// The `weft run` command line: run an artifact on inputs from an .npz file.
#include "tools/common/RunMain.h"

#include "tools/common/LaunchedRank.h"

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/backends/BackendRegistry.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/exec/Launcher.h"
#include "runtime/exec/Npz.h"
#include "runtime/session/MultiRank.h"
#include "runtime/session/Session.h"
#include "runtime/support/Limits.h"
#include "runtime/support/SafeFile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include <unistd.h>

namespace weft::runtime {

namespace {

constexpr int kExitData = 1, kExitUsage = 2;

/// "weft-bench: median_ms=1.234 min_ms=1.200 iters=20".
void printTimes(std::vector<double> times) {
  if (times.empty())
    return;
  std::sort(times.begin(), times.end());
  double median =
      times.size() % 2
          ? times[times.size() / 2]
          : (times[times.size() / 2 - 1] + times[times.size() / 2]) / 2;
  char line[160];
  std::snprintf(line, sizeof(line),
                "weft-bench: median_ms=%.4f min_ms=%.4f iters=%zu\n", median,
                times.front(), times.size());
  std::cout << line << std::flush;
}

struct RunOptions {
  std::string artifact, inputs, outputs, backend = "cpu";
  std::optional<uint32_t> rank, nproc;
  unsigned threads = 0;
  double timeout = 300;
  unsigned benchIters = 0, benchWarmup = 3;
  bool help = false;
  std::string modelDir;
};

using comm::LaunchInfo;

/// How the ranks run, from the options (the backend is registered).
RankBackend rankBackend(const RunOptions &opts,
                        std::optional<uint32_t> localRank = std::nullopt) {
  RankBackend backend;
  backend.localRank = localRank;
  if (opts.backend != "cpu")
    backend.create = *findBackend(opts.backend);
  backend.iterations = opts.benchIters;
  backend.warmup = opts.benchIters ? opts.benchWarmup : 0;
  return backend;
}

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
        "  --backend NAME     cpu (default) or cuda, where built in (rank r\n"
        "                     of a host on its GPU r; WEFT_CUDA_GRAPH=0\n"
        "                     launches step by step, WEFT_CUDA_SYNC=1 waits\n"
        "                     after each step)\n"
        "  --nproc N          run each rank as a process of this host (N\n"
        "                     must be the artifact's world size); a rank\n"
        "                     that fails ends the others\n"
        "  --rank N           run only rank N's plan, alone (for debugging;\n"
        "                     plans that exchange data with other ranks are\n"
        "                     refused)\n"
        "  --threads N        worker threads per rank (default: the hardware\n"
        "                     threads divided among the ranks on this host)\n"
        "  --timeout SECONDS  how long a rank waits for the others before it\n"
        "                     fails (default 300)\n"
        "  --bench-iters N    after the run, time N more runs of the whole\n"
        "                     batch (each started on every rank at once,\n"
        "                     lasting until the slowest rank is done) and\n"
        "                     print 'weft-bench: median_ms=... min_ms=...\n"
        "                     iters=N'\n"
        "  --bench-warmup N   untimed runs before those (default 3)\n"
        "  --model-dir DIR    read the weights referenced in the source\n"
        "                     model's files from DIR instead of the directory\n"
        "                     the model was compiled from (an artifact moved\n"
        "                     to another machine)\n"
        "  -h, --help         print this help and exit\n\n"
        "MULTI-RANK ARTIFACTS:\n"
        "  By default every rank runs as a thread of this process, each\n"
        "  loading only its own plan and weights. The batch (dim 0 of every\n"
        "  input) is cut into dp x microbatches chunks; each data-parallel\n"
        "  replica runs its chunks in order, and the outputs of each\n"
        "  replica's last pipeline stage are put back together in chunk\n"
        "  order. With --nproc N, or started by another launcher, each\n"
        "  process runs one rank: over TCP when WEFT_RANK/WEFT_WORLD_SIZE\n"
        "  (what --nproc sets) or torchrun's RANK/WORLD_SIZE are set, with\n"
        "  rank 0 at MASTER_ADDR:MASTER_PORT; over MPI under mpirun or srun\n"
        "  (OMPI_COMM_WORLD_*, PMI_*, SLURM_PROCID/SLURM_STEP_NUM_TASKS or\n"
        "  RANK/WORLD_SIZE alone). The job's size must be the artifact's\n"
        "  world size, and only the rank that gathers the outputs (the\n"
        "  first replica's output rank) writes OUT.npz. A rank that fails\n"
        "  ends the others.\n\n"
        "EXIT STATUS:\n"
        "  0 success, 1 bad data (artifact, inputs, a failed step), 2 bad\n"
        "  command line.\n";
}

// Each message goes out in one write: under mpirun the processes' lines
// would otherwise interleave. In a launched job every process reports the
// errors they all find (one that exits first may end the others before
// they print).
int usageError(const std::string &prog, const std::string &message) {
  std::cerr << "weft: error: " + message + "\nRun '" + prog +
                   " --help' for usage.\n";
  return kExitUsage;
}

int dataError(const std::string &message) {
  std::cerr << "weft: error: " + message + "\n";
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
  else if (name == "--model-dir")
    opts.modelDir = value;
  else if (name == "--rank") {
    uint32_t rank = 0;
    if (!parseNumber(value, rank))
      return "--rank '" + value + "' is not a non-negative integer";
    opts.rank = rank;
  } else if (name == "--bench-iters" &&
             (!parseNumber(value, opts.benchIters) || opts.benchIters == 0))
    return "--bench-iters '" + value + "' is not a positive integer";
  else if (name == "--bench-warmup" && !parseNumber(value, opts.benchWarmup))
    return "--bench-warmup '" + value + "' is not a non-negative integer";
  else if (name == "--nproc") {
    uint32_t n = 0;
    if (!parseNumber(value, n) || n == 0)
      return "--nproc '" + value + "' is not a positive integer";
    opts.nproc = n;
  } else if (name == "--threads" && (!parseNumber(value, opts.threads) ||
                                     opts.threads > kMaxThreadsPerRank))
    return "--threads '" + value +
           "' is not an integer from 0 (automatic) to " +
           std::to_string(kMaxThreadsPerRank);
  else if (name == "--timeout" &&
           (!parseNumber(value, opts.timeout) || !std::isfinite(opts.timeout) ||
            opts.timeout <= 0))
    return "--timeout '" + value + "' is not a positive number of seconds";
  return std::nullopt;
}

bool takesValue(const std::string &name) {
  if (name == "--model-dir")
    return true;
  return name == "--inputs" || name == "--outputs" || name == "--backend" ||
         name == "--rank" || name == "--nproc" || name == "--threads" ||
         name == "--timeout" || name == "--bench-iters" ||
         name == "--bench-warmup";
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
  // Refused before any work: a device, FIFO or missing directory (SafeFile.h).
  if (Status s = checkWritableFile(opts.outputs); !s.ok())
    return "--outputs: " + s.message();
  return std::nullopt;
}

/// The most an --inputs archive may hold uncompressed: the artifact's
/// inputs and a generous .npy header for each.
uint64_t inputsBudget(const artifact::Manifest &manifest) {
  constexpr uint64_t kHeaderBytes = 64 << 10;
  uint64_t total = 0;
  for (const artifact::TensorSpec &spec : manifest.inputs()) {
    uint64_t bytes = dtypeSize(spec.dtype());
    for (int64_t d : spec.shape())
      if (__builtin_mul_overflow(bytes, uint64_t(d), &bytes))
        return UINT64_MAX;
    if (__builtin_add_overflow(total, bytes + kHeaderBytes, &total))
      return UINT64_MAX;
  }
  return total;
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

Status writeOutputs(const std::vector<NpyArray> &outputs,
                    const std::string &path) {
  std::vector<NpyView> views;
  for (const NpyArray &a : outputs)
    views.push_back(
        NpyView{a.name, a.dtype, a.shape, a.data.data(), a.data.size()});
  return writeNpz(path, views);
}

/// `--rank N` of a multi-rank artifact: rank N's plan alone, no transport.
int runAloneRank(Artifact &artifact, uint32_t rank,
                 std::span<const NpyArray *const> inputs,
                 const RunOptions &opts) {
  if (layoutOf(artifact.manifest).chunks() > 1)
    return dataError("--rank cannot run one rank of an artifact whose batch "
                     "is cut into chunks (dp " +
                     std::to_string(layoutOf(artifact.manifest).dp) +
                     " x microbatches " +
                     std::to_string(layoutOf(artifact.manifest).microbatches) +
                     "): run every rank");
  SessionOptions options;
  options.threads = opts.threads;
  auto session = Session::open(artifact, rank, nullptr, options);
  if (!session.ok())
    return dataError(session.message());
  if ((*session)->executor().numOutputs() == 0 &&
      artifact.manifest.outputs_size() > 0)
    return dataError("rank " + std::to_string(rank) +
                     "'s plan lists no graph outputs (another rank's plan "
                     "gives them)");
  auto outcome = (*session)->run(kForwardEntry, inputs);
  if (!outcome.ok())
    return dataError(outcome.message());
  const std::vector<NpyArray> &outputs = outcome->outputs;
  if (Status s = writeOutputs(outputs, opts.outputs); !s.ok())
    return dataError(s.message());
  return 0;
}

/// For tests of failure handling: WEFT_TEST_FAIL_RANK=K makes rank K fail
/// once connected to the others, before its plan runs (so they wait for it
/// in a collective), as WEFT_TEST_FAIL_MODE says: `error` (the default; a
/// reported error), `exit` (exit status 3, no report), `kill` (SIGKILL) or
/// `hang` (sleeps until ended). Returns the error for `error`.
std::optional<std::string> failOnPurpose(uint32_t rank) {
  const char *target = std::getenv("WEFT_TEST_FAIL_RANK");
  uint32_t k = 0;
  if (!target || !parseNumber(std::string(target), k) || k != rank)
    return std::nullopt;
  const char *modeVar = std::getenv("WEFT_TEST_FAIL_MODE");
  std::string mode = modeVar ? modeVar : "error";
  if (mode == "exit")
    std::_Exit(3);
  if (mode == "kill")
    ::raise(SIGKILL);
  if (mode == "hang")
    while (true)
      std::this_thread::sleep_for(std::chrono::seconds(1));
  return "failing on purpose (WEFT_TEST_FAIL_RANK=" + std::to_string(k) + ")";
}

/// One rank of a launched job (weft run --nproc, torchrun, mpirun, srun).
int runLaunched(const LaunchInfo &launch, const Artifact &artifact,
                const RunOptions &opts) {
  auto task = [&](const LaunchedRank &self) -> Status {
    auto arrays = readNpz(opts.inputs, inputsBudget(artifact.manifest));
    if (!arrays.ok())
      return errorStatus("--inputs: " + arrays.message());
    auto matched = matchInputs(artifact.manifest, *arrays, opts.inputs);
    if (!matched.ok())
      return matched.status();
    if (auto err = failOnPurpose(self.rank))
      return errorStatus(*err);
    unsigned threads =
        opts.threads ? opts.threads : threadsPerRank(self.localSize);
    RankState state;
    auto outcome = runRank(artifact, self.rank, self.transport, *matched,
                           threads, state, rankBackend(opts, self.localRank));
    if (!outcome.ok())
      return outcome.status();
    if (self.rank == outcome->outputRank) {
      if (Status s = writeOutputs(outcome->outputs, opts.outputs); !s.ok())
        return s;
      printTimes(outcome->timesMs);
    }
    return okStatus();
  };
  return runLaunchedRank(launch, artifact.manifest.world_size(),
                         std::chrono::duration<double>(opts.timeout), task,
                         "weft run");
}

/// The command line of each rank of --nproc: this one's, less --nproc, with
/// the outputs going to `outputs`.
Result<std::vector<std::string>> rankCommandLine(int argc, char **argv,
                                                 const std::string &outputs) {
  const std::string drop[] = {"--nproc", "--outputs"};
  auto args = childCommandLine(argc, argv, drop);
  if (!args.ok())
    return args.status();
  args->push_back("--outputs");
  args->push_back(outputs);
  return args;
}

/// A generation artifact's plans have no forward pass to run: its entry
/// points are prefill and decode steps over a KV cache.
Status checkRunnable(const Artifact &artifact, const std::string &path) {
  if (artifact.manifest.has_generation())
    return errorStatus("'" + path +
                       "' was compiled with --generate: its entry points are "
                       "prefill and decode steps over a KV cache; run it with "
                       "`weft generate`");
  return okStatus();
}

/// `--nproc N`: every rank as a child process of this one. The output rank
/// writes to a temporary file, renamed to OUT.npz only once every rank has
/// succeeded.
int runLocalProcesses(const RunOptions &opts, const std::string &prog, int argc,
                      char **argv) {
  if (opts.rank)
    return usageError(prog, "--nproc and --rank cannot be used together");
  auto artifact = readManifest(opts.artifact);
  if (!artifact.ok())
    return dataError(artifact.message());
  if (Status s = checkRunnable(*artifact, opts.artifact); !s.ok())
    return dataError(s.message());
  uint32_t world = artifact->manifest.world_size();
  if (*opts.nproc != world)
    return usageError(prog, "--nproc " + std::to_string(*opts.nproc) +
                                " does not match the artifact's world size " +
                                std::to_string(world) + " (use --nproc " +
                                std::to_string(world) + ")");
  // Bad inputs are reported once, here, rather than by every rank.
  auto arrays = readNpz(opts.inputs, inputsBudget(artifact->manifest));
  if (!arrays.ok())
    return dataError("--inputs: " + arrays.message());
  if (auto matched = matchInputs(artifact->manifest, *arrays, opts.inputs);
      !matched.ok())
    return dataError(matched.message());
  arrays->clear();

  std::filesystem::path out(opts.outputs);
  std::filesystem::path temp =
      out.parent_path() / ("." + out.filename().string() + ".weft-nproc-" +
                           std::to_string(::getpid()));
  auto args = rankCommandLine(argc, argv, temp.string());
  if (!args.ok())
    return dataError(args.message());
  LocalLaunch launch;
  launch.nproc = *opts.nproc;
  launch.args = std::move(*args);
  auto outcome = launchLocalRanks(launch);
  if (!outcome.ok() || outcome->exitCode != 0) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    if (!outcome.ok())
      return dataError(outcome.message());
    std::cerr << "weft: error: " + outcome->message + "\n";
    return outcome->exitCode;
  }
  if (Status s = replaceWith(temp.string(), opts.outputs); !s.ok()) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    return dataError("cannot move the outputs to '" + opts.outputs +
                     "': " + s.message());
  }
  return 0;
}

int runArtifact(const RunOptions &opts, const std::string &prog, int argc,
                char **argv) {
  auto detected = comm::detectLaunch();
  if (!detected.ok())
    return usageError(prog, detected.message());
  std::optional<LaunchInfo> launch = *detected;
  if (launch && opts.nproc)
    return usageError(prog, "--nproc cannot be used in a launched job (" +
                                launch->sizeSource +
                                "): the launcher already started the ranks");
  if (opts.nproc)
    return runLocalProcesses(opts, prog, argc, argv);
  if (launch && opts.rank)
    return usageError(prog, "--rank cannot be used in a launched job (" +
                                launch->sizeSource +
                                "): each process runs its own rank");
  auto artifact = readManifest(opts.artifact);
  if (!artifact.ok()) {
    if (launch && launch->kind == LaunchInfo::Kind::Tcp)
      return rankError(launch->rank, artifact.message());
    return dataError(
        (launch ? "rank " + std::to_string(launch->rank) + ": " : "") +
        artifact.message());
  }
  if (Status s = checkRunnable(*artifact, opts.artifact); !s.ok())
    return dataError(s.message());
  uint32_t world = artifact->manifest.world_size();
  if (!opts.modelDir.empty())
    if (Status s = setSourceModelDir(artifact->manifest, opts.modelDir);
        !s.ok())
      return dataError(s.message());
  if (opts.rank && *opts.rank >= world)
    return usageError(prog, "--rank " + std::to_string(*opts.rank) +
                                " is out of range: the artifact has " +
                                std::to_string(world) + " rank(s)");
  if (launch)
    return runLaunched(*launch, *artifact, opts);
  auto arrays = readNpz(opts.inputs, inputsBudget(artifact->manifest));
  if (!arrays.ok())
    return dataError("--inputs: " + arrays.message());
  auto matched = matchInputs(artifact->manifest, *arrays, opts.inputs);
  if (!matched.ok())
    return dataError(matched.message());
  if (opts.rank && world > 1) {
    if (opts.backend != "cpu" || opts.benchIters)
      return usageError(prog, "--rank runs one rank alone on the CPU backend, "
                              "without --bench-iters");
    return runAloneRank(*artifact, *opts.rank, *matched, opts);
  }
  LocalRunOptions local;
  local.threadsPerRank = opts.threads;
  local.timeout = std::chrono::duration<double>(opts.timeout);
  local.backend = rankBackend(opts);
  std::vector<double> times;
  local.timesMs = &times;
  auto outputs = runLocalRanks(*artifact, *matched, local);
  if (!outputs.ok())
    return dataError(outputs.message());
  if (Status s = writeOutputs(*outputs, opts.outputs); !s.ok())
    return dataError(s.message());
  printTimes(times);
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
  if (opts.backend != "cpu" && !findBackend(opts.backend))
    return usageError(
        prog, "the " +
                  std::string(opts.backend == "cuda" ? "CUDA" : opts.backend) +
                  " backend is not built into this binary "
                  "(use --backend cpu)");
  try {
    return runArtifact(opts, prog, argc, argv);
  } catch (const std::bad_alloc &) {
    return dataError("out of memory");
  } catch (const std::exception &e) {
    return dataError(std::string("internal error: ") + e.what());
  }
}

} // namespace weft::runtime
