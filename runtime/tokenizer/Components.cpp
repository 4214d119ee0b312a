// What the component builders share: typed JSON field access with paths in
// errors, and the byte-level character table.
#include "runtime/tokenizer/Components.h"

#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

#include <array>

namespace weft::tokenizer {

using nlohmann::json;

void configError(const std::string &path, const std::string &msg) {
  throw ConfigError(path + ": " + msg);
}

const json *field(const json &obj, const char *key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string getString(const json &obj, const char *key, const std::string &path,
                      std::optional<std::string> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_string())
    configError(path + "." + key, "expected a string");
  return v->get<std::string>();
}

bool getBool(const json &obj, const char *key, const std::string &path,
             std::optional<bool> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_boolean())
    configError(path + "." + key, "expected a boolean");
  return v->get<bool>();
}

int64_t getInt(const json &obj, const char *key, const std::string &path,
               std::optional<int64_t> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_number_integer())
    configError(path + "." + key, "expected an integer");
  return v->get<int64_t>();
}

std::shared_ptr<Regex> getPattern(const json &obj, const char *key,
                                  const std::string &path) {
  std::string p = path + "." + key;
  const json *v = field(obj, key);
  if (!v || !v->is_object())
    configError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
  std::string source;
  if (const json *s = field(*v, "String"); s && s->is_string())
    source = Regex::escape(s->get<std::string>());
  else if (const json *r = field(*v, "Regex"); r && r->is_string())
    source = r->get<std::string>();
  else
    configError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
  auto re = Regex::compile(source);
  if (!re.ok())
    configError(p, re.message());
  return *re;
}

namespace {
struct ByteLevelTable {
  std::array<std::string, 256> chars;
  std::array<int, 512> bytes;
  ByteLevelTable() {
    bytes.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? b : next++;
      appendUtf8(chars[b], c);
      bytes[c] = b;
    }
  }
};
const ByteLevelTable &table() {
  static const ByteLevelTable t;
  return t;
}
} // namespace

const std::string &byteLevelChar(uint8_t byte) { return table().chars[byte]; }

int byteLevelByte(char32_t c) { return c < 512 ? table().bytes[c] : -1; }

} // namespace weft::tokenizer

namespace weft::tokenizer {
std::unique_ptr<Model> buildBpe(const json &j, const std::string &path);
std::unique_ptr<Model> buildWordPiece(const json &j, const std::string &path);
std::unique_ptr<Model> buildUnigram(const json &j, const std::string &path);

std::unique_ptr<Model> buildModel(const json &j, const std::string &path) {
  // Older files leave out the model's type; its fields tell it.
  std::string type;
  if (field(j, "type"))
    type = getString(j, "type", path);
  else if (field(j, "merges"))
    type = "BPE";
  else if (field(j, "vocab") && j["vocab"].is_array())
    type = "Unigram";
  else
    type = "WordPiece";
  if (type == "BPE")
    return buildBpe(j, path);
  if (type == "WordPiece")
    return buildWordPiece(j, path);
  if (type == "Unigram")
    return buildUnigram(j, path);
  configError(path + ".type", "unsupported '" + type + "'");
}
} // namespace weft::tokenizer
