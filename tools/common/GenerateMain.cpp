// `weft generate`: prompts in, generated text out, through a generation
// artifact's prefill and decode entry points (runtime/generate).
#include "tools/common/GenerateMain.h"
#include "tools/common/LaunchedRank.h"
#if WEFT_HAVE_TOKENIZER
#include "runtime/tokenizer/ChatTemplate.h"
#include "tools/common/TokenizerInput.h"
#endif

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/PlanValidator.h"
#include "runtime/backends/BackendRegistry.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/exec/Launcher.h"
#include "runtime/generate/Engine.h"
#include "runtime/generate/SessionModel.h"
#include "runtime/support/Limits.h"
#include "runtime/support/SafeFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace gen = weft::runtime::generate;
#if WEFT_HAVE_TOKENIZER
namespace tok = weft::tokenizer;
#endif
using weft::runtime::Artifact;
using weft::runtime::errorStatus;
using weft::runtime::Result;
using weft::runtime::Status;
using Json = nlohmann::ordered_json;

namespace {

/// The largest --prompt-file read.
constexpr uint64_t kMaxPromptFileBytes = uint64_t(256) << 20;

constexpr int kExitData = 1, kExitUsage = 2;
constexpr const char *kProg = "weft generate";

/// The KV cache's default memory budget per rank, by backend.
constexpr double kCpuCacheGiB = 2, kCudaCacheGiB = 16;

struct GenerateOptions {
  std::string artifact, prompt, promptFile, promptIds, system, backend = "cpu";
  bool hasPrompt = false, chat = false, json = false, ignoreEos = false,
       help = false;
  std::optional<int64_t> maxTokens, topK, seed;
  std::optional<float> temperature, topP;
  std::vector<std::string> stops;
  std::optional<uint32_t> nproc;
  unsigned threads = 0;
  std::optional<uint64_t> kvBlocks;
  std::optional<double> kvGiB;
  double timeout = 300;
  std::string modelDir;
};

void printHelp(std::ostream &os) {
  os << "USAGE: weft generate ARTIFACT (--prompt TEXT | --prompt-ids IDS | "
        "--prompt-file FILE) [options]\n\n"
        "Generates text with an artifact compiled by `weft compile "
        "--generate\n"
        "--tokenizer DIR`: encodes the prompts with the artifact's "
        "tokenizer,\n"
        "runs them together (prompts packed into prefills, the running\n"
        "sequences decoded as one batch, over a paged KV cache) and prints\n"
        "the generated text. One prompt without --json streams its text as\n"
        "it comes.\n\n"
        "OPTIONS:\n"
        "  --prompt TEXT        the prompt\n"
        "  --prompt-ids IDS     the prompt as comma-separated token ids (no\n"
        "                       tokenizer needed)\n"
        "  --prompt-file FILE   several prompts, generated together: one per\n"
        "                       line; a line starting with '{' is a JSON\n"
        "                       object {\"prompt\": TEXT} (JSON Lines, for\n"
        "                       prompts with newlines) or {\"prompt_ids\":\n"
        "                       [ID, ...]} (ids used as they are, without\n"
        "                       --chat); blank lines skipped\n"
        "  --chat               wrap each prompt as a user message in the\n"
        "                       tokenizer's chat template (with the\n"
        "                       assistant's generation prompt)\n"
        "  --system TEXT        with --chat: a system message first\n"
        "  --max-tokens N       new tokens at most per prompt (default 256,\n"
        "                       capped by the artifact's max_seq)\n"
        "  --temperature T      0: greedy. Default: generation_config.json's\n"
        "                       temperature when it sets do_sample, else 0\n"
        "  --top-k K            sample among the K likeliest (0: all; default\n"
        "                       generation_config.json's top_k when it\n"
        "                       samples, else 0)\n"
        "  --top-p P            nucleus sampling, in (0, 1] (default\n"
        "                       generation_config.json's top_p, else 1)\n"
        "  --seed S             the sampling seed (default 0); prompt i uses\n"
        "                       S + i, and a seed gives the same tokens on\n"
        "                       any backend and in any batch\n"
        "  --stop STR           end a sequence at STR (not printed); may be\n"
        "                       given more than once. The tokenizer's EOS\n"
        "                       ids (generation_config.json) stop too\n"
        "  --ignore-eos         do not stop at the EOS ids\n"
        "  --json               print one JSON object per prompt, in prompt\n"
        "                       order: prompt_ids, ids, text, ttft_ms,\n"
        "                       ms_per_token, finish_reason (stop|length)\n"
        "  --backend NAME       cpu (default) or cuda, where built in\n"
        "  --nproc N            run each rank as a process of this host (N:\n"
        "                       the artifact's world size); by default the\n"
        "                       ranks are threads of this process; under\n"
        "                       mpirun or srun each process runs one rank\n"
        "  --threads N          worker threads per rank (default: the\n"
        "                       hardware threads divided among the ranks)\n"
        "  --kv-cache-blocks N  KV cache blocks (every rank the same). "
        "Default:\n"
        "                       what all prompts need at most, capped at "
        "2 GiB\n"
        "                       per rank on the CPU, 16 GiB on CUDA\n"
        "  --kv-cache-gib X     the cache's size per rank in GiB instead\n"
        "  --timeout SECONDS    how long a rank waits for the others "
        "(default\n"
        "                       300)\n"
        "  --model-dir DIR      read weights referenced in the source "
        "model's\n"
        "                       files from DIR\n"
        "  -h, --help           print this help and exit\n\n"
        "EXIT STATUS:\n"
        "  0 success, 1 bad data (artifact, prompts, a failed step), 2 bad\n"
        "  command line.\n";
}

int usageError(const std::string &message) {
  std::cerr << "weft: error: " + message + "\nRun '" + kProg +
                   " --help' for usage.\n";
  return kExitUsage;
}

int dataError(const std::string &message) {
  std::cerr << "weft: error: " + message + "\n";
  return kExitData;
}

template <typename T> bool parseNumber(const std::string &text, T &out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool takesValue(const std::string &name) {
  static const char *names[] = {
      "--prompt",     "--prompt-file", "--prompt-ids",      "--system",
      "--max-tokens", "--temperature", "--top-k",           "--top-p",
      "--seed",       "--stop",        "--backend",         "--nproc",
      "--threads",    "--timeout",     "--kv-cache-blocks", "--kv-cache-gib",
      "--model-dir"};
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

/// Applies one option whose value is `value`; returns an error message.
std::optional<std::string> applyOption(GenerateOptions &opts,
                                       const std::string &name,
                                       const std::string &value) {
  auto bad = [&](const std::string &what) {
    return "--" + name.substr(2) + " '" + value + "' is not " + what;
  };
  if (name == "--prompt") {
    opts.prompt = value;
    opts.hasPrompt = true;
  } else if (name == "--prompt-file")
    opts.promptFile = value;
  else if (name == "--prompt-ids")
    opts.promptIds = value;
  else if (name == "--system")
    opts.system = value;
  else if (name == "--stop") {
    if (value.empty())
      return std::string("--stop needs a non-empty string");
    opts.stops.push_back(value);
  } else if (name == "--backend")
    opts.backend = value;
  else if (name == "--model-dir")
    opts.modelDir = value;
  else if (name == "--max-tokens") {
    int64_t n = 0;
    if (!parseNumber(value, n) || n <= 0)
      return bad("a positive integer");
    opts.maxTokens = n;
  } else if (name == "--temperature") {
    float t = 0;
    if (!parseNumber(value, t) || !std::isfinite(t) || t < 0)
      return bad("a number >= 0");
    opts.temperature = t;
  } else if (name == "--top-k") {
    int64_t k = 0;
    if (!parseNumber(value, k) || k < 0)
      return bad("an integer >= 0");
    opts.topK = k;
  } else if (name == "--top-p") {
    float p = 0;
    if (!parseNumber(value, p) || !(p > 0 && p <= 1))
      return bad("a number in (0, 1]");
    opts.topP = p;
  } else if (name == "--seed") {
    int64_t s = 0;
    if (!parseNumber(value, s))
      return bad("an integer");
    opts.seed = s;
  } else if (name == "--nproc") {
    uint32_t n = 0;
    if (!parseNumber(value, n) || n == 0)
      return bad("a positive integer");
    opts.nproc = n;
  } else if (name == "--threads") {
    if (!parseNumber(value, opts.threads) ||
        opts.threads > weft::runtime::kMaxThreadsPerRank)
      return bad("an integer from 0 (automatic) to " +
                 std::to_string(weft::runtime::kMaxThreadsPerRank));
  } else if (name == "--timeout") {
    if (!parseNumber(value, opts.timeout) || !std::isfinite(opts.timeout) ||
        opts.timeout <= 0)
      return bad("a positive number of seconds");
  } else if (name == "--kv-cache-blocks") {
    uint64_t n = 0;
    if (!parseNumber(value, n) || n == 0)
      return bad("a positive integer");
    opts.kvBlocks = n;
  } else if (name == "--kv-cache-gib") {
    double g = 0;
    if (!parseNumber(value, g) || !std::isfinite(g) || g <= 0)
      return bad("a positive number");
    opts.kvGiB = g;
  }
  return std::nullopt;
}

std::optional<std::string> parseArgs(int argc, char **argv,
                                     GenerateOptions &opts) {
  std::map<std::string, bool> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      opts.help = true;
      return std::nullopt;
    }
    if (arg == "--chat" || arg == "--json" || arg == "--ignore-eos") {
      (arg == "--chat"   ? opts.chat
       : arg == "--json" ? opts.json
                         : opts.ignoreEos) = true;
      continue;
    }
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (!opts.artifact.empty())
        return "more than one ARTIFACT given ('" + opts.artifact + "', '" +
               arg + "')";
      opts.artifact = arg;
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    if (!takesValue(name))
      return "unknown option '" + name + "'";
    if (seen[name] && name != "--stop")
      return "option '" + name + "' is given more than once";
    seen[name] = true;
    if (eq == std::string::npos && i + 1 >= argc)
      return "option '" + name + "' needs a value";
    std::string value =
        eq == std::string::npos ? argv[++i] : arg.substr(eq + 1);
    if (auto err = applyOption(opts, name, value))
      return err;
  }
  if (opts.artifact.empty())
    return std::string("no ARTIFACT directory given");
  if (int(opts.hasPrompt) + int(!opts.promptFile.empty()) +
          int(!opts.promptIds.empty()) >
      1)
    return std::string("give one of --prompt, --prompt-ids and --prompt-file");
  if (!opts.hasPrompt && opts.promptFile.empty() && opts.promptIds.empty())
    return std::string("give a prompt: --prompt TEXT, --prompt-ids IDS or "
                       "--prompt-file FILE");
  if (!opts.system.empty() && !opts.chat)
    return std::string("--system needs --chat");
  if (opts.kvBlocks && opts.kvGiB)
    return std::string(
        "--kv-cache-blocks and --kv-cache-gib cannot be used together");
  if (opts.backend != "cpu" && opts.backend != "cuda")
    return "unknown backend '" + opts.backend + "' (expected cpu or cuda)";
  return std::nullopt;
}

/// A prompt: text to encode, or ids given as they are.
struct Prompt {
  std::string text;
  std::optional<std::vector<uint32_t>> ids;
};

/// A prompt file's JSON line: {"prompt": TEXT} or {"prompt_ids": [ID...]}.
Result<Prompt> parsePromptLine(const std::string &line,
                               const std::string &where) {
  Json value = Json::parse(line, nullptr, false);
  if (value.is_discarded() || !value.is_object())
    return errorStatus(where + "not a JSON object");
  Prompt prompt;
  if (auto it = value.find("prompt_ids"); it != value.end()) {
    if (!it->is_array() || it->empty())
      return errorStatus(where + "prompt_ids must be a non-empty list of ids");
    std::vector<uint32_t> ids;
    for (const Json &id : *it) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > INT32_MAX)
        return errorStatus(where + "prompt_ids holds " + id.dump() +
                           ", not a token id");
      ids.push_back(id.get<uint32_t>());
    }
    prompt.ids = std::move(ids);
    return prompt;
  }
  auto it = value.find("prompt");
  if (it == value.end() || !it->is_string())
    return errorStatus(
        where + "expected {\"prompt\": TEXT} or {\"prompt_ids\": [...]}");
  if (it->get<std::string>().empty())
    return errorStatus(where + "the prompt is empty");
  prompt.text = it->get<std::string>();
  return prompt;
}

