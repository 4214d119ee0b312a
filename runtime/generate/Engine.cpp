// The generation engine's step loop: admit, prefill packed prompts, decode
// the running batch, take the sampled ids, stream text, free the finished.
#include "runtime/generate/Engine.h"

#include "runtime/generate/KvBlockAllocator.h"
#include "runtime/generate/StopStrings.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

namespace weft::runtime::generate {

std::string prefillEntry(int64_t tokens) {
  return "prefill@" + std::to_string(tokens);
}

std::string decodeEntry(int64_t batch) {
  return "decode@" + std::to_string(batch);
}

const char *finishReasonName(FinishReason reason) {
  return reason == FinishReason::Stop ? "stop" : "length";
}

namespace {

using Clock = std::chrono::steady_clock;

double msBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

struct Sequence {
  size_t index = 0;
  Request request;
  /// The prompt, then the generated ids.
  std::vector<uint32_t> tokens;
  int64_t promptLength = 0;
  /// Tokens whose keys and values are in the cache.
  int64_t cached = 0;
  /// New tokens at most: the request's, capped by max_seq.
  int64_t maxNew = 0;
  /// Blocks the sequence may need at most.
  uint64_t worstBlocks = 0;
  BlockTable table;
  bool admitted = false, finished = false;
#if WEFT_HAVE_TOKENIZER
  std::optional<tokenizer::IncrementalDecoder> decoder;
#else
  /// Without the tokenizer (the runtime-only build) there is no text.
  struct NoDecoder {
    Result<std::string> step(uint32_t) { return std::string(); }
    Result<std::string> finish() { return std::string(); }
  };
  std::optional<NoDecoder> decoder;
#endif
  std::optional<StopStringFilter> stops;
  SequenceResult result;
  Clock::time_point firstToken, lastToken;

  bool prefilling() const { return cached < promptLength; }
};

/// One row of a step: tokens [begin, begin + count) of `seq`.
struct Row {
  Sequence *seq;
  int64_t begin, count;
};

template <typename T>
NpyArray makeArray(std::string name, DType dtype, Shape shape,
                   const std::vector<T> &values) {
  NpyArray array{std::move(name), dtype, std::move(shape), {}};
  array.data.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(array.data.data(), values.data(), array.data.size());
  return array;
}

/// The token slots and rows of one run of an entry.
struct EntryShape {
  int64_t tokens, rows;
};

/// What Generation.entries says of the entry of `bucket`; without it, a
/// prefill has min(T, prefill_rows) rows and a decode B tokens and rows.
EntryShape entryShape(const artifact::Generation &gen, bool prefill,
                      int64_t bucket) {
  for (const artifact::GenerationEntry &e : gen.entries())
    if (e.prefill() == prefill && e.bucket() == bucket)
      return {e.tokens(), e.rows()};
  if (prefill)
    return {bucket, std::min(std::max<int64_t>(1, gen.prefill_rows()), bucket)};
  return {bucket, bucket};
}

/// The smallest bucket holding `n`, or the largest.
int64_t bucketFor(const std::vector<int64_t> &sorted, int64_t n) {
  for (int64_t b : sorted)
    if (b >= n)
      return b;
  return sorted.back();
}

class Engine {
public:
  Engine(const artifact::Generation &generation, StepModel &model,
         const EngineOptions &options)
      : gen(generation), model(model), options(options),
        blocks(options.kvCacheBlocks, generation.block_size()),
        promptBuckets(generation.prompt_buckets().begin(),
                      generation.prompt_buckets().end()),
        batchBuckets(generation.batch_buckets().begin(),
                     generation.batch_buckets().end()) {
    std::sort(promptBuckets.begin(), promptBuckets.end());
    std::sort(batchBuckets.begin(), batchBuckets.end());
  }

  Status checkShape() const;
  Status addRequests(std::vector<Request> requests);
  Status run();
  std::vector<SequenceResult> results();

private:
  void admit();
  Status prefillStep();
  Status decodeStep(std::span<Sequence *const> group);
  Status runRows(const std::string &entry, EntryShape shape,
                 const std::vector<Row> &batch, bool isPrefill);
  Status accept(Sequence &seq, uint32_t id);
  Status emitText(Sequence &seq, const std::string &decoded);
  void appendText(Sequence &seq, const std::string &shown);
  Status finish(Sequence &seq, FinishReason reason);

