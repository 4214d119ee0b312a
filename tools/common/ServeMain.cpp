// weft serve: reads the artifact and its tokenizer, binds the HTTP port,
// opens every rank (threads of this process, --nproc children, or the
// ranks of mpirun / srun), and runs the scheduler on rank 0 until a
// shutdown signal or a failure.
#include "tools/common/ServeMain.h"

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/PlanValidator.h"
#include "runtime/backends/BackendRegistry.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/exec/Launcher.h"
#include "runtime/generate/RankDriver.h"
#include "runtime/generate/SessionModel.h"
#include "runtime/serve/Server.h"
#include "runtime/support/Limits.h"
#include "tools/common/LaunchedRank.h"
#if WEFT_HAVE_TOKENIZER
#include "runtime/tokenizer/ChatTemplate.h"
#include "tools/common/TokenizerInput.h"
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace gen = weft::runtime::generate;
namespace serve = weft::runtime::serve;
using weft::runtime::Artifact;
using weft::runtime::errorStatus;
using weft::runtime::okStatus;
using weft::runtime::Result;
using weft::runtime::Status;

namespace {

constexpr int kExitData = 1, kExitUsage = 2;
constexpr const char *kProg = "weft serve";

/// The KV cache's default memory budget per rank, by backend.
constexpr double kCpuCacheGiB = 1, kCudaCacheGiB = 16;
/// --dp at most.
constexpr uint32_t kMaxReplicas = 64;

struct ServeOptions {
  std::string artifact, backend = "cpu", modelName, modelDir;
  serve::ServerOptions server;
  std::optional<uint32_t> nproc;
  /// Data-parallel replicas of the artifact's ranks.
  uint32_t dp = 1;
  /// --nnodes and its company: this host's slice of a job of several.
  std::optional<weft::runtime::NodeSlice> slice;
  std::optional<uint32_t> nodes, nodeRank;
  std::optional<std::string> masterAddr;
  std::optional<uint16_t> masterPort;
  unsigned threads = 0;
  uint64_t maxNumSeqs = 256;
  /// The most tokens of a prefill or mixed step (0: the largest bucket's).
  uint64_t maxNumBatchedTokens = 0;
  std::optional<uint64_t> kvBlocks;
  std::optional<double> kvGiB;
  double timeout = 300;
  bool help = false, deterministic = false, alternate = true, mixed = false;
};

void printHelp(std::ostream &os) {
  os << "usage: " << kProg << R"( ARTIFACT [options]

Serves a generation artifact (weft compile --generate) over HTTP with
OpenAI's API: POST /v1/completions, /v1/chat/completions (streaming with
server-sent events), /tokenize, /detokenize; GET /v1/models, /health,
/metrics (Prometheus). Requests are batched continuously: sequences join
and leave the running batch between steps. SIGTERM or SIGINT stop it
gracefully. See docs/serving.md.

options:
  --host HOST             address to listen on (default 127.0.0.1)
  --port N                port (default 8000; 0: any free port, printed)
  --served-model-name S   the model's name in the API (default: the
                          artifact directory's name)
  --api-key KEY           the API endpoints need 'Authorization: Bearer
                          KEY' (else 401); /health and /metrics stay open.
                          Default: $WEFT_API_KEY, if set
  --backend cpu|cuda      where the plans run (default cpu)
  --model-dir DIR         where the source model's weight files are, when
                          not where the artifact was compiled from
  --nproc N               run the N ranks as child processes (default:
                          threads of this process; under mpirun or srun,
                          one rank a process)
  --nnodes N              with --nproc: the job spans N hosts, each
                          starting --nproc ranks with this command
  --node-rank K           this host's place among them (0 .. N-1): it runs
                          ranks K*nproc .. K*nproc+nproc-1; host 0 serves
  --master-addr HOST      host 0's address, where the ranks meet
  --master-port N         the port they meet on (default 29500)
  --dp N                  serve N data-parallel replicas of the
                          artifact's ranks, each with its own KV cache
                          and batch; a request goes to the replica with
                          the fewest requests queued and running. Replica
                          d is ranks d*W .. d*W+W-1 of W (on GPUs, those
                          devices): threads of this process, or with
                          --nproc (D*W in all) or a launcher, processes
  --threads N             worker threads per rank (0: automatic)
  --max-num-seqs N        sequences in the running batch at most (256)
  --max-queue N           requests waiting at most; more get 429 (1024)
  --max-num-batched-tokens N
                          tokens of a prefill or mixed step at most: the
                          largest compiled prompt bucket within N, longer
                          prompts in chunks of it (default: the largest
                          bucket); shorter steps, shorter stalls of the
                          decoding sequences
  --kv-cache-gib X        KV cache memory per rank (default 1 on the CPU,
                          16 on a GPU)
  --kv-cache-blocks N     KV cache blocks (instead of --kv-cache-gib)
  --max-body-bytes N      largest request body (default 4194304)
  --request-timeout S     a request still running after S seconds ends
                          with an error (default 600)
  --read-timeout S        a request's headers and body must arrive within
                          S seconds (default 30)
  --idle-timeout S        kept-alive connections close after S idle
                          seconds (default 60)
  --shutdown-grace S      after SIGTERM, requests in flight get S seconds
                          to finish (default 30)
  --schedule S            alternate (default): while prompts wait, a decode
                          step of the running sequences follows each
                          prefill step; prefill-first: every waiting
                          prompt is prefilled before the next decode;
                          mixed: one prefill step carries the running
                          sequences' next tokens and prompt chunks
                          (needs --prefill-rows above --max-num-seqs)
  --deterministic         batch-invariant steps: every prefill and decode
                          runs the largest compiled bucket, so that a
                          sequence's output never depends on what shares
                          its batch (costs the padding)
  --io-threads N          HTTP threads (default 2)
  --timeout S             how long a rank waits for the others (default 300)
  -h, --help              this help
)";
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

