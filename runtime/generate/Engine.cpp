// The generation engine's step loop: admit, prefill packed prompts, decode
// the running batch, take the sampled ids, stream text, free the finished.
#include "runtime/generate/Engine.h"

#include "runtime/generate/KvBlockAllocator.h"
#include "runtime/generate/StopStrings.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
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
  uint64_t id = 0;
  Request request;
  SequenceSink sink;
  /// The prompt, then the generated ids.
  std::vector<uint32_t> tokens;
  int64_t promptLength = 0;
  /// Tokens whose keys and values are in the cache.
  int64_t cached = 0;
  /// Tokens to prefill before the next is sampled: the prompt, or after a
  /// preemption every token so far.
  int64_t prefillTarget = 0;
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
  Clock::time_point arrival, firstToken, lastToken;

  bool prefilling() const { return cached < prefillTarget; }
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

} // namespace

class GenerationEngine::Impl {
public:
  Impl(const artifact::Generation &generation, StepModel &model,
       EngineOptions options)
      : gen(generation), model(model), options(std::move(options)),
        blocks(this->options.kvCacheBlocks, generation.block_size()),
        promptBuckets(generation.prompt_buckets().begin(),
                      generation.prompt_buckets().end()),
        batchBuckets(generation.batch_buckets().begin(),
                     generation.batch_buckets().end()) {
    std::sort(promptBuckets.begin(), promptBuckets.end());
    std::sort(batchBuckets.begin(), batchBuckets.end());
  }

  /// The prompt bucket of a full prefill or mixed step.
  int64_t stepBucket() const {
    int64_t bucket = promptBuckets.front();
    for (int64_t b : promptBuckets)
      if (options.maxStepTokens <= 0 || b <= options.maxStepTokens)
        bucket = b;
    return bucket;
  }

  Status checkShape() const;
  Result<uint64_t> add(Request request, SequenceSink sink);
  void cancel(uint64_t id);
  bool busy() const { return !waiting.empty() || !admitted.empty(); }
  Status step();
  EngineStats stats() const;

private:
  void admit();
  Status prefillStep();
  /// One prefill step of the running sequences' next tokens and prompt
  /// chunks (EngineOptions::mixed); false (nothing run) if they do not fit
  /// its rows.
  Result<bool> mixedStep();
  /// Grows every running sequence's table by its next token, preempting
  /// the most recently admitted ones while blocks run out.
  void makeRoomForDecode();
  void preempt(Sequence &seq);
  Status decodeStep(std::span<Sequence *const> group);
  Status runRows(const std::string &entry, EntryShape shape,
                 const std::vector<Row> &batch, bool isPrefill);
  Status accept(Sequence &seq, uint32_t id);
  void appendText(Sequence &seq, const std::string &shown);
  Status finish(Sequence &seq, FinishReason reason);
  /// Forgets the finished and cancelled sequences.
  void sweep();

  const artifact::Generation &gen;
  StepModel &model;
  const EngineOptions options;
  KvBlockAllocator blocks;
  std::vector<int64_t> promptBuckets, batchBuckets;
  uint64_t nextId = 1;
  /// Every live sequence by id; `waiting` in arrival order (preempted ones
  /// first), `admitted` in admission order.
  std::map<uint64_t, std::unique_ptr<Sequence>> live;
  std::deque<Sequence *> waiting;
  std::vector<Sequence *> admitted;
  EngineStats counters;
  bool lastWasPrefill = false;
};

Status GenerationEngine::Impl::checkShape() const {
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
  return okStatus();
}

Result<uint64_t> GenerationEngine::Impl::add(Request request,
                                             SequenceSink sink) {
  int64_t maxSeq = gen.max_seq();
  auto seq = std::make_unique<Sequence>();
  seq->request = std::move(request);
  seq->sink = std::move(sink);
  seq->tokens = seq->request.promptIds;
  seq->promptLength = static_cast<int64_t>(seq->tokens.size());
  seq->prefillTarget = seq->promptLength;
  if (seq->promptLength == 0)
    return errorStatus("has no tokens");
  if (seq->promptLength >= maxSeq)
    return errorStatus("has " + std::to_string(seq->promptLength) +
                       " tokens, but the artifact's max_seq " +
                       std::to_string(maxSeq) +
                       " leaves no room for a new token (at most " +
                       std::to_string(maxSeq - 1) + " prompt tokens)");
  if (seq->request.maxTokens <= 0)
    return errorStatus("asks for no new tokens");
  seq->maxNew = std::min(seq->request.maxTokens, maxSeq - seq->promptLength);
  // The last new token is never written to the cache.
  seq->worstBlocks = blocks.blocksFor(seq->promptLength + seq->maxNew - 1);
  if (seq->worstBlocks > blocks.totalBlocks())
    return errorStatus(
        "needs " + std::to_string(seq->worstBlocks) + " KV cache blocks (" +
        std::to_string(seq->promptLength) + " prompt tokens + " +
        std::to_string(seq->maxNew) + " new, block size " +
        std::to_string(gen.block_size()) + "), but the cache has " +
        std::to_string(blocks.totalBlocks()) +
        ": give more blocks or fewer new tokens");
#if WEFT_HAVE_TOKENIZER
  if (options.tokenizer)
    seq->decoder.emplace(options.tokenizer, /*skipSpecialTokens=*/true);
#endif
  seq->stops.emplace(seq->request.stopStrings);
  seq->result.promptIds = seq->request.promptIds;
  seq->arrival = Clock::now();
  seq->id = nextId++;
  waiting.push_back(seq.get());
  uint64_t id = seq->id;
  live.emplace(id, std::move(seq));
  return id;
}

