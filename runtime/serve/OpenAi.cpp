// OpenAI's completions and chat completions requests, checked field by
// field, and the responses and chunks its clients parse.
#include "runtime/serve/OpenAi.h"

#include <random>

namespace weft::runtime::serve {

namespace gen = weft::runtime::generate;

namespace {

ApiError badField(const std::string &param, const std::string &message) {
  ApiError e;
  e.message = message;
  e.param = param;
  return e;
}

/// The body as a JSON object, or the error saying why not.
std::variant<Json, ApiError> parseObject(const std::string &body) {
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return badField("", "the request body is not valid JSON (in UTF-8)");
  if (!json.is_object())
    return badField("", "the request body must be a JSON object");
  return json;
}

/// A field that is absent or null.
bool absent(const Json &body, const char *name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null();
}

std::optional<ApiError> getInt(const Json &body, const char *name,
                               std::optional<int64_t> &out, int64_t lo,
                               int64_t hi) {
  if (absent(body, name))
    return std::nullopt;
  const Json &v = body[name];
  if (!v.is_number_integer())
    return badField(name, std::string("'") + name + "' must be an integer");
  int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX
                  ? INT64_MAX
                  : v.get<int64_t>();
  if (x < lo || x > hi)
    return badField(name, std::string("'") + name + "' must be in [" +
                              std::to_string(lo) + ", " + std::to_string(hi) +
                              "], not " + std::to_string(x));
  out = x;
  return std::nullopt;
}

std::optional<ApiError> getNumber(const Json &body, const char *name,
                                  std::optional<double> &out, double lo,
                                  double hi, bool openLow = false) {
  if (absent(body, name))
    return std::nullopt;
  const Json &v = body[name];
  if (!v.is_number())
    return badField(name, std::string("'") + name + "' must be a number");
  double x = v.get<double>();
  if (!(openLow ? x > lo : x >= lo) || !(x <= hi))
    return badField(name, std::string("'") + name + "' must be in " +
                              (openLow ? "(" : "[") + std::to_string(lo) +
                              ", " + std::to_string(hi) + "]");
  out = x;
  return std::nullopt;
}

std::optional<ApiError> getBool(const Json &body, const char *name, bool &out) {
  if (absent(body, name))
    return std::nullopt;
  if (!body[name].is_boolean())
    return badField(name, std::string("'") + name + "' must be a boolean");
  out = body[name].get<bool>();
  return std::nullopt;
}

/// Fields weft does not implement: refused when set to anything but their
/// no-op value, never silently ignored.
std::optional<ApiError> refuseUnsupported(const Json &body, bool chat) {
  auto set = [&](const char *name) { return !absent(body, name); };
  auto nonzero = [&](const char *name) {
    return set(name) && !(body[name].is_number() && body[name] == 0);
  };
  auto truthy = [&](const char *name) {
    return set(name) && !(body[name].is_boolean() && !body[name].get<bool>());
  };
  for (const char *name : {"presence_penalty", "frequency_penalty"})
    if (nonzero(name))
      return badField(name, std::string("'") + name + "' is not supported");
  if (set("logit_bias") &&
      !(body["logit_bias"].is_object() && body["logit_bias"].empty()))
    return badField("logit_bias", "'logit_bias' is not supported");
  if (truthy("logprobs") || set("top_logprobs"))
    return badField("logprobs", "logprobs are not supported");
  if (!chat && (truthy("echo") || set("suffix")))
    return badField(truthy("echo") ? "echo" : "suffix",
                    "'echo' and 'suffix' are not supported");
  if (!chat && set("best_of") &&
      !(body["best_of"].is_number_integer() && body["best_of"] == 1))
    return badField("best_of", "'best_of' is not supported");
  if (chat && (set("tools") || set("tool_choice") || set("functions")))
    return badField("tools", "tools and function calling are not supported");
  if (chat && set("response_format") &&
      !(body["response_format"].is_object() &&
        body["response_format"].value("type", "") == "text"))
    return badField("response_format",
                    "'response_format' other than text is not supported");
  return std::nullopt;
}

/// The stop strings: a string or a list of strings.
std::optional<ApiError> getStops(const Json &body,
                                 std::vector<std::string> &out) {
  if (absent(body, "stop"))
    return std::nullopt;
  const Json &v = body["stop"];
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const Json &s : v) {
      if (!s.is_string())
        return badField("stop", "'stop' must be a string or a list of them");
      out.push_back(s.get<std::string>());
    }
  } else {
    return badField("stop", "'stop' must be a string or a list of them");
  }
  if (out.size() > 16)
    return badField("stop", "'stop' holds more than 16 strings");
  for (const std::string &s : out)
    if (s.empty())
      return badField("stop", "'stop' holds an empty string");
  return std::nullopt;
}

