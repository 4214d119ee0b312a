// Renders chat templates from the command line, for tests: one conversation
// per stdin line, or (--batch) one JSON case per line with its own template.
#include "runtime/tokenizer/ChatTemplate.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

using weft::tokenizer::ChatTemplate;
using weft::tokenizer::ChatTemplateOptions;
using Json = nlohmann::ordered_json;

namespace {

std::string dumpJson(const Json &value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

weft::runtime::Result<ChatTemplate> loadTemplate(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return weft::runtime::errorStatus("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::string name = path.substr(path.find_last_of('/') + 1);
  return ChatTemplate::parse(text.str(), name);
}

/// Each line: {"template", "messages", "add_generation_prompt", "context",
/// "now"}; each answer: {"ok": true, "text"} or {"ok": false, "error"}.
int runBatch() {
  std::map<std::string, weft::runtime::Result<ChatTemplate>> cache;
  std::string line;
  while (std::getline(std::cin, line)) {
    Json answer;
    try {
      Json c = Json::parse(line);
      std::string path = c.at("template").get<std::string>();
      auto it = cache.find(path);
      if (it == cache.end())
        it = cache.emplace(path, loadTemplate(path)).first;
      if (!it->second.ok()) {
        answer = {{"ok", false}, {"error", it->second.message()}};
      } else {
        ChatTemplateOptions options;
        options.addGenerationPrompt = c.value("add_generation_prompt", true);
        if (c.contains("context"))
          options.context = c["context"];
        if (c.contains("now"))
          options.now = c["now"].get<std::time_t>();
        auto text = it->second->render(c.at("messages"), options);
        answer = text.ok() ? Json{{"ok", true}, {"text", *text}}
                           : Json{{"ok", false}, {"error", text.message()}};
      }
    } catch (const std::exception &e) {
      answer = {{"ok", false}, {"error", std::string("bad case: ") + e.what()}};
    }
    std::cout << dumpJson(answer) << "\n" << std::flush;
  }
  return 0;
}

int fail(const std::string &message) {
  std::cerr << "weft: error: " << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 2 && std::string(argv[1]) == "--batch")
    return runBatch();
  if (argc < 2)
    return fail("usage: weft-chat-template-driver TEMPLATE [--context JSON] "
                "[--no-generation-prompt] [--now SECONDS] < conversations");
  ChatTemplateOptions options;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-generation-prompt")
      options.addGenerationPrompt = false;
    else if (arg == "--context" && i + 1 < argc)
      options.context = Json::parse(argv[++i], nullptr, false);
    else if (arg == "--now" && i + 1 < argc)
      options.now = std::stoll(argv[++i]);
    else
      return fail("unknown option '" + arg + "'");
  }
  if (options.context.is_discarded())
    return fail("--context is not valid JSON");
  auto tmpl = loadTemplate(argv[1]);
  if (!tmpl.ok())
    return fail(tmpl.message());
  std::string line;
  for (int lineNo = 1; std::getline(std::cin, line); ++lineNo) {
    Json messages = Json::parse(line, nullptr, false);
    if (messages.is_discarded())
      return fail("<stdin>:" + std::to_string(lineNo) + ": not valid JSON");
    auto text = tmpl->render(messages, options);
    if (!text.ok())
      return fail(text.message());
    std::cout << dumpJson(Json(*text)) << "\n";
  }
  return 0;
}