/// The prompts of --prompt, --prompt-ids or --prompt-file.
Result<std::vector<Prompt>> readPrompts(const GenerateOptions &opts) {
  if (!opts.promptIds.empty()) {
    std::vector<uint32_t> ids;
    size_t start = 0;
    while (start <= opts.promptIds.size()) {
      size_t comma = opts.promptIds.find(',', start);
      std::string item = opts.promptIds.substr(start, comma == std::string::npos
                                                          ? std::string::npos
                                                          : comma - start);
      uint32_t id = 0;
      if (!parseNumber(item, id))
        return errorStatus("--prompt-ids: '" + item +
                           "' is not a token id (ids are comma-separated "
                           "integers)");
      ids.push_back(id);
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
    return std::vector<Prompt>{{"", std::move(ids)}};
  }
  if (opts.hasPrompt) {
    if (opts.prompt.empty())
      return errorStatus("the prompt is empty");
    return std::vector<Prompt>{{opts.prompt, std::nullopt}};
  }
  // A regular file of bounded size (SafeFile.h): not a FIFO or a device.
  auto text =
      weft::runtime::readRegularFile(opts.promptFile, kMaxPromptFileBytes);
  if (!text.ok())
    return text.status().withPrefix("--prompt-file: ");
  std::istringstream in(std::move(*text));
  std::vector<Prompt> prompts;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    if (line.front() != '{') {
      prompts.push_back({line, std::nullopt});
      continue;
    }
    auto prompt =
        parsePromptLine(line, opts.promptFile + ":" + std::to_string(n) + ": ");
    if (!prompt.ok())
      return prompt.status();
    prompts.push_back(std::move(*prompt));
  }
  if (prompts.empty())
    return errorStatus("the prompt file '" + opts.promptFile +
                       "' holds no prompts");
  return prompts;
}

