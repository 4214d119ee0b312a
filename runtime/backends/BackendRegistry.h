// The backends a rank can run on besides the CPU, by name ("cuda"): what
// `weft run --backend NAME` and a session pick from. The CPU executor is the
// session's default and needs no registration (no folder under backends/ is
// included from here).
#ifndef WEFT_RUNTIME_BACKENDS_BACKENDREGISTRY_H
#define WEFT_RUNTIME_BACKENDS_BACKENDREGISTRY_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/backends/RankExecutor.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace weft::runtime {

namespace comm {
class Transport;
} // namespace comm

/// Makes the executor of `rank` (its plan read, its weights loaded) of
/// `artifact` over `transport` (null: the rank runs alone), with `threads`
/// worker threads. `localRank`
/// is the rank's place among its host's processes, as its launcher says
/// (--nproc, torchrun, mpirun); unset where the ranks are threads of one
/// process. A GPU backend picks its device by it (else by the rank).
using BackendFactory = std::function<Result<std::unique_ptr<RankExecutor>>(
    const Artifact &artifact, RankPlan &rank, comm::Transport *transport,
    unsigned threads, std::optional<uint32_t> localRank)>;

/// Makes backend `name` available; binaries that link a GPU backend
/// register it at start-up.
void registerBackend(const std::string &name, BackendFactory factory);

/// The factory of backend `name`; null when none is registered.
const BackendFactory *findBackend(const std::string &name);

/// The registered backends' names, sorted.
std::vector<std::string> backendNames();

} // namespace weft::runtime

#endif // WEFT_RUNTIME_BACKENDS_BACKENDREGISTRY_H
