// What `weft tokenize` is built from, for modes layered on it (a chat mode
// renders messages to text first): loading the tokenizer from a directory
// or an artifact, and turning one JSON input line into text to encode.
#ifndef WEFT_TOOLS_COMMON_TOKENIZERINPUT_H
#define WEFT_TOOLS_COMMON_TOKENIZERINPUT_H

#include "runtime/support/Status.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/TokenizerFiles.h"

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace weft::cli {

/// The tokenizer files of a directory (tokenizer.json...) or of an artifact
/// (checked against the hashes its manifest records).
runtime::Result<tokenizer::TokenizerFiles>
loadTokenizer(const std::string &path);

/// How an input line becomes text, and how that text is encoded. The
/// default takes a JSON string and adds the post-processor's special
/// tokens; a chat mode overrides render() and sets addSpecialTokens false,
/// since the template writes them itself.
struct TokenizeMode {
  virtual ~TokenizeMode() = default;
  virtual runtime::Result<std::string>
  render(const nlohmann::json &value) const;
  tokenizer::EncodeOptions options;
};

/// Encodes every stdin line as `mode` says; returns the exit status.
int runTokenizeWith(const TokenizeMode &mode,
                    const tokenizer::TokenizerFiles &files);

} // namespace weft::cli

#endif // WEFT_TOOLS_COMMON_TOKENIZERINPUT_H
