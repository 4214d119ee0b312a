// Loading a tokenizer directory: tokenizer.json plus the config fields a
// chat front end needs.
#include "runtime/tokenizer/TokenizerFiles.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace weft::tokenizer {
using nlohmann::json;
using runtime::Result;

const std::vector<std::string> &tokenizerFileNames() {
  static const std::vector<std::string> names = {
      "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
      "generation_config.json"};
  return names;
}

namespace {
/// A token field: "<s>" or {"content": "<s>", ...}.
std::optional<std::string> tokenField(const json &config, const char *key) {
  auto it = config.find(key);
  if (it == config.end())
    return std::nullopt;
  if (it->is_string())
    return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string())
      return c->get<std::string>();
  }
  return std::nullopt;
}

Result<json> parseFile(const std::map<std::string, std::string> &contents,
                       const std::string &name, const std::string &source) {
  json j = json::parse(contents.at(name), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return runtime::errorStatus(source + "/" + name +
                                ": not a valid JSON object");
  return j;
}
} // namespace

Result<TokenizerFiles>
TokenizerFiles::fromContents(std::map<std::string, std::string> contents,
                             const std::string &source) {
  TokenizerFiles f;
  auto main = contents.find("tokenizer.json");
  if (main == contents.end())
    return runtime::errorStatus(source + ": no tokenizer.json");
  auto tok = Tokenizer::fromJson(main->second, source + "/tokenizer.json");
  if (!tok.ok())
    return tok.status();
  f.tokenizer = *tok;
  if (contents.count("tokenizer_config.json")) {
    auto config = parseFile(contents, "tokenizer_config.json", source);
    if (!config.ok())
      return config.status();
    f.bosToken = tokenField(*config, "bos_token");
    f.eosToken = tokenField(*config, "eos_token");
    if (auto t = config->find("chat_template");
        t != config->end() && t->is_string())
      f.chatTemplate = t->get<std::string>();
  }
  // transformers' order (and loadChatTemplate's): chat_template.jinja wins.
  if (contents.count("chat_template.jinja"))
    f.chatTemplate = contents.at("chat_template.jinja");
  if (contents.count("generation_config.json")) {
    auto gen = parseFile(contents, "generation_config.json", source);
    if (!gen.ok())
      return gen.status();
    auto e = gen->find("eos_token_id");
    if (e != gen->end() && e->is_number_unsigned())
      f.eosTokenIds.push_back(e->get<uint32_t>());
    else if (e != gen->end() && e->is_array())
      for (const json &id : *e)
        if (id.is_number_unsigned())
          f.eosTokenIds.push_back(id.get<uint32_t>());
  }
  if (f.eosTokenIds.empty() && f.eosToken)
    if (auto id = f.tokenizer->tokenToId(*f.eosToken))
      f.eosTokenIds.push_back(*id);
  f.contents = std::move(contents);
  return f;
}

Result<TokenizerFiles> TokenizerFiles::fromDirectory(const std::string &dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> contents;
  for (const std::string &name : tokenizerFileNames()) {
    fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) {
      if (name == "tokenizer.json")
        return runtime::errorStatus(dir + ": no tokenizer.json");
      continue;
    }
    std::ifstream in(p, std::ios::binary);
    if (!in)
      return runtime::errorStatus("cannot read '" + p.string() + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    contents[name] = ss.str();
  }
  return fromContents(std::move(contents), dir);
}

} // namespace weft::tokenizer
