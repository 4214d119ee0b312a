// The generation engine: a fixed set of requests run to completion over a
// generation artifact's prefill and decode entry points and its paged KV
// cache (runtime/artifact/artifact.proto, message Generation).
#ifndef WEFT_RUNTIME_GENERATE_ENGINE_H
#define WEFT_RUNTIME_GENERATE_ENGINE_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/exec/Npz.h"
#include "runtime/support/Status.h"
#if WEFT_HAVE_TOKENIZER
#include "runtime/tokenizer/Tokenizer.h"
#else
namespace weft::tokenizer {
class Tokenizer;
} // namespace weft::tokenizer
#endif

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime::generate {

/// The names of the generation entries' inputs and outputs.
inline constexpr const char *kPositions = "weft.positions";
inline constexpr const char *kTokenSeq = "weft.token_seq";
inline constexpr const char *kBlockTables = "weft.block_tables";
inline constexpr const char *kLogitRows = "weft.logit_rows";
inline constexpr const char *kSampleParams = "weft.sample_params";
inline constexpr const char *kSampleSeeds = "weft.sample_seeds";
inline constexpr const char *kNextIds = "weft.next_ids";

/// "prefill@T", "decode@B" (T a prompt bucket, B a batch bucket; the
/// tokens and rows of each run are Generation.entries').
std::string prefillEntry(int64_t tokens);
std::string decodeEntry(int64_t batch);

/// What the engine runs: entry `entry` on the named arrays, giving the
/// sampled ids (weft.next_ids, one per row).
class StepModel {
public:
  virtual ~StepModel() = default;
  virtual Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) = 0;
};

struct SamplingParams {
  /// <= 0: greedy.
  float temperature = 0;
  /// 0: every token.
  int64_t topK = 0;
  /// 1: every token.
  float topP = 1;
  int64_t seed = 0;
};

struct Request {
  std::vector<uint32_t> promptIds;
  SamplingParams sampling;
  /// New tokens at most (also capped by the artifact's max_seq).
  int64_t maxTokens = 256;
  std::vector<std::string> stopStrings;
};

enum class FinishReason { Stop, Length };
const char *finishReasonName(FinishReason reason);

struct SequenceResult {
  std::vector<uint32_t> promptIds;
  /// The generated ids, an EOS id that ended the sequence included.
  std::vector<uint32_t> ids;
  /// Their text, without the EOS token or the stop string (and what
  /// followed it).
  std::string text;
  FinishReason finishReason = FinishReason::Length;
  /// From the engine's start to the first generated token.
  double ttftMs = 0;
  /// Mean milliseconds between generated tokens after the first (0 for
  /// one token).
  double msPerToken = 0;
};

struct EngineOptions {
  /// Blocks of the KV cache the model's session opened with.
  uint64_t kvCacheBlocks = 0;
  std::vector<uint32_t> eosIds;
  /// Decodes the text (and finds stop strings); null: no text.
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  /// Receives each request's newly decoded text as it becomes final.
  std::function<void(size_t request, std::string_view text)> onText;
};

/// Runs `requests` to completion: admits them in order while the cache's
/// blocks allow (each reserves its worst case, so an admitted sequence
/// never runs out), prefills their prompts packed into prompt buckets,
/// decodes the running ones in batch buckets, and frees each finished
/// sequence's blocks. A request that could never fit the cache, or whose
/// prompt leaves no room under max_seq, fails the whole run before any
/// step. Results are in request order.
Result<std::vector<SequenceResult>>
runGeneration(const artifact::Generation &generation, StepModel &model,
              std::vector<Request> requests, const EngineOptions &options);

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_ENGINE_H
