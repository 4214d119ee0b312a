// The Unigram model: the best-scoring segmentation of a piece (Viterbi over
// a byte trie of the vocabulary), unknown characters fused into one unk.
#include "runtime/tokenizer/Unicode.h"
#include "runtime/tokenizer/VocabModel.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Status;

namespace {
class UnigramModel : public VocabModel {
public:
  std::vector<double> scores;
  std::optional<uint32_t> unkId;
  bool byteFallback = false;
  double minScore = std::numeric_limits<double>::max();
  // The trie: (node << 8 | byte) -> child; a node's token id, if any.
  std::unordered_map<uint64_t, uint32_t> children;
  std::vector<int64_t> nodeToken{-1};

  void addToTrie(std::string_view token, uint32_t id) {
    uint32_t node = 0;
    for (unsigned char c : token) {
      uint64_t key = (uint64_t(node) << 8) | c;
      auto it = children.find(key);
      if (it == children.end()) {
        uint32_t child = static_cast<uint32_t>(nodeToken.size());
        nodeToken.push_back(-1);
        it = children.emplace(key, child).first;
      }
      node = it->second;
    }
    nodeToken[node] = id;
  }

  Status tokenize(std::string_view s,
                  std::vector<uint32_t> &ids) const override {
    if (s.empty())
      return {};
    struct Node {
      int64_t id = -1;
      double score = 0;
      int64_t start = -1;
    };
    std::vector<Node> best(s.size() + 1);
    const double unkScore = minScore - 10.0;
    for (size_t start = 0; start < s.size();) {
      double here = best[start].score;
      size_t charLen = utf8Length(static_cast<unsigned char>(s[start]));
      bool single = false;
      uint32_t node = 0;
      for (size_t k = start; k < s.size(); ++k) {
        auto it = children.find((uint64_t(node) << 8) |
                                static_cast<unsigned char>(s[k]));
        if (it == children.end())
          break;
        node = it->second;
        if (nodeToken[node] < 0)
          continue;
        Node &target = best[k + 1];
        double cand = here + scores[nodeToken[node]];
        if (target.start < 0 || cand > target.score)
          target = {nodeToken[node], cand, int64_t(start)};
        single = single || k + 1 - start == charLen;
      }
      if (!single) {
        if (!unkId)
          return runtime::errorStatus("the Unigram model has no unk_id");
        Node &target = best[start + charLen];
        double cand = here + unkScore;
        if (target.start < 0 || cand > target.score)
          target = {*unkId, cand, int64_t(start)};
      }
      start += charLen;
    }
    // Walk back; consecutive unknowns fuse into one piece.
    thread_local std::vector<std::pair<size_t, size_t>> pieces;
    pieces.clear();
    bool lastUnk = false;
    for (size_t end = s.size(); end > 0;) {
      const Node &n = best[end];
      size_t start = n.start;
      bool isUnk = unkId && n.id == int64_t(*unkId);
      if (isUnk && lastUnk)
        pieces.back().first = start;
      else
        pieces.push_back({start, end});
      lastUnk = isUnk;
      end = start;
    }
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
      std::string_view piece = s.substr(it->first, it->second - it->first);
      if (auto id = vocab.find(piece)) {
        ids.push_back(*id);
        continue;
      }
      if (byteFallback && appendByteTokens(piece, ids))
        continue;
      if (!unkId)
        return runtime::errorStatus("the Unigram model has no unk_id");
      ids.push_back(*unkId);
    }
    return {};
  }
};
} // namespace

std::unique_ptr<Model> buildUnigram(const json &j, const std::string &path) {
  auto m = std::make_unique<UnigramModel>();
  const json *vocab = field(j, "vocab");
  if (!vocab || !vocab->is_array())
    configError(path + ".vocab", "expected an array of [piece, score]");
  for (size_t i = 0; i < vocab->size(); ++i) {
    const json &e = (*vocab)[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() ||
        !e[1].is_number())
      configError(path + ".vocab[" + std::to_string(i) + "]",
                  "expected [piece, score]");
    std::string piece = e[0].get<std::string>();
    double score = e[1].get<double>();
    m->vocab.add(piece, uint32_t(i));
    m->scores.push_back(score);
    m->minScore = std::min(m->minScore, score);
    m->addToTrie(piece, uint32_t(i));
  }
  if (field(j, "unk_id")) {
    int64_t unk = getInt(j, "unk_id", path);
    if (unk < 0 || size_t(unk) >= vocab->size())
      configError(path + ".unk_id", "out of the vocabulary");
    m->unkId = uint32_t(unk);
  }
  m->byteFallback = getBool(j, "byte_fallback", path, false);
  m->findByteTokens();
  return m;
}

} // namespace weft::tokenizer
