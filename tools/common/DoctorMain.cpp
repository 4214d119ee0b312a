// `weft doctor`: one row per check, and a non-zero exit naming the checks
// that would break a launch.
#include "tools/common/DoctorMain.h"

#include "runtime/monitor/Infiniband.h"
#include "runtime/monitor/Nvml.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace weft::runtime {

namespace {

namespace mon = monitor;

constexpr const char *kProg = "weft doctor";

enum class Verdict { Ok, Warn, Fail, Info };

const char *verdictText(Verdict v) {
  switch (v) {
  case Verdict::Ok:
    return "ok";
  case Verdict::Warn:
    return "warn";
  case Verdict::Fail:
    return "FAIL";
  case Verdict::Info:
    return "-";
  }
  return "?";
}

struct Row {
  std::string check;
  Verdict verdict;
  std::string detail;
};

std::string gib(double bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << bytes / double(1ull << 30)
     << " GiB";
  return os.str();
}

std::string number(double v, int digits = 0) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

/// The model in a topology's GPU type: "H100" of "H100-SXM-80GB".
std::string gpuModel(const std::string &type) {
  return type.substr(0, type.find('-'));
}

struct Options {
  std::string topology;
  bool json = false, help = false;
};

void printHelp(std::ostream &os, bool canLoadTopology) {
  os << "usage: " << kProg << R"( [--topology NAME|FILE] [--json]

Checks this host before a long job: its GPUs (through NVML: their memory,
temperature and whether another process holds memory), the driver, CUDA and
NCCL versions, peer access and NVLink between its GPUs, and its InfiniBand
or RoCE ports (/sys/class/infiniband: ACTIVE, LinkUp, rate). With
--topology, also that the host matches it: the GPU count and type, their
memory, NVLink where the topology has it, and the network ports its
inter-node fabric needs. Prints a table (or JSON); exits 1 naming the
checks that failed. Missing InfiniBand fails only where the topology needs
it.

options:
  --topology NAME|FILE   the topology the job was planned for (a preset or
                         a topology YAML file))"
     << (canLoadTopology ? "" : "; needs weft, not weft-doctor") << R"(
  --json                 one JSON object per check
  -h, --help             this help
)";
}

int usageError(const std::string &message) {
  std::cerr << "weft: error: " << message << "\nRun '" << kProg
            << " --help' for usage.\n";
  return 2;
}

class Doctor {
public:
  explicit Doctor(const std::optional<DoctorTopology> &topology)
      : topology(topology) {}

  std::vector<Row> run() {
    checkGpus();
    checkInfiniband();
    if (topology)
      checkTopology();
    return rows;
  }

private:
  void add(std::string check, Verdict v, std::string detail) {
    rows.push_back({std::move(check), v, std::move(detail)});
  }

  void checkGpus() {
    auto loaded = mon::Nvml::load();
    if (!loaded.ok()) {
      add("gpus", Verdict::Fail, "no GPU found: " + loaded.message());
      checkNccl(false);
      return;
    }
    nvml = *loaded;
    auto count = nvml->deviceCount();
    if (!count.ok() || *count == 0) {
      add("gpus", Verdict::Fail,
          count.ok() ? "no GPU found (NVML sees none)" : count.message());
      checkNccl(false);
      return;
    }
    for (uint32_t i = 0; i < *count; ++i) {
      auto g = nvml->device(i);
      if (!g.ok()) {
        add("gpu " + std::to_string(i), Verdict::Fail, g.message());
        continue;
      }
      gpus.push_back(*g);
      std::string detail = g->name;
      Verdict v = Verdict::Ok;
      if (g->memoryTotal) {
        detail += ", " + gib(double(*g->memoryTotal));
        // Memory another process holds is memory the KV cache will not get.
        if (g->memoryUsed && *g->memoryUsed > *g->memoryTotal / 20) {
          v = Verdict::Warn;
          detail += ", " + gib(double(*g->memoryUsed)) +
                    " already in use (another process?)";
        }
      }
      if (g->temperatureC) {
        detail += ", " + number(*g->temperatureC) + " C";
        if (*g->temperatureC >= 85) {
          v = Verdict::Warn;
          detail += " (hot)";
        }
      }
      if (g->powerWatts)
        detail += ", " + number(*g->powerWatts) + " W";
      if (g->nvlinksActive)
        detail += ", " + std::to_string(*g->nvlinksActive) + " NVLinks";
      add("gpu " + std::to_string(i), v, detail);
    }
    std::string driver = nvml->driverVersion();
    auto cuda = nvml->cudaDriverVersion();
    std::string cudaText = cuda ? std::to_string(*cuda / 1000) + "." +
                                      std::to_string(*cuda % 1000 / 10)
                                : std::string("unknown");
#ifdef WEFT_CUDA_MAJOR
    // The CUDA runtime weft was built with needs a driver of that major
    // version or newer.
    if (cuda && *cuda / 1000 < WEFT_CUDA_MAJOR)
      add("driver", Verdict::Fail,
          (driver.empty() ? std::string("a driver") : driver) +
              " supports CUDA " + cudaText + "; this weft needs CUDA " +
              std::to_string(WEFT_CUDA_MAJOR) + " or newer");
    else
#endif
      add("driver", Verdict::Ok,
          (driver.empty() ? std::string("version unknown") : driver) +
              ", CUDA " + cudaText);
    checkNccl(true);
    checkPeers();
  }

