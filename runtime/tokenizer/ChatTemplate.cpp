// Chat templates: parsing, and rendering with transformers' variables.
#include "runtime/tokenizer/ChatTemplate.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Interpreter.h"
#include "runtime/tokenizer/jinja/Parser.h"

namespace weft::tokenizer {

using runtime::errorStatus;
using runtime::Result;

namespace {

runtime::Status describe(const std::string &origin,
                         const jinja::TemplateError &err) {
  std::string where = origin;
  if (err.lineNumber() > 0)
    where += ":" + std::to_string(err.lineNumber());
  return errorStatus(where + ": " + err.message());
}

/// transformers drops a message's keys whose value is null (an API's
/// `content: null`), since templates handle a missing key better.
nlohmann::ordered_json dropNullKeys(const nlohmann::ordered_json &message) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto &[key, value] : message.items())
    if (!value.is_null())
      out[key] = value;
  return out;
}

/// transformers' _alias_reasoning_fields: a message's reasoning is also
/// readable as `thinking` (first) and `reasoning_content` (last).
nlohmann::ordered_json aliasReasoning(const nlohmann::ordered_json &message) {
  static const char *fields[] = {"reasoning_content", "thinking", "reasoning"};
  const nlohmann::ordered_json *reasoning = nullptr;
  for (const char *field : fields) {
    auto it = message.find(field);
    if (it != message.end() && !it->is_null()) {
      reasoning = &*it;
      break;
    }
  }
  if (!reasoning)
    return message;
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["thinking"] = *reasoning;
  for (const auto &[key, value] : message.items())
    out[key] = value;
  out["thinking"] = *reasoning;
  out["reasoning_content"] = *reasoning;
  return out;
}

} // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string source,
                                         std::string origin) {
  ChatTemplate result;
  result.originName = std::move(origin);
  try {
    result.tmpl = jinja::parseTemplate(source);
  } catch (const jinja::TemplateError &err) {
    return describe(result.originName, err);
  }
  return result;
}

Result<std::string>
ChatTemplate::render(const nlohmann::ordered_json &messages,
                     const ChatTemplateOptions &options) const {
  if (!messages.is_array())
    return errorStatus("messages must be a JSON list of message objects");
  if (messages.empty())
    return errorStatus("cannot apply a chat template to an empty conversation");
  nlohmann::ordered_json chat = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object())
      return errorStatus("message " + std::to_string(i) +
                         " is not a JSON object");
    chat.push_back(aliasReasoning(dropNullKeys(messages[i])));
  }
  if (!options.context.is_object())
    return errorStatus("the template's context must be a JSON object");
  try {
    jinja::ValueDict vars = jinja::chatTemplateGlobals(
        options.now ? *options.now : std::time(nullptr));
    // What apply_chat_template passes to render(), in its order.
    vars.set("messages", jinja::Value::fromJson(chat));
    vars.set("tools", jinja::Value::none());
    vars.set("documents", jinja::Value::none());
    vars.set("add_generation_prompt",
             jinja::Value::boolean(options.addGenerationPrompt));
    for (const auto &[key, value] : options.context.items())
      vars.set(key, jinja::Value::fromJson(value));
    return jinja::renderTemplate(*tmpl, vars);
  } catch (const jinja::TemplateError &err) {
    return describe(originName, err);
  }
}

Result<std::string> selectChatTemplate(const nlohmann::ordered_json &value,
                                       bool withTools) {
  if (value.is_string())
    return value.get<std::string>();
  if (value.is_array()) {
    auto named =
        [&](const std::string &name) -> const nlohmann::ordered_json * {
      for (const auto &entry : value)
        if (entry.is_object() && entry.value("name", "") == name &&
            entry.contains("template") && entry["template"].is_string())
          return &entry["template"];
      return nullptr;
    };
    if (withTools && named("tool_use"))
      return named("tool_use")->get<std::string>();
    if (named("default"))
      return named("default")->get<std::string>();
    return errorStatus("chat_template lists no template named 'default'");
  }
  return errorStatus("chat_template must be a string or a list of "
                     "{name, template}");
}

static Result<nlohmann::ordered_json>
readConfig(const std::map<std::string, std::string> &files,
           const std::string &source) {
  auto it = files.find("tokenizer_config.json");
  if (it == files.end())
    return nlohmann::ordered_json::object();
  auto config = nlohmann::ordered_json::parse(it->second, nullptr, false);
  if (config.is_discarded() || !config.is_object())
    return errorStatus(source + "/tokenizer_config.json: not a valid JSON "
                                "object");
  return config;
}

Result<ChatTemplate>
loadChatTemplate(const std::map<std::string, std::string> &files,
                 const std::string &source) {
  if (auto it = files.find("chat_template.jinja"); it != files.end())
    return ChatTemplate::parse(it->second, "chat_template.jinja");
  auto config = readConfig(files, source);
  if (!config.ok())
    return config.status();
  auto entry = config->find("chat_template");
  if (entry == config->end() || entry->is_null())
    return errorStatus(source + ": the tokenizer has no chat template "
                                "(no chat_template.jinja, and no "
                                "chat_template in tokenizer_config.json)");
  auto text = selectChatTemplate(*entry);
  if (!text.ok())
    return text.status().withPrefix(source + "/tokenizer_config.json: ");
  return ChatTemplate::parse(*text, "tokenizer_config.json chat_template");
}

Result<nlohmann::ordered_json>
specialTokensContext(const std::map<std::string, std::string> &files,
                     const std::string &source) {
  auto config = readConfig(files, source);
  if (!config.ok())
    return config.status();
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  for (const char *name : {"bos_token", "eos_token", "unk_token", "sep_token",
                           "pad_token", "cls_token", "mask_token"}) {
    auto it = config->find(name);
    if (it == config->end())
      continue;
    // A token is a string or an AddedToken object holding it as "content".
    if (it->is_string())
      context[name] = *it;
    else if (it->is_object() && it->contains("content") &&
             (*it)["content"].is_string())
      context[name] = (*it)["content"];
  }
  return context;
}

} // namespace weft::tokenizer