std::optional<ApiError> checkIds(const std::vector<uint32_t> &ids,
                                 const ModelInfo &model, const char *param) {
  for (uint32_t id : ids)
    if (model.vocab > 0 && id >= model.vocab)
      return badField(param, "token id " + std::to_string(id) +
                                 " is out of range (the vocabulary has " +
                                 std::to_string(model.vocab) + " ids)");
  return std::nullopt;
}

/// A list of token ids, or nullopt if `v` is not one.
std::optional<std::vector<uint32_t>> idList(const Json &v) {
  if (!v.is_array() || v.empty())
    return std::nullopt;
  std::vector<uint32_t> ids;
  for (const Json &x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 ||
        x.get<int64_t>() > UINT32_MAX)
      return std::nullopt;
    ids.push_back(x.get<uint32_t>());
  }
  return ids;
}

std::variant<std::vector<uint32_t>, ApiError>
encodeText(const std::string &text, bool addSpecialTokens,
           const ModelInfo &model, const char *param) {
#if WEFT_HAVE_TOKENIZER
  if (model.files) {
    tokenizer::EncodeOptions options;
    options.addSpecialTokens = addSpecialTokens;
    std::vector<uint32_t> ids;
    if (Status s = model.files->tokenizer->encode(text, ids, options); !s.ok())
      return badField(param, s.message());
    return ids;
  }
#endif
  return badField(param, "this server has no tokenizer: give the prompt as "
                         "token ids");
}

/// The chat messages as the template reads them (content as text).
std::variant<Json, ApiError> chatMessages(const Json &body) {
  if (absent(body, "messages") || !body["messages"].is_array() ||
      body["messages"].empty())
    return badField("messages", "'messages' must be a non-empty list");
  Json messages = Json::array();
  for (const Json &m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return badField("messages",
                      "each message must be an object with a 'role' string");
    std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" &&
        role != "developer" && role != "tool")
      return badField("messages", "unknown message role '" + role + "'");
    std::string content;
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) {
      // An assistant message may have no content.
    } else if (c->is_string()) {
      content = c->get<std::string>();
    } else if (c->is_array()) {
      for (const Json &part : *c) {
        if (!part.is_object() || part.value("type", "") != "text" ||
            !part.contains("text") || !part["text"].is_string())
          return badField("messages", "only text content parts are supported");
        content += part["text"].get<std::string>();
      }
    } else {
      return badField("messages",
                      "a message's 'content' must be a string or a list of "
                      "text parts");
    }
    messages.push_back({{"role", role == "developer" ? "system" : role},
                        {"content", content}});
  }
  return messages;
}

std::variant<std::vector<uint32_t>, ApiError>
renderChat(const Json &messages, bool addGenerationPrompt,
           const ModelInfo &model) {
#if WEFT_HAVE_TOKENIZER
  if (model.files && model.chatTemplate) {
    tokenizer::ChatTemplateOptions options = model.chatOptions;
    options.addGenerationPrompt = addGenerationPrompt;
    auto text = model.chatTemplate->render(messages, options);
    if (!text.ok())
      return badField("messages", text.message());
    return encodeText(*text, /*addSpecialTokens=*/false, model, "messages");
  }
#endif
  return badField("messages", model.hasText()
                                  ? "the model has no chat template"
                                  : "this server has no tokenizer, so it "
                                    "cannot render chat messages");
}

