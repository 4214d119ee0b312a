// The BPE model: merges applied by rank over a word's characters (or their
// byte-fallback tokens), with a per-word cache so common words cost one
// hash lookup.
#include "runtime/tokenizer/Unicode.h"
#include "runtime/tokenizer/VocabModel.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>
#include <queue>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Status;

namespace {
class BpeModel : public VocabModel {
public:
  // (left id << 32 | right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<uint32_t, uint32_t>> merges;
  std::optional<std::string> unkToken;
  std::string prefix, suffix;
  bool fuseUnk = false, byteFallback = false, ignoreMerges = false;

  Status tokenize(std::string_view word,
                  std::vector<uint32_t> &ids) const override {
    if (word.empty())
      return {};
    if (ignoreMerges)
      if (auto id = vocab.find(word)) {
        ids.push_back(*id);
        return {};
      }
    {
      std::lock_guard<std::mutex> lock(cacheMutex);
      auto it = cache.find(word);
      if (it != cache.end()) {
        ids.insert(ids.end(), cacheIds.begin() + it->second.first,
                   cacheIds.begin() + it->second.first + it->second.second);
        return {};
      }
    }
    size_t before = ids.size();
    if (Status s = mergeWord(word, ids); !s.ok())
      return s;
    std::lock_guard<std::mutex> lock(cacheMutex);
    // A bounded cache: past the limit, new words are merged every time.
    if (cache.size() < kCacheWords) {
      cache.emplace(std::string(word),
                    std::make_pair(static_cast<uint32_t>(cacheIds.size()),
                                   static_cast<uint32_t>(ids.size() - before)));
      cacheIds.insert(cacheIds.end(), ids.begin() + before, ids.end());
    }
    return {};
  }

private:
  static constexpr size_t kCacheWords = 200000;
  mutable std::mutex cacheMutex;
  mutable StringMap<std::pair<uint32_t, uint32_t>> cache;
  mutable std::vector<uint32_t> cacheIds;

  struct Symbol {
    uint32_t id;
    int prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    int pos;
    uint32_t newId;
    bool operator<(const Candidate &o) const {
      // A max-heap: the lowest rank, then the leftmost position, on top.
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };

  const std::pair<uint32_t, uint32_t> *findMerge(uint32_t a, uint32_t b) const {
    auto it = merges.find((uint64_t(a) << 32) | b);
    return it == merges.end() ? nullptr : &it->second;
  }

  /// The initial symbols of a word, as the Rust library's merge_word makes
  /// them: one per character (with prefix/suffix), else its bytes, else unk.
  Status initialSymbols(std::string_view w, std::vector<uint32_t> &out) const {
    // The unk id waiting to be emitted (fused with following unknowns).
    int64_t pendingUnk = -1;
    std::string s;
    for (size_t i = 0; i < w.size();) {
      size_t b = i;
      i += utf8Length(static_cast<unsigned char>(w[i]));
      s.clear();
      if (!prefix.empty() && b > 0)
        s += prefix;
      s.append(w.substr(b, i - b));
      if (!suffix.empty() && i == w.size())
        s += suffix;
      if (auto id = vocab.find(s)) {
        if (pendingUnk >= 0) {
          out.push_back(uint32_t(pendingUnk));
          pendingUnk = -1;
        }
        out.push_back(*id);
        continue;
      }
      // Rust keeps a pending unk across byte-fallback tokens.
      if (byteFallback && appendByteTokens(s, out))
        continue;
      if (unkToken) {
        auto unk = vocab.find(*unkToken);
        if (!unk)
          return runtime::errorStatus("unk token '" + *unkToken +
                                      "' is not in the vocabulary");
        if (pendingUnk >= 0 && !fuseUnk)
          out.push_back(uint32_t(pendingUnk));
        pendingUnk = *unk;
      }
    }
    if (pendingUnk >= 0)
      out.push_back(uint32_t(pendingUnk));
    return {};
  }

  Status mergeWord(std::string_view w, std::vector<uint32_t> &ids) const {
    thread_local std::vector<uint32_t> initial;
    thread_local std::vector<Symbol> syms;
    initial.clear();
    if (Status s = initialSymbols(w, initial); !s.ok())
      return s;
    syms.clear();
    for (size_t i = 0; i < initial.size(); ++i)
      syms.push_back({initial[i], int(i) - 1,
                      i + 1 < initial.size() ? int(i) + 1 : -1, true});
    std::priority_queue<Candidate> queue;
    for (size_t i = 0; i + 1 < syms.size(); ++i)
      if (auto *m = findMerge(syms[i].id, syms[i + 1].id))
        queue.push({m->first, int(i), m->second});
    while (!queue.empty()) {
      Candidate top = queue.top();
      queue.pop();
      Symbol &left = syms[top.pos];
      if (!left.alive || left.next < 0)
        continue;
      Symbol &right = syms[left.next];
      // Stale entries: the pair changed since this candidate was queued.
      auto *m = findMerge(left.id, right.id);
      if (!m || m->second != top.newId)
        continue;
      left.id = top.newId;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0)
        syms[right.next].prev = top.pos;
      if (left.prev >= 0)
        if (auto *pm = findMerge(syms[left.prev].id, left.id))
          queue.push({pm->first, left.prev, pm->second});
      if (left.next >= 0)
        if (auto *nm = findMerge(left.id, syms[left.next].id))
          queue.push({nm->first, top.pos, nm->second});
    }
    for (const Symbol &s : syms)
      if (s.alive)
        ids.push_back(s.id);
    return {};
  }
};
} // namespace

std::unique_ptr<Model> buildBpe(const json &j, const std::string &path) {
  auto m = std::make_unique<BpeModel>();
  m->readVocabObject(j, path);
  if (field(j, "dropout") && j["dropout"].get<double>() != 0.0)
    configError(path + ".dropout", "unsupported (only null)");
  if (field(j, "unk_token"))
    m->unkToken = getString(j, "unk_token", path);
  m->prefix = getString(j, "continuing_subword_prefix", path, "");
  m->suffix = getString(j, "end_of_word_suffix", path, "");
  m->fuseUnk = getBool(j, "fuse_unk", path, false);
  m->byteFallback = getBool(j, "byte_fallback", path, false);
  m->ignoreMerges = getBool(j, "ignore_merges", path, false);
  m->findByteTokens();
  const json *merges = field(j, "merges");
  if (!merges || !merges->is_array())
    configError(path + ".merges", "expected an array");
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const json &e = (*merges)[rank];
    std::string p = path + ".merges[" + std::to_string(rank) + "]";
    std::string a, b;
    if (e.is_string()) {
      std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        configError(p, "expected \"left right\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() &&
               e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      configError(p, "expected \"left right\" or [left, right]");
    }
    auto aId = m->vocab.find(a), bId = m->vocab.find(b);
    // As the Rust library: the right part loses the prefix's length.
    std::string merged = a + b.substr(std::min(m->prefix.size(), b.size()));
    auto newId = m->vocab.find(merged);
    if (!aId || !bId || !newId)
      configError(p, "token '" +
                         (!aId   ? a
                          : !bId ? b
                                 : merged) +
                         "' is not in the vocabulary");
    m->merges[(uint64_t(*aId) << 32) | *bId] = {uint32_t(rank), *newId};
  }
  return m;
}

} // namespace weft::tokenizer
