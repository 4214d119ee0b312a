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
  /// Goes on past the end-of-sequence ids (for benchmarks).
  bool ignoreEos = false;
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
  /// From the request's arrival (GenerationEngine::add) to the first
  /// generated token.
  double ttftMs = 0;
  /// Mean milliseconds between generated tokens after the first (0 for
  /// one token).
  double msPerToken = 0;
  /// Times the sequence lost its cache blocks to others and was computed
  /// again from its tokens.
  uint64_t preemptions = 0;
};

/// When a sequence gets its KV cache blocks.
enum class Admission {
  /// At admission, every block it may ever need (prompt + max new tokens):
  /// it never runs out, but the cache holds fewer sequences at once.
  WorstCase,
  /// Its prompt's blocks at admission, the rest as it grows; when the cache
  /// runs out the most recently admitted sequence is preempted (its blocks
  /// freed, its tokens computed again once blocks are free).
  OnDemand,
};

struct EngineOptions {
  /// Blocks of the KV cache the model's session opened with.
  uint64_t kvCacheBlocks = 0;
  std::vector<uint32_t> eosIds;
  /// Decodes the text (and finds stop strings); null: no text.
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  /// Receives each request's newly decoded text as it becomes final
  /// (runGeneration's requests by index).
  std::function<void(size_t request, std::string_view text)> onText;
  Admission admission = Admission::WorstCase;
  /// Sequences admitted at once at most (0: as many as the cache holds).
  uint64_t maxRunning = 0;
  /// OnDemand admission leaves this share of the cache's blocks free for
  /// the running sequences to grow into.
  double watermark = 0.01;
  /// Batch invariance: every prefill runs the step's prompt bucket (the
  /// largest, or maxStepTokens's) and every decode the largest batch
  /// bucket, so that the kernels (and their summation orders) a sequence's
  /// numbers go through never depend on what else shares its step. Costs
  /// the padding of smaller steps.
  bool fixedShapes = false;
  /// While prompts wait to be prefilled, a decode step of the running
  /// sequences follows each prefill step (instead of every prefill first):
  /// their inter-token latency stays one prefill step, at some cost to the
  /// waiting prompts' time to first token.
  bool alternate = false;
  /// While prompts wait and sequences run, one prefill step carries both:
  /// each running sequence's next token as a one-token row, and prompt
  /// chunks in the rest of the step's prompt bucket (chunked prefill), so
  /// that no running sequence waits for a prefill. Needs the artifact's
  /// prefill rows above the running sequences (else steps alternate as
  /// with `alternate`).
  bool mixed = false;
  /// The most tokens a prefill or mixed step carries (0: no limit): its
  /// prompt bucket is the largest compiled one within this (the smallest
  /// where none is), and longer prompts go in chunks of it. A smaller step
  /// is a shorter wait for the sequences decoding beside or after it
  /// (their inter-token latency), at the cost of more steps per prompt.
  int64_t maxStepTokens = 0;
};

/// What happens to one sequence, told on the engine's thread.
struct SequenceSink {
  /// After each generated token: its id and the text that became final
  /// with it (often empty: a partial character or a possible stop string
  /// is held back).
  std::function<void(uint32_t id, std::string_view text)> onToken;
  /// Once, when the sequence ends (not after cancel()); text held back
  /// until then is the end of result.text that no onToken gave.
  std::function<void(SequenceResult result)> onFinish;
};

/// The engine's counters and gauges.
struct EngineStats {
  uint64_t running = 0, waiting = 0;
  uint64_t totalBlocks = 0, freeBlocks = 0;
  uint64_t preemptions = 0;
  /// Prompt tokens prefilled (again after a preemption too) and tokens
  /// generated.
  uint64_t promptTokens = 0, generatedTokens = 0;
  /// Steps that carried decodes and prompt chunks (EngineOptions::mixed).
  uint64_t mixedSteps = 0;
};

/// Iteration-level (continuous) batching over a generation artifact's
/// entry points: sequences join (add) and leave (finish, cancel) between
/// steps. Each step() admits waiting sequences in arrival order while
/// their blocks are free, runs one prefill of the admitted prompts packed
/// into the smallest prompt bucket that holds them (prompts longer than
/// the step's bucket, options.maxStepTokens, in chunks of it) while any
/// are left (with
/// options.alternate, every other step), else decodes every running
/// sequence, padded to the nearest batch bucket. Not
/// thread-safe: one thread adds, cancels and steps.
class GenerationEngine {
public:
  /// Fails if the artifact's generation settings or the options are
  /// unusable.
  static Result<std::unique_ptr<GenerationEngine>>
  create(const artifact::Generation &generation, StepModel &model,
         EngineOptions options);
  ~GenerationEngine();

  /// Queues `request`, or says why it can never run (no tokens, no room
  /// under max_seq, more blocks than the cache has, no new tokens); the
  /// message names no request ("has no tokens").
  Result<uint64_t> add(Request request, SequenceSink sink);
  /// Drops sequence `id`, waiting or running, and frees its blocks; its
  /// sink hears nothing more. Unknown ids are ignored.
  void cancel(uint64_t id);
  /// Whether any sequence waits or runs.
  bool busy() const;
  /// One iteration (see the class comment). A failed step leaves the
  /// engine unusable.
  Status step();
  EngineStats stats() const;

  class Impl;

private:
  explicit GenerationEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

/// Runs `requests` to completion through a GenerationEngine and returns
/// their results in request order. A request that could never run fails
/// the whole run before any step, its error prefixed with "prompt N ".
Result<std::vector<SequenceResult>>
runGeneration(const artifact::Generation &generation, StepModel &model,
              std::vector<Request> requests, const EngineOptions &options);

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_ENGINE_H
