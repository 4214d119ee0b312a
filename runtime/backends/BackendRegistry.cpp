// The backends a rank can run on, by name; the CPU backend is built in.
#include "runtime/backends/BackendRegistry.h"

#include "runtime/backends/cpu/CpuExecutor.h"

#include <map>
#include <mutex>

namespace weft::runtime {

namespace {

Result<std::unique_ptr<RankExecutor>>
makeCpuRank(const Artifact &artifact, RankPlan &rank,
            comm::Transport *transport, unsigned threads,
            std::optional<uint32_t> /*localRank*/) {
  auto exec = CpuExecutor::create(
      rank, {threads, artifact.manifest.world_size(), transport});
  if (!exec.ok())
    return exec.status();
  return std::unique_ptr<RankExecutor>(std::move(*exec));
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory> factories{{"cpu", makeCpuRank}};
};

Registry &registry() {
  static Registry r;
  return r;
}

} // namespace

void registerBackend(const std::string &name, BackendFactory factory) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
}

const BackendFactory *findBackend(const std::string &name) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.factories.find(name);
  // Map nodes are stable: the pointer outlives the lock.
  return it == r.factories.end() ? nullptr : &it->second;
}

std::vector<std::string> backendNames() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto &[name, factory] : r.factories)
    names.push_back(name);
  return names;
}

} // namespace weft::runtime
