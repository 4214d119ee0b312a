// The backends a rank can run on besides the CPU, by name.
#include "runtime/backends/BackendRegistry.h"

#include <map>
#include <mutex>

namespace weft::runtime {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory> factories;
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
