// The pipeline stages of a tokenizer.json (normalizer, pre-tokenizer, model,
// post-processor, decoder) and the builders that read them from JSON.
#ifndef WEFT_RUNTIME_TOKENIZER_COMPONENTS_H
#define WEFT_RUNTIME_TOKENIZER_COMPONENTS_H

#include "runtime/support/Status.h"
#include "runtime/tokenizer/Regex.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer {

/// Thrown by the builders with the JSON path of the offending field; the
/// loader turns it into a Status, so it never leaves the library.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void configError(const std::string &path, const std::string &msg);

/// Parses tokenizer.json text as the Rust library reads it: floats are
/// rounded as serde_json's default parser rounds them (not always to the
/// nearest double), since a Unigram model's scores decide between
/// segmentations that tie to the last bit. Returns a discarded value on a
/// syntax error.
nlohmann::json parseTokenizerJson(std::string_view text);

// Typed access to a JSON object's fields; a missing or mistyped field is a
// ConfigError naming `path.key`.
const nlohmann::json *field(const nlohmann::json &obj, const char *key);
std::string getString(const nlohmann::json &obj, const char *key,
                      const std::string &path,
                      std::optional<std::string> fallback = std::nullopt);
bool getBool(const nlohmann::json &obj, const char *key,
             const std::string &path, std::optional<bool> fallback = {});
int64_t getInt(const nlohmann::json &obj, const char *key,
               const std::string &path, std::optional<int64_t> fallback = {});
/// A {"String": s} or {"Regex": r} pattern, compiled.
std::shared_ptr<Regex> getPattern(const nlohmann::json &obj, const char *key,
                                  const std::string &path);

/// Pieces of text held in one buffer, so pre-tokenization allocates nothing
/// per piece. A piece's `startCredit` counts its leading bytes that stem
/// from the input's first character (a normalizer may expand that character
/// or prepend to it); a piece with credit begins the original input, which
/// is what Metaspace's prepend_scheme "first" asks, as the Rust library's
/// offsets_original().0 == 0.
struct PieceList {
  struct Piece {
    uint32_t begin, end;
    uint32_t startCredit;
    bool atStart() const { return startCredit > 0; }
  };
  std::string text;
  std::vector<Piece> pieces;
  void clear() {
    text.clear();
    pieces.clear();
  }
  std::string_view view(const Piece &p) const {
    return std::string_view(text).substr(p.begin, p.end - p.begin);
  }
  /// Appends a piece, dropping empty ones as the Rust library does.
  void add(std::string_view s, uint32_t startCredit) {
    if (s.empty())
      return;
    uint32_t b = static_cast<uint32_t>(text.size());
    text.append(s);
    pieces.push_back({b, static_cast<uint32_t>(text.size()), startCredit});
  }
};

class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string s) const = 0;
};

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  /// Splits (and maybe rewrites) every piece of `in` into `out`.
  virtual void split(const PieceList &in, PieceList &out) const = 0;
};

class Model {
public:
  virtual ~Model() = default;
  /// Appends the ids of one pre-tokenized piece.
  virtual runtime::Status tokenize(std::string_view piece,
                                   std::vector<uint32_t> &ids) const = 0;
  virtual std::optional<uint32_t> tokenToId(std::string_view token) const = 0;
  /// The token of `id`, or nullptr.
  virtual const std::string *idToToken(uint32_t id) const = 0;
  virtual uint32_t vocabSize() const = 0;
};

class PostProcessor {
public:
  virtual ~PostProcessor() = default;
  /// The special tokens around a single sequence.
  virtual void process(std::vector<uint32_t> &ids) const = 0;
  virtual size_t addedTokens() const = 0;
};

class Decoder {
public:
  virtual ~Decoder() = default;
  virtual void decodeChain(std::vector<std::string> &tokens) const = 0;
};

std::unique_ptr<Normalizer> buildNormalizer(const nlohmann::json &j,
                                            const std::string &path);
std::unique_ptr<PreTokenizer> buildPreTokenizer(const nlohmann::json &j,
                                                const std::string &path);
std::unique_ptr<Model> buildModel(const nlohmann::json &j,
                                  const std::string &path);
std::unique_ptr<PostProcessor> buildPostProcessor(const nlohmann::json &j,
                                                  const std::string &path);
std::unique_ptr<Decoder> buildDecoder(const nlohmann::json &j,
                                      const std::string &path);

/// GPT-2's byte-to-character table: printable Latin-1 bytes map to
/// themselves, the rest to U+0100 onwards.
const std::string &byteLevelChar(uint8_t byte);
/// The byte a byte-level character stands for, or -1.
int byteLevelByte(char32_t c);

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_COMPONENTS_H
