// Option handling shared by the weft subcommands: --dim parsing, --topology
// loading and the diagnostic format.
#ifndef WEFT_TOOLS_WEFT_OPTIONS_H
#define WEFT_TOOLS_WEFT_OPTIONS_H

#include "compiler/topology/Topology.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringMap.h"

#include <optional>
#include <string>
#include <vector>

namespace weft::cli {
/// Parses `--dim NAME=VALUE` entries; prints the first bad one and fails.
bool parseDimSpecs(const std::vector<std::string> &specs,
                   llvm::StringMap<int64_t> &dims);

/// llvm::cl::ParseCommandLineOptions with its errors printed as
/// `weft: error: ...`; false on a bad command line.
bool parseCommandLine(int argc, char **argv, llvm::StringRef overview);

/// Prints diagnostics as `weft: error: MODEL: message`.
void installDiagnosticHandler(mlir::MLIRContext &ctx, const std::string &model);

/// Loads `--topology`; returns 0, or the exit status once the error is
/// printed: 2 for a name that is neither a preset nor a file, 1 for a file
/// that cannot be read or is invalid.
int loadTopologyOption(llvm::StringRef nameOrPath,
                       std::optional<mlir::weft::Topology> &topology);
} // namespace weft::cli

#endif // WEFT_TOOLS_WEFT_OPTIONS_H
