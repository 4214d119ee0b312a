#include "runtime/monitor/Nvml.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <sstream>

namespace weft::runtime::monitor {

namespace {

// NVML's C interface, as its header declares it (only what weft uses).
using nvmlReturn = int;
using nvmlDevice = void *;
using nvmlEventSet = void *;
constexpr nvmlReturn kSuccess = 0;
constexpr unsigned kTemperatureGpu = 0;
constexpr unsigned kP2pRead = 0, kP2pNvlink = 2;
constexpr unsigned kP2pStatusOk = 0;
constexpr unsigned kMaxNvlinks = 18;
constexpr unsigned long long kEventXid = 0x8;
struct nvmlMemory {
  unsigned long long total, free, used;
};
struct nvmlUtilization {
  unsigned gpu, memory;
};
struct nvmlEventData {
  nvmlDevice device;
  unsigned long long eventType, eventData;
  unsigned gpuInstanceId, computeInstanceId;
  unsigned char reserve[64]; // room for fields a newer driver adds
};

} // namespace

struct Nvml::Api {
  nvmlReturn (*init)();
  nvmlReturn (*shutdown)();
  const char *(*errorString)(nvmlReturn);
  nvmlReturn (*deviceCount)(unsigned *);
  nvmlReturn (*handleByIndex)(unsigned, nvmlDevice *);
  nvmlReturn (*handleByUuid)(const char *, nvmlDevice *);
  nvmlReturn (*name)(nvmlDevice, char *, unsigned);
  nvmlReturn (*uuid)(nvmlDevice, char *, unsigned);
  nvmlReturn (*index)(nvmlDevice, unsigned *);
  nvmlReturn (*memory)(nvmlDevice, nvmlMemory *);
  nvmlReturn (*utilization)(nvmlDevice, nvmlUtilization *);
  nvmlReturn (*power)(nvmlDevice, unsigned *);
  nvmlReturn (*temperature)(nvmlDevice, unsigned, unsigned *);
  nvmlReturn (*driverVersion)(char *, unsigned);
  nvmlReturn (*cudaVersion)(int *);
  nvmlReturn (*nvlinkState)(nvmlDevice, unsigned, unsigned *);
  nvmlReturn (*p2pStatus)(nvmlDevice, nvmlDevice, unsigned, unsigned *);
  nvmlReturn (*eventSetCreate)(nvmlEventSet *);
  nvmlReturn (*registerEvents)(nvmlDevice, unsigned long long, nvmlEventSet);
  nvmlReturn (*eventSetWait)(nvmlEventSet, nvmlEventData *, unsigned);
  nvmlReturn (*eventSetFree)(nvmlEventSet);
};

namespace {

template <typename F> bool resolve(void *lib, const char *symbol, F &out) {
  out = reinterpret_cast<F>(::dlsym(lib, symbol));
  return out != nullptr;
}

std::mutex gLoadMutex;
std::weak_ptr<Nvml> gLoaded;

} // namespace

Result<std::shared_ptr<Nvml>> Nvml::load() {
  std::lock_guard<std::mutex> lock(gLoadMutex);
  if (auto existing = gLoaded.lock())
    return existing;
  // $WEFT_NVML_LIBRARY: another NVML (tests use a stand-in).
  const char *override = std::getenv("WEFT_NVML_LIBRARY");
  std::string path = override && *override ? override : "libnvidia-ml.so.1";
  void *lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return errorStatus("NVML is not available (" + path +
                       " not found: no NVIDIA driver on this machine?)");
  auto api = std::make_unique<Api>();
  // Required: enough to count and read GPUs; the rest may be missing.
  bool ok = resolve(lib, "nvmlInit_v2", api->init) &&
            resolve(lib, "nvmlShutdown", api->shutdown) &&
            resolve(lib, "nvmlErrorString", api->errorString) &&
            resolve(lib, "nvmlDeviceGetCount_v2", api->deviceCount) &&
            resolve(lib, "nvmlDeviceGetHandleByIndex_v2", api->handleByIndex);
  if (!ok) {
    ::dlclose(lib);
    return errorStatus(path + " lacks nvmlInit_v2 and the other functions "
                              "weft needs (a driver too old?)");
  }
  resolve(lib, "nvmlDeviceGetHandleByUUID", api->handleByUuid);
  resolve(lib, "nvmlDeviceGetName", api->name);
  resolve(lib, "nvmlDeviceGetUUID", api->uuid);
  resolve(lib, "nvmlDeviceGetIndex", api->index);
  resolve(lib, "nvmlDeviceGetMemoryInfo", api->memory);
  resolve(lib, "nvmlDeviceGetUtilizationRates", api->utilization);
  resolve(lib, "nvmlDeviceGetPowerUsage", api->power);
  resolve(lib, "nvmlDeviceGetTemperature", api->temperature);
  resolve(lib, "nvmlSystemGetDriverVersion", api->driverVersion);
  resolve(lib, "nvmlSystemGetCudaDriverVersion_v2", api->cudaVersion);
  resolve(lib, "nvmlDeviceGetNvLinkState", api->nvlinkState);
  resolve(lib, "nvmlDeviceGetP2PStatus", api->p2pStatus);
  resolve(lib, "nvmlEventSetCreate", api->eventSetCreate);
  resolve(lib, "nvmlDeviceRegisterEvents", api->registerEvents);
  resolve(lib, "nvmlEventSetWait_v2", api->eventSetWait);
  resolve(lib, "nvmlEventSetFree", api->eventSetFree);
  if (nvmlReturn r = api->init(); r != kSuccess) {
    std::string why = api->errorString(r);
    ::dlclose(lib);
    return errorStatus("NVML could not start: " + why);
  }
  std::shared_ptr<Nvml> nvml(new Nvml());
  nvml->library = lib;
  nvml->api = std::move(api);
  gLoaded = nvml;
  return nvml;
}

Nvml::~Nvml() {
  if (api)
    api->shutdown();
  // The library stays loaded: NVML's threads may outlive shutdown.
}

Result<uint32_t> Nvml::deviceCount() const {
  unsigned n = 0;
  if (nvmlReturn r = api->deviceCount(&n); r != kSuccess)
    return errorStatus(std::string("NVML cannot count the GPUs: ") +
                       api->errorString(r));
  return n;
}

Result<GpuState> Nvml::readings(uint32_t index) const {
  nvmlDevice dev = nullptr;
  if (nvmlReturn r = api->handleByIndex(index, &dev); r != kSuccess)
    return errorStatus("NVML cannot open GPU " + std::to_string(index) + ": " +
                       api->errorString(r));
  GpuState g;
  g.index = index;
  nvmlMemory mem{};
  if (api->memory && api->memory(dev, &mem) == kSuccess) {
    g.memoryTotal = mem.total;
    g.memoryUsed = mem.used;
  }
  nvmlUtilization util{};
  if (api->utilization && api->utilization(dev, &util) == kSuccess)
    g.utilizationPercent = util.gpu;
  unsigned value = 0;
  if (api->power && api->power(dev, &value) == kSuccess)
    g.powerWatts = value / 1000.0;
  if (api->temperature &&
      api->temperature(dev, kTemperatureGpu, &value) == kSuccess)
    g.temperatureC = value;
  return g;
}

Result<GpuState> Nvml::device(uint32_t index) const {
  auto read = readings(index);
  if (!read.ok())
    return read;
  GpuState g = std::move(*read);
  nvmlDevice dev = nullptr;
  api->handleByIndex(index, &dev);
  char text[128] = {};
  if (api->name && api->name(dev, text, sizeof(text) - 1) == kSuccess)
    g.name = text;
  std::memset(text, 0, sizeof(text));
  if (api->uuid && api->uuid(dev, text, sizeof(text) - 1) == kSuccess)
    g.uuid = text;
  if (api->nvlinkState) {
    uint32_t active = 0;
    bool any = false;
    for (unsigned link = 0; link < kMaxNvlinks; ++link) {
      unsigned state = 0;
      if (api->nvlinkState(dev, link, &state) != kSuccess)
        continue;
      any = true;
      active += state != 0;
    }
    if (any)
      g.nvlinksActive = active;
  }
  return g;
}

std::string Nvml::driverVersion() const {
  char text[96] = {};
  if (api->driverVersion &&
      api->driverVersion(text, sizeof(text) - 1) == kSuccess)
    return text;
  return "";
}

std::optional<int> Nvml::cudaDriverVersion() const {
  int v = 0;
  if (api->cudaVersion && api->cudaVersion(&v) == kSuccess)
    return v;
  return std::nullopt;
}

namespace {
std::optional<bool> p2p(const Nvml::Api &api, uint32_t a, uint32_t b,
                        unsigned caps) {
  nvmlDevice da = nullptr, db = nullptr;
  unsigned status = 0;
  if (!api.p2pStatus || api.handleByIndex(a, &da) != kSuccess ||
      api.handleByIndex(b, &db) != kSuccess ||
      api.p2pStatus(da, db, caps, &status) != kSuccess)
    return std::nullopt;
  return status == kP2pStatusOk;
}
} // namespace

std::optional<bool> Nvml::peerAccess(uint32_t a, uint32_t b) const {
  return p2p(*api, a, b, kP2pRead);
}

std::optional<bool> Nvml::peerNvlink(uint32_t a, uint32_t b) const {
  return p2p(*api, a, b, kP2pNvlink);
}

std::optional<uint32_t> Nvml::indexForCuda(uint32_t cudaIndex) const {
  const char *visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!visible || !*visible)
    return cudaIndex;
  std::vector<std::string> items;
  std::stringstream in(visible);
  for (std::string item; std::getline(in, item, ',');)
    items.push_back(item);
  if (cudaIndex >= items.size())
    return std::nullopt;
  const std::string &item = items[cudaIndex];
  if (item.rfind("GPU-", 0) == 0 || item.rfind("MIG-", 0) == 0) {
    nvmlDevice dev = nullptr;
    unsigned index = 0;
    if (!api->handleByUuid || !api->index ||
        api->handleByUuid(item.c_str(), &dev) != kSuccess ||
        api->index(dev, &index) != kSuccess)
      return std::nullopt;
    return index;
  }
  char *end = nullptr;
  unsigned long index = std::strtoul(item.c_str(), &end, 10);
  if (end == item.c_str() || *end || index > 1024)
    return std::nullopt;
  return static_cast<uint32_t>(index);
}