#if WEFT_HAVE_TOKENIZER
using Tokenizers = tok::TokenizerFiles;
#else
/// The runtime-only build has no tokenizer: prompts are ids.
struct Tokenizers {};
#endif

/// The prompts' ids: given ids as they are; text with the post-processor's
/// special tokens, or rendered with the chat template (which writes them
/// itself). Without `files`, only ids: `noText` says why.
Result<std::vector<std::vector<uint32_t>>>
encodePrompts(const Tokenizers *files, const std::string &noText,
              const std::vector<Prompt> &prompts, const GenerateOptions &opts,
              int64_t vocab) {
  if (!files) {
    std::string hint = ": give the prompts as token ids (--prompt-ids, or "
                       "{\"prompt_ids\": [...]} lines in --prompt-file)";
    if (opts.chat)
      return errorStatus(noText + ", so --chat cannot render prompts" + hint);
    if (!opts.stops.empty())
      return errorStatus(noText + ", so --stop cannot find text" + hint);
    for (const Prompt &p : prompts)
      if (!p.ids)
        return errorStatus(noText + hint);
  }
#if WEFT_HAVE_TOKENIZER
  std::optional<tok::ChatTemplate> chatTemplate;
  tok::ChatTemplateOptions chatOptions;
  tok::EncodeOptions encode;
  if (files && opts.chat) {
    auto loaded = tok::loadChatTemplate(files->contents, opts.artifact);
    if (!loaded.ok())
      return loaded.status();
    chatTemplate.emplace(std::move(*loaded));
    auto context = tok::specialTokensContext(files->contents, opts.artifact);
    if (!context.ok())
      return context.status();
    chatOptions.context = *context;
    encode.addSpecialTokens = false;
  }
#endif
  std::vector<std::vector<uint32_t>> all;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Prompt &prompt = prompts[i];
    if (prompt.ids) {
      for (uint32_t id : *prompt.ids)
        if (vocab > 0 && id >= vocab)
          return errorStatus("prompt " + std::to_string(i + 1) + ": id " +
                             std::to_string(id) +
                             " is out of range (the vocabulary has " +
                             std::to_string(vocab) + " ids)");
      all.push_back(*prompt.ids);
      continue;
    }
#if WEFT_HAVE_TOKENIZER
    std::string text = prompt.text;
    if (chatTemplate) {
      Json messages = Json::array();
      if (!opts.system.empty())
        messages.push_back({{"role", "system"}, {"content", opts.system}});
      messages.push_back({{"role", "user"}, {"content", prompt.text}});
      auto rendered = chatTemplate->render(messages, chatOptions);
      if (!rendered.ok())
        return rendered.status();
      text = *rendered;
    }
    std::vector<uint32_t> ids;
    if (Status s = files->tokenizer->encode(text, ids, encode); !s.ok())
      return s;
    all.push_back(std::move(ids));
#endif
  }
  return all;
}

