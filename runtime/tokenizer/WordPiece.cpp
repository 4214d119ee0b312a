// The WordPiece model: greedy longest-prefix matching, continuation pieces
// carrying the "##" prefix, the unk token for a word that cannot be covered.
#include "runtime/tokenizer/Components.h"
#include "runtime/tokenizer/Unicode.h"
#include "runtime/tokenizer/Vocab.h"

#include <nlohmann/json.hpp>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Status;

namespace {
class WordPieceModel : public Model {
public:
  Vocab vocab;
  std::string unkToken, prefix;
  size_t maxChars = 100;

  Status tokenize(std::string_view word,
                  std::vector<uint32_t> &ids) const override {
    size_t chars = 0;
    for (char c : word)
      chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    size_t before = ids.size();
    bool bad = chars > maxChars;
    std::string sub;
    for (size_t start = 0; !bad && start < word.size();) {
      size_t end = word.size();
      std::optional<uint32_t> found;
      while (start < end) {
        sub.clear();
        if (start > 0)
          sub += prefix;
        sub.append(word.substr(start, end - start));
        if ((found = vocab.find(sub)))
          break;
        // Back off by the last code point.
        do
          --end;
        while (end > start &&
               (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        bad = true;
        break;
      }
      ids.push_back(*found);
      start = end;
    }
    if (bad) {
      ids.resize(before);
      auto unk = vocab.find(unkToken);
      if (!unk)
        return runtime::errorStatus("unk token '" + unkToken +
                                    "' is not in the vocabulary");
      ids.push_back(*unk);
    }
    return {};
  }
  std::optional<uint32_t> tokenToId(std::string_view t) const override {
    return vocab.find(t);
  }
  const std::string *idToToken(uint32_t id) const override {
    return vocab.token(id);
  }
  uint32_t vocabSize() const override { return vocab.size(); }
};
} // namespace

std::unique_ptr<Model> buildWordPiece(const json &j, const std::string &path) {
  auto m = std::make_unique<WordPieceModel>();
  const json *vocab = field(j, "vocab");
  if (!vocab || !vocab->is_object())
    configError(path + ".vocab", "expected an object of token: id");
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it->is_number_unsigned())
      configError(path + ".vocab." + it.key(), "expected an id");
    m->vocab.add(it.key(), it->get<uint32_t>());
  }
  m->unkToken = getString(j, "unk_token", path, "[UNK]");
  m->prefix = getString(j, "continuing_subword_prefix", path, "##");
  m->maxChars = getInt(j, "max_input_chars_per_word", path, 100);
  return m;
}

} // namespace weft::tokenizer
