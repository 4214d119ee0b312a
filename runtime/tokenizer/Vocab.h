// A token <-> id table with lookups by string_view (no key copies).
#ifndef WEFT_RUNTIME_TOKENIZER_VOCAB_H
#define WEFT_RUNTIME_TOKENIZER_VOCAB_H

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace weft::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>()(s);
  }
};
template <typename V>
using StringMap =
    std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

/// Token ids a tokenizer.json may use: below 2^22 (4,194,304).
inline constexpr uint64_t kMaxTokenId = uint64_t(1) << 22;

class Vocab {
public:
  void add(std::string token, uint32_t id) {
    if (id >= tokens.size())
      tokens.resize(id + 1);
    tokens[id] = token;
    has.resize(tokens.size());
    has[id] = true;
    ids[std::move(token)] = id;
  }
  std::optional<uint32_t> find(std::string_view token) const {
    auto it = ids.find(token);
    if (it == ids.end())
      return std::nullopt;
    return it->second;
  }
  const std::string *token(uint32_t id) const {
    return id < tokens.size() && has[id] ? &tokens[id] : nullptr;
  }
  uint32_t size() const { return static_cast<uint32_t>(tokens.size()); }

private:
  StringMap<uint32_t> ids;
  std::vector<std::string> tokens;
  std::vector<bool> has;
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_VOCAB_H