std::string contextError(int64_t maxSeq, int64_t prompt,
                         std::optional<int64_t> maxTokens) {
  std::string s = "This model's maximum context length is " +
                  std::to_string(maxSeq) + " tokens. However, you requested " +
                  std::to_string(prompt + maxTokens.value_or(0)) + " tokens (" +
                  std::to_string(prompt) + " in the prompt";
  if (maxTokens)
    s += ", " + std::to_string(*maxTokens) + " in the completion";
  return s + "). Please reduce the length of the prompt or completion.";
}

} // namespace

bool ModelInfo::hasText() const {
#if WEFT_HAVE_TOKENIZER
  return files != nullptr;
#else
  return false;
#endif
}

Json errorBody(const ApiError &error) {
  Json e = {
      {"message", error.message},
      {"type", error.type},
      {"param", error.param.empty() ? Json() : Json(error.param)},
      {"code", error.code.empty() ? Json(error.status) : Json(error.code)}};
  return {{"error", e}};
}

std::variant<CompletionRequest, ApiError>
parseCompletion(const std::string &body, bool chat, const ModelInfo &model) {
  auto parsed = parseObject(body);
  if (auto *e = std::get_if<ApiError>(&parsed))
    return *e;
  const Json &json = std::get<Json>(parsed);
  CompletionRequest req;
  req.chat = chat;
  req.model = model.name;
  if (!absent(json, "model")) {
    if (!json["model"].is_string())
      return badField("model", "'model' must be a string");
    std::string asked = json["model"].get<std::string>();
    if (asked != model.name) {
      ApiError e = badField("model", "The model `" + asked +
                                         "` does not exist (this server "
                                         "serves `" +
                                         model.name + "`).");
      e.status = 404;
      e.type = "NotFoundError";
      e.code = "model_not_found";
      return e;
    }
  }
  if (auto e = refuseUnsupported(json, chat))
    return *e;

  // The prompts, as ids.
  std::vector<std::vector<uint32_t>> prompts;
  const char *promptParam = chat ? "messages" : "prompt";
  if (chat) {
    auto messages = chatMessages(json);
    if (auto *e = std::get_if<ApiError>(&messages))
      return *e;
    auto ids = renderChat(std::get<Json>(messages), true, model);
    if (auto *e = std::get_if<ApiError>(&ids))
      return *e;
    prompts.push_back(std::move(std::get<std::vector<uint32_t>>(ids)));
  } else {
    if (absent(json, "prompt"))
      return badField("prompt", "'prompt' is required");
    const Json &p = json["prompt"];
    auto addText = [&](const std::string &text) -> std::optional<ApiError> {
      auto ids = encodeText(text, true, model, "prompt");
      if (auto *e = std::get_if<ApiError>(&ids))
        return *e;
      prompts.push_back(std::move(std::get<std::vector<uint32_t>>(ids)));
      return std::nullopt;
    };
    if (p.is_string()) {
      if (auto e = addText(p.get<std::string>()))
        return *e;
    } else if (auto ids = idList(p)) {
      prompts.push_back(std::move(*ids));
    } else if (p.is_array() && !p.empty()) {
      for (const Json &item : p) {
        if (item.is_string()) {
          if (auto e = addText(item.get<std::string>()))
            return *e;
        } else if (auto ids = idList(item)) {
          prompts.push_back(std::move(*ids));
        } else {
          return badField("prompt", "'prompt' must be a string, a list of "
                                    "strings, a list of token ids or a list "
                                    "of such lists");
        }
      }
    } else {
      return badField("prompt", "'prompt' must be a string, a list of "
                                "strings, a list of token ids or a list of "
                                "such lists");
    }
    if (prompts.size() > 256)
      return badField("prompt", "more than 256 prompts in one request");
  }
  for (const std::vector<uint32_t> &ids : prompts) {
    if (ids.empty())
      return badField(promptParam, "the prompt has no tokens");
    if (auto e = checkIds(ids, model, promptParam))
      return *e;
  }

  std::optional<int64_t> maxTokens, topK, seed, n;
  std::optional<double> temperature, topP;
  const char *maxName = "max_tokens";
  if (chat && !absent(json, "max_completion_tokens"))
    maxName = "max_completion_tokens";
  if (auto e = getInt(json, maxName, maxTokens, 1, INT32_MAX))
    return *e;
  if (auto e = getNumber(json, "temperature", temperature, 0, 2))
    return *e;
  if (auto e = getNumber(json, "top_p", topP, 0, 1, /*openLow=*/true))
    return *e;
  if (auto e = getInt(json, "top_k", topK, -1, INT32_MAX))
    return *e;
  if (auto e = getInt(json, "seed", seed, INT64_MIN, INT64_MAX))
    return *e;
  if (auto e = getInt(json, "n", n, 1, 16))
    return *e;
  std::vector<std::string> stops;
  if (auto e = getStops(json, stops))
    return *e;
  if (!stops.empty() && !model.hasText())
    return badField("stop", "this server has no tokenizer, so it cannot find "
                            "stop strings");
  bool ignoreEos = false;
  if (auto e = getBool(json, "stream", req.stream))
    return *e;
  if (auto e = getBool(json, "ignore_eos", ignoreEos))
    return *e;
  if (auto e = getBool(json, "return_token_ids", req.returnTokenIds))
    return *e;
  req.returnTokenIds = req.returnTokenIds || !model.hasText();
  if (!absent(json, "stream_options")) {
    const Json &so = json["stream_options"];
    if (!so.is_object())
      return badField("stream_options", "'stream_options' must be an object");
    if (!req.stream)
      return badField("stream_options",
                      "'stream_options' is only allowed with stream");
    if (auto e = getBool(so, "include_usage", req.includeUsage))
      return *e;
  }

  gen::SamplingParams sampling = model.defaults;
  if (temperature)
    sampling.temperature = static_cast<float>(*temperature);
  if (topP)
    sampling.topP = static_cast<float>(*topP);
  if (topK)
    sampling.topK = *topK < 0 ? 0 : *topK;
  if (seed) {
    sampling.seed = *seed;
  } else {
    std::random_device device;
    sampling.seed = static_cast<int64_t>(
        (static_cast<uint64_t>(device()) << 31) ^ device());
  }
  for (const std::vector<uint32_t> &ids : prompts) {
    int64_t length = static_cast<int64_t>(ids.size());
    if (length >= model.maxSeq ||
        (maxTokens && length + *maxTokens > model.maxSeq)) {
      ApiError e =
          badField(promptParam, contextError(model.maxSeq, length, maxTokens));
      e.code = "context_length_exceeded";
      return e;
    }
    req.promptTokens += length;
    for (int64_t i = 0; i < n.value_or(1); ++i) {
      gen::Request r;
      r.promptIds = ids;
      r.sampling = sampling;
      r.sampling.seed += i;
      // OpenAI's default for completions is 16 tokens; a chat goes on to
      // the end of the context.
      r.maxTokens = maxTokens.value_or(chat ? model.maxSeq - length : 16);
      r.stopStrings = stops;
      r.ignoreEos = ignoreEos;
      req.sequences.push_back(std::move(r));
    }
  }
  return req;
}