/// The sampling settings: the options', else generation_config.json's
/// where it samples (do_sample), else greedy.
Result<gen::SamplingParams> samplingDefaults(const Tokenizers *files,
                                             const GenerateOptions &opts) {
  gen::SamplingParams params;
#if WEFT_HAVE_TOKENIZER
  auto it = files ? files->contents.find("generation_config.json")
                  : std::map<std::string, std::string>::const_iterator();
  if (files && it != files->contents.end()) {
    Json config = Json::parse(it->second, nullptr, false);
    if (config.is_discarded() || !config.is_object())
      return errorStatus("generation_config.json is not a JSON object");
    if (config.value("do_sample", false)) {
      // transformers' defaults where the file sets do_sample alone.
      params.temperature = 1;
      params.topK = 50;
      if (auto t = config.find("temperature");
          t != config.end() && t->is_number())
        params.temperature = t->get<float>();
      if (auto k = config.find("top_k"); k != config.end() && k->is_number())
        params.topK = k->get<int64_t>();
      if (auto p = config.find("top_p"); p != config.end() && p->is_number())
        params.topP = p->get<float>();
    }
  }
#endif
  if (opts.temperature)
    params.temperature = *opts.temperature;
  if (opts.topK)
    params.topK = *opts.topK;
  if (opts.topP)
    params.topP = *opts.topP;
  params.seed = opts.seed.value_or(0);
  return params;
}