  void checkNccl(bool haveGpus) {
    auto v = mon::ncclVersion();
    if (v.ok())
      add("nccl", Verdict::Ok, *v);
    else
      add("nccl", haveGpus ? Verdict::Fail : Verdict::Info,
          v.message() +
              (haveGpus ? " (weft's GPU runtime loads it)" : " (no GPUs)"));
  }

  void checkPeers() {
    if (gpus.size() < 2)
      return;
    std::vector<std::string> noAccess;
    uint32_t pairs = 0, unknown = 0;
    for (size_t a = 0; a < gpus.size(); ++a)
      for (size_t b = 0; b < gpus.size(); ++b) {
        if (a == b)
          continue;
        ++pairs;
        auto ok = nvml->peerAccess(gpus[a].index, gpus[b].index);
        if (!ok)
          ++unknown;
        else if (!*ok)
          noAccess.push_back(std::to_string(gpus[a].index) + "->" +
                             std::to_string(gpus[b].index));
      }
    bool needed = topology && topology->nvlink;
    if (!noAccess.empty()) {
      std::string list;
      for (size_t i = 0; i < noAccess.size() && i < 8; ++i)
        list += (i ? ", " : "") + noAccess[i];
      if (noAccess.size() > 8)
        list += ", ...";
      add("peer access", needed ? Verdict::Fail : Verdict::Warn,
          std::to_string(noAccess.size()) + " of " + std::to_string(pairs) +
              " GPU pairs cannot reach each other's memory (" + list + ")");
    } else if (unknown == pairs) {
      add("peer access", Verdict::Info, "NVML cannot tell");
    } else {
      add("peer access", Verdict::Ok,
          "all " + std::to_string(pairs) + " GPU pairs");
    }
    // NVLink: every GPU's links, and whether pairs talk over it.
    std::vector<uint32_t> without;
    bool known = false;
    uint32_t minLinks = UINT32_MAX;
    for (const mon::GpuState &g : gpus) {
      if (!g.nvlinksActive)
        continue;
      known = true;
      minLinks = std::min(minLinks, *g.nvlinksActive);
      if (*g.nvlinksActive == 0)
        without.push_back(g.index);
    }
    if (!known) {
      add("nvlink", needed ? Verdict::Fail : Verdict::Info,
          "none (NVML reports no NVLink)");
    } else if (!without.empty()) {
      std::string list;
      for (size_t i = 0; i < without.size(); ++i)
        list += (i ? ", " : "") + std::to_string(without[i]);
      add("nvlink", needed ? Verdict::Fail : Verdict::Warn,
          "no active link on GPU " + list);
    } else {
      add("nvlink", Verdict::Ok,
          "at least " + std::to_string(minLinks) + " active links per GPU");
    }
  }

  void checkInfiniband() {
    ports = mon::readIbPorts();
    bool needed =
        topology && topology->nodes > 1 && topology->interNode != "none";
    if (ports.empty()) {
      add("network", needed ? Verdict::Fail : Verdict::Info,
          std::string("no InfiniBand or RoCE port (") + mon::sysfsRoot() +
              "/class/infiniband)" +
              (needed ? "; " + topology->name + " needs " +
                            std::to_string(topology->nicsPerNode) + " per node"
               : topology ? "; " + topology->name + " does not need one"
                          : ""));
      return;
    }
    for (const mon::IbPort &p : ports) {
      std::string name = p.device + " port " + std::to_string(p.port);
      std::string detail = (p.state.empty() ? "state unknown" : p.state) +
                           ", " + (p.physState.empty() ? "?" : p.physState) +
                           ", " + (p.rate.empty() ? "rate unknown" : p.rate) +
                           (p.linkLayer.empty() ? "" : ", " + p.linkLayer);
      uint64_t errors = 0;
      for (const std::string &c : mon::ibErrorCounters())
        if (auto it = p.counters.find(c); it != p.counters.end())
          errors += it->second;
      if (errors)
        detail += ", " + std::to_string(errors) + " errors counted";
      // A port that is down matters where the topology needs the network.
      Verdict v = p.active() ? (errors ? Verdict::Warn : Verdict::Ok)
                             : (needed ? Verdict::Warn : Verdict::Info);
      add(name, v, detail);
    }
  }

