// weft: the command-line driver; dispatches to subcommands.
#include "tools/common/DoctorMain.h"
#include "tools/common/GenerateMain.h"
#include "tools/common/RunMain.h"
#include "tools/common/ServeMain.h"

#if WEFT_HAVE_CUDA
#include "runtime/backends/cuda/CudaBackend.h"
#endif
#include "tools/weft/Commands.h"

#include "compiler/topology/Topology.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/PrettyStackTrace.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <new>
#include <string>

static void printUsage(llvm::raw_ostream &os) {
  os << "weft " << WEFT_VERSION
     << ": a compiler for sharded LLM inference\n\n"
        "USAGE: weft <command> [options]\n\n"
        "COMMANDS:\n"
        "  compile   import an ONNX model, bind its dims and lift it to "
        "weft's\n"
        "            graph ops, and write an artifact (see 'weft compile "
        "--help')\n"
        "  run       run an artifact on inputs from an .npz file (also the\n"
        "            standalone, MLIR-free 'weft-run')\n"
        "  generate  generate text from prompts with an artifact compiled\n"
        "            with --generate (see 'weft generate --help')\n"
        "  serve     serve an artifact compiled with --generate over HTTP\n"
        "            with OpenAI's API (see 'weft serve --help')\n"
        "  inspect   print a readable summary of an artifact\n"
        "  plan      predict memory, latency and throughput of every layout\n"
        "            of a topology for a workload (see 'weft plan --help')\n"
        "  tokenize  encode JSON text lines to token ids with a Hugging Face\n"
        "            tokenizer (directory or artifact)\n"
        "  detokenize decode JSON token-id lines back to text\n"
        "  doctor    check this host before a job: GPUs, driver, NCCL,\n"
        "            NVLink, InfiniBand, and a topology it must match\n"
        "  launch    write an artifact's launch on a cluster: a Slurm\n"
        "            script, Kubernetes manifests or an mpirun script\n"
        "  calibrate measure a GPU's cost-model constants (runs\n"
        "            weft-calibrate, built with CUDA)\n\n"
        "Run 'weft <command> --help' for a command's options.\n";
}

/// `weft doctor --topology`: what the topology says one host has.
static weft::runtime::Result<weft::runtime::DoctorTopology>
doctorTopology(const std::string &nameOrPath, int &status) {
  using mlir::weft::Topology;
  llvm::Expected<Topology> loaded = mlir::weft::loadTopology(nameOrPath);
  if (!loaded) {
    std::string message;
    status = 1;
    llvm::handleAllErrors(
        loaded.takeError(),
        [&](const mlir::weft::UnknownTopologyError &err) {
          message = err.message();
          status = 2;
        },
        [&](const llvm::ErrorInfoBase &err) { message = err.message(); });
    return weft::runtime::errorStatus(message);
  }
  weft::runtime::DoctorTopology t;
  t.name = loaded->name;
  t.gpuType = loaded->gpu.type;
  t.gpuMemoryGib = loaded->gpu.memoryGib;
  t.gpusPerNode = loaded->gpusPerNode;
  t.nodes = loaded->nodes;
  t.nvlink = loaded->intraNode.kind == Topology::IntraNodeKind::NVLink ||
             loaded->intraNode.kind == Topology::IntraNodeKind::NVSwitch;
  t.interNode = toString(loaded->interNode.kind).str();
  t.nicsPerNode = loaded->interNode.nicsPerNode;
  t.gbitPerNic = loaded->interNode.gbitPerSPerNic;
  return t;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // LLVM's handler turns a failed allocation into an abort ("LLVM ERROR:
  // out of memory"); weft's commands catch std::bad_alloc and refuse the
  // input instead, as the standalone tools do.
  std::set_new_handler(nullptr);
  // A crash is weft's bug, not LLVM's: say where to report it.
  llvm::setBugReportMsg("weft crashed: this is a bug in weft, not in your "
                        "model or artifact. Please report it to the weft "
                        "maintainers with the command line and the stack "
                        "dump below.\n");
  if (argc < 2) {
    printUsage(llvm::errs());
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    printUsage(llvm::outs());
    return 0;
  }
  if (cmd == "--version") {
    llvm::outs() << "weft " << WEFT_VERSION << "\n";
    return 0;
  }
  // Subcommands parse their own options; argv[1] becomes their program name.
  std::string prog = std::string("weft ") + cmd;
  argv[1] = prog.data();
  if (cmd == "compile")
    return weft::cli::runCompile(argc - 1, argv + 1);
  if (cmd == "inspect")
    return weft::cli::runInspect(argc - 1, argv + 1);
  if (cmd == "plan")
    return weft::cli::runPlan(argc - 1, argv + 1);
  if (cmd == "tokenize")
    return weft::cli::runTokenize(argc - 1, argv + 1);
  if (cmd == "detokenize")
    return weft::cli::runDetokenize(argc - 1, argv + 1);
  if (cmd == "calibrate")
    return weft::cli::runCalibrate(argc - 1, argv + 1);
  if (cmd == "launch")
    return weft::cli::runLaunch(argc - 1, argv + 1);
  if (cmd == "doctor")
    return weft::runtime::doctorMain(argc - 1, argv + 1, doctorTopology);
  if (cmd == "generate") {
#if WEFT_HAVE_CUDA
    weft::runtime::cuda::registerCudaBackend();
#endif
    return weft::runtime::generateMain(argc - 1, argv + 1);
  }
  if (cmd == "serve") {
#if WEFT_HAVE_CUDA
    weft::runtime::cuda::registerCudaBackend();
#endif
    return weft::runtime::serveMain(argc - 1, argv + 1);
  }
  if (cmd == "run") {
#if WEFT_HAVE_CUDA
    weft::runtime::cuda::registerCudaBackend();
#endif
    return weft::runtime::runMain(argc - 1, argv + 1);
  }
  llvm::errs() << "weft: error: unknown command '" << cmd << "'\n\n";
  printUsage(llvm::errs());
  return 2;
}