/// The cache's blocks: the options', else what the requests need at most,
/// capped by the backend's budget.
uint64_t cacheBlocks(const weft::artifact::Generation &generation,
                     const std::vector<gen::Request> &requests,
                     const GenerateOptions &opts) {
  if (opts.kvBlocks)
    return *opts.kvBlocks;
  uint64_t blockBytes = weft::runtime::largestKvBlockBytes(generation);
  auto budgetBlocks = [&](double gib) -> uint64_t {
    if (blockBytes == 0)
      return UINT64_MAX;
    return std::max<uint64_t>(
        1, static_cast<uint64_t>(gib * (1ull << 30) /
                                 static_cast<double>(blockBytes)));
  };
  if (opts.kvGiB)
    return budgetBlocks(*opts.kvGiB);
  int64_t blockSize = std::max<int64_t>(1, generation.block_size());
  uint64_t needed = 0;
  for (const gen::Request &r : requests) {
    int64_t prompt = static_cast<int64_t>(r.promptIds.size());
    int64_t tokens =
        std::min(prompt + r.maxTokens - 1, generation.max_seq() - 1);
    needed += static_cast<uint64_t>((tokens + blockSize - 1) / blockSize);
  }
  double budget = opts.backend == "cpu" ? kCpuCacheGiB : kCudaCacheGiB;
  return std::max<uint64_t>(1, std::min(needed, budgetBlocks(budget)));
}

weft::runtime::RankBackend
rankBackend(const GenerateOptions &opts,
            std::optional<uint32_t> localRank = std::nullopt) {
  weft::runtime::RankBackend backend;
  backend.localRank = localRank;
  if (opts.backend != "cpu")
    backend.create = *weft::runtime::findBackend(opts.backend);
  return backend;
}

Json resultJson(const gen::SequenceResult &r) {
  Json out;
  out["prompt_ids"] = r.promptIds;
  out["ids"] = r.ids;
  out["text"] = r.text;
  out["ttft_ms"] = r.ttftMs;
  out["ms_per_token"] = r.msPerToken;
  out["finish_reason"] = gen::finishReasonName(r.finishReason);
  return out;
}

/// Prints what the streaming did not: the JSON lines, or the texts of
/// several prompts.
void printResults(const std::vector<gen::SequenceResult> &results, bool json,
                  bool streamed) {
  if (json) {
    for (const gen::SequenceResult &r : results)
      std::cout << resultJson(r).dump(-1, ' ', false,
                                      Json::error_handler_t::replace)
                << "\n";
  } else if (streamed) {
    std::cout << "\n";
  } else {
    for (size_t i = 0; i < results.size(); ++i)
      std::cout << "=== prompt " << i + 1 << " ===\n"
                << results[i].text << "\n";
  }
  std::cout << std::flush;
}

