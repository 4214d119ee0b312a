// The tokenizer's pipeline: added tokens, normalizer, pre-tokenizer, model,
// post-processor on the way in; tokens and the decoder on the way out.
#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/tokenizer/AddedVocabulary.h"
#include "runtime/tokenizer/Components.h"
#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Result;
using runtime::Status;

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

namespace {
void readTruncation(const json &root, std::optional<size_t> &to, bool &left) {
  const json *t = field(root, "truncation");
  if (!t)
    return;
  to = getInt(*t, "max_length", "truncation");
  left = getString(*t, "direction", "truncation", "Right") == "Left";
}

void readPadding(const json &root, std::optional<size_t> &to, uint32_t &id,
                 bool &left, size_t &multiple) {
  const json *p = field(root, "padding");
  if (!p)
    return;
  id = getInt(*p, "pad_id", "padding", 0);
  left = getString(*p, "direction", "padding", "Right") == "Left";
  multiple = getInt(*p, "pad_to_multiple_of", "padding", 0);
  to = 0; // BatchLongest: a single sequence is its own longest.
  if (const json *s = field(*p, "strategy"); s && s->is_object())
    if (const json *fixed = field(*s, "Fixed"))
      to = fixed->get<size_t>();
}
} // namespace

Result<std::shared_ptr<Tokenizer>>
Tokenizer::fromJson(std::string_view text, const std::string &fileName) {
  json root = parseTokenizerJson(text);
  if (root.is_discarded())
    return runtime::errorStatus(fileName + ": not valid JSON");
  if (!root.is_object())
    return runtime::errorStatus(fileName + ": expected a JSON object");
  std::shared_ptr<Tokenizer> tok(new Tokenizer());
  try {
    const json *model = field(root, "model");
    if (!model)
      configError("model", "missing");
    tok->model = buildModel(*model, "model");
    if (const json *n = field(root, "normalizer"))
      tok->normalizer = buildNormalizer(*n, "normalizer");
    if (const json *p = field(root, "pre_tokenizer"))
      tok->preTokenizer = buildPreTokenizer(*p, "pre_tokenizer");
    if (const json *p = field(root, "post_processor"))
      tok->postProcessor = buildPostProcessor(*p, "post_processor");
    if (const json *d = field(root, "decoder"))
      tok->decoder = buildDecoder(*d, "decoder");
    readTruncation(root, tok->truncateTo, tok->truncateLeft);
    size_t multiple = 0;
    readPadding(root, tok->padTo, tok->padId, tok->padLeft, multiple);
    tok->padMultiple = multiple;
    tok->added = std::make_unique<AddedVocabulary>();
    if (const json *list = field(root, "added_tokens")) {
      if (!list->is_array())
        configError("added_tokens", "expected an array");
      for (size_t i = 0; i < list->size(); ++i) {
        std::string p = "added_tokens[" + std::to_string(i) + "]";
        const json &e = (*list)[i];
        AddedToken t;
        t.id = getInt(e, "id", p);
        t.content = getString(e, "content", p);
        t.singleWord = getBool(e, "single_word", p, false);
        t.lstrip = getBool(e, "lstrip", p, false);
        t.rstrip = getBool(e, "rstrip", p, false);
        t.special = getBool(e, "special", p, false);
        t.normalized = getBool(e, "normalized", p, !t.special);
        std::string pattern = t.content;
        if (t.normalized && tok->normalizer)
          pattern = tok->normalizer->normalize(pattern);
        tok->added->add(t, std::move(pattern));
      }
    }
  } catch (const ConfigError &e) {
    return runtime::errorStatus(fileName + ": " + e.what());
  } catch (const json::exception &e) {
    return runtime::errorStatus(fileName + ": " + e.what());
  }
  return tok;
}

Result<std::shared_ptr<Tokenizer>>
Tokenizer::fromFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return runtime::errorStatus("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return fromJson(ss.str(), path);
}

Status Tokenizer::encodeText(std::string_view text, uint32_t startCredit,
                             std::vector<uint32_t> &ids) const {
  thread_local PieceList in, out;
  in.clear();
  in.add(text, startCredit);
  const PieceList *pieces = &in;
  if (preTokenizer) {
    out.clear();
    preTokenizer->split(in, out);
    pieces = &out;
  }
  for (const auto &p : pieces->pieces)
    if (Status s = model->tokenize(pieces->view(p), ids); !s.ok())
      return s;
  return {};
}