  void checkTopology() {
    const DoctorTopology &t = *topology;
    std::vector<std::string> problems;
    if (!gpus.empty()) {
      if (int64_t(gpus.size()) < t.gpusPerNode)
        problems.push_back(std::to_string(gpus.size()) + " GPUs, " + t.name +
                           " has " + std::to_string(t.gpusPerNode) +
                           " per node");
      std::string model = gpuModel(t.gpuType);
      for (const mon::GpuState &g : gpus)
        if (!model.empty() && g.name.find(model) == std::string::npos) {
          problems.push_back("GPU " + std::to_string(g.index) + " is " +
                             g.name + ", " + t.name + " has " + t.gpuType);
          break;
        }
      for (const mon::GpuState &g : gpus)
        if (g.memoryTotal && t.gpuMemoryGib > 0) {
          double have = double(*g.memoryTotal) / double(1ull << 30);
          if (have < 0.9 * t.gpuMemoryGib || have > 1.1 * t.gpuMemoryGib) {
            problems.push_back("GPU " + std::to_string(g.index) + " has " +
                               gib(double(*g.memoryTotal)) + ", " + t.name +
                               " plans for " + number(t.gpuMemoryGib) + " GiB");
            break;
          }
        }
    }
    if (t.nodes > 1 && t.interNode != "none") {
      // The ports the fabric needs: active, of its link layer, at its rate.
      std::string layer =
          t.interNode == "infiniband" ? "InfiniBand" : "Ethernet";
      int64_t usable = 0;
      for (const mon::IbPort &p : ports)
        if (p.active() && (p.linkLayer.empty() || p.linkLayer == layer) &&
            p.gbitPerS >= 0.9 * t.gbitPerNic)
          ++usable;
      if (usable < t.nicsPerNode)
        problems.push_back(std::to_string(usable) + " active " + layer +
                           " port(s) at " + number(t.gbitPerNic) +
                           " Gb/s or more, " + t.name + " needs " +
                           std::to_string(t.nicsPerNode) + " per node");
    }
    if (problems.empty()) {
      add("topology", Verdict::Ok,
          "matches " + t.name + " (" + std::to_string(t.gpusPerNode) + " x " +
              t.gpuType + " per node" +
              (t.nodes > 1 ? ", " + std::to_string(t.nicsPerNode) + " " +
                                 t.interNode + " NICs"
                           : std::string()) +
              ")");
      return;
    }
    for (const std::string &p : problems)
      add("topology", Verdict::Fail, p);
  }

  std::optional<DoctorTopology> topology;
  std::shared_ptr<mon::Nvml> nvml;
  std::vector<mon::GpuState> gpus;
  std::vector<mon::IbPort> ports;
  std::vector<Row> rows;
};

} // namespace

int doctorMain(int argc, char **argv, const DoctorTopologyLoader &loader) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help")
      opts.help = true;
    else if (arg == "--json")
      opts.json = true;
    else if (arg == "--topology" || arg.rfind("--topology=", 0) == 0) {
      if (!opts.topology.empty())
        return usageError("option '--topology' is given more than once");
      if (arg == "--topology" && i + 1 >= argc)
        return usageError("option '--topology' needs a value");
      opts.topology = arg == "--topology" ? argv[++i] : arg.substr(11);
      if (opts.topology.empty())
        return usageError("--topology needs a preset name or a file");
    } else {
      return usageError("unknown argument '" + arg + "'");
    }
  }
  if (opts.help) {
    printHelp(std::cout, bool(loader));
    return 0;
  }
  std::optional<DoctorTopology> topology;
  if (!opts.topology.empty()) {
    if (!loader)
      return usageError("--topology needs weft (this build reads no "
                        "topology files); run 'weft doctor --topology " +
                        opts.topology + "'");
    int status = 1;
    auto t = loader(opts.topology, status);
    if (!t.ok()) {
      std::cerr << "weft: error: --topology: " << t.message() << "\n";
      return status;
    }
    topology = *t;
  }
  std::vector<Row> rows = Doctor(topology).run();

  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  if (opts.json) {
    for (const Row &r : rows)
      std::cout << nlohmann::json{{"host", host},
                                  {"check", r.check},
                                  {"status", verdictText(r.verdict)},
                                  {"detail", r.detail}}
                       .dump()
                << "\n";
  } else {
    size_t width = 5;
    for (const Row &r : rows)
      width = std::max(width, r.check.size());
    std::cout << "weft doctor: " << host
              << (topology ? ", for " + topology->name : std::string()) << "\n"
              << std::left << std::setw(int(width) + 2) << "CHECK"
              << std::setw(8) << "STATUS"
              << "DETAIL\n";
    for (const Row &r : rows)
      std::cout << std::left << std::setw(int(width) + 2) << r.check
                << std::setw(8) << verdictText(r.verdict) << r.detail << "\n";
  }
  std::vector<std::string> failed;
  for (const Row &r : rows)
    if (r.verdict == Verdict::Fail &&
        std::find(failed.begin(), failed.end(), r.check) == failed.end())
      failed.push_back(r.check);
  std::cout.flush();
  if (failed.empty())
    return 0;
  std::string list;
  for (size_t i = 0; i < failed.size(); ++i)
    list += (i ? ", " : "") + failed[i];
  std::cerr << "weft: error: " << failed.size()
            << (failed.size() == 1 ? " check" : " checks")
            << " failed: " << list << "\n";
  return 1;
}

} // namespace weft::runtime