/// Seconds as milliseconds; false unless a positive finite number.
bool parseSeconds(const std::string &text, std::chrono::milliseconds &out) {
  double s = 0;
  if (!parseNumber(text, s) || !std::isfinite(s) || s <= 0 || s > 1e9)
    return false;
  out = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  return true;
}

/// An API key is 1 to 4096 visible ASCII characters (it travels in an HTTP
/// header); the error does not repeat it.
std::optional<std::string> checkApiKey(const std::string &key) {
  if (key.empty() || key.size() > 4096)
    return std::string("must be 1 to 4096 characters long");
  for (char c : key)
    if (c < 0x21 || c > 0x7e)
      return std::string("may hold only visible ASCII characters (no "
                         "spaces or control characters)");
  return std::nullopt;
}

std::optional<std::string> applyOption(ServeOptions &opts,
                                       const std::string &name,
                                       const std::string &value) {
  auto bad = [&](const std::string &what) {
    return name + " '" + value + "' is not " + what;
  };
  auto positive = [&](uint64_t &out) {
    return parseNumber(value, out) && out > 0;
  };
  serve::ServerOptions &s = opts.server;
  if (name == "--host") {
    if (value.empty())
      return bad("an address");
    s.host = value;
  } else if (name == "--port") {
    if (!parseNumber(value, s.port))
      return bad("a port number (0 to 65535)");
  } else if (name == "--api-key") {
    if (auto err = checkApiKey(value))
      return "--api-key " + *err;
    s.apiKey = value;
  } else if (name == "--served-model-name") {
    if (value.empty())
      return bad("a name");
    opts.modelName = value;
  } else if (name == "--schedule") {
    if (value != "alternate" && value != "prefill-first" && value != "mixed")
      return bad("a schedule (alternate, prefill-first or mixed)");
    opts.alternate = value == "alternate";
    opts.mixed = value == "mixed";
  } else if (name == "--model-dir") {
    if (value.empty())
      return bad("a directory");
    opts.modelDir = value;
  } else if (name == "--backend") {
    if (value != "cpu" && value != "cuda")
      return "unknown backend '" + value + "' (expected cpu or cuda)";
    opts.backend = value;
  } else if (name == "--nproc") {
    uint32_t n = 0;
    if (!parseNumber(value, n) || n == 0)
      return bad("a positive integer");
    opts.nproc = n;
  } else if (name == "--dp") {
    uint32_t n = 0;
    if (!parseNumber(value, n) || n == 0 || n > kMaxReplicas)
      return bad("an integer from 1 to " + std::to_string(kMaxReplicas));
    opts.dp = n;
  } else if (name == "--nnodes") {
    uint32_t n = 0;
    if (!parseNumber(value, n) || n == 0)
      return bad("a positive integer");
    opts.nodes = n;
  } else if (name == "--node-rank") {
    uint32_t n = 0;
    if (!parseNumber(value, n))
      return bad("a node index (0 or more)");
    opts.nodeRank = n;
  } else if (name == "--master-addr") {
    if (value.empty())
      return bad("a host name or address");
    opts.masterAddr = value;
  } else if (name == "--master-port") {
    uint16_t port = 0;
    if (!parseNumber(value, port) || port == 0)
      return bad("a port number (1 to 65535)");
    opts.masterPort = port;
  } else if (name == "--threads") {
    if (!parseNumber(value, opts.threads) ||
        opts.threads > weft::runtime::kMaxThreadsPerRank)
      return bad("an integer from 0 (automatic) to " +
                 std::to_string(weft::runtime::kMaxThreadsPerRank));
  } else if (name == "--max-num-seqs") {
    if (!positive(opts.maxNumSeqs))
      return bad("a positive integer");
  } else if (name == "--max-num-batched-tokens") {
    if (!positive(opts.maxNumBatchedTokens))
      return bad("a positive integer");
  } else if (name == "--max-queue") {
    if (!positive(s.maxQueue))
      return bad("a positive integer");
  } else if (name == "--max-body-bytes") {
    if (!positive(s.maxBodyBytes))
      return bad("a positive integer");
  } else if (name == "--kv-cache-blocks") {
    uint64_t n = 0;
    if (!positive(n))
      return bad("a positive integer");
    opts.kvBlocks = n;
  } else if (name == "--kv-cache-gib") {
    double g = 0;
    if (!parseNumber(value, g) || !std::isfinite(g) || g <= 0)
      return bad("a positive number");
    opts.kvGiB = g;
  } else if (name == "--io-threads") {
    if (!parseNumber(value, s.ioThreads) || s.ioThreads == 0 ||
        s.ioThreads > 256)
      return bad("an integer from 1 to 256");
  } else if (name == "--timeout") {
    std::chrono::milliseconds ms;
    if (!parseSeconds(value, ms))
      return bad("a positive number of seconds");
    opts.timeout = static_cast<double>(ms.count()) / 1000;
  } else {
    std::chrono::milliseconds *target =
        name == "--request-timeout"  ? &s.requestTimeout
        : name == "--read-timeout"   ? &s.readTimeout
        : name == "--idle-timeout"   ? &s.idleTimeout
        : name == "--shutdown-grace" ? &s.shutdownGrace
                                     : nullptr;
    if (!target)
      return "unknown option '" + name + "'";
    if (!parseSeconds(value, *target))
      return bad("a positive number of seconds");
  }
  return std::nullopt;
}