  const artifact::Generation &gen;
  StepModel &model;
  const EngineOptions &options;
  KvBlockAllocator blocks;
  std::vector<int64_t> promptBuckets, batchBuckets;
  std::vector<Sequence> sequences;
  Clock::time_point start = Clock::now();
};

Status Engine::checkShape() const {
  if (gen.max_seq() <= 1 || gen.block_size() <= 0 ||
      gen.blocks_per_seq() <= 0 || promptBuckets.empty() ||
      batchBuckets.empty() || promptBuckets.front() <= 0 ||
      batchBuckets.front() <= 0 || gen.token_input().empty())
    return errorStatus("the artifact's generation settings are incomplete "
                       "(max_seq, block_size, blocks_per_seq, prompt and "
                       "batch buckets, token input)");
  if (gen.blocks_per_seq() * gen.block_size() < gen.max_seq())
    return errorStatus("the artifact's blocks_per_seq " +
                       std::to_string(gen.blocks_per_seq()) + " x block_size " +
                       std::to_string(gen.block_size()) +
                       " do not hold max_seq " + std::to_string(gen.max_seq()));
  if (options.kvCacheBlocks == 0)
    return errorStatus("the KV cache has no blocks");
  return okStatus();
}

Status Engine::addRequests(std::vector<Request> requests) {
  int64_t maxSeq = gen.max_seq();
  for (size_t i = 0; i < requests.size(); ++i) {
    Sequence seq;
    seq.index = i;
    seq.request = std::move(requests[i]);
    seq.tokens = seq.request.promptIds;
    seq.promptLength = static_cast<int64_t>(seq.tokens.size());
    std::string name = "prompt " + std::to_string(i + 1);
    if (seq.promptLength == 0)
      return errorStatus(name + " has no tokens");
    if (seq.promptLength >= maxSeq)
      return errorStatus(name + " has " + std::to_string(seq.promptLength) +
                         " tokens, but the artifact's max_seq " +
                         std::to_string(maxSeq) +
                         " leaves no room for a new token (at most " +
                         std::to_string(maxSeq - 1) + " prompt tokens)");
    if (seq.request.maxTokens <= 0)
      return errorStatus(name + " asks for no new tokens");
    seq.maxNew = std::min(seq.request.maxTokens, maxSeq - seq.promptLength);
    // The last new token is never written to the cache.
    seq.worstBlocks = blocks.blocksFor(seq.promptLength + seq.maxNew - 1);
    if (seq.worstBlocks > blocks.totalBlocks())
      return errorStatus(
          name + " needs " + std::to_string(seq.worstBlocks) +
          " KV cache blocks (" + std::to_string(seq.promptLength) +
          " prompt tokens + " + std::to_string(seq.maxNew) +
          " new, block size " + std::to_string(gen.block_size()) +
          "), but the cache has " + std::to_string(blocks.totalBlocks()) +
          ": give more blocks or fewer new tokens");
#if WEFT_HAVE_TOKENIZER
    if (options.tokenizer)
      seq.decoder.emplace(options.tokenizer, /*skipSpecialTokens=*/true);
#endif
    seq.stops.emplace(seq.request.stopStrings);
    seq.result.promptIds = seq.request.promptIds;
    sequences.push_back(std::move(seq));
  }
  return okStatus();
}

void Engine::admit() {
  // In request order: a later request never overtakes a waiting one.
  for (Sequence &seq : sequences) {
    if (seq.admitted)
      continue;
    if (!blocks.reserve(seq.table, seq.worstBlocks))
      return;
    seq.admitted = true;
  }
}

Status Engine::run() {
  while (true) {
    admit();
    bool anyPrefill = false;
    std::vector<Sequence *> running;
    size_t unfinished = 0;
    for (Sequence &seq : sequences) {
      if (seq.finished)
        continue;
      ++unfinished;
      if (!seq.admitted)
        continue;
      if (seq.prefilling())
        anyPrefill = true;
      else
        running.push_back(&seq);
    }
    if (unfinished == 0)
      return okStatus();
    if (anyPrefill) {
      if (Status s = prefillStep(); !s.ok())
        return s;
      continue;
    }
    if (running.empty())
      return errorStatus("no sequence fits the KV cache");
    size_t most = static_cast<size_t>(batchBuckets.back());
    for (size_t at = 0; at < running.size(); at += most) {
      size_t n = std::min(most, running.size() - at);
      if (Status s = decodeStep(std::span(running).subspan(at, n)); !s.ok())
        return s;
    }
  }
}

Status Engine::prefillStep() {
  int64_t most = promptBuckets.back();
  int64_t maxRows = std::max<int64_t>(1, gen.prefill_rows());
  std::vector<Row> batch;
  int64_t used = 0;
  for (Sequence &seq : sequences) {
    if (seq.finished || !seq.admitted || !seq.prefilling())
      continue;
    if (static_cast<int64_t>(batch.size()) == maxRows)
      break;
    // A prompt longer than the largest bucket goes in chunks of it.
    int64_t count = std::min(seq.promptLength - seq.cached, most);
    if (used + count > most)
      continue;
    batch.push_back({&seq, seq.cached, count});
    used += count;
  }
  int64_t bucket = bucketFor(promptBuckets, used);
  return runRows(prefillEntry(bucket), entryShape(gen, true, bucket), batch,
                 true);
}

Status Engine::decodeStep(std::span<Sequence *const> group) {
  std::vector<Row> batch;
  for (Sequence *seq : group)
    batch.push_back({seq, static_cast<int64_t>(seq->tokens.size()) - 1, 1});
  int64_t bucket = bucketFor(batchBuckets, static_cast<int64_t>(batch.size()));
  return runRows(decodeEntry(bucket), entryShape(gen, false, bucket), batch,
                 false);
}

Status Engine::runRows(const std::string &entry, EntryShape shape,
                       const std::vector<Row> &batch, bool isPrefill) {
  int64_t tokens = shape.tokens, rows = shape.rows;
  int64_t used = 0;
  for (const Row &row : batch)
    used += row.count;
  if (rows < static_cast<int64_t>(batch.size()) || tokens < used)
    return errorStatus("the artifact's entry " + entry + " has " +
                       std::to_string(tokens) + " tokens and " +
                       std::to_string(rows) + " rows, too few for " +
                       std::to_string(batch.size()) + " sequences of " +
                       std::to_string(used) + " tokens");
  int64_t perSeq = gen.blocks_per_seq();
  std::vector<int64_t> ids(tokens, 0), positions(tokens, 0);
  std::vector<int32_t> tokenSeq(tokens, -1), tables(rows * perSeq, -1);
  std::vector<int64_t> logitRows(rows, 0), seeds(rows * 2, 0);
  std::vector<float> params(rows * 3, 0);
  for (int64_t r = 0; r < rows; ++r) {
    params[r * 3 + 2] = 1;
    if (!isPrefill)
      logitRows[r] = r;
  }
  int64_t at = 0;
  for (size_t r = 0; r < batch.size(); ++r) {
    const Row &row = batch[r];
    Sequence &seq = *row.seq;
    if (!blocks.grow(seq.table, row.begin + row.count))
      return errorStatus("internal error: an admitted sequence ran out of "
                         "KV cache blocks");
    for (int64_t t = 0; t < row.count; ++t, ++at) {
      ids[at] = seq.tokens[row.begin + t];
      positions[at] = row.begin + t;
      tokenSeq[at] = static_cast<int32_t>(r);
    }
    std::copy(seq.table.blocks.begin(), seq.table.blocks.end(),
              tables.begin() + r * perSeq);
    if (isPrefill)
      logitRows[r] = at - 1;
    const SamplingParams &sp = seq.request.sampling;
    params[r * 3] = sp.temperature;
    params[r * 3 + 1] = static_cast<float>(sp.topK);
    params[r * 3 + 2] = sp.topP;
    seeds[r * 2] = sp.seed;
    seeds[r * 2 + 1] = row.begin + row.count;
  }

  using artifact::DType;
  std::vector<NpyArray> arrays;
  arrays.push_back(makeArray(gen.token_input(), DType::I64, {1, tokens}, ids));
  arrays.push_back(makeArray(kPositions, DType::I64, {1, tokens}, positions));
  arrays.push_back(makeArray(kTokenSeq, DType::I32, {tokens}, tokenSeq));
  arrays.push_back(makeArray(kBlockTables, DType::I32, {rows, perSeq}, tables));
  arrays.push_back(makeArray(kLogitRows, DType::I64, {rows}, logitRows));
  arrays.push_back(makeArray(kSampleParams, DType::F32, {rows, 3}, params));
  arrays.push_back(makeArray(kSampleSeeds, DType::I64, {rows, 2}, seeds));
  std::vector<const NpyArray *> inputs;
  for (const NpyArray &a : arrays)
    inputs.push_back(&a);

  auto next = model.runStep(entry, inputs);
  if (!next.ok())
    return next.status().withPrefix(entry + ": ");
  if (static_cast<int64_t>(next->size()) != rows)
    return errorStatus(entry + ": " + kNextIds + " has " +
                       std::to_string(next->size()) + " ids, expected " +
                       std::to_string(rows));
  for (size_t r = 0; r < batch.size(); ++r) {
    const Row &row = batch[r];
    Sequence &seq = *row.seq;
    seq.cached = row.begin + row.count;
    // Only the prompt's last chunk samples the first new token.
    if (seq.prefilling())
      continue;
    int32_t id = (*next)[r];
    if (id < 0)
      return errorStatus(entry + ": the model sampled the negative id " +
                         std::to_string(id));
    if (Status s = accept(seq, static_cast<uint32_t>(id)); !s.ok())
      return s;
  }
  return okStatus();
}

Status Engine::accept(Sequence &seq, uint32_t id) {
  Clock::time_point now = Clock::now();
  SequenceResult &result = seq.result;
  if (result.ids.empty()) {
    result.ttftMs = msBetween(start, now);
    seq.firstToken = now;
  }
  seq.lastToken = now;
  seq.tokens.push_back(id);
  result.ids.push_back(id);
  const std::vector<uint32_t> &eos = options.eosIds;
  if (std::find(eos.begin(), eos.end(), id) != eos.end())
    return finish(seq, FinishReason::Stop);
  if (seq.decoder) {
    auto piece = seq.decoder->step(id);
    if (!piece.ok())
      return piece.status();
    if (Status s = emitText(seq, *piece); !s.ok())
      return s;
    if (seq.stops->stopped())
      return finish(seq, FinishReason::Stop);
  }
  if (static_cast<int64_t>(result.ids.size()) >= seq.maxNew)
    return finish(seq, FinishReason::Length);
  return okStatus();
}

Status Engine::emitText(Sequence &seq, const std::string &decoded) {
  appendText(seq, seq.stops->push(decoded));
  return okStatus();
}

void Engine::appendText(Sequence &seq, const std::string &shown) {
  if (shown.empty())
    return;
  seq.result.text += shown;
  if (options.onText)
    options.onText(seq.index, shown);
}

Status Engine::finish(Sequence &seq, FinishReason reason) {
  if (seq.decoder && !seq.stops->stopped()) {
    auto rest = seq.decoder->finish();
    if (!rest.ok())
      return rest.status();
    if (Status s = emitText(seq, *rest); !s.ok())
      return s;
    if (seq.stops->stopped())
      reason = FinishReason::Stop;
    else
      appendText(seq, seq.stops->finish());
  }
  SequenceResult &result = seq.result;
  result.finishReason = reason;
  if (result.ids.size() > 1)
    result.msPerToken = msBetween(seq.firstToken, seq.lastToken) /
                        static_cast<double>(result.ids.size() - 1);
  blocks.release(seq.table);
  seq.finished = true;
  return okStatus();
}

std::vector<SequenceResult> Engine::results() {
  std::vector<SequenceResult> out;
  for (Sequence &seq : sequences)
    out.push_back(std::move(seq.result));
  return out;
}

} // namespace

Result<std::vector<SequenceResult>>
runGeneration(const artifact::Generation &generation, StepModel &model,
              std::vector<Request> requests, const EngineOptions &options) {
  Engine engine(generation, model, options);
  if (Status s = engine.checkShape(); !s.ok())
    return s;
  if (Status s = engine.addRequests(std::move(requests)); !s.ok())
    return s;
  if (Status s = engine.run(); !s.ok())
    return s;
  return engine.results();
}

} // namespace weft::runtime::generate
