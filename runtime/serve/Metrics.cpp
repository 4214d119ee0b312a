// Prometheus text exposition of the server's metrics.
#include "runtime/serve/Metrics.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace weft::runtime::serve {

namespace {

std::string number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string braced(const std::string &labels) {
  return labels.empty() ? std::string() : "{" + labels + "}";
}

std::string joined(const std::string &a, const std::string &b) {
  if (a.empty())
    return b;
  if (b.empty())
    return a;
  return a + "," + b;
}

} // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds(std::move(bounds)), counts(this->bounds.size(), 0) {}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds.size(); ++i)
    if (value <= bounds[i])
      ++counts[i];
  sum += value;
  ++count;
}

void Histogram::write(std::string &out, const std::string &name,
                      const std::string &labels) const {
  for (size_t i = 0; i < bounds.size(); ++i)
    out += name + "_bucket" +
           braced(joined(labels, "le=\"" + number(bounds[i]) + "\"")) + " " +
           std::to_string(counts[i]) + "\n";
  out += name + "_bucket" + braced(joined(labels, "le=\"+Inf\"")) + " " +
         std::to_string(count) + "\n";
  out += name + "_sum" + braced(labels) + " " + number(sum) + "\n";
  out += name + "_count" + braced(labels) + " " + std::to_string(count) + "\n";
}

std::string Metrics::labelsOf(const std::string &extra) const {
  return joined(common, extra);
}

void Metrics::describe(const std::string &name, const std::string &type,
                       const std::string &help) {
  std::lock_guard lock(mutex);
  Family &f = families[name];
  f.type = type;
  f.help = help;
}

void Metrics::set(const std::string &name, double value,
                  const std::string &labels) {
  std::lock_guard lock(mutex);
  families[name].values[labelsOf(labels)] = value;
}

void Metrics::add(const std::string &name, double value,
                  const std::string &labels) {
  std::lock_guard lock(mutex);
  families[name].values[labelsOf(labels)] += value;
}

void Metrics::observe(const std::string &name, double value,
                      const std::vector<double> &bounds,
                      const std::string &labels) {
  std::lock_guard lock(mutex);
  auto &hs = families[name].histograms;
  auto it = hs.try_emplace(labelsOf(labels), bounds).first;
  it->second.observe(value);
}

double Metrics::value(const std::string &name,
                      const std::string &labels) const {
  std::lock_guard lock(mutex);
  auto f = families.find(name);
  if (f == families.end())
    return 0;
  auto v = f->second.values.find(labelsOf(labels));
  return v == f->second.values.end() ? 0 : v->second;
}

std::string Metrics::text() const {
  std::lock_guard lock(mutex);
  std::string out;
  for (const auto &[name, f] : families) {
    // A family with no value yet (hardware this host lacks) is left out.
    if (f.values.empty() && f.histograms.empty())
      continue;
    // Counters are exposed with their _total suffix; HELP and TYPE name
    // the family without it.
    std::string family = name;
    if (f.type == "counter" && family.size() > 6 && family.ends_with("_total"))
      family.resize(family.size() - 6);
    if (!f.help.empty())
      out += "# HELP " + family + " " + f.help + "\n";
    if (!f.type.empty())
      out += "# TYPE " + family + " " + f.type + "\n";
    for (const auto &[labels, v] : f.values)
      out += name + braced(labels) + " " + number(v) + "\n";
    for (const auto &[labels, h] : f.histograms)
      h.write(out, name, labels);
  }
  return out;
}

const std::vector<double> &ttftBuckets() {
  static const std::vector<double> b = {
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
      0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
  return b;
}

const std::vector<double> &itlBuckets() {
  static const std::vector<double> b = {0.01, 0.025, 0.05, 0.075, 0.1,  0.15,
                                        0.2,  0.3,   0.4,  0.5,   0.75, 1.0,
                                        2.5,  5.0,   7.5,  10.0,  20.0, 40.0};
  return b;
}

const std::vector<double> &e2eBuckets() {
  static const std::vector<double> b = {
      0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,  15.0,
      20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0};
  return b;
}

const std::vector<double> &stepBuckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                        0.02,   0.05,  0.1,   0.2,   0.5,
                                        1.0,    2.0,   5.0,   10.0};
  return b;
}

} // namespace weft::runtime::serve