std::optional<std::string> parseArgs(int argc, char **argv,
                                     ServeOptions &opts) {
  std::map<std::string, bool> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      opts.help = true;
      return std::nullopt;
    }
    if (arg == "--deterministic") {
      opts.deterministic = true;
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
    if (seen[name])
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
  // The key from the environment keeps it out of the process list.
  if (const char *key = std::getenv("WEFT_API_KEY");
      key && *key && opts.server.apiKey.empty()) {
    if (auto err = checkApiKey(key))
      return "WEFT_API_KEY " + *err;
    opts.server.apiKey = key;
  }
  if (opts.deterministic && opts.mixed)
    return std::string(
        "--deterministic cannot be used with --schedule mixed (whether a "
        "token is computed in a prefill or a decode step would depend on "
        "the load)");
  if (opts.kvBlocks && opts.kvGiB)
    return std::string(
        "--kv-cache-blocks and --kv-cache-gib cannot be used together");
  bool sliced = opts.nodeRank || opts.masterAddr || opts.masterPort;
  if (sliced && !opts.nodes)
    return std::string(
        "--node-rank, --master-addr and --master-port need --nnodes");
  if (opts.nodes) {
    if (!opts.nproc)
      return std::string("--nnodes needs --nproc (the ranks of each host)");
    if (!opts.nodeRank || !opts.masterAddr)
      return std::string("--nnodes needs --node-rank and --master-addr");
    if (*opts.nodeRank >= *opts.nodes)
      return "--node-rank " + std::to_string(*opts.nodeRank) +
             " is not below --nnodes " + std::to_string(*opts.nodes);
    opts.slice =
        weft::runtime::NodeSlice{*opts.nodes, *opts.nodeRank, *opts.masterAddr,
                                 opts.masterPort.value_or(29500)};
  }
  return std::nullopt;
}

/// What every rank reads before it opens its session.
struct Prepared {
  Artifact artifact;
  serve::ModelInfo model;
  gen::EngineOptions engine;
  uint32_t replicas = 1;
  /// --timeout: how long a rank waits for another, or for a replica link.
  std::chrono::duration<double> timeout{300};
};

#if WEFT_HAVE_TOKENIZER
/// generation_config.json's sampling where it samples (do_sample), with
/// transformers' defaults; else OpenAI's (temperature 1).
Result<gen::SamplingParams>
configSampling(const std::map<std::string, std::string> &files) {
  gen::SamplingParams params;
  params.temperature = 1;
  auto it = files.find("generation_config.json");
  if (it == files.end())
    return params;
  auto config = nlohmann::json::parse(it->second, nullptr, false);
  if (config.is_discarded() || !config.is_object())
    return errorStatus("generation_config.json is not a JSON object");
  if (!config.value("do_sample", false))
    return params;
  params.topK = 50;
  if (auto t = config.find("temperature"); t != config.end() && t->is_number())
    params.temperature = t->get<float>();
  if (auto k = config.find("top_k"); k != config.end() && k->is_number())
    params.topK = k->get<int64_t>();
  if (auto p = config.find("top_p"); p != config.end() && p->is_number())
    params.topP = p->get<float>();
  return params;
}
#endif

