#include "runtime/monitor/Infiniband.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace weft::runtime::monitor {

namespace {

/// A small sysfs file's first line ("" when it cannot be read).
std::string firstLine(const fs::path &path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return "";
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  if (line.size() > 256)
    line.resize(256);
  return line;
}

/// "4: ACTIVE" -> "ACTIVE".
std::string afterColon(const std::string &text) {
  size_t colon = text.find(':');
  std::string out = colon == std::string::npos ? text : text.substr(colon + 1);
  size_t start = out.find_first_not_of(' ');
  return start == std::string::npos ? "" : out.substr(start);
}

} // namespace

std::string sysfsRoot() {
  const char *root = std::getenv("WEFT_SYSFS_ROOT");
  return root && *root ? root : "/sys";
}

const std::vector<std::string> &ibErrorCounters() {
  static const std::vector<std::string> names = {
      "symbol_error",
      "link_error_recovery",
      "link_downed",
      "port_rcv_errors",
      "port_rcv_remote_physical_errors",
      "port_rcv_switch_relay_errors",
      "port_xmit_discards",
      "port_xmit_constraint_errors",
      "port_rcv_constraint_errors",
      "local_link_integrity_errors",
      "excessive_buffer_overrun_errors",
      "VL15_dropped",
  };
  return names;
}

std::vector<IbPort> readIbPorts(const std::string &root) {
  std::vector<IbPort> ports;
  std::error_code ec;
  fs::path base = fs::path(root) / "class" / "infiniband";
  if (!fs::is_directory(base, ec))
    return ports;
  std::vector<fs::path> devices;
  for (const auto &entry : fs::directory_iterator(base, ec))
    devices.push_back(entry.path());
  std::sort(devices.begin(), devices.end());
  for (const fs::path &dev : devices) {
    std::vector<std::pair<uint32_t, fs::path>> numbered;
    for (const auto &entry : fs::directory_iterator(dev / "ports", ec)) {
      const std::string name = entry.path().filename().string();
      char *end = nullptr;
      unsigned long n = std::strtoul(name.c_str(), &end, 10);
      if (end != name.c_str() && !*end && n < 4096)
        numbered.push_back({static_cast<uint32_t>(n), entry.path()});
    }
    std::sort(numbered.begin(), numbered.end());
    for (const auto &[number, dir] : numbered) {
      IbPort p;
      p.device = dev.filename().string();
      p.port = number;
      p.state = afterColon(firstLine(dir / "state"));
      p.physState = afterColon(firstLine(dir / "phys_state"));
      p.rate = firstLine(dir / "rate");
      p.gbitPerS = std::strtod(p.rate.c_str(), nullptr);
      p.linkLayer = firstLine(dir / "link_layer");
      std::vector<std::string> names = ibErrorCounters();
      names.push_back("port_xmit_data");
      names.push_back("port_rcv_data");
      for (const std::string &name : names) {
        std::string text = firstLine(dir / "counters" / name);
        char *end = nullptr;
        unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (!text.empty() && end != text.c_str())
          p.counters[name] = v;
      }
      ports.push_back(std::move(p));
    }
  }
  return ports;
}

} // namespace weft::runtime::monitor
