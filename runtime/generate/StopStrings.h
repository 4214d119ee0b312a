// Stop strings over streamed text: text is released only once no stop
// string can still start in it, and a stop string found ends the stream
// without being released.
#ifndef WEFT_RUNTIME_GENERATE_STOPSTRINGS_H
#define WEFT_RUNTIME_GENERATE_STOPSTRINGS_H

#include <string>
#include <string_view>
#include <vector>

namespace weft::runtime::generate {

class StopStringFilter {
public:
  explicit StopStringFilter(std::vector<std::string> stops);

  /// Takes the next piece of text; returns what may now be shown. After a
  /// stop string is found, stopped() is true and later pieces are dropped.
  std::string push(std::string_view text);
  /// The text held back (a possible start of a stop string that never
  /// completed), at the end of the stream.
  std::string finish();
  bool stopped() const { return hit; }

private:
  std::vector<std::string> stops;
  std::string pending;
  bool hit = false;
};

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_STOPSTRINGS_H