void GenerationEngine::Impl::cancel(uint64_t id) {
  auto it = live.find(id);
  if (it == live.end() || it->second->finished)
    return;
  Sequence &seq = *it->second;
  blocks.release(seq.table);
  seq.finished = true;
  sweep();
}

void GenerationEngine::Impl::sweep() {
  auto gone = [](Sequence *s) { return s->finished; };
  waiting.erase(std::remove_if(waiting.begin(), waiting.end(), gone),
                waiting.end());
  admitted.erase(std::remove_if(admitted.begin(), admitted.end(), gone),
                 admitted.end());
  for (auto it = live.begin(); it != live.end();)
    it = it->second->finished ? live.erase(it) : std::next(it);
}

void GenerationEngine::Impl::admit() {
  // In arrival order: a later request never overtakes a waiting one.
  auto keep = static_cast<uint64_t>(options.watermark *
                                    static_cast<double>(blocks.totalBlocks()));
  while (!waiting.empty()) {
    if (options.maxRunning && admitted.size() >= options.maxRunning)
      return;
    Sequence &seq = *waiting.front();
    if (options.admission == Admission::WorstCase) {
      if (!blocks.reserve(seq.table, seq.worstBlocks))
        return;
    } else {
      uint64_t need = blocks.blocksFor(seq.prefillTarget);
      // The watermark only holds back new sequences while others run.
      uint64_t reserve = admitted.empty() ? 0 : keep;
      if (need + reserve > blocks.availableBlocks() ||
          !blocks.reserve(seq.table, need))
        return;
    }
    seq.admitted = true;
    admitted.push_back(&seq);
    waiting.pop_front();
  }
}

Status GenerationEngine::Impl::step() {
  admit();
  bool anyPrefill = false, anyDecode = false;
  for (Sequence *seq : admitted)
    (seq->prefilling() ? anyPrefill : anyDecode) = true;
  // Prefills first, unless the last step was one and sequences wait to
  // decode (alternating keeps their inter-token latency to one prefill).
  bool prefill =
      anyPrefill && !(options.alternate && lastWasPrefill && anyDecode);
  Status status = okStatus();
  if (options.mixed && anyPrefill && anyDecode) {
    auto mixed = mixedStep();
    if (!mixed.ok() || *mixed) {
      lastWasPrefill = true;
      sweep();
      return mixed.status();
    }
    // Too many running sequences for one prefill's rows: alternate.
    prefill = !lastWasPrefill;
  }
  if (prefill) {
    status = prefillStep();
  } else if (anyDecode) {
    if (options.admission == Admission::OnDemand)
      makeRoomForDecode();
    std::vector<Sequence *> running;
    for (Sequence *seq : admitted)
      if (!seq->prefilling())
        running.push_back(seq);
    size_t most = static_cast<size_t>(batchBuckets.back());
    for (size_t at = 0; at < running.size() && status.ok(); at += most) {
      size_t n = std::min(most, running.size() - at);
      status = decodeStep(std::span(running).subspan(at, n));
    }
  } else if (!waiting.empty()) {
    status = errorStatus("no sequence fits the KV cache");
  }
  lastWasPrefill = prefill;
  sweep();
  return status;
}

void GenerationEngine::Impl::makeRoomForDecode() {
  for (size_t i = 0; i < admitted.size(); ++i) {
    Sequence &seq = *admitted[i];
    if (seq.prefilling())
      continue;
    while (!blocks.grow(seq.table, static_cast<int64_t>(seq.tokens.size()))) {
      // The newest admitted sequence gives its blocks back, this one last:
      // a lone sequence always fits (add() checked its worst case).
      Sequence *victim = admitted.back();
      preempt(*victim);
      admitted.pop_back();
      if (victim == &seq)
        return;
    }
  }
}

