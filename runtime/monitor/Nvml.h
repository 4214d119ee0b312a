// NVIDIA's management library (NVML), loaded at run time: what weft doctor
// and the per-rank metrics read about the GPUs. Where libnvidia-ml.so.1 is
// absent (no driver, a machine without GPUs) load() says so and nothing
// else changes: weft never links it.
#ifndef WEFT_RUNTIME_MONITOR_NVML_H
#define WEFT_RUNTIME_MONITOR_NVML_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace weft::runtime::monitor {

/// One GPU as NVML sees it. Fields NVML cannot give stay unset.
struct GpuState {
  uint32_t index = 0; // NVML's numbering (all GPUs of the host)
  std::string name, uuid;
  std::optional<uint64_t> memoryTotal, memoryUsed; // bytes
  std::optional<double> utilizationPercent, powerWatts, temperatureC;
  /// NVLink links active (of the 18 NVML knows); unset without NVLink.
  std::optional<uint32_t> nvlinksActive;
};

class Nvml {
public:
  /// Loads and initializes NVML (once per process; shared).
  static Result<std::shared_ptr<Nvml>> load();
  ~Nvml();

  Result<uint32_t> deviceCount() const;
  /// Everything NVML tells of a GPU (weft doctor).
  Result<GpuState> device(uint32_t index) const;
  /// Only what changes while it runs: memory, utilization, power and
  /// temperature (the per-rank metrics, once a second).
  Result<GpuState> readings(uint32_t index) const;
  /// The driver's version ("560.35.03") and the CUDA version it supports
  /// (12060 for 12.6).
  std::string driverVersion() const;
  std::optional<int> cudaDriverVersion() const;
  /// Whether GPU a can read GPU b's memory directly, and over NVLink.
  std::optional<bool> peerAccess(uint32_t a, uint32_t b) const;
  std::optional<bool> peerNvlink(uint32_t a, uint32_t b) const;
  /// The NVML index of the GPU a process numbers `cudaIndex` (through
  /// CUDA_VISIBLE_DEVICES: indices or UUIDs; else the same number).
  std::optional<uint32_t> indexForCuda(uint32_t cudaIndex) const;

  /// Counts the GPU's XID errors (critical hardware and driver errors)
  /// from the time it is made; poll() takes what arrived, never waiting.
  class XidWatch {
  public:
    ~XidWatch();
    void poll();
    uint64_t count() const { return seen; }
    uint64_t last() const { return lastXid; }

  private:
    friend class Nvml;
    const Nvml *nvml = nullptr;
    void *set = nullptr;
    uint64_t seen = 0, lastXid = 0;
  };
  /// Null where NVML cannot deliver the GPU's events.
  std::unique_ptr<XidWatch> watchXid(uint32_t index) const;

  struct Api;

private:
  Nvml() = default;
  void *library = nullptr;
  std::unique_ptr<Api> api;
};

/// NCCL's version from libnccl.so.2 ("2.21.5"), or why there is none.
Result<std::string> ncclVersion();

} // namespace weft::runtime::monitor

#endif // WEFT_RUNTIME_MONITOR_NVML_H