Result<Prepared> prepare(const ServeOptions &opts) {
  Prepared p;
  p.replicas = opts.dp;
  p.timeout = std::chrono::duration<double>(opts.timeout);
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
  const weft::artifact::Generation &generation = manifest.generation();
  if (opts.maxNumBatchedTokens) {
    int64_t smallest = INT64_MAX;
    for (int64_t bucket : generation.prompt_buckets())
      smallest = std::min(smallest, bucket);
    if (static_cast<int64_t>(opts.maxNumBatchedTokens) < smallest)
      return errorStatus("--max-num-batched-tokens " +
                         std::to_string(opts.maxNumBatchedTokens) +
                         " is below the artifact's smallest prompt bucket (" +
                         std::to_string(smallest) + " tokens)");
  }
  serve::ModelInfo &model = p.model;
  model.name = opts.modelName;
  if (model.name.empty())
    model.name = std::filesystem::path(opts.artifact)
                     .lexically_normal()
                     .filename()
                     .string();
  if (model.name.empty() || model.name == ".")
    model.name = std::filesystem::absolute(opts.artifact)
                     .lexically_normal()
                     .parent_path()
                     .filename()
                     .string();
  model.maxSeq = generation.max_seq();
  model.vocab = generation.vocab();
  model.defaults.temperature = 1;
#if WEFT_HAVE_TOKENIZER
  if (!manifest.tokenizer_files().empty()) {
    auto loaded = weft::cli::loadTokenizer(opts.artifact);
    if (!loaded.ok())
      return loaded.status();
    auto files =
        std::make_shared<weft::tokenizer::TokenizerFiles>(std::move(*loaded));
    if (model.vocab <= 0 || files->tokenizer->vocabSize() < model.vocab)
      model.vocab = files->tokenizer->vocabSize();
    auto sampling = configSampling(files->contents);
    if (!sampling.ok())
      return sampling.status();
    model.defaults = *sampling;
    if (files->chatTemplate) {
      auto tmpl =
          weft::tokenizer::loadChatTemplate(files->contents, opts.artifact);
      if (!tmpl.ok())
        return tmpl.status();
      model.chatTemplate.emplace(std::move(*tmpl));
      auto context =
          weft::tokenizer::specialTokensContext(files->contents, opts.artifact);
      if (!context.ok())
        return context.status();
      model.chatOptions.context = *context;
    }
    model.eosIds = files->eosTokenIds;
    p.engine.eosIds = files->eosTokenIds;
    p.engine.tokenizer = files->tokenizer;
    model.files = std::move(files);
  }
#endif
  // The cache: the blocks asked for, else the memory budget's.
  uint64_t blockBytes = weft::runtime::largestKvBlockBytes(generation);
  if (opts.kvBlocks) {
    p.engine.kvCacheBlocks = *opts.kvBlocks;
  } else {
    double gib = opts.kvGiB.value_or(opts.backend == "cpu" ? kCpuCacheGiB
                                                           : kCudaCacheGiB);
    p.engine.kvCacheBlocks =
        blockBytes == 0
            ? 1024
            : std::max<uint64_t>(
                  1, static_cast<uint64_t>(gib * (1ull << 30) /
                                           static_cast<double>(blockBytes)));
  }
  p.engine.kvCacheBlocks =
      std::min<uint64_t>(p.engine.kvCacheBlocks, INT32_MAX);
  // On the CPU the cache is host memory: refuse what cannot be allocated.
  if (opts.backend == "cpu")
    if (Status s = weft::runtime::checkKvCacheLimit(
            p.engine.kvCacheBlocks, generation,
            "--kv-cache-gib or --kv-cache-blocks");
        !s.ok())
      return s;
  p.engine.admission = gen::Admission::OnDemand;
  p.engine.maxRunning = opts.maxNumSeqs;
  p.engine.fixedShapes = opts.deterministic;
  p.engine.alternate = opts.alternate;
  p.engine.mixed = opts.mixed;
  p.engine.maxStepTokens = static_cast<int64_t>(opts.maxNumBatchedTokens);
  return p;
}

weft::runtime::RankBackend
rankBackend(const ServeOptions &opts,
            std::optional<uint32_t> localRank = std::nullopt) {
  weft::runtime::RankBackend backend;
  backend.localRank = localRank;
  if (opts.backend != "cpu")
    backend.create = *weft::runtime::findBackend(opts.backend);
  return backend;
}

/// For tests of a replica's failure: WEFT_TEST_FAIL_REPLICA=D makes replica
/// D's steps fail from its WEFT_TEST_FAIL_AFTER_STEPS-th on (default 0), as
/// a rank's failure would.
class FailingStepModel : public gen::StepModel {
public:
  FailingStepModel(gen::StepModel &inner, uint64_t after)
      : inner(inner), after(after) {}
  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const weft::runtime::NpyArray *const> inputs) override {
    if (steps++ >= after)
      return errorStatus("failing on purpose (WEFT_TEST_FAIL_REPLICA)");
    return inner.runStep(entry, inputs);
  }

