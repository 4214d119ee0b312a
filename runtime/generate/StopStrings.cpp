// Stop strings over streamed text.
#include "runtime/generate/StopStrings.h"

#include <algorithm>

namespace weft::runtime::generate {

StopStringFilter::StopStringFilter(std::vector<std::string> stopStrings) {
  for (std::string &s : stopStrings)
    if (!s.empty())
      stops.push_back(std::move(s));
}

std::string StopStringFilter::push(std::string_view text) {
  if (hit)
    return "";
  pending += text;
  size_t first = std::string::npos;
  for (const std::string &stop : stops)
    first = std::min(first, pending.find(stop));
  if (first != std::string::npos) {
    hit = true;
    std::string shown = pending.substr(0, first);
    pending.clear();
    return shown;
  }
  // Hold back the longest tail that begins some stop string.
  size_t keep = 0;
  for (const std::string &stop : stops)
    for (size_t n = std::min(stop.size() - 1, pending.size()); n > keep; --n)
      if (pending.compare(pending.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string shown = pending.substr(0, pending.size() - keep);
  pending.erase(0, pending.size() - keep);
  return shown;
}

std::string StopStringFilter::finish() {
  std::string rest = hit ? std::string() : pending;
  pending.clear();
  return rest;
}

} // namespace weft::runtime::generate
