// OpenAI's HTTP API as weft serves it: the completions and chat
// completions requests checked and turned into the engine's requests, and
// the responses, streamed chunks and error objects built the way OpenAI's
// clients (and vLLM's extensions: top_k, ignore_eos, /tokenize) expect.
#ifndef WEFT_RUNTIME_SERVE_OPENAI_H
#define WEFT_RUNTIME_SERVE_OPENAI_H

#include "runtime/generate/Engine.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#if WEFT_HAVE_TOKENIZER
#include "runtime/tokenizer/ChatTemplate.h"
#include "runtime/tokenizer/TokenizerFiles.h"
#endif

namespace weft::runtime::serve {

using Json = nlohmann::ordered_json;

/// An answer of 4xx or 5xx with OpenAI's error object.
struct ApiError {
  int status = 400;
  std::string message;
  /// invalid_request_error, not_found_error, rate_limit_error,
  /// server_error...
  std::string type = "invalid_request_error";
  /// The request field at fault, if one.
  std::string param;
  std::string code;
};

/// {"error": {"message", "type", "param", "code"}}.
Json errorBody(const ApiError &error);

/// What the server knows of its model.
struct ModelInfo {
  std::string name;
  int64_t maxSeq = 0;
  /// Ids a prompt may hold: [0, vocab).
  int64_t vocab = 0;
  /// generation_config.json's sampling, where it samples; else OpenAI's
  /// default (temperature 1).
  generate::SamplingParams defaults;
  std::vector<uint32_t> eosIds;
#if WEFT_HAVE_TOKENIZER
  /// Null: prompts must be token ids and there is no text.
  std::shared_ptr<const tokenizer::TokenizerFiles> files;
  std::optional<tokenizer::ChatTemplate> chatTemplate;
  tokenizer::ChatTemplateOptions chatOptions;
#endif
  bool hasText() const;
};

/// A completions or chat completions request, checked.
struct CompletionRequest {
  bool chat = false, stream = false, includeUsage = false;
  /// Each choice (and streamed chunk) carries its generated token ids
  /// (vLLM's return_token_ids); always where the server has no text.
  bool returnTokenIds = false;
  std::string model;
  /// One per choice: every prompt (a completions request may give
  /// several) times n, in choice order.
  std::vector<generate::Request> sequences;
  /// The prompts' tokens, counted once per prompt.
  int64_t promptTokens = 0;
};

/// Parses and checks the body of POST /v1/completions (`chat` false) or
/// /v1/chat/completions.
std::variant<CompletionRequest, ApiError>
parseCompletion(const std::string &body, bool chat, const ModelInfo &model);

/// A whole (non-streamed) response.
Json completionResponse(const CompletionRequest &request,
                        const std::vector<generate::SequenceResult> &results,
                        const std::string &id, int64_t created);

/// One streamed chunk of choice `index`: text (a chat's first chunk gives
/// the role), and finish_reason once it ended.
Json streamChunk(const CompletionRequest &request, const std::string &id,
                 int64_t created, size_t index, const std::string &text,
                 std::span<const uint32_t> tokenIds, const char *finishReason,
                 bool first);
/// The last streamed chunk when stream_options.include_usage: no choices,
/// the usage.
Json usageChunk(const CompletionRequest &request, const std::string &id,
                int64_t created, int64_t completionTokens);

/// POST /tokenize: {"prompt"} or {"messages"} -> {"count", "max_model_len",
/// "tokens"}.
std::variant<Json, ApiError> tokenizeRequest(const std::string &body,
                                             const ModelInfo &model);
/// POST /detokenize: {"tokens"} -> {"prompt"}.
std::variant<Json, ApiError> detokenizeRequest(const std::string &body,
                                               const ModelInfo &model);

/// GET /v1/models.
Json modelsResponse(const ModelInfo &model, int64_t created);

} // namespace weft::runtime::serve

#endif // WEFT_RUNTIME_SERVE_OPENAI_H