private:
  gen::StepModel &inner;
  uint64_t after, steps = 0;
};

std::optional<uint64_t> failReplicaAfter(uint32_t replica) {
  const char *target = std::getenv("WEFT_TEST_FAIL_REPLICA");
  uint32_t d = 0;
  if (!target || !parseNumber(std::string(target), d) || d != replica)
    return std::nullopt;
  uint64_t after = 0;
  if (const char *n = std::getenv("WEFT_TEST_FAIL_AFTER_STEPS"))
    (void)parseNumber(std::string(n), after);
  return after;
}

/// Runs replica `replica`'s scheduler on `driver` (its ranks, in this
/// process or behind a link) until a shutdown or a failure.
Status scheduleReplica(const Prepared &p, serve::Server &server,
                       gen::StepDriver &driver, uint32_t replica,
                       uint32_t world) {
  std::optional<FailingStepModel> failing;
  if (auto after = failReplicaAfter(replica))
    failing.emplace(driver, *after);
  serve::MeteredStepModel metered(
      failing ? static_cast<gen::StepModel &>(*failing) : driver,
      server.metrics());
  auto engine = gen::GenerationEngine::create(p.artifact.manifest.generation(),
                                              metered, p.engine);
  if (!engine.ok()) {
    (void)driver.stop();
    return engine.status();
  }
  if (server.setReady()) {
    std::cout << kProg << ": ready (";
    if (p.replicas > 1)
      std::cout << p.replicas << " replicas of ";
    std::cout << world << (world == 1 ? " rank, " : " ranks, ")
              << p.engine.kvCacheBlocks << " KV cache blocks of "
              << p.artifact.manifest.generation().block_size() << " tokens"
              << (p.replicas > 1 ? " each)" : ")") << std::endl;
  }
  return server.runScheduler(**engine, &driver, replica, replica * world);
}

/// One rank of replica `replica` (0 without --dp): opens its session; rank
/// 0 runs the replica's scheduler when it holds `server`, or passes on what
/// the serving process sends over `link` (a replica of its own processes),
/// and the others follow its steps. `loaded` runs once the replica's ranks
/// have loaded the model.
Status serveRank(const Prepared &p, uint32_t rank,
                 weft::runtime::comm::Transport &transport,
                 const weft::runtime::RankBackend &backend, unsigned threads,
                 serve::Server *server, weft::runtime::RankState &state,
                 uint32_t replica = 0,
                 weft::runtime::comm::Socket *link = nullptr,
                 const std::function<void()> &loaded = {},
                 bool *linkLost = nullptr) {
  weft::runtime::SessionOptions options;
  options.threads = threads;
  options.backend = backend.create;
  options.localRank = backend.localRank;
  options.kvCacheBlocks = p.engine.kvCacheBlocks;
  // The session's collectives are timed for the per-rank metrics.
  auto owned = std::make_unique<gen::TimedTransport>(transport);
  gen::TimedTransport &timed = *owned;
  state.transport = std::move(owned);
  auto session =
      weft::runtime::Session::open(p.artifact, rank, &timed, options);
  if (!session.ok())
    return session.status();
  state.session = std::move(*session);
  gen::SessionStepModel local(*state.session, &timed);
  // Every rank has its session: the model is loaded.
  uint32_t world = transport.worldSize();
  weft::runtime::comm::Group all(world);
  for (uint32_t r = 0; r < world; ++r)
    all[r] = r;
  std::byte up{1};
  std::vector<std::byte> ups(world);
  if (Status s = transport.allGather(all, &up, 1, ups.data()); !s.ok())
    return s.withPrefix("waiting for every rank to load the model: ");
  if (loaded)
    loaded();
  // Each rank reports its GPU; the first rank of each host, the host's
  // InfiniBand ports.
  uint32_t hostIndex = backend.localRank.value_or(rank);
  auto sampler = weft::runtime::monitor::makeRankSampler(
      backend.create ? std::optional<uint32_t>(hostIndex) : std::nullopt,
      hostIndex == 0);
  if (rank != 0)
    return gen::followSteps(local, transport, &timed, sampler);
  gen::LeaderStepModel leader(local, &transport, &timed, sampler);
  if (link)
    return gen::serveReplicaLink(leader, *link, p.timeout, linkLost);
  return scheduleReplica(p, *server, leader, replica, world);
}

Status listen(serve::Server &server, const ServeOptions &opts,
              const Prepared &p) {
  if (Status s = server.listen(); !s.ok())
    return s;
  std::cout << kProg << ": listening on http://" << opts.server.host << ":"
            << server.port() << " (model '" << p.model.name << "')"
            << std::endl;
  return okStatus();
}