/// Everything a rank needs to generate, prepared identically on every
/// rank (and in the --nproc launcher, to report bad input once).
struct Prepared {
  Artifact artifact;
  std::vector<gen::Request> requests;
  gen::EngineOptions engine;
};

Result<Prepared> prepare(const GenerateOptions &opts) {
  Prepared p;
  auto artifact = weft::runtime::readManifest(opts.artifact);
  if (!artifact.ok())
    return artifact.status();
  p.artifact = std::move(*artifact);
  const weft::artifact::Manifest &manifest = p.artifact.manifest;
  if (!manifest.has_generation())
    return errorStatus("'" + opts.artifact +
                       "' has no generation entry points (compile the model "
                       "with `weft compile --generate`)");
  if (!opts.modelDir.empty())
    if (Status s = weft::runtime::setSourceModelDir(p.artifact.manifest,
                                                    opts.modelDir);
        !s.ok())
      return s;
  // Text needs the artifact's tokenizer and a weft built with one.
  std::optional<Tokenizers> files;
  std::string noText;
  if (manifest.tokenizer_files().empty()) {
    noText = "'" + opts.artifact +
             "' holds no tokenizer files (compile the model with "
             "`--tokenizer DIR`)";
  } else {
#if WEFT_HAVE_TOKENIZER
    auto loaded = weft::cli::loadTokenizer(opts.artifact);
    if (!loaded.ok())
      return loaded.status();
    files.emplace(std::move(*loaded));
#else
    noText = "this weft-generate is built without the tokenizer (the "
             "runtime-only build)";
#endif
  }
  const Tokenizers *tokenizers = files ? &*files : nullptr;
  auto prompts = readPrompts(opts);
  if (!prompts.ok())
    return prompts.status();
  const weft::artifact::Generation &generation = manifest.generation();
  // Ids must index the embedding (and the tokenizer's vocabulary).
  int64_t vocab = generation.vocab();
#if WEFT_HAVE_TOKENIZER
  if (files && (vocab <= 0 || files->tokenizer->vocabSize() < vocab))
    vocab = files->tokenizer->vocabSize();
#endif
  auto ids = encodePrompts(tokenizers, noText, *prompts, opts, vocab);
  if (!ids.ok())
    return ids.status();
  auto sampling = samplingDefaults(tokenizers, opts);
  if (!sampling.ok())
    return sampling.status();
  for (size_t i = 0; i < ids->size(); ++i) {
    int64_t length = static_cast<int64_t>((*ids)[i].size());
    if (length >= generation.max_seq())
      return errorStatus((ids->size() > 1 ? "prompt " + std::to_string(i + 1)
                                          : std::string("the prompt")) +
                         " has " + std::to_string(length) +
                         " tokens, more than the artifact's max_seq " +
                         std::to_string(generation.max_seq()) +
                         " allows (at most " +
                         std::to_string(generation.max_seq() - 1) +
                         ", to leave room for a new token)");
    gen::Request request;
    request.promptIds = std::move((*ids)[i]);
    request.sampling = *sampling;
    request.sampling.seed += static_cast<int64_t>(i);
    request.maxTokens = opts.maxTokens.value_or(256);
    request.stopStrings = opts.stops;
    p.requests.push_back(std::move(request));
  }
#if WEFT_HAVE_TOKENIZER
  if (files) {
    if (!opts.ignoreEos)
      p.engine.eosIds = files->eosTokenIds;
    p.engine.tokenizer = files->tokenizer;
  }
#endif
  p.engine.kvCacheBlocks = cacheBlocks(generation, p.requests, opts);
  // On the CPU the cache is host memory: refuse what cannot be allocated.
  if (opts.backend == "cpu")
    if (Status s = weft::runtime::checkKvCacheLimit(
            p.engine.kvCacheBlocks, generation,
            "--kv-cache-gib or --kv-cache-blocks");
        !s.ok())
      return s;
  return p;
}

