// The server's metrics in Prometheus' text exposition format (version
// 0.0.4): counters, gauges and histograms, thread-safe, with vLLM's names
// where vLLM has the metric so that its dashboards read weft's.
#ifndef WEFT_RUNTIME_SERVE_METRICS_H
#define WEFT_RUNTIME_SERVE_METRICS_H

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace weft::runtime::serve {

/// Cumulative buckets over upper bounds, with the sum and count of every
/// observation.
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  /// "NAME_bucket{LABELS,le=...} N" lines, then NAME_sum and NAME_count.
  void write(std::string &out, const std::string &name,
             const std::string &labels) const;

private:
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;
};

/// Every metric of the server by name (and label set).
class Metrics {
public:
  /// `labels` as Prometheus writes them inside braces: `model_name="m"`.
  explicit Metrics(std::string labels) : common(std::move(labels)) {}

  void describe(const std::string &name, const std::string &type,
                const std::string &help);
  void set(const std::string &name, double value,
           const std::string &labels = "");
  void add(const std::string &name, double value,
           const std::string &labels = "");
  /// Observes into the histogram `name` (created with `bounds` on first
  /// use).
  void observe(const std::string &name, double value,
               const std::vector<double> &bounds,
               const std::string &labels = "");
  double value(const std::string &name, const std::string &labels = "") const;
  std::string text() const;

private:
  std::string labelsOf(const std::string &extra) const;

  mutable std::mutex mutex;
  std::string common;
  struct Family {
    std::string type, help;
    std::map<std::string, double> values;
    std::map<std::string, Histogram> histograms;
  };
  std::map<std::string, Family> families;
};

/// Bucket bounds in seconds: vLLM's for time to first token, inter-token
/// latency and end-to-end latency.
const std::vector<double> &ttftBuckets();
const std::vector<double> &itlBuckets();
const std::vector<double> &e2eBuckets();
/// For per-step times (milliseconds to seconds).
const std::vector<double> &stepBuckets();

} // namespace weft::runtime::serve

#endif // WEFT_RUNTIME_SERVE_METRICS_H