int serveThreads(const ServeOptions &opts) {
  auto prepared = prepare(opts);
  if (!prepared.ok())
    return dataError(prepared.message());
  serve::ServerOptions serverOptions = opts.server;
  serverOptions.replicas = opts.dp;
  serve::Server server(prepared->model, serverOptions);
  if (Status s = listen(server, opts, *prepared); !s.ok())
    return dataError(s.message());
  uint32_t world = prepared->artifact.manifest.world_size();
  unsigned threads = opts.threads
                         ? opts.threads
                         : weft::runtime::threadsPerRank(world * opts.dp);
  // Each replica is a world of its own; on GPUs, replica d's rank r takes
  // device d * world + r.
  auto runReplica = [&](uint32_t d) -> Status {
    std::string where =
        opts.dp > 1 ? "replica " + std::to_string(d) + ": " : "";
    auto task = [&](uint32_t r, weft::runtime::comm::Transport &transport,
                    weft::runtime::RankState &state) -> Status {
      weft::runtime::RankBackend backend =
          opts.dp > 1 ? rankBackend(opts, d * world + r) : rankBackend(opts);
      Status s = serveRank(*prepared, r, transport, backend, threads,
                           r == 0 ? &server : nullptr, state, d);
      if (!s.ok() && r == 0)
        server.fail(where + s.message());
      return s;
    };
    Status s = weft::runtime::runLocalRankTasks(
        world, std::chrono::duration<double>(opts.timeout), task);
    if (!s.ok())
      server.fail(where + s.message());
    return s;
  };
  std::vector<Status> statuses(opts.dp, okStatus());
  std::vector<std::thread> replicas;
  for (uint32_t d = 1; d < opts.dp; ++d)
    replicas.emplace_back([&, d] { statuses[d] = runReplica(d); });
  statuses[0] = runReplica(0);
  for (std::thread &t : replicas)
    t.join();
  server.stop();
  // The first failure is the cause; the other replicas' follow from it.
  for (const Status &s : statuses)
    if (!s.ok())
      return dataError(server.failure());
  return 0;
}

/// `--nproc N`: every rank a child process of this one; rank 0's serves.
int serveProcesses(const ServeOptions &opts, int argc, char **argv) {
  // Bad input is reported once, here, rather than by every rank.
  auto prepared = prepare(opts);
  if (!prepared.ok())
    return dataError(prepared.message());
  uint32_t world = prepared->artifact.manifest.world_size();
  uint32_t nodes = opts.slice ? opts.slice->nodes : 1;
  if (opts.dp > 1 && uint64_t{*opts.nproc} * nodes != uint64_t{world} * opts.dp)
    return usageError(
        "--nproc " + std::to_string(*opts.nproc) +
        (opts.slice ? " x --nnodes " + std::to_string(nodes) : "") +
        " does not match --dp " + std::to_string(opts.dp) +
        " x the artifact's world size " + std::to_string(world) + " (" +
        std::to_string(world * opts.dp) + " ranks)");
  return weft::runtime::runChildRanks(
      kProg, *opts.nproc, world * opts.dp, argc, argv,
      /*forwardTerminationToRank0=*/true, opts.slice ? &*opts.slice : nullptr);
}

/// The links of --dp over processes: between the serving process (rank
/// 0) and the first rank of each other replica.
struct ReplicaLinks {
  /// Rank 0's, by replica (replica 0's unused).
  std::vector<weft::runtime::comm::Socket> toReplicas;
  /// Another replica's first rank's.
  std::optional<weft::runtime::comm::Socket> toServer;
};

