// The vocabulary models' shared lookups, byte tokens and vocabulary reading.
#include "runtime/tokenizer/VocabModel.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace weft::tokenizer {

void VocabModel::findByteTokens() {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof(name), "<0x%02X>", b);
    byteIds[b] = vocab.find(name);
  }
}

bool VocabModel::appendByteTokens(std::string_view piece,
                                  std::vector<uint32_t> &ids) const {
  for (unsigned char c : piece)
    if (!byteIds[c])
      return false;
  for (unsigned char c : piece)
    ids.push_back(*byteIds[c]);
  return true;
}

void VocabModel::readVocabObject(const nlohmann::json &j,
                                 const std::string &path) {
  const nlohmann::json *v = field(j, "vocab");
  if (!v || !v->is_object())
    configError(path + ".vocab", "expected an object of token: id");
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it->is_number_unsigned())
      configError(path + ".vocab." + it.key(), "expected an id");
    // The table is as long as the largest id: bound it (the largest real
    // vocabularies hold a few hundred thousand tokens).
    if (it->get<uint64_t>() >= kMaxTokenId)
      configError(path + ".vocab." + it.key(),
                  "id " + std::to_string(it->get<uint64_t>()) +
                      " is not below " + std::to_string(kMaxTokenId));
    vocab.add(it.key(), it->get<uint32_t>());
  }
}

} // namespace weft::tokenizer
