// The files of a Hugging Face tokenizer directory (tokenizer.json,
// tokenizer_config.json, chat_template.jinja, generation_config.json) and
// the fields weft reads from them: BOS/EOS tokens, EOS ids, chat template.
#ifndef WEFT_RUNTIME_TOKENIZER_TOKENIZERFILES_H
#define WEFT_RUNTIME_TOKENIZER_TOKENIZERFILES_H

#include "runtime/support/Status.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace weft::tokenizer {

/// The file names weft stores and loads, tokenizer.json first (the only
/// required one).
const std::vector<std::string> &tokenizerFileNames();

struct TokenizerFiles {
  /// File name -> contents, for the files present.
  std::map<std::string, std::string> contents;
  std::shared_ptr<Tokenizer> tokenizer;
  std::optional<std::string> bosToken, eosToken;
  /// chat_template.jinja, else tokenizer_config.json's chat_template (a
  /// string), as transformers loads it.
  std::optional<std::string> chatTemplate;
  /// generation_config.json's eos_token_id (an int or a list), else the id
  /// of eos_token.
  std::vector<uint32_t> eosTokenIds;

  /// Parses the files; `source` names where they came from in errors.
  static runtime::Result<TokenizerFiles>
  fromContents(std::map<std::string, std::string> contents,
               const std::string &source);
  /// Reads a directory holding tokenizer.json and the optional files.
  static runtime::Result<TokenizerFiles> fromDirectory(const std::string &dir);
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_TOKENIZERFILES_H
