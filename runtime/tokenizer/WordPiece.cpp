// The WordPiece model: greedy longest-prefix matching, continuation pieces
// carrying the "##" prefix, the unk token for a word that cannot be covered.
#include "runtime/tokenizer/Unicode.h"
#include "runtime/tokenizer/VocabModel.h"

#include <nlohmann/json.hpp>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Status;

namespace {
class WordPieceModel : public VocabModel {
public:
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
};
} // namespace

std::unique_ptr<Model> buildWordPiece(const json &j, const std::string &path) {
  auto m = std::make_unique<WordPieceModel>();
  m->readVocabObject(j, path);
  m->unkToken = getString(j, "unk_token", path, "[UNK]");
  m->prefix = getString(j, "continuing_subword_prefix", path, "##");
  m->maxChars = getInt(j, "max_input_chars_per_word", path, 100);
  return m;
}

} // namespace weft::tokenizer
