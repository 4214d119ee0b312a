// Chat templates: renders a model's Jinja chat template the way transformers'
// apply_chat_template(..., tokenize=False) does, for the Jinja subset real
// chat templates use; anything outside it is refused, never approximated.
#ifndef WEFT_RUNTIME_TOKENIZER_CHATTEMPLATE_H
#define WEFT_RUNTIME_TOKENIZER_CHATTEMPLATE_H

#include "runtime/support/Status.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace weft::tokenizer {

namespace jinja {
struct Template;
} // namespace jinja

struct ChatTemplateOptions {
  bool addGenerationPrompt = true;
  /// More variables for the template: bos_token, eos_token and the other
  /// special tokens, tools, documents, and any extra keyword arguments.
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  /// The clock strftime_now reads (local time); the current time if unset.
  std::optional<std::time_t> now;
};

class ChatTemplate {
public:
  /// Parses `source`; `origin` names it in errors ("chat_template.jinja").
  static runtime::Result<ChatTemplate> parse(std::string source,
                                             std::string origin);

  /// Renders `messages` (a JSON list of message objects). Errors read
  /// "<origin>:<line>: <what>", including the template's raise_exception.
  runtime::Result<std::string> render(const nlohmann::ordered_json &messages,
                                      const ChatTemplateOptions &options) const;

  const std::string &origin() const { return originName; }

private:
  std::shared_ptr<const jinja::Template> tmpl;
  std::string originName;
};

/// The template in tokenizer_config.json's "chat_template": a string, or a
/// list of {name, template} of which transformers uses "default" ("tool_use",
/// where there is one, when the call passes tools).
runtime::Result<std::string>
selectChatTemplate(const nlohmann::ordered_json &value, bool withTools = false);

/// The chat template of a tokenizer directory's files (name -> contents), as
/// transformers loads it: chat_template.jinja first, else
/// tokenizer_config.json's chat_template.
runtime::Result<ChatTemplate>
loadChatTemplate(const std::map<std::string, std::string> &files,
                 const std::string &source);

/// What apply_chat_template passes the template besides the conversation:
/// tokenizer_config.json's named special tokens (bos_token, eos_token,
/// unk_token, sep_token, pad_token, cls_token, mask_token) that are set.
runtime::Result<nlohmann::ordered_json>
specialTokensContext(const std::map<std::string, std::string> &files,
                     const std::string &source);

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_CHATTEMPLATE_H
