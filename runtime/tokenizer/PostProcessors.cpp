// Post-processors of tokenizer.json for a single sequence: the special
// tokens TemplateProcessing, BertProcessing and RobertaProcessing put around
// it (ByteLevel's only adjusts offsets, which weft does not report).
#include "runtime/tokenizer/Components.h"

#include <nlohmann/json.hpp>

namespace weft::tokenizer {
using nlohmann::json;

namespace {
class WrapProcessor : public PostProcessor {
public:
  WrapProcessor(std::vector<uint32_t> before, std::vector<uint32_t> after)
      : before(std::move(before)), after(std::move(after)) {}
  void process(std::vector<uint32_t> &ids) const override {
    ids.insert(ids.begin(), before.begin(), before.end());
    ids.insert(ids.end(), after.begin(), after.end());
  }
  size_t addedTokens() const override { return before.size() + after.size(); }

private:
  std::vector<uint32_t> before, after;
};

class SequenceProcessor : public PostProcessor {
public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> s)
      : steps(std::move(s)) {}
  void process(std::vector<uint32_t> &ids) const override {
    for (const auto &p : steps)
      p->process(ids);
  }
  size_t addedTokens() const override {
    size_t n = 0;
    for (const auto &p : steps)
      n += p->addedTokens();
    return n;
  }

private:
  std::vector<std::unique_ptr<PostProcessor>> steps;
};

/// A [token, id] pair of BertProcessing and RobertaProcessing.
uint32_t pairId(const json &j, const char *key, const std::string &path) {
  const json *v = field(j, key);
  if (!v || !v->is_array() || v->size() != 2 || !(*v)[1].is_number_unsigned())
    configError(path + "." + key, "expected [token, id]");
  return (*v)[1].get<uint32_t>();
}

std::unique_ptr<PostProcessor> buildTemplate(const json &j,
                                             const std::string &path) {
  const json *single = field(j, "single");
  if (!single || !single->is_array())
    configError(path + ".single", "expected an array");
  const json *specials = field(j, "special_tokens");
  std::vector<uint32_t> before, after;
  bool seenSequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    std::string p = path + ".single[" + std::to_string(i) + "]";
    const json &piece = (*single)[i];
    if (field(piece, "Sequence")) {
      if (seenSequence)
        configError(p, "a second sequence in a single template");
      seenSequence = true;
      continue;
    }
    const json *special = field(piece, "SpecialToken");
    if (!special)
      configError(p, "expected Sequence or SpecialToken");
    std::string name = getString(*special, "id", p + ".SpecialToken");
    const json *entry = specials ? field(*specials, name.c_str()) : nullptr;
    const json *ids = entry ? field(*entry, "ids") : nullptr;
    if (!ids || !ids->is_array())
      configError(path + ".special_tokens", "no ids for '" + name + "'");
    for (const json &id : *ids)
      (seenSequence ? after : before).push_back(id.get<uint32_t>());
  }
  return std::make_unique<WrapProcessor>(std::move(before), std::move(after));
}
} // namespace

std::unique_ptr<PostProcessor> buildPostProcessor(const json &j,
                                                  const std::string &path) {
  std::string type = getString(j, "type", path);
  if (type == "TemplateProcessing")
    return buildTemplate(j, path);
  if (type == "BertProcessing" || type == "RobertaProcessing")
    return std::make_unique<WrapProcessor>(
        std::vector<uint32_t>{pairId(j, "cls", path)},
        std::vector<uint32_t>{pairId(j, "sep", path)});
  if (type == "ByteLevel")
    return std::make_unique<WrapProcessor>(std::vector<uint32_t>{},
                                           std::vector<uint32_t>{});
  if (type == "Sequence") {
    const json *list = field(j, "processors");
    if (!list || !list->is_array())
      configError(path + ".processors", "expected an array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list->size(); ++i)
      steps.push_back(buildPostProcessor(
          (*list)[i], path + ".processors[" + std::to_string(i) + "]"));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  configError(path + ".type", "unsupported '" + type + "'");
}

} // namespace weft::tokenizer
