// Option handling shared by the weft subcommands.
#include "tools/weft/Options.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <unistd.h>

using namespace mlir;

/// Diagnostics as `weft: error: MODEL: message`.
void ::weft::cli::installDiagnosticHandler(MLIRContext &ctx,
                                           const std::string &model) {
  // A refusal names the ONNX node; a dump of the MLIR operation after it
  // tells a user nothing more.
  ctx.printOpOnDiagnostic(false);
  ctx.getDiagEngine().registerHandler([model](Diagnostic &diag) {
    const char *kind = diag.getSeverity() == DiagnosticSeverity::Error ? "error"
                       : diag.getSeverity() == DiagnosticSeverity::Warning
                           ? "warning"
                           : "note";
    llvm::errs() << "weft: " << kind << ": " << model << ": " << diag << "\n";
    for (Diagnostic &note : diag.getNotes())
      llvm::errs() << "weft: note: " << note << "\n";
    return success();
  });
}

/// LLVM's option errors come as `PROG: message` lines; each is printed as
/// `weft: error: PROG: message` (the first) or `weft: note: ...` (hints).
bool ::weft::cli::parseCommandLine(int argc, char **argv,
                                   llvm::StringRef overview) {
  // Some of LLVM's messages (bad option values) go straight to llvm::errs(),
  // not to the stream it is given: stderr itself is caught while parsing.
  std::string captured;
  llvm::errs().flush();
  std::FILE *sink = std::tmpfile();
  int saved = sink ? ::dup(2) : -1;
  if (saved >= 0)
    ::dup2(::fileno(sink), 2);
  bool ok;
  {
    llvm::raw_string_ostream os(captured);
    ok = llvm::cl::ParseCommandLineOptions(argc, argv, overview, &os);
  }
  llvm::errs().flush();
  if (saved >= 0) {
    ::dup2(saved, 2);
    ::close(saved);
    std::rewind(sink);
    char buf[4096];
    std::string direct;
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, sink)) > 0;)
      direct.append(buf, n);
    captured = direct + captured;
  }
  if (sink)
    std::fclose(sink);
  if (ok)
    return true;
  llvm::StringRef rest(captured);
  bool first = true;
  while (!rest.empty()) {
    auto [line, tail] = rest.split('\n');
    rest = tail;
    line = line.trim();
    if (line.empty())
      continue;
    llvm::errs() << (first ? "weft: error: " : "weft: note: ") << line << "\n";
    first = false;
  }
  if (first)
    llvm::errs() << "weft: error: " << argv[0] << ": bad command line\n";
  return false;
}

/// Parses `--dim NAME=VALUE` entries; reports the first bad one.
bool ::weft::cli::parseDimSpecs(const std::vector<std::string> &specs,
                                llvm::StringMap<int64_t> &dims) {
  for (const std::string &spec : specs) {
    auto [name, value] = llvm::StringRef(spec).split('=');
    long long v;
    if (name.empty() || !llvm::StringRef(spec).contains('=')) {
      llvm::errs() << "weft: error: --dim '" << spec
                   << "': expected NAME=VALUE\n";
      return false;
    }
    if (value.getAsInteger(10, v) || v <= 0) {
      llvm::errs() << "weft: error: --dim '" << spec
                   << "': VALUE must be a positive integer\n";
      return false;
    }
    if (!dims.try_emplace(name, v).second) {
      llvm::errs() << "weft: error: --dim '" << name
                   << "' is given more than once\n";
      return false;
    }
  }
  return true;
}

/// Loads `--topology`; returns 0, or the exit status once the error is
/// printed: 2 for a name that is neither a preset nor a file, 1 for a file
/// that cannot be read or is invalid.
int ::weft::cli::loadTopologyOption(
    llvm::StringRef nameOrPath, std::optional<mlir::weft::Topology> &topology) {
  llvm::Expected<mlir::weft::Topology> loaded =
      mlir::weft::loadTopology(nameOrPath);
  if (loaded) {
    topology = std::move(*loaded);
    return 0;
  }
  int status = 1;
  llvm::handleAllErrors(
      loaded.takeError(),
      [&](const mlir::weft::UnknownTopologyError &err) {
        llvm::errs() << "weft: error: --topology: " << err.message() << "\n";
        status = 2;
      },
      [&](const llvm::ErrorInfoBase &err) {
        llvm::errs() << "weft: error: --topology: " << err.message() << "\n";
      });
  return status;
}