/// Streams one prompt's text to stdout as it comes.
void streamTo(gen::EngineOptions &engine, const GenerateOptions &opts,
              size_t prompts) {
  if (opts.json || prompts != 1)
    return;
  engine.onText = [](size_t, std::string_view text) {
    std::cout << text << std::flush;
  };
}

int generateThreads(const GenerateOptions &opts) {
  auto prepared = prepare(opts);
  if (!prepared.ok())
    return dataError(prepared.message());
  gen::RankGenerateOptions options;
  options.threads = opts.threads;
  options.backend = rankBackend(opts);
  options.engine = prepared->engine;
  streamTo(options.engine, opts, prepared->requests.size());
  auto results =
      gen::generateLocalRanks(prepared->artifact, prepared->requests, options,
                              std::chrono::duration<double>(opts.timeout));
  if (!results.ok()) {
    if (options.engine.onText)
      std::cout << std::endl;
    return dataError(results.message());
  }
  printResults(*results, opts.json, static_cast<bool>(options.engine.onText));
  return 0;
}

/// `--nproc N`: every rank as a child process of this one; rank 0's
/// process prints.
int generateProcesses(const GenerateOptions &opts, int argc, char **argv) {
  // Bad input is reported once, here, rather than by every rank.
  auto prepared = prepare(opts);
  if (!prepared.ok())
    return dataError(prepared.message());
  return weft::runtime::runChildRanks(
      kProg, *opts.nproc, prepared->artifact.manifest.world_size(), argc, argv);
}

/// One rank of a launched job (--nproc's children, torchrun, mpirun,
/// srun): every rank runs the same engine loop; rank 0 prints.
int generateLaunched(const weft::runtime::comm::LaunchInfo &launch,
                     const GenerateOptions &opts) {
  auto prepared = prepare(opts);
  if (!prepared.ok()) {
    if (launch.kind == weft::runtime::comm::LaunchInfo::Kind::Tcp)
      return weft::runtime::rankError(launch.rank, prepared.message());
    return dataError("rank " + std::to_string(launch.rank) + ": " +
                     prepared.message());
  }
  auto task = [&](const weft::runtime::LaunchedRank &self) -> Status {
    gen::RankGenerateOptions options;
    options.threads = opts.threads
                          ? opts.threads
                          : weft::runtime::threadsPerRank(self.localSize);
    options.backend = rankBackend(opts, self.localRank);
    options.engine = prepared->engine;
    if (self.rank == 0)
      streamTo(options.engine, opts, prepared->requests.size());
    bool streams = static_cast<bool>(options.engine.onText);
    weft::runtime::RankState state;
    auto mine =
        gen::generateOnRank(prepared->artifact, self.rank, &self.transport,
                            prepared->requests, options, state);
    if (!mine.ok())
      return mine.status();
    if (self.rank == 0)
      printResults(*mine, opts.json, streams);
    return weft::runtime::okStatus();
  };
  return weft::runtime::runLaunchedRank(
      launch, prepared->artifact.manifest.world_size(),
      std::chrono::duration<double>(opts.timeout), task, kProg);
}

int generate(const GenerateOptions &opts, int argc, char **argv) {
  auto detected = weft::runtime::comm::detectLaunch();
  if (!detected.ok())
    return usageError(detected.message());
  if (*detected && opts.nproc)
    return usageError("--nproc cannot be used in a launched job (" +
                      (*detected)->sizeSource +
                      "): the launcher already started the ranks");
  if (opts.nproc)
    return generateProcesses(opts, argc, argv);
  if (*detected)
    return generateLaunched(**detected, opts);
  return generateThreads(opts);
}

} // namespace

int weft::runtime::generateMain(int argc, char **argv) {
  GenerateOptions opts;
  if (auto err = parseArgs(argc, argv, opts))
    return usageError(*err);
  if (opts.help) {
    printHelp(std::cout);
    return 0;
  }
  if (opts.backend != "cpu" && !weft::runtime::findBackend(opts.backend))
    return usageError("the CUDA backend is not built into this binary (use "
                      "--backend cpu)");
  try {
    return ::generate(opts, argc, argv);
  } catch (const std::bad_alloc &) {
    return dataError("out of memory");
  } catch (const std::exception &e) {
    return dataError(std::string("internal error: ") + e.what());
  }
}
