// libFuzzer target: weft serve's request bodies (completions, chat
// completions, /tokenize, /detokenize) on arbitrary bytes, as an HTTP
// client may send them. The first byte picks the endpoint; the model has
// no tokenizer (prompts as ids), as in the runtime-only build.
#include "runtime/serve/OpenAi.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  using namespace weft::runtime::serve;
  static const ModelInfo model = [] {
    ModelInfo m;
    m.name = "m";
    m.maxSeq = 64;
    m.vocab = 100;
    return m;
  }();
  std::string body(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 4) {
  case 0:
  case 1: {
    auto parsed = parseCompletion(body, data[0] % 4 == 1, model);
    if (auto *req = std::get_if<CompletionRequest>(&parsed)) {
      // What the server answers with, for a request that parsed.
      std::vector<weft::runtime::generate::SequenceResult> results(
          req->sequences.size());
      (void)completionResponse(*req, results, "id", 0).dump();
      (void)streamChunk(*req, "id", 0, 0, "x", {}, nullptr, true).dump();
      (void)usageChunk(*req, "id", 0, 1).dump();
    } else {
      (void)errorBody(std::get<ApiError>(parsed)).dump();
    }
    break;
  }
  case 2:
    (void)tokenizeRequest(body, model);
    break;
  default:
    (void)detokenizeRequest(body, model);
    break;
  }
  return 0;
}