std::unique_ptr<Nvml::XidWatch> Nvml::watchXid(uint32_t index) const {
  if (!api->eventSetCreate || !api->registerEvents || !api->eventSetWait ||
      !api->eventSetFree)
    return nullptr;
  nvmlDevice dev = nullptr;
  nvmlEventSet set = nullptr;
  if (api->handleByIndex(index, &dev) != kSuccess ||
      api->eventSetCreate(&set) != kSuccess)
    return nullptr;
  if (api->registerEvents(dev, kEventXid, set) != kSuccess) {
    api->eventSetFree(set);
    return nullptr;
  }
  auto watch = std::unique_ptr<XidWatch>(new XidWatch());
  watch->nvml = this;
  watch->set = set;
  return watch;
}

Nvml::XidWatch::~XidWatch() {
  if (set)
    nvml->api->eventSetFree(set);
}

void Nvml::XidWatch::poll() {
  // A bounded drain: a storm of events cannot hold the caller.
  for (int i = 0; i < 1024; ++i) {
    nvmlEventData data{};
    if (nvml->api->eventSetWait(set, &data, 0) != kSuccess)
      return;
    if (data.eventType & kEventXid) {
      ++seen;
      lastXid = data.eventData;
    }
  }
}

Result<std::string> ncclVersion() {
  void *lib = ::dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return errorStatus("libnccl.so.2 not found");
  using GetVersion = int (*)(int *);
  GetVersion get = reinterpret_cast<GetVersion>(::dlsym(lib, "ncclGetVersion"));
  int v = 0;
  if (!get || get(&v) != 0) {
    ::dlclose(lib);
    return errorStatus("libnccl.so.2 has no working ncclGetVersion");
  }
  ::dlclose(lib);
  // NCCL >= 2.9: major * 10000 + minor * 100 + patch.
  int major = v >= 10000 ? v / 10000 : v / 1000;
  int minor = v >= 10000 ? v / 100 % 100 : v / 100 % 10;
  int patch = v % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(patch);
}

} // namespace weft::runtime::monitor