namespace {

Json usageOf(const CompletionRequest &request, int64_t completionTokens) {
  return {{"prompt_tokens", request.promptTokens},
          {"total_tokens", request.promptTokens + completionTokens},
          {"completion_tokens", completionTokens}};
}

} // namespace

Json completionResponse(const CompletionRequest &request,
                        const std::vector<gen::SequenceResult> &results,
                        const std::string &id, int64_t created) {
  Json choices = Json::array();
  int64_t completion = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const gen::SequenceResult &r = results[i];
    completion += static_cast<int64_t>(r.ids.size());
    Json choice = {{"index", i}};
    if (request.chat)
      choice["message"] = {{"role", "assistant"}, {"content", r.text}};
    else
      choice["text"] = r.text;
    if (request.returnTokenIds)
      choice["token_ids"] = r.ids;
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = gen::finishReasonName(r.finishReason);
    choices.push_back(std::move(choice));
  }
  return {{"id", id},
          {"object", request.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", request.model},
          {"choices", std::move(choices)},
          {"usage", usageOf(request, completion)}};
}

Json streamChunk(const CompletionRequest &request, const std::string &id,
                 int64_t created, size_t index, const std::string &text,
                 std::span<const uint32_t> tokenIds, const char *finishReason,
                 bool first) {
  Json choice = {{"index", index}};
  if (request.chat) {
    Json delta = Json::object();
    if (first)
      delta["role"] = "assistant";
    if (!text.empty() || first)
      delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  if (request.returnTokenIds)
    choice["token_ids"] =
        Json(std::vector<uint32_t>(tokenIds.begin(), tokenIds.end()));
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finishReason ? Json(finishReason) : Json();
  return {
      {"id", id},
      {"object", request.chat ? "chat.completion.chunk" : "text_completion"},
      {"created", created},
      {"model", request.model},
      {"choices", Json::array({std::move(choice)})}};
}

Json usageChunk(const CompletionRequest &request, const std::string &id,
                int64_t created, int64_t completionTokens) {
  return {
      {"id", id},
      {"object", request.chat ? "chat.completion.chunk" : "text_completion"},
      {"created", created},
      {"model", request.model},
      {"choices", Json::array()},
      {"usage", usageOf(request, completionTokens)}};
}

std::variant<Json, ApiError> tokenizeRequest(const std::string &body,
                                             const ModelInfo &model) {
  auto parsed = parseObject(body);
  if (auto *e = std::get_if<ApiError>(&parsed))
    return *e;
  const Json &json = std::get<Json>(parsed);
  std::variant<std::vector<uint32_t>, ApiError> ids;
  if (!absent(json, "messages")) {
    auto messages = chatMessages(json);
    if (auto *e = std::get_if<ApiError>(&messages))
      return *e;
    bool addGenerationPrompt = true;
    if (auto e = getBool(json, "add_generation_prompt", addGenerationPrompt))
      return *e;
    ids = renderChat(std::get<Json>(messages), addGenerationPrompt, model);
  } else {
    if (absent(json, "prompt") || !json["prompt"].is_string())
      return badField("prompt", "'prompt' (a string) or 'messages' is "
                                "required");
    bool addSpecial = true;
    if (auto e = getBool(json, "add_special_tokens", addSpecial))
      return *e;
    ids = encodeText(json["prompt"].get<std::string>(), addSpecial, model,
                     "prompt");
  }
  if (auto *e = std::get_if<ApiError>(&ids))
    return *e;
  const auto &tokens = std::get<std::vector<uint32_t>>(ids);
  return Json{{"count", tokens.size()},
              {"max_model_len", model.maxSeq},
              {"tokens", tokens}};
}

std::variant<Json, ApiError> detokenizeRequest(const std::string &body,
                                               const ModelInfo &model) {
  auto parsed = parseObject(body);
  if (auto *e = std::get_if<ApiError>(&parsed))
    return *e;
  const Json &json = std::get<Json>(parsed);
  if (absent(json, "tokens") || !json["tokens"].is_array())
    return badField("tokens", "'tokens' (a list of token ids) is required");
  std::vector<uint32_t> ids;
  if (!json["tokens"].empty()) {
    auto list = idList(json["tokens"]);
    if (!list)
      return badField("tokens", "'tokens' must be a list of token ids");
    ids = std::move(*list);
  }
  if (auto e = checkIds(ids, model, "tokens"))
    return *e;
#if WEFT_HAVE_TOKENIZER
  if (model.files) {
    auto text = model.files->tokenizer->decode(ids);
    if (!text.ok())
      return badField("tokens", text.message());
    return Json{{"prompt", *text}};
  }
#endif
  return badField("tokens", "this server has no tokenizer");
}

Json modelsResponse(const ModelInfo &model, int64_t created) {
  Json entry = {{"id", model.name},   {"object", "model"},
                {"created", created}, {"owned_by", "weft"},
                {"root", model.name}, {"max_model_len", model.maxSeq}};
  return {{"object", "list"}, {"data", Json::array({std::move(entry)})}};
}

} // namespace weft::runtime::serve