void GenerationEngine::Impl::preempt(Sequence &seq) {
  blocks.release(seq.table);
  seq.admitted = false;
  seq.cached = 0;
  seq.prefillTarget = static_cast<int64_t>(seq.tokens.size());
  ++seq.result.preemptions;
  ++counters.preemptions;
  waiting.push_front(&seq);
}

Status GenerationEngine::Impl::prefillStep() {
  int64_t most = stepBucket();
  int64_t maxRows = std::max<int64_t>(1, gen.prefill_rows());
  std::vector<Row> batch;
  int64_t used = 0;
  for (Sequence *seq : admitted) {
    if (!seq->prefilling())
      continue;
    if (static_cast<int64_t>(batch.size()) == maxRows)
      break;
    // A prompt longer than the step's bucket goes in chunks of it.
    int64_t count = std::min(seq->prefillTarget - seq->cached, most);
    if (used + count > most)
      continue;
    batch.push_back({seq, seq->cached, count});
    used += count;
  }
  int64_t bucket = options.fixedShapes ? most : bucketFor(promptBuckets, used);
  return runRows(prefillEntry(bucket), entryShape(gen, true, bucket), batch,
                 true);
}

Result<bool> GenerationEngine::Impl::mixedStep() {
  if (options.admission == Admission::OnDemand)
    makeRoomForDecode();
  std::vector<Row> batch;
  bool anyPrompt = false;
  for (Sequence *seq : admitted)
    if (!seq->prefilling())
      batch.push_back({seq, static_cast<int64_t>(seq->tokens.size()) - 1, 1});
    else
      anyPrompt = true;
  int64_t most = stepBucket();
  int64_t maxRows = entryShape(gen, true, most).rows;
  // A preemption may have left no decode, or no prompt; and every running
  // sequence must fit with at least one prompt chunk.
  if (batch.empty() || !anyPrompt ||
      static_cast<int64_t>(batch.size()) >= maxRows)
    return false;
  int64_t used = static_cast<int64_t>(batch.size());
  for (Sequence *seq : admitted) {
    if (!seq->prefilling())
      continue;
    if (static_cast<int64_t>(batch.size()) == maxRows || used == most)
      break;
    // Chunked prefill: as much of the prompt as the bucket has room for.
    int64_t count = std::min(seq->prefillTarget - seq->cached, most - used);
    batch.push_back({seq, seq->cached, count});
    used += count;
  }
  int64_t bucket = options.fixedShapes ? most : bucketFor(promptBuckets, used);
  if (Status s = runRows(prefillEntry(bucket), entryShape(gen, true, bucket),
                         batch, true);
      !s.ok())
    return s;
  ++counters.mixedSteps;
  return true;
}

Status GenerationEngine::Impl::decodeStep(std::span<Sequence *const> group) {
  std::vector<Row> batch;
  for (Sequence *seq : group)
    batch.push_back({seq, static_cast<int64_t>(seq->tokens.size()) - 1, 1});
  int64_t bucket =
      options.fixedShapes
          ? batchBuckets.back()
          : bucketFor(batchBuckets, static_cast<int64_t>(batch.size()));
  return runRows(decodeEntry(bucket), entryShape(gen, false, bucket), batch,
                 false);
}

