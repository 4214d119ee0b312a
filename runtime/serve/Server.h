// `weft serve`'s HTTP server (Boost.Beast over Asio, nlohmann-json): the
// OpenAI endpoints, /health, /metrics, /tokenize and /detokenize on a few
// I/O threads, and the scheduler loop that runs the generation engine on
// rank 0's thread, streaming each sequence's tokens back to its connection.
#ifndef WEFT_RUNTIME_SERVE_SERVER_H
#define WEFT_RUNTIME_SERVE_SERVER_H

#include "runtime/generate/Engine.h"
#include "runtime/generate/RankDriver.h"
#include "runtime/serve/Metrics.h"
#include "runtime/serve/OpenAi.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace weft::runtime::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  /// 0: any free port (the one taken is printed).
  uint16_t port = 8000;
  /// Requests waiting for the engine at most; more are answered 429.
  uint64_t maxQueue = 1024;
  /// Request bodies larger are answered 413.
  uint64_t maxBodyBytes = 4ull << 20;
  /// A request's headers and body must arrive within this; a kept-alive
  /// connection is closed after this long without a request.
  std::chrono::milliseconds readTimeout{30000}, idleTimeout{60000};
  /// A request still running this long after it arrived ends with an
  /// error (504, or an error event when streaming).
  std::chrono::milliseconds requestTimeout{600000};
  /// After SIGTERM or SIGINT: how long running requests may take to
  /// finish before they end with an error.
  std::chrono::milliseconds shutdownGrace{30000};
  unsigned ioThreads = 2;
  /// Data-parallel replicas, each with its own engine and scheduler
  /// thread; a request goes to the one with the fewest requests queued and
  /// running.
  unsigned replicas = 1;
  /// Non-empty: the API endpoints (/v1/..., /tokenize, /detokenize) need
  /// `Authorization: Bearer <apiKey>`, else 401; /health and /metrics stay
  /// open (probes, Prometheus).
  std::string apiKey;
};

/// Whether an Authorization header's value carries `key` as its bearer
/// token (compared in time independent of where they differ).
bool bearerMatches(std::string_view header, std::string_view key);

/// The replica a new request goes to: the one with the smallest queue
/// depth (requests waiting plus running); among equals, the first after
/// `last` (the previous choice), so that an idle server takes turns.
size_t pickReplica(std::span<const uint64_t> depths, size_t last);

class Server {
public:
  Server(ModelInfo model, ServerOptions options);
  ~Server();

  /// Binds and starts the I/O threads; /health answers 503 until
  /// setReady(). Fails if the address cannot be bound.
  Status listen();
  /// The port bound (after listen()).
  uint16_t port() const;
  /// Every rank of a replica is up and the model loaded; the server is
  /// ready once every replica is (then true).
  bool setReady();
  /// Runs `engine` (replica `replica`'s) on this thread until a shutdown
  /// signal has been handled (ok) or a step fails (that error, after every
  /// request in flight got an error answer); a replica's failure fails the
  /// others' requests too. `leader` (null for one rank) is told to keep the
  /// other ranks alive while idle and to stop at the end; its ranks are
  /// reported from `firstRank` on.
  Status runScheduler(generate::GenerationEngine &engine,
                      generate::StepDriver *leader, size_t replica = 0,
                      uint32_t firstRank = 0);
  /// Fails the server before the scheduler runs (a rank did not come up):
  /// /health stays 503.
  void fail(const std::string &message);
  /// The first failure's message (empty while none).
  std::string failure() const;
  /// Stops the I/O threads once the answers in flight are written (or
  /// after a short deadline).
  void stop();
  Metrics &metrics();

  class Impl;

private:
  std::unique_ptr<Impl> impl;
};

/// Times each step into the server's metrics (weft:step_seconds by entry).
class MeteredStepModel : public generate::StepModel {
public:
  MeteredStepModel(generate::StepModel &inner, Metrics &metrics)
      : inner(inner), metrics(metrics) {}
  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override;

private:
  generate::StepModel &inner;
  Metrics &metrics;
};

} // namespace weft::runtime::serve

#endif // WEFT_RUNTIME_SERVE_SERVER_H
