#include "runtime/monitor/Telemetry.h"

#include "runtime/monitor/Infiniband.h"
#include "runtime/monitor/Nvml.h"

#include <memory>
#include <mutex>

namespace weft::runtime::monitor {

const std::vector<MetricInfo> &hardwareMetrics() {
  static const std::vector<MetricInfo> infos = {
      {"weft:gpu_utilization_percent", "gauge",
       "Percent of the last sample period a kernel ran on the rank's GPU "
       "(NVML)."},
      {"weft:gpu_memory_used_bytes", "gauge",
       "GPU memory in use on the rank's GPU, by every process (NVML)."},
      {"weft:gpu_memory_total_bytes", "gauge",
       "GPU memory of the rank's GPU (NVML)."},
      {"weft:gpu_power_watts", "gauge", "Power draw of the rank's GPU (NVML)."},
      {"weft:gpu_temperature_celsius", "gauge",
       "Temperature of the rank's GPU (NVML)."},
      {"weft:gpu_xid_errors_total", "counter",
       "XID errors (critical GPU and driver errors) of the rank's GPU since "
       "the rank started (NVML events)."},
      {"weft:gpu_last_xid", "gauge",
       "The number of the last XID error seen (0: none)."},
      {"weft:ib_transmit_bytes_total", "counter",
       "Bytes sent by an InfiniBand/RoCE port of the rank's host "
       "(port_xmit_data x 4)."},
      {"weft:ib_receive_bytes_total", "counter",
       "Bytes received by an InfiniBand/RoCE port of the rank's host "
       "(port_rcv_data x 4)."},
      {"weft:ib_errors_total", "counter",
       "An InfiniBand port's error counter, by counter (symbol_error, "
       "link_downed, port_rcv_errors, ...)."},
      {"weft:ib_port_active", "gauge",
       "1 while an InfiniBand port is ACTIVE and LinkUp, else 0."},
  };
  return infos;
}

namespace {

struct GpuSource {
  std::shared_ptr<Nvml> nvml;
  uint32_t index = 0;
  std::unique_ptr<Nvml::XidWatch> xid;
  std::mutex mutex;
};

void sampleGpu(GpuSource &gpu, std::vector<MetricSample> &out) {
  std::lock_guard<std::mutex> lock(gpu.mutex);
  auto state = gpu.nvml->readings(gpu.index);
  if (!state.ok())
    return;
  std::string labels = "gpu=\"" + std::to_string(gpu.index) + "\"";
  auto put = [&](const char *name, std::optional<double> v) {
    if (v)
      out.push_back({name, labels, *v});
  };
  put("weft:gpu_utilization_percent", state->utilizationPercent);
  put("weft:gpu_memory_used_bytes",
      state->memoryUsed ? std::optional<double>(*state->memoryUsed)
                        : std::nullopt);
  put("weft:gpu_memory_total_bytes",
      state->memoryTotal ? std::optional<double>(*state->memoryTotal)
                         : std::nullopt);
  put("weft:gpu_power_watts", state->powerWatts);
  put("weft:gpu_temperature_celsius", state->temperatureC);
  if (gpu.xid) {
    gpu.xid->poll();
    put("weft:gpu_xid_errors_total", static_cast<double>(gpu.xid->count()));
    put("weft:gpu_last_xid", static_cast<double>(gpu.xid->last()));
  }
}

void sampleIb(std::vector<MetricSample> &out) {
  for (const IbPort &p : readIbPorts()) {
    std::string labels =
        "device=\"" + p.device + "\",port=\"" + std::to_string(p.port) + "\"";
    out.push_back({"weft:ib_port_active", labels, p.active() ? 1.0 : 0.0});
    if (auto it = p.counters.find("port_xmit_data"); it != p.counters.end())
      out.push_back({"weft:ib_transmit_bytes_total", labels,
                     4.0 * static_cast<double>(it->second)});
    if (auto it = p.counters.find("port_rcv_data"); it != p.counters.end())
      out.push_back({"weft:ib_receive_bytes_total", labels,
                     4.0 * static_cast<double>(it->second)});
    for (const std::string &name : ibErrorCounters())
      if (auto it = p.counters.find(name); it != p.counters.end())
        out.push_back({"weft:ib_errors_total",
                       labels + ",counter=\"" + name + "\"",
                       static_cast<double>(it->second)});
  }
}

} // namespace

RankSampler makeRankSampler(std::optional<uint32_t> cudaDevice,
                            bool hostCounters) {
  std::shared_ptr<GpuSource> gpu;
  if (cudaDevice) {
    if (auto nvml = Nvml::load(); nvml.ok())
      if (auto index = (*nvml)->indexForCuda(*cudaDevice)) {
        gpu = std::make_shared<GpuSource>();
        gpu->nvml = *nvml;
        gpu->index = *index;
        gpu->xid = gpu->nvml->watchXid(*index);
      }
  }
  return [gpu, hostCounters] {
    std::vector<MetricSample> out;
    if (gpu)
      sampleGpu(*gpu, out);
    if (hostCounters)
      sampleIb(out);
    return out;
  };
}

} // namespace weft::runtime::monitor
