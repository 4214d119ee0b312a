// What the BPE, WordPiece and Unigram models share: a token <-> id table with
// its lookups, the <0xNN> byte tokens of byte fallback, and reading a
// {token: id} vocabulary.
#ifndef WEFT_RUNTIME_TOKENIZER_VOCABMODEL_H
#define WEFT_RUNTIME_TOKENIZER_VOCABMODEL_H

#include "runtime/tokenizer/Components.h"
#include "runtime/tokenizer/Vocab.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer {

class VocabModel : public Model {
public:
  Vocab vocab;

  std::optional<uint32_t> tokenToId(std::string_view t) const override {
    return vocab.find(t);
  }
  const std::string *idToToken(uint32_t id) const override {
    return vocab.token(id);
  }
  uint32_t vocabSize() const override { return vocab.size(); }

  /// Finds the byte tokens <0x00> .. <0xFF>; call once the vocabulary is read.
  void findByteTokens();
  /// Appends the byte tokens spelling `piece` if every one of its bytes has
  /// one; false (nothing appended) otherwise.
  bool appendByteTokens(std::string_view piece,
                        std::vector<uint32_t> &ids) const;

  /// Reads `j`'s "vocab", an object of token: id, into `vocab`; errors name
  /// `path`.vocab.
  void readVocabObject(const nlohmann::json &j, const std::string &path);

private:
  std::array<std::optional<uint32_t>, 256> byteIds;
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_VOCABMODEL_H
