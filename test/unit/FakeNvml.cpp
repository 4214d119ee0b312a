// A stand-in for libnvidia-ml.so.1 with NVML's C interface, for testing
// what weft doctor and the per-rank metrics make of a GPU host on a machine
// without GPUs (WEFT_NVML_LIBRARY points at it). Its GPUs are H100s unless
// its environment says otherwise:
//   FAKE_NVML_GPUS=N        N GPUs (default 8)
//   FAKE_NVML_NAME=TEXT     their name
//   FAKE_NVML_NVLINKS=N     active NVLinks per GPU (default 18)
//   FAKE_NVML_BUSY=I        GPU I has 40 GiB in use by another process
//   FAKE_NVML_NO_P2P=I      GPU I cannot reach the others' memory
//   FAKE_NVML_XID=X         one XID error X is delivered to each event set
//   FAKE_NVML_CUDA=V        the CUDA version the driver supports (13000)
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int env(const char *name, int fallback) {
  const char *v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

int gpus() { return env("FAKE_NVML_GPUS", 8); }

// Devices are the addresses of this table's entries.
char devices[64];

int indexOf(void *dev) {
  return static_cast<int>(static_cast<char *>(dev) - devices);
}

bool valid(void *dev) {
  int i = indexOf(dev);
  return i >= 0 && i < gpus();
}

void copy(char *out, unsigned length, const std::string &text) {
  if (length == 0)
    return;
  std::strncpy(out, text.c_str(), length - 1);
  out[length - 1] = '\0';
}

struct Memory {
  unsigned long long total, free, used;
};
struct Utilization {
  unsigned gpu, memory;
};
struct EventData {
  void *device;
  unsigned long long eventType, eventData;
  unsigned gpuInstanceId, computeInstanceId;
};
struct EventSet {
  void *device = nullptr;
  bool delivered = false;
};

constexpr int kSuccess = 0, kInvalid = 2, kNotSupported = 3, kTimeout = 10;

} // namespace

extern "C" {

int nvmlInit_v2() { return kSuccess; }
int nvmlShutdown() { return kSuccess; }
const char *nvmlErrorString(int r) {
  return r == kSuccess ? "Success" : "Fake NVML error";
}
int nvmlDeviceGetCount_v2(unsigned *count) {
  *count = static_cast<unsigned>(gpus());
  return kSuccess;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void **dev) {
  if (static_cast<int>(index) >= gpus())
    return kInvalid;
  *dev = devices + index;
  return kSuccess;
}
int nvmlDeviceGetIndex(void *dev, unsigned *index) {
  if (!valid(dev))
    return kInvalid;
  *index = static_cast<unsigned>(indexOf(dev));
  return kSuccess;
}
int nvmlDeviceGetHandleByUUID(const char *uuid, void **dev) {
  for (int i = 0; i < gpus(); ++i)
    if (std::string(uuid) == "GPU-fake-" + std::to_string(i)) {
      *dev = devices + i;
      return kSuccess;
    }
  return kInvalid;
}
int nvmlDeviceGetName(void *dev, char *name, unsigned length) {
  if (!valid(dev))
    return kInvalid;
  const char *n = std::getenv("FAKE_NVML_NAME");
  copy(name, length, n ? n : "NVIDIA H100 80GB HBM3");
  return kSuccess;
}
int nvmlDeviceGetUUID(void *dev, char *uuid, unsigned length) {
  if (!valid(dev))
    return kInvalid;
  copy(uuid, length, "GPU-fake-" + std::to_string(indexOf(dev)));
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo(void *dev, Memory *m) {
  if (!valid(dev))
    return kInvalid;
  m->total = 81559ull << 20;
  m->used =
      indexOf(dev) == env("FAKE_NVML_BUSY", -1) ? 40ull << 30 : 531ull << 20;
  m->free = m->total - m->used;
  return kSuccess;
}
int nvmlDeviceGetUtilizationRates(void *dev, Utilization *u) {
  if (!valid(dev))
    return kInvalid;
  u->gpu = 37 + static_cast<unsigned>(indexOf(dev));
  u->memory = 12;
  return kSuccess;
}
int nvmlDeviceGetPowerUsage(void *dev, unsigned *milliwatts) {
  if (!valid(dev))
    return kInvalid;
  *milliwatts = 312500;
  return kSuccess;
}
int nvmlDeviceGetTemperature(void *dev, unsigned sensor, unsigned *celsius) {
  if (!valid(dev) || sensor != 0)
    return kInvalid;
  *celsius = 54;
  return kSuccess;
}
int nvmlSystemGetDriverVersion(char *version, unsigned length) {
  copy(version, length, "580.65.06");
  return kSuccess;
}
int nvmlSystemGetCudaDriverVersion_v2(int *version) {
  *version = env("FAKE_NVML_CUDA", 13000);
  return kSuccess;
}
int nvmlDeviceGetNvLinkState(void *dev, unsigned link, unsigned *active) {
  if (!valid(dev) || link >= 18)
    return kInvalid;
  int links = env("FAKE_NVML_NVLINKS", 18);
  if (links < 0)
    return kNotSupported;
  *active = static_cast<int>(link) < links ? 1 : 0;
  return kSuccess;
}
int nvmlDeviceGetP2PStatus(void *a, void *b, unsigned caps, unsigned *status) {
  if (!valid(a) || !valid(b))
    return kInvalid;
  int cut = env("FAKE_NVML_NO_P2P", -1);
  bool ok = indexOf(a) != cut && indexOf(b) != cut;
  if (caps == 2) // over NVLink
    ok = ok && env("FAKE_NVML_NVLINKS", 18) > 0;
  *status = ok ? 0 : 4; // NVML_P2P_STATUS_NOT_SUPPORTED
  return kSuccess;
}
int nvmlEventSetCreate(void **set) {
  *set = new EventSet();
  return kSuccess;
}
int nvmlDeviceRegisterEvents(void *dev, unsigned long long types, void *set) {
  if (!valid(dev) || !(types & 0x8))
    return kInvalid;
  static_cast<EventSet *>(set)->device = dev;
  return kSuccess;
}
int nvmlEventSetWait_v2(void *set, EventData *data, unsigned) {
  auto *s = static_cast<EventSet *>(set);
  int xid = env("FAKE_NVML_XID", 0);
  if (!xid || s->delivered)
    return kTimeout;
  s->delivered = true;
  std::memset(data, 0, sizeof(*data));
  data->device = s->device;
  data->eventType = 0x8;
  data->eventData = static_cast<unsigned long long>(xid);
  return kSuccess;
}
int nvmlEventSetFree(void *set) {
  delete static_cast<EventSet *>(set);
  return kSuccess;
}

} // extern "C"