/// Rank 0 listens on a free port of every interface and says where over
/// the job's transport (MASTER_ADDR under a TCP launch, its host name under
/// MPI); each other replica's first rank connects and names its replica.
/// Collective over the job.
Result<ReplicaLinks> linkReplicas(const weft::runtime::comm::LaunchInfo &launch,
                                  weft::runtime::comm::Transport &transport,
                                  uint32_t world, uint32_t dp,
                                  std::chrono::duration<double> timeout) {
  namespace comm = weft::runtime::comm;
  uint32_t rank = transport.rank(), size = transport.worldSize();
  comm::Group everyone(size);
  for (uint32_t r = 0; r < size; ++r)
    everyone[r] = r;
  if (Status s = transport.prepare(std::vector<comm::Group>{everyone}); !s.ok())
    return s;
  ReplicaLinks links;
  comm::Socket listener;
  std::string where;
  if (rank == 0) {
    auto any = comm::resolve("0.0.0.0", 0, "the replicas' port");
    if (!any.ok())
      return any.status();
    auto listening = comm::listenOn(*any, static_cast<int>(dp));
    if (!listening.ok())
      return listening.status().withPrefix("listening for the replicas: ");
    listener = std::move(*listening);
    auto port = comm::localPort(listener);
    if (!port.ok())
      return port.status();
    // The addresses to try, in order, then the port: MASTER_ADDR, which
    // every rank reached; under MPI, this host's name and the addresses of
    // its interfaces (a name need not resolve on the other hosts).
    std::vector<std::string> hosts;
    if (launch.kind == comm::LaunchInfo::Kind::Tcp) {
      hosts.push_back(launch.masterAddr);
    } else {
      char name[256] = {};
      if (::gethostname(name, sizeof(name) - 1) == 0 && name[0])
        hosts.push_back(name);
      for (std::string &a : comm::interfaceAddresses())
        hosts.push_back(std::move(a));
    }
    for (const std::string &h : hosts)
      where += h + " ";
    where += std::to_string(*port);
  }
  std::vector<std::byte> blob(where.size());
  std::memcpy(blob.data(), where.data(), where.size());
  comm::TransportBootstrap boot(transport);
  if (Status s = boot.broadcast(blob); !s.ok())
    return s.withPrefix("telling the replicas where rank 0 is: ");
  comm::Clock::time_point deadline = comm::deadlineAfter(timeout);
  if (rank == 0) {
    links.toReplicas.resize(dp);
    for (uint32_t k = 1; k < dp; ++k) {
      auto peer = comm::acceptBefore(listener, deadline, "a replica's link");
      if (!peer.ok())
        return peer.status();
      uint32_t replica = 0;
      if (Status s = comm::readAll(peer->get(), &replica, sizeof(replica),
                                   deadline, "a replica's link");
          !s.ok())
        return s;
      if (replica == 0 || replica >= dp || links.toReplicas[replica].valid())
        return errorStatus("a malformed link from a replica (replica " +
                           std::to_string(replica) + ")");
      links.toReplicas[replica] = std::move(*peer);
    }
    return links;
  }
  if (rank % world != 0)
    return links;
  std::string text(reinterpret_cast<const char *>(blob.data()), blob.size());
  std::vector<std::string> words;
  for (size_t at = 0; at < text.size();) {
    size_t end = std::min(text.find(' ', at), text.size());
    if (end > at)
      words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  auto port = words.size() < 2 ? Result<uint16_t>(errorStatus("no port"))
                               : comm::parsePort(words.back(), "rank 0's port");
  if (!port.ok())
    return errorStatus("a malformed address from rank 0: '" + text + "'");
  words.pop_back();
  // Each address in turn, a few seconds each, until one answers.
  std::optional<comm::Socket> connected;
  while (!connected) {
    for (const std::string &host : words) {
      auto to = comm::resolve(host, *port, "rank 0's replica port");
      if (!to.ok())
        continue;
      comm::Clock::time_point soon = std::min(
          deadline, comm::Clock::now() + std::chrono::milliseconds(2000));
      auto link = comm::connectBefore(*to, soon, "rank 0's replica port");
      if (link.ok()) {
        connected = std::move(*link);
        break;
      }
    }
    if (connected)
      break;
    if (comm::Clock::now() >= deadline)
      return errorStatus("cannot reach rank 0's replica port " +
                         std::to_string(*port) +
                         " at any of: " + text.substr(0, text.rfind(' ')));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  uint32_t replica = rank / world;
  if (Status s = comm::writeAll(connected->get(), &replica, sizeof(replica),
                                deadline, "rank 0's replica port");
      !s.ok())
    return s;
  links.toServer = std::move(*connected);
  return links;
}

/// One rank of a launched job (--nproc's children, mpirun, srun): rank 0
/// serves HTTP. With --dp, the job holds the replicas one after another
/// (replica d is ranks d*W .. d*W+W-1); rank 0 runs every replica's
/// scheduler, the other replicas' over their links.
int serveLaunched(const weft::runtime::comm::LaunchInfo &launch,
                  const ServeOptions &opts) {
  auto prepared = prepare(opts);
  if (!prepared.ok()) {
    if (launch.kind == weft::runtime::comm::LaunchInfo::Kind::Tcp)
      return weft::runtime::rankError(launch.rank, prepared.message());
    return dataError("rank " + std::to_string(launch.rank) + ": " +
                     prepared.message());
  }
  uint32_t world = prepared->artifact.manifest.world_size();
  if (opts.dp > 1 && launch.size != world * opts.dp) {
    std::string message =
        "--dp " + std::to_string(opts.dp) + " x the artifact's world_size " +
        std::to_string(world) + " needs " + std::to_string(world * opts.dp) +
        " processes, but this job has " + std::to_string(launch.size) + " (" +
        launch.sizeSource + ")";
    if (launch.kind == weft::runtime::comm::LaunchInfo::Kind::Tcp)
      return weft::runtime::rankError(launch.rank, message);
    return dataError("rank " + std::to_string(launch.rank) + ": " + message);
  }
  std::optional<serve::Server> server;
  // A terminal's Ctrl-C, mpirun's forwarded SIGTERM and Slurm's scancel
  // reach every rank: rank 0 shuts down gracefully and stops the others
  // itself (a rank whose rank 0 is gone fails on its own).
  if (launch.rank != 0) {
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
  }
  if (launch.rank == 0) {
    serve::ServerOptions serverOptions = opts.server;
    serverOptions.replicas = opts.dp;
    server.emplace(prepared->model, serverOptions);
    if (Status s = listen(*server, opts, *prepared); !s.ok())
      return weft::runtime::rankError(0, s.message());
  }
  auto task = [&](const weft::runtime::LaunchedRank &self) -> Status {
    unsigned threads = opts.threads
                           ? opts.threads
                           : weft::runtime::threadsPerRank(self.localSize);
    uint32_t replica = self.rank / world, rank = self.rank % world;
    ReplicaLinks links;
    std::optional<weft::runtime::comm::SliceTransport> slice;
    if (opts.dp > 1) {
      auto linked = linkReplicas(launch, self.transport, world, opts.dp,
                                 prepared->timeout);
      if (!linked.ok()) {
        if (server)
          server->fail(linked.message());
        return linked.status();
      }
      links = std::move(*linked);
      slice.emplace(self.transport, replica * world, world);
    }
    // Rank 0: the other replicas' schedulers, each on a thread. They wait
    // for their replicas to load the model once replica 0 has (within
    // --timeout, as a rank waits for the others).
    std::vector<std::unique_ptr<gen::ReplicaLink>> remotes;
    std::vector<std::thread> schedulers;
    std::promise<void> loadedHere;
    std::shared_future<void> loaded = loadedHere.get_future().share();
    std::once_flag loadedOnce;
    auto setLoaded = [&] {
      std::call_once(loadedOnce, [&] { loadedHere.set_value(); });
    };
    if (server)
      for (uint32_t d = 1; d < opts.dp; ++d) {
        // Twice --timeout: a replica's rank 0 waits up to --timeout on its
        // ranks and answers with the one at fault first.
        remotes.push_back(std::make_unique<gen::ReplicaLink>(
            std::move(links.toReplicas[d]), 2 * prepared->timeout, d * world));
        schedulers.emplace_back([&, d, remote = remotes.back().get()] {
          loaded.wait();
          Status s = remote->waitReady();
          if (s.ok())
            s = scheduleReplica(*prepared, *server, *remote, d, world);
          if (!s.ok())
            server->fail("replica " + std::to_string(d) + ": " + s.message());
        });
      }
    weft::runtime::RankState state;
    bool linkLost = false;
    weft::runtime::comm::Transport &transport =
        slice ? static_cast<weft::runtime::comm::Transport &>(*slice)
              : self.transport;
    Status s = serveRank(
        *prepared, rank, transport, rankBackend(opts, self.localRank), threads,
        server ? &*server : nullptr, state, replica,
        links.toServer ? &*links.toServer : nullptr, setLoaded, &linkLost);
    setLoaded();
    // A replica's rank 0 that lost its link failed because rank 0 did.
    if (!s.ok() && linkLost && self.causedBy)
      *self.causedBy = 0;
    if (!s.ok() && server) {
      server->fail((opts.dp > 1 ? "replica 0: " : "") + s.message());
      for (auto &remote : remotes)
        remote->abort();
    }
    for (std::thread &t : schedulers)
      t.join();
    // Another replica's failure fails the server, though this one's ended.
    if (s.ok() && server && !server->failure().empty())
      return errorStatus(server->failure());
    return s;
  };
  int code = weft::runtime::runLaunchedRank(
      launch, world * opts.dp, std::chrono::duration<double>(opts.timeout),
      task, kProg);
  if (server)
    server->stop();
  return code;
}

} // namespace

int weft::runtime::serveMain(int argc, char **argv) {
  ServeOptions opts;
  if (auto err = parseArgs(argc, argv, opts))
    return usageError(*err);
  if (opts.help) {
    printHelp(std::cout);
    return 0;
  }
  if (opts.backend != "cpu" && !findBackend(opts.backend))
    return usageError("this weft has no " + opts.backend + " backend");
  auto detected = comm::detectLaunch();
  if (!detected.ok())
    return usageError(detected.message());
  if (*detected && opts.nproc)
    return usageError("--nproc cannot be used in a launched job (" +
                      (*detected)->sizeSource +
                      "): the launcher already started the ranks");
  if (opts.nproc)
    return serveProcesses(opts, argc, argv);
  if (*detected)
    return serveLaunched(**detected, opts);
  return serveThreads(opts);
}
