// What one rank reports about its hardware for /metrics: its GPU through
// NVML (utilization, memory, power, temperature, XID errors) and, from one
// rank of each host, the host's InfiniBand ports' traffic and errors.
#ifndef WEFT_RUNTIME_MONITOR_TELEMETRY_H
#define WEFT_RUNTIME_MONITOR_TELEMETRY_H

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace weft::runtime::monitor {

/// One metric value: its name, its labels other than the rank's
/// (`device="mlx5_0",port="1"`, or empty) and its value.
struct MetricSample {
  std::string name, labels;
  double value = 0;
};

using RankSampler = std::function<std::vector<MetricSample>()>;

/// A sampler for a rank that runs on CUDA device `cudaDevice` (none: a CPU
/// rank) and, with `hostCounters`, also reports its host's InfiniBand
/// ports. Metrics whose source is absent (no NVML, no ports) are left out.
RankSampler makeRankSampler(std::optional<uint32_t> cudaDevice,
                            bool hostCounters);

/// Every name a sampler may report, with its type and help line, for
/// /metrics' headers.
struct MetricInfo {
  const char *name, *type, *help;
};
const std::vector<MetricInfo> &hardwareMetrics();

} // namespace weft::runtime::monitor

#endif // WEFT_RUNTIME_MONITOR_TELEMETRY_H