Status Tokenizer::encode(std::string_view text, std::vector<uint32_t> &ids,
                         EncodeOptions options) const {
  if (!isValidUtf8(text))
    return runtime::errorStatus("the text is not valid UTF-8");
  size_t before = ids.size();
  std::vector<Segment> raw, norm;
  added->split(text, false, raw);
  for (const Segment &seg : raw) {
    if (seg.id) {
      ids.push_back(*seg.id);
      continue;
    }
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    // The bytes the input's first character normalizes to (with whatever
    // the normalizer prepends): pieces starting among them begin the input.
    uint32_t firstCredit = 0;
    if (seg.begin == 0) {
      size_t len = utf8Length(static_cast<unsigned char>(piece[0]));
      firstCredit = static_cast<uint32_t>(
          normalizer
              ? normalizer->normalize(std::string(piece.substr(0, len))).size()
              : len);
    }
    // Normalized per piece between added tokens, as the Rust library does.
    thread_local std::string n;
    if (normalizer)
      n = normalizer->normalize(std::string(piece));
    else
      n.assign(piece);
    added->split(n, true, norm);
    for (const Segment &sub : norm) {
      if (sub.id) {
        ids.push_back(*sub.id);
        continue;
      }
      std::string_view s =
          std::string_view(n).substr(sub.begin, sub.end - sub.begin);
      uint32_t credit = firstCredit > sub.begin
                            ? firstCredit - static_cast<uint32_t>(sub.begin)
                            : 0;
      if (Status st = encodeText(s, credit, ids); !st.ok())
        return st;
    }
  }
  size_t addedCount = options.addSpecialTokens && postProcessor
                          ? postProcessor->addedTokens()
                          : 0;
  if (truncateTo) {
    size_t keep = *truncateTo > addedCount ? *truncateTo - addedCount : 0;
    size_t have = ids.size() - before;
    if (have > keep) {
      if (truncateLeft)
        ids.erase(ids.begin() + before, ids.begin() + before + (have - keep));
      else
        ids.resize(before + keep);
    }
  }
  if (options.addSpecialTokens && postProcessor) {
    std::vector<uint32_t> seq(ids.begin() + before, ids.end());
    postProcessor->process(seq);
    ids.resize(before);
    ids.insert(ids.end(), seq.begin(), seq.end());
  }
  if (padTo) {
    size_t have = ids.size() - before;
    size_t target = std::max(*padTo, have);
    if (padMultiple && target % padMultiple)
      target += padMultiple - target % padMultiple;
    if (target > have)
      ids.insert(padLeft ? ids.begin() + before : ids.end(), target - have,
                 padId);
  }
  return {};
}

Result<std::vector<uint32_t>> Tokenizer::encode(std::string_view text,
                                                EncodeOptions options) const {
  std::vector<uint32_t> ids;
  if (Status s = encode(text, ids, options); !s.ok())
    return s;
  return ids;
}

Result<std::string> Tokenizer::decode(std::span<const uint32_t> ids,
                                      bool skipSpecialTokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    const std::string *t = idToToken(id);
    if (!t)
      return runtime::errorStatus("id " + std::to_string(id) +
                                  " is out of range (the vocabulary has " +
                                  std::to_string(vocabSize()) + " ids)");
    if (skipSpecialTokens && isSpecial(id))
      continue;
    tokens.push_back(*t);
  }
  std::string text;
  if (!decoder) {
    for (size_t i = 0; i < tokens.size(); ++i)
      text += (i ? " " : "") + tokens[i];
    return text;
  }
  decoder->decodeChain(tokens);
  for (const auto &t : tokens)
    text += t;
  return text;
}

std::optional<uint32_t> Tokenizer::tokenToId(std::string_view token) const {
  if (auto id = added->byContent(token))
    return id;
  return model->tokenToId(token);
}

const std::string *Tokenizer::idToToken(uint32_t id) const {
  if (const AddedToken *t = added->byId(id))
    return &t->decoded;
  return model->idToToken(id);
}

uint32_t Tokenizer::vocabSize() const {
  uint32_t n = model->vocabSize();
  for (const AddedToken &t : added->all())
    n = std::max(n, t.id + 1);
  return n;
}

bool Tokenizer::isSpecial(uint32_t id) const {
  const AddedToken *t = added->byId(id);
  return t && t->special;
}

std::vector<uint32_t> Tokenizer::specialIds() const {
  std::vector<uint32_t> ids;
  for (const AddedToken &t : added->all())
    if (t.special)
      ids.push_back(t.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

IncrementalDecoder::IncrementalDecoder(
    std::shared_ptr<const Tokenizer> tokenizer, bool skipSpecialTokens)
    : tokenizer(std::move(tokenizer)), skipSpecial(skipSpecialTokens) {}

Result<std::string> IncrementalDecoder::step(uint32_t id) {
  ids.push_back(id);
  std::span<const uint32_t> all(ids);
  // The window keeps a token of context before the unread ones, so
  // decoders that treat the first token apart (Metaspace, WordPiece) see
  // the unread tokens as they would in the middle of the text.
  auto prefix = tokenizer->decode(
      all.subspan(prefixIndex, readIndex - prefixIndex), skipSpecial);
  if (!prefix.ok())
    return prefix.status();
  auto text = tokenizer->decode(all.subspan(prefixIndex), skipSpecial);
  if (!text.ok())
    return text.status();
  const std::string &t = *text;
  bool incomplete =
      t.size() >= 3 && t.compare(t.size() - 3, 3, "\xEF\xBF\xBD") == 0;
  if (t.size() <= prefix->size() || incomplete ||
      t.compare(0, prefix->size(), *prefix) != 0)
    return std::string();
  std::string fresh = t.substr(prefix->size());
  prefixIndex = readIndex;
  readIndex = ids.size();
  emitted += fresh;
  return fresh;
}

Result<std::string> IncrementalDecoder::finish() {
  auto full = tokenizer->decode(ids, skipSpecial);
  if (!full.ok())
    return full.status();
  if (full->compare(0, emitted.size(), emitted) != 0)
    return runtime::errorStatus(
        "the streamed text is not a prefix of the decoded text");
  std::string rest = full->substr(emitted.size());
  emitted = *full;
  return rest;
}

} // namespace weft::tokenizer
