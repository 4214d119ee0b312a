// `weft tokenize --chat`: renders each conversation with the chat template,
// then encodes the prompt.
#include "tools/weft/ChatTokenize.h"

#include "runtime/tokenizer/ChatTemplate.h"

#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <string>

namespace tok = weft::tokenizer;
// Ordered: templates see messages' and tools' keys in the order they came.
using Json = nlohmann::ordered_json;

static int lineError(size_t line, const std::string &msg) {
  llvm::errs() << "weft: error: <stdin>:" << line << ": " << msg << "\n";
  return 1;
}

int weft::cli::runChatTokenize(const tok::TokenizerFiles &files,
                               const std::string &source) {
  auto chatTemplate = tok::loadChatTemplate(files.contents, source);
  if (!chatTemplate.ok()) {
    llvm::errs() << "weft: error: " << chatTemplate.message() << "\n";
    return 1;
  }
  auto context = tok::specialTokensContext(files.contents, source);
  if (!context.ok()) {
    llvm::errs() << "weft: error: " << context.message() << "\n";
    return 1;
  }
  tok::ChatTemplateOptions options;
  options.context = *context;
  tok::EncodeOptions encode;
  // The template writes BOS and the other special tokens itself.
  encode.addSpecialTokens = false;
  std::string line;
  std::vector<uint32_t> ids;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    Json messages = Json::parse(line, nullptr, false);
    if (messages.is_discarded())
      return lineError(n, "not a JSON value");
    if (!messages.is_array())
      return lineError(n, "expected a JSON list of messages");
    auto prompt = chatTemplate->render(messages, options);
    if (!prompt.ok())
      return lineError(n, prompt.message());
    ids.clear();
    if (auto s = files.tokenizer->encode(*prompt, ids, encode); !s.ok())
      return lineError(n, s.message());
    llvm::outs() << Json(ids).dump() << "\n";
    llvm::outs().flush();
  }
  return 0;
}
