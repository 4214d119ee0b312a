// `weft tokenize` and `weft detokenize`: JSON lines in, JSON lines out,
// through a Hugging Face tokenizer from a directory or an artifact.
#include "tools/common/TokenizerInput.h"
#include "tools/weft/ChatTokenize.h"
#include "tools/weft/Commands.h"
#include "tools/weft/Options.h"

#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/TokenizerFiles.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

namespace cl = llvm::cl;
using nlohmann::json;
using weft::runtime::Result;
using weft::runtime::Status;
namespace tok = weft::tokenizer;

namespace {
int lineError(size_t line, const std::string &msg) {
  llvm::errs() << "weft: error: <stdin>:" << line << ": " << msg << "\n";
  return 1;
}

/// Runs `handle` on every stdin line parsed as JSON, printing what it
/// returns; the first failure names its line and ends the run.
int forEachJsonLine(
    const std::function<Result<std::string>(const json &)> &handle) {
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    json value = json::parse(line, nullptr, false);
    if (value.is_discarded())
      return lineError(n, "not a JSON value");
    Result<std::string> out = handle(value);
    if (!out.ok())
      return lineError(n, out.message());
    llvm::outs() << *out << "\n";
    llvm::outs().flush();
  }
  return 0;
}

/// The text of `ids` decoded one id at a time.
Result<std::string> streamDecode(std::shared_ptr<const tok::Tokenizer> t,
                                 const std::vector<uint32_t> &ids,
                                 bool skipSpecial) {
  tok::IncrementalDecoder stream(std::move(t), skipSpecial);
  std::string text;
  for (uint32_t id : ids) {
    auto piece = stream.step(id);
    if (!piece.ok())
      return piece.status();
    text += *piece;
  }
  auto rest = stream.finish();
  if (!rest.ok())
    return rest.status();
  return text + *rest;
}
} // namespace

Result<std::string> weft::cli::TokenizeMode::render(const json &value) const {
  if (!value.is_string())
    return runtime::errorStatus("expected a JSON string");
  return value.get<std::string>();
}

int weft::cli::runTokenizeWith(const TokenizeMode &mode,
                               const tok::TokenizerFiles &files) {
  std::vector<uint32_t> ids;
  return forEachJsonLine([&](const json &value) -> Result<std::string> {
    Result<std::string> text = mode.render(value);
    if (!text.ok())
      return text.status();
    ids.clear();
    if (Status s = files.tokenizer->encode(*text, ids, mode.options); !s.ok())
      return s;
    return json(ids).dump();
  });
}

/// Encodes every line of `path` on one thread and prints the token count and
/// the seconds the encoding took (reading excluded): bench/tokenizer.py's
/// measurement.
static int benchEncode(const tok::Tokenizer &tokenizer,
                       const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    llvm::errs() << "weft: error: cannot read '" << path << "'\n";
    return 1;
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line + "\n");
  std::vector<uint32_t> ids;
  size_t tokens = 0;
  auto start = std::chrono::steady_clock::now();
  for (const std::string &line : lines) {
    ids.clear();
    if (Status s = tokenizer.encode(line, ids); !s.ok()) {
      llvm::errs() << "weft: error: " << path << ": " << s.message() << "\n";
      return 1;
    }
    tokens += ids.size();
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  llvm::outs() << json({{"tokens", tokens}, {"seconds", took.count()}}).dump()
               << "\n";
  return 0;
}

int weft::cli::runTokenize(int argc, char **argv) {
  cl::OptionCategory cat("weft tokenize options");
  cl::opt<std::string> path(
      "tokenizer",
      cl::desc("A tokenizer directory (tokenizer.json...) or an "
               "artifact compiled with --tokenizer"),
      cl::value_desc("path"), cl::Required, cl::cat(cat));
  cl::opt<bool> chat(
      "chat",
      cl::desc("Read a JSON list of {role, content} messages per line and "
               "encode the prompt the tokenizer's chat template makes of it "
               "(add_generation_prompt, no added special tokens), as "
               "transformers' apply_chat_template does"),
      cl::cat(cat));
  cl::opt<std::string> bench("bench", cl::Hidden, cl::value_desc("file"),
                             cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!parseCommandLine(
          argc, argv,
          "encode text: one JSON string per stdin line in, one JSON array of "
          "token ids per line out (with the post-processor's special "
          "tokens)\n"))
    return 2;
  auto files = loadTokenizer(path);
  if (!files.ok()) {
    llvm::errs() << "weft: error: " << files.message() << "\n";
    return 1;
  }
  if (chat)
    return runChatTokenize(*files, path);
  if (!bench.empty())
    return benchEncode(*files->tokenizer, bench);
  return runTokenizeWith(TokenizeMode(), *files);
}

int weft::cli::runDetokenize(int argc, char **argv) {
  cl::OptionCategory cat("weft detokenize options");
  cl::opt<std::string> path(
      "tokenizer",
      cl::desc("A tokenizer directory (tokenizer.json...) or an "
               "artifact compiled with --tokenizer"),
      cl::value_desc("path"), cl::Required, cl::cat(cat));
  cl::opt<bool> skipSpecial("skip-special-tokens",
                            cl::desc("Leave special tokens out of the text"),
                            cl::cat(cat));
  // Streams each line through the IncrementalDecoder and prints the
  // concatenated pieces: the conformance test's check of streaming.
  cl::opt<bool> incremental("incremental", cl::Hidden, cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!parseCommandLine(argc, argv,
                        "decode ids: one JSON array of token ids per stdin "
                        "line in, one JSON string per line out\n"))
    return 2;
  auto files = loadTokenizer(path);
  if (!files.ok()) {
    llvm::errs() << "weft: error: " << files.message() << "\n";
    return 1;
  }
  const tok::Tokenizer &tokenizer = *files->tokenizer;
  std::vector<uint32_t> ids;
  return forEachJsonLine([&](const json &value) -> Result<std::string> {
    if (!value.is_array())
      return runtime::errorStatus("expected a JSON array of token ids");
    ids.clear();
    for (const json &id : value) {
      if (!id.is_number_integer())
        return runtime::errorStatus("expected a JSON array of token ids");
      int64_t v = id.get<int64_t>();
      if (v < 0 || v >= int64_t(tokenizer.vocabSize()))
        return runtime::errorStatus("id " + std::to_string(v) +
                                    " is out of range (the vocabulary has " +
                                    std::to_string(tokenizer.vocabSize()) +
                                    " ids)");
      ids.push_back(uint32_t(v));
    }
    auto text = incremental ? streamDecode(files->tokenizer, ids, skipSpecial)
                            : tokenizer.decode(ids, skipSpecial);
    if (!text.ok())
      return text.status();
    return json(*text).dump(-1, ' ', false, json::error_handler_t::replace);
  });
}
