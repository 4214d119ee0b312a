// Option handling shared by the weft subcommands.
#include "tools/weft/Options.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

/// Diagnostics as `weft: error: MODEL: message`.
void ::weft::cli::installDiagnosticHandler(MLIRContext &ctx,
                                           const std::string &model) {
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
    llvm::StringRef command, llvm::StringRef nameOrPath,
    std::optional<mlir::weft::Topology> &topology) {
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
        llvm::errs() << command << ": error: --topology: " << err.message()
                     << "\n";
        status = 2;
      },
      [&](const llvm::ErrorInfoBase &err) {
        llvm::errs() << "weft: error: " << err.message() << "\n";
      });
  return status;
}