Status GenerationEngine::Impl::runRows(const std::string &entry,
                                       EntryShape shape,
                                       const std::vector<Row> &batch,
                                       bool isPrefill) {
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
    // Prompt tokens (a mixed step's decode rows are none).
    counters.promptTokens += static_cast<uint64_t>(std::max<int64_t>(
        0, std::min(row.begin + row.count, seq.prefillTarget) - row.begin));
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

Status GenerationEngine::Impl::accept(Sequence &seq, uint32_t id) {
  Clock::time_point now = Clock::now();
  SequenceResult &result = seq.result;
  if (result.ids.empty()) {
    result.ttftMs = msBetween(seq.arrival, now);
    seq.firstToken = now;
  }
  ++counters.generatedTokens;
  seq.lastToken = now;
  seq.tokens.push_back(id);
  result.ids.push_back(id);
  const std::vector<uint32_t> &eos = options.eosIds;
  std::string shown;
  if (!seq.request.ignoreEos &&
      std::find(eos.begin(), eos.end(), id) != eos.end()) {
    if (seq.sink.onToken)
      seq.sink.onToken(id, shown);
    return finish(seq, FinishReason::Stop);
  }
  if (seq.decoder) {
    auto piece = seq.decoder->step(id);
    if (!piece.ok())
      return piece.status();
    shown = seq.stops->push(*piece);
  }
  appendText(seq, shown);
  if (seq.sink.onToken)
    seq.sink.onToken(id, shown);
  if (seq.decoder && seq.stops->stopped())
    return finish(seq, FinishReason::Stop);
  if (static_cast<int64_t>(result.ids.size()) >= seq.maxNew)
    return finish(seq, FinishReason::Length);
  return okStatus();
}

void GenerationEngine::Impl::appendText(Sequence &seq,
                                        const std::string &shown) {
  if (!shown.empty())
    seq.result.text += shown;
}

Status GenerationEngine::Impl::finish(Sequence &seq, FinishReason reason) {
  // Text held back (a partial character, a possible stop string's start)
  // is final now.
  std::string rest;
  if (seq.decoder && !seq.stops->stopped()) {
    auto tail = seq.decoder->finish();
    if (!tail.ok())
      return tail.status();
    rest = seq.stops->push(*tail);
    if (seq.stops->stopped())
      reason = FinishReason::Stop;
    else
      rest += seq.stops->finish();
  }
  appendText(seq, rest);
  SequenceResult &result = seq.result;
  result.finishReason = reason;
  if (result.ids.size() > 1)
    result.msPerToken = msBetween(seq.firstToken, seq.lastToken) /
                        static_cast<double>(result.ids.size() - 1);
  blocks.release(seq.table);
  seq.finished = true;
  if (seq.sink.onFinish)
    seq.sink.onFinish(std::move(result));
  return okStatus();
}

EngineStats GenerationEngine::Impl::stats() const {
  EngineStats s = counters;
  s.running = admitted.size();
  s.waiting = waiting.size();
  s.totalBlocks = blocks.totalBlocks();
  s.freeBlocks = blocks.availableBlocks();
  return s;
}

GenerationEngine::GenerationEngine(std::unique_ptr<Impl> impl)
    : impl(std::move(impl)) {}
GenerationEngine::~GenerationEngine() = default;

Result<std::unique_ptr<GenerationEngine>>
GenerationEngine::create(const artifact::Generation &generation,
                         StepModel &model, EngineOptions options) {
  // Before the block allocator holds them.
  if (options.kvCacheBlocks == 0)
    return errorStatus("the KV cache has no blocks");
  if (options.kvCacheBlocks > static_cast<uint64_t>(INT32_MAX))
    return errorStatus("the KV cache has more blocks than block tables "
                       "address (2^31 - 1)");
  auto impl = std::make_unique<Impl>(generation, model, std::move(options));
  if (Status s = impl->checkShape(); !s.ok())
    return s;
  return std::unique_ptr<GenerationEngine>(
      new GenerationEngine(std::move(impl)));
}

Result<uint64_t> GenerationEngine::add(Request request, SequenceSink sink) {
  return impl->add(std::move(request), std::move(sink));
}
void GenerationEngine::cancel(uint64_t id) { impl->cancel(id); }
bool GenerationEngine::busy() const { return impl->busy(); }
Status GenerationEngine::step() { return impl->step(); }
EngineStats GenerationEngine::stats() const { return impl->stats(); }

Result<std::vector<SequenceResult>>
runGeneration(const artifact::Generation &generation, StepModel &model,
              std::vector<Request> requests, const EngineOptions &options) {
  EngineOptions quiet = options;
  quiet.onText = nullptr;
  auto engine = GenerationEngine::create(generation, model, quiet);
  if (!engine.ok())
    return engine.status();
  std::vector<SequenceResult> results(requests.size());
  // Text streamed so far per request: the rest comes with the result.
  std::vector<size_t> shown(requests.size(), 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    SequenceSink sink;
    if (options.onText)
      sink.onToken = [&options, &shown, i](uint32_t, std::string_view text) {
        shown[i] += text.size();
        if (!text.empty())
          options.onText(i, text);
      };
    sink.onFinish = [&results, &options, &shown, i](SequenceResult r) {
      if (options.onText && r.text.size() > shown[i])
        options.onText(i, std::string_view(r.text).substr(shown[i]));
      results[i] = std::move(r);
    };
    auto id = (*engine)->add(std::move(requests[i]), std::move(sink));
    if (!id.ok())
      return id.status().withPrefix("prompt " + std::to_string(i + 1) + " ");
  }
  while ((*engine)->busy())
    if (Status s = (*engine)->step(); !s.ok())
      return s;
  return results;
}

} // namespace weft::runtime::generate
