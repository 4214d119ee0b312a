// Added tokens: matched in the text before the model sees it, as the Rust
// library's AddedVocabulary does (leftmost-longest, then single_word, lstrip
// and rstrip).
#ifndef WEFT_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H
#define WEFT_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer {

struct AddedToken {
  uint32_t id = 0;
  std::string content;
  bool singleWord = false, lstrip = false, rstrip = false;
  bool normalized = false, special = false;
  /// What decoding yields: for a normalized token, the content after the
  /// normalizer, as the Rust library's decode gives it.
  std::string decoded;
};

/// A run of text: an added token's id, or text for the model.
struct Segment {
  size_t begin, end;
  std::optional<uint32_t> id;
};

class AddedVocabulary {
public:
  /// `pattern` is what is matched: the content, or for a normalized token
  /// the content after the normalizer.
  void add(const AddedToken &token, std::string pattern);
  /// Splits `text` at the tokens with normalized == `normalizedSet`.
  void split(std::string_view text, bool normalizedSet,
             std::vector<Segment> &out) const;
  const AddedToken *byId(uint32_t id) const;
  std::optional<uint32_t> byContent(std::string_view content) const;
  const std::vector<AddedToken> &all() const { return tokens; }

private:
  struct Pattern {
    std::string text;
    size_t token;
  };
  struct Set {
    // Patterns by first byte, longest first: the first that matches at the
    // leftmost position is the leftmost-longest match.
    std::array<std::vector<Pattern>, 256> byFirstByte;
    bool empty = true;
  };
  std::vector<AddedToken> tokens;
  Set sets[2];
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_ADDEDVOCABULARY_H
