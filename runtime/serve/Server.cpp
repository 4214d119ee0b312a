// The HTTP side runs on Asio's I/O threads, one strand per connection; the
// engine runs on rank 0's thread. They meet in the scheduler's inbox (new
// jobs, cancellations) and in each connection's strand (tokens, results,
// errors posted to it).
#include "runtime/serve/Server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace weft::runtime::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace gen = weft::runtime::generate;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double secondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string randomId(const char *prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%08llx",
                static_cast<unsigned long long>(salt),
                static_cast<unsigned long long>(++counter));
  return std::string(prefix) + buf;
}

/// Where a job's progress goes: its connection, on the connection's strand.
class JobSink {
public:
  virtual ~JobSink() = default;
  virtual void onToken(size_t choice, uint32_t id, std::string text) = 0;
  virtual void onFinish(size_t choice, gen::SequenceResult result) = 0;
  /// The job failed (deadline, shutdown, a rank's failure); no more calls.
  virtual void onError(ApiError error) = 0;
};

/// One HTTP request's sequences in the scheduler.
struct Job {
  uint64_t id = 0;
  CompletionRequest request;
  std::shared_ptr<JobSink> sink;
  Clock::time_point arrival, deadline;
  /// Engine ids of the choices still running.
  std::map<uint64_t, size_t> running;
  std::vector<Clock::time_point> lastToken;
  bool done = false;
};

} // namespace

class Server::Impl {
public:
  Impl(ModelInfo model, ServerOptions options)
      : model(std::move(model)), options(std::move(options)),
        metrics("model_name=\"" + this->model.name + "\""), acceptor(ioc),
        signals(ioc, SIGTERM, SIGINT),
        replicas(std::max(1u, this->options.replicas)) {
    describeMetrics();
  }

  // The HTTP side.
  Status listen();
  void accept();
  /// Queues a job; false (and nothing queued) when the queue is full.
  bool submit(const std::shared_ptr<Job> &job);
  void cancel(uint64_t jobId);
  std::string healthState() const;

  // The schedulers, one per replica.
  Status runScheduler(gen::GenerationEngine &engine, gen::StepDriver *leader,
                      size_t replica, uint32_t firstRank);
  bool setReady();
  void fail(const std::string &message);
  std::string failureMessage() {
    std::lock_guard lock(mutex);
    return failure;
  }
  void stopIo();

  ModelInfo model;
  ServerOptions options;
  Metrics metrics;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  std::vector<std::thread> ioThreads;
  std::atomic<bool> ready{false}, draining{false}, failed{false};
  std::string failure;
  std::atomic<uint64_t> queued{0}, nextJob{1};
  std::atomic<int64_t> openConnections{0};

private:
  /// One replica's scheduler: the inbox and cancellations the I/O threads
  /// fill (under `mutex`), and its thread's own jobs.
  struct Replica {
    std::vector<std::shared_ptr<Job>> inbox;
    std::vector<uint64_t> cancels;
    /// Jobs by id, and each engine id's job.
    std::map<uint64_t, std::shared_ptr<Job>> jobs;
    std::map<uint64_t, Job *> bySequence;
    gen::EngineStats lastStats;
  };

  void describeMetrics();
  void startJob(Replica &r, gen::GenerationEngine &engine,
                const std::shared_ptr<Job> &job);
  void endJob(Job &job, ApiError error);
  /// Replica `replica`'s engine counters, summed over the replicas, into
  /// the metrics.
  void recordStats(size_t replica, const gen::EngineStats &stats);
  /// Every rank's counters into the metrics, ranks from `firstRank` on.
  Status report(gen::StepDriver &leader, uint32_t firstRank);

  std::mutex mutex;
  std::condition_variable wake;
  std::vector<Replica> replicas;
  size_t lastPick = 0;
  unsigned readyReplicas = 0;
};

namespace {

// ---------------------------------------------------------------------------
// One connection.

class HttpSession : public std::enable_shared_from_this<HttpSession>,
                    public JobSink {
public:
  HttpSession(tcp::socket socket, Server::Impl &server)
      : stream(std::move(socket)), server(server) {
    ++server.openConnections;
  }
  ~HttpSession() override { --server.openConnections; }

  void start() {
    net::dispatch(stream.get_executor(),
                  [self = shared_from_this()] { self->read(); });
  }

  void onToken(size_t choice, uint32_t id, std::string text) override {
    net::post(stream.get_executor(),
              [self = shared_from_this(), choice, id, text = std::move(text)] {
                self->token(choice, id, text);
              });
  }
  void onFinish(size_t choice, gen::SequenceResult result) override {
    net::post(stream.get_executor(), [self = shared_from_this(), choice,
                                      result = std::move(result)]() mutable {
      self->finish(choice, std::move(result));
    });
  }
  void onError(ApiError error) override {
    net::post(stream.get_executor(),
              [self = shared_from_this(), error = std::move(error)] {
                self->fail(error);
              });
  }

private:
  void read();
  void onRead(beast::error_code ec);
  void handle();
  void respond(http::status status, std::string body,
               const char *contentType = "application/json",
               bool close = false);
  void respondError(const ApiError &error, bool close = false);
  void startCompletion(bool chat);
  void watchDisconnect();
  void token(size_t choice, uint32_t id, const std::string &text);
  void finish(size_t choice, gen::SequenceResult result);
  void fail(const ApiError &error);
  void sendEvent(const Json &json);
  void sendRaw(std::string data);
  void endStream();
  void pump();
  void afterResponse(bool close);

  beast::tcp_stream stream;
  Server::Impl &server;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
  http::request<http::string_body> request;

  // The completion in progress on this connection.
  std::shared_ptr<Job> job;
  bool chat = false, streaming = false, ended = false;
  /// Which disconnect watch is the current request's.
  uint64_t watchSerial = 0;
  std::string id;
  int64_t created = 0;
  std::vector<gen::SequenceResult> results;
  std::vector<bool> started;
  /// Bytes of each choice's text sent so far.
  std::vector<size_t> streamed;
  size_t finished = 0;
  int64_t completionTokens = 0;

  // Streaming writes: the head, then chunks, one write at a time.
  std::shared_ptr<http::response<http::empty_body>> head;
  std::shared_ptr<http::response_serializer<http::empty_body>> headWriter;
  std::deque<std::string> outbox;
  bool writing = false, headWritten = false, closeAfter = false;
};

void HttpSession::read() {
  parser.emplace();
  parser->body_limit(server.options.maxBodyBytes);
  parser->header_limit(64 * 1024);
  request = {};
  // The first request may take the read timeout; a kept-alive connection
  // the idle timeout to start the next.
  stream.expires_after(buffer.size() ? server.options.readTimeout
                                     : server.options.idleTimeout);
  http::async_read(stream, buffer, *parser,
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     self->onRead(ec);
                   });
}

void HttpSession::onRead(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
      ec == net::error::connection_reset || ec == net::error::eof) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return;
  }
  if (ec == http::error::body_limit) {
    ApiError e;
    e.status = 413;
    e.message = "the request body is larger than " +
                std::to_string(server.options.maxBodyBytes) + " bytes";
    return respondError(e, /*close=*/true);
  }
  if (ec == http::error::header_limit) {
    ApiError e;
    e.status = 431;
    e.message = "the request headers are too large";
    return respondError(e, true);
  }
  if (ec) {
    ApiError e;
    e.message = "malformed HTTP request: " + ec.message();
    return respondError(e, true);
  }
  request = parser->release();
  handle();
}

void HttpSession::respond(http::status status, std::string body,
                          const char *contentType, bool close) {
  auto res = std::make_shared<http::response<http::string_body>>(
      status, request.version() ? request.version() : 11);
  res->set(http::field::server, "weft");
  res->set(http::field::content_type, contentType);
  if (status == http::status::too_many_requests ||
      status == http::status::service_unavailable)
    res->set(http::field::retry_after, "1");
  close = close || !request.keep_alive() || server.draining;
  res->keep_alive(!close);
  res->body() = std::move(body);
  res->prepare_payload();
  stream.expires_after(server.options.idleTimeout);
  http::async_write(
      stream, *res,
      [self = shared_from_this(), res, close](beast::error_code ec, size_t) {
        if (ec)
          return;
        self->afterResponse(close);
      });
}

void HttpSession::afterResponse(bool close) {
  ++watchSerial;
  if (close) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  read();
}

void HttpSession::respondError(const ApiError &error, bool close) {
  respond(static_cast<http::status>(error.status), errorBody(error).dump(),
          "application/json", close);
}

void HttpSession::handle() {
  std::string_view target(request.target().data(), request.target().size());
  target = target.substr(0, target.find('?'));
  http::verb method = request.method();
  auto wrongMethod = [&](const char *allowed) {
    ApiError e;
    e.status = 405;
    e.message = "use " + std::string(allowed) + " for " + std::string(target);
    respondError(e);
  };
  auto json = [&](const Json &body) {
    respond(http::status::ok,
            body.dump(-1, ' ', false, Json::error_handler_t::replace));
  };
  if (target == "/health") {
    if (method != http::verb::get)
      return wrongMethod("GET");
    std::string state = server.healthState();
    if (state == "ok")
      return respond(http::status::ok, "{\"status\":\"ok\"}");
    return respond(http::status::service_unavailable,
                   "{\"status\":\"" + state + "\"}");
  }
  if (target == "/metrics") {
    if (method != http::verb::get)
      return wrongMethod("GET");
    return respond(http::status::ok, server.metrics.text(),
                   "text/plain; version=0.0.4; charset=utf-8");
  }
  auto authorization = request[http::field::authorization];
  if (!server.options.apiKey.empty() &&
      !bearerMatches(
          std::string_view(authorization.data(), authorization.size()),
          server.options.apiKey)) {
    ApiError e;
    e.status = 401;
    e.type = "AuthenticationError";
    e.message = authorization.empty()
                    ? "this server needs an API key: send 'Authorization: "
                      "Bearer <key>'"
                    : "the API key is not this server's";
    return respondError(e);
  }
  if (target == "/v1/models") {
    if (method != http::verb::get)
      return wrongMethod("GET");
    return json(modelsResponse(server.model, unixNow()));
  }
  if (target == "/tokenize" || target == "/detokenize") {
    if (method != http::verb::post)
      return wrongMethod("POST");
    auto out = target == "/tokenize"
                   ? tokenizeRequest(request.body(), server.model)
                   : detokenizeRequest(request.body(), server.model);
    if (auto *e = std::get_if<ApiError>(&out))
      return respondError(*e);
    return json(std::get<Json>(out));
  }
  if (target == "/v1/completions" || target == "/v1/chat/completions") {
    if (method != http::verb::post)
      return wrongMethod("POST");
    return startCompletion(target == "/v1/chat/completions");
  }
  ApiError e;
  e.status = 404;
  e.type = "NotFoundError";
  e.message = "no such endpoint: " + std::string(target);
  respondError(e);
}

void HttpSession::startCompletion(bool isChat) {
  if (server.healthState() != "ok") {
    ApiError e;
    e.status = 503;
    e.type = "ServiceUnavailableError";
    e.message = server.draining ? "the server is shutting down"
                                : "the model is not loaded yet";
    return respondError(e);
  }
  auto parsed = parseCompletion(request.body(), isChat, server.model);
  if (auto *e = std::get_if<ApiError>(&parsed))
    return respondError(*e);
  chat = isChat;
  job = std::make_shared<Job>();
  job->id = server.nextJob++;
  job->request = std::move(std::get<CompletionRequest>(parsed));
  job->sink = shared_from_this();
  job->arrival = Clock::now();
  job->deadline = job->arrival + server.options.requestTimeout;
  streaming = job->request.stream;
  ended = false;
  id = randomId(chat ? "chatcmpl-" : "cmpl-");
  created = unixNow();
  size_t choices = job->request.sequences.size();
  results.assign(choices, {});
  started.assign(choices, false);
  streamed.assign(choices, 0);
  finished = 0;
  completionTokens = 0;
  if (!server.submit(job)) {
    job.reset();
    ApiError e;
    e.status = 429;
    e.type = "RateLimitError";
    e.message = "the server's queue is full (" +
                std::to_string(server.options.maxQueue) +
                " requests waiting): retry later";
    return respondError(e);
  }
  // No timeout while the engine works: the job's deadline bounds it.
  stream.expires_never();
  if (streaming) {
    head = std::make_shared<http::response<http::empty_body>>(
        http::status::ok, request.version());
    head->set(http::field::server, "weft");
    head->set(http::field::content_type, "text/event-stream");
    head->set(http::field::cache_control, "no-cache");
    head->keep_alive(request.keep_alive());
    head->chunked(true);
    headWriter =
        std::make_shared<http::response_serializer<http::empty_body>>(*head);
    headWritten = false;
    writing = true;
    http::async_write_header(
        stream, *headWriter,
        [self = shared_from_this()](beast::error_code ec, size_t) {
          self->writing = false;
          if (ec)
            return self->server.cancel(self->job ? self->job->id : 0);
          self->headWritten = true;
          self->pump();
        });
  }
  watchDisconnect();
}

void HttpSession::watchDisconnect() {
  // The client sends nothing more until it has the answer: readable now
  // means it closed (or pipelined a request, which is left for later). A
  // wait left from an earlier request on the connection is ignored.
  uint64_t serial = ++watchSerial;
  stream.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(),
                                                      serial](
                                                         beast::error_code ec) {
    if (ec || serial != self->watchSerial || !self->job || self->ended)
      return;
    // Readiness may be spurious: only an orderly close (a peek of 0
    // bytes) or an error is a disconnect; no data yet waits again.
    char byte;
    ssize_t n = ::recv(self->stream.socket().native_handle(), &byte, 1,
                       MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return self->watchDisconnect();
    if (n > 0)
      return;
    self->server.cancel(self->job->id);
    self->ended = true;
    self->server.metrics.add("weft:requests_cancelled_total", 1);
    beast::error_code ignored;
    self->stream.socket().close(ignored);
  });
}

void HttpSession::sendEvent(const Json &json) {
  sendRaw("data: " + json.dump(-1, ' ', false, Json::error_handler_t::replace) +
          "\n\n");
}

void HttpSession::sendRaw(std::string data) {
  outbox.push_back(std::move(data));
  pump();
}

void HttpSession::pump() {
  if (writing || !headWritten)
    return;
  if (outbox.empty()) {
    if (closeAfter) {
      closeAfter = false;
      writing = true;
      stream.expires_after(server.options.idleTimeout);
      net::async_write(
          stream, http::make_chunk_last(),
          [self = shared_from_this()](beast::error_code ec, size_t) {
            self->writing = false;
            if (ec)
              return;
            bool close = !self->request.keep_alive() || self->server.draining;
            self->job.reset();
            self->afterResponse(close);
          });
    }
    return;
  }
  auto data = std::make_shared<std::string>(std::move(outbox.front()));
  outbox.pop_front();
  writing = true;
  stream.expires_after(server.options.idleTimeout);
  net::async_write(
      stream, http::make_chunk(net::buffer(*data)),
      [self = shared_from_this(), data](beast::error_code ec, size_t) {
        self->writing = false;
        if (ec) {
          if (self->job && !self->ended) {
            self->ended = true;
            self->server.cancel(self->job->id);
          }
          return;
        }
        self->pump();
      });
}

void HttpSession::endStream() {
  ended = true;
  closeAfter = true;
  pump();
}

void HttpSession::token(size_t choice, uint32_t tokenId,
                        const std::string &text) {
  if (ended || !streaming)
    return;
  bool withIds = job->request.returnTokenIds;
  if (text.empty() && started[choice] && !withIds)
    return;
  uint32_t ids[1] = {tokenId};
  sendEvent(streamChunk(job->request, id, created, choice, text,
                        withIds ? std::span<const uint32_t>(ids)
                                : std::span<const uint32_t>(),
                        nullptr, !started[choice]));
  started[choice] = true;
  streamed[choice] += text.size();
}

void HttpSession::finish(size_t choice, gen::SequenceResult result) {
  if (ended)
    return;
  completionTokens += static_cast<int64_t>(result.ids.size());
  if (streaming) {
    // The text held back until the end, with the finish reason.
    std::string rest =
        result.text.substr(std::min(result.text.size(), streamed[choice]));
    sendEvent(streamChunk(job->request, id, created, choice, rest, {},
                          gen::finishReasonName(result.finishReason),
                          !started[choice]));
    started[choice] = true;
  }
  results[choice] = std::move(result);
  if (++finished < results.size())
    return;
  if (streaming) {
    if (job->request.includeUsage)
      sendEvent(usageChunk(job->request, id, created, completionTokens));
    sendRaw("data: [DONE]\n\n");
    endStream();
    return;
  }
  ended = true;
  Json body = completionResponse(job->request, results, id, created);
  job.reset();
  respond(http::status::ok,
          body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void HttpSession::fail(const ApiError &error) {
  if (ended)
    return;
  if (streaming) {
    sendEvent(errorBody(error));
    sendRaw("data: [DONE]\n\n");
    endStream();
    return;
  }
  ended = true;
  job.reset();
  respondError(error, /*close=*/server.draining.load());
}

} // namespace

// ---------------------------------------------------------------------------
// The server.

void Server::Impl::describeMetrics() {
  auto d = [&](const char *name, const char *type, const char *help) {
    metrics.describe(name, type, help);
  };
  d("vllm:num_requests_running", "gauge",
    "Sequences in the running batch (prefilling or decoding).");
  d("vllm:num_requests_waiting", "gauge",
    "Sequences waiting for KV cache blocks or a place in the batch.");
  d("vllm:kv_cache_usage_perc", "gauge",
    "KV cache usage: 1 means every block is taken.");
  d("vllm:num_preemptions_total", "counter",
    "Sequences preempted (blocks freed, computed again later).");
  d("vllm:prompt_tokens_total", "counter", "Prompt tokens prefilled.");
  d("vllm:generation_tokens_total", "counter", "Tokens generated.");
  d("vllm:request_success_total", "counter",
    "Sequences finished, by finish reason.");
  d("vllm:time_to_first_token_seconds", "histogram",
    "From a request's arrival to its first generated token.");
  d("vllm:inter_token_latency_seconds", "histogram",
    "Between a sequence's generated tokens.");
  d("vllm:e2e_request_latency_seconds", "histogram",
    "From a request's arrival to its last token.");
  d("weft:requests_cancelled_total", "counter",
    "Requests whose client went away before the answer.");
  d("weft:requests_failed_total", "counter",
    "Requests ended with an error (deadline, shutdown, a rank's failure).");
  d("weft:kv_cache_blocks", "gauge", "KV cache blocks per rank, by state.");
  d("weft:step_seconds", "histogram",
    "Time of one step of an entry point on rank 0, by entry.");
  d("weft:replica_requests_total", "counter",
    "Requests routed to each data-parallel replica (--dp).");
  d("weft:replica_requests_running", "gauge",
    "Sequences in each data-parallel replica's running batch (--dp).");
  d("weft:replica_requests_waiting", "gauge",
    "Sequences waiting in each data-parallel replica's queue (--dp).");
  d("weft:mixed_steps_total", "counter",
    "Steps that carried the running sequences' next tokens and prompt "
    "chunks together (--schedule mixed).");
  d("weft:rank_steps_total", "counter", "Steps each rank ran.");
  d("weft:rank_step_seconds_total", "counter",
    "Time each rank spent in steps.");
  d("weft:rank_collective_seconds_total", "counter",
    "Time each rank spent in the collectives and messages its transport "
    "carries, within its steps (on GPUs NCCL runs inside the step).");
  for (const weft::runtime::monitor::MetricInfo &m :
       weft::runtime::monitor::hardwareMetrics())
    d(m.name, m.type, m.help);
  for (const char *name :
       {"vllm:num_preemptions_total", "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total", "weft:requests_cancelled_total",
        "weft:requests_failed_total"})
    metrics.add(name, 0);
  metrics.set("vllm:num_requests_running", 0);
  metrics.set("vllm:num_requests_waiting", 0);
  metrics.set("vllm:kv_cache_usage_perc", 0);
}

std::string Server::Impl::healthState() const {
  if (failed)
    return "failed";
  if (draining)
    return "draining";
  if (!ready)
    return "loading";
  return "ok";
}

Status Server::Impl::listen() {
  // Every connection is a descriptor: take the hard limit.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 &&
      files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto found = resolver.resolve(options.host, std::to_string(options.port),
                                tcp::resolver::passive, ec);
  if (ec || found.empty())
    return errorStatus("cannot resolve --host '" + options.host +
                       "': " + ec.message());
  tcp::endpoint endpoint = found.begin()->endpoint();
  std::string where = options.host + ":" + std::to_string(options.port);
  if (acceptor.open(endpoint.protocol(), ec); ec)
    return errorStatus("cannot open a socket for " + where + ": " +
                       ec.message());
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor.bind(endpoint, ec); ec)
    return errorStatus("cannot listen on " + where + ": " + ec.message());
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec)
    return errorStatus("cannot listen on " + where + ": " + ec.message());
  signals.async_wait([this](beast::error_code ec, int) {
    if (ec)
      return;
    std::cerr << "weft serve: shutting down: no new connections; requests in "
                 "flight have "
              << options.shutdownGrace.count() / 1000.0 << " s to finish\n";
    draining = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    wake.notify_all();
  });
  accept();
  for (unsigned i = 0; i < std::max(1u, options.ioThreads); ++i)
    ioThreads.emplace_back([this] {
      auto guard = net::make_work_guard(ioc);
      ioc.run();
    });
  return okStatus();
}

void Server::Impl::accept() {
  acceptor.async_accept(
      net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor.is_open())
          return;
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<HttpSession>(std::move(socket), *this)->start();
        }
        accept();
      });
}

bool bearerMatches(std::string_view header, std::string_view key) {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() < scheme.size())
    return false;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i])))
      return false;
  std::string_view token = header.substr(scheme.size());
  // Every byte of the key is compared, whatever matched before.
  unsigned char diff = token.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i)
    diff |= static_cast<unsigned char>(key[i]) ^
            static_cast<unsigned char>(i < token.size() ? token[i] : 0);
  return diff == 0;
}

size_t pickReplica(std::span<const uint64_t> depths, size_t last) {
  size_t n = depths.size(), best = n;
  for (size_t k = 1; k <= n; ++k) {
    size_t d = (last + k) % n;
    if (best == n || depths[d] < depths[best])
      best = d;
  }
  return best;
}

bool Server::Impl::submit(const std::shared_ptr<Job> &job) {
  size_t chosen = 0;
  {
    std::lock_guard lock(mutex);
    uint64_t waiting = 0;
    std::vector<uint64_t> depths;
    for (const Replica &r : replicas) {
      uint64_t inbox = 0;
      for (const std::shared_ptr<Job> &j : r.inbox)
        inbox += j->request.sequences.size();
      waiting += inbox + r.lastStats.waiting;
      depths.push_back(inbox + r.lastStats.waiting + r.lastStats.running);
    }
    if (waiting >= options.maxQueue)
      return false;
    chosen = lastPick = pickReplica(depths, lastPick);
    replicas[chosen].inbox.push_back(job);
    wake.notify_all();
  }
  if (replicas.size() > 1)
    metrics.add("weft:replica_requests_total", 1,
                "replica=\"" + std::to_string(chosen) + "\"");
  return true;
}

void Server::Impl::cancel(uint64_t jobId) {
  // Only the replica holding the job finds it.
  std::lock_guard lock(mutex);
  for (Replica &r : replicas)
    r.cancels.push_back(jobId);
  wake.notify_all();
}

bool Server::Impl::setReady() {
  std::lock_guard lock(mutex);
  if (++readyReplicas >= replicas.size())
    ready = true;
  return ready;
}

void Server::Impl::fail(const std::string &message) {
  std::lock_guard lock(mutex);
  if (!failed)
    failure = message;
  failed = true;
  wake.notify_all();
}

void Server::Impl::startJob(Replica &r, gen::GenerationEngine &engine,
                            const std::shared_ptr<Job> &job) {
  Job *j = job.get();
  size_t choices = job->request.sequences.size();
  job->lastToken.assign(choices, Clock::time_point());
  for (size_t i = 0; i < choices; ++i) {
    gen::SequenceSink sink;
    sink.onToken = [this, j, i](uint32_t token, std::string_view text) {
      Clock::time_point now = Clock::now();
      if (j->lastToken[i] == Clock::time_point())
        metrics.observe("vllm:time_to_first_token_seconds",
                        secondsBetween(j->arrival, now), ttftBuckets());
      else
        metrics.observe("vllm:inter_token_latency_seconds",
                        secondsBetween(j->lastToken[i], now), itlBuckets());
      j->lastToken[i] = now;
      j->sink->onToken(i, token, std::string(text));
    };
    sink.onFinish = [this, &r, j, i](gen::SequenceResult result) {
      metrics.add("vllm:request_success_total", 1,
                  std::string("finished_reason=\"") +
                      gen::finishReasonName(result.finishReason) + "\"");
      for (auto it = j->running.begin(); it != j->running.end(); ++it)
        if (it->second == i) {
          r.bySequence.erase(it->first);
          j->running.erase(it);
          break;
        }
      if (j->running.empty()) {
        metrics.observe("vllm:e2e_request_latency_seconds",
                        secondsBetween(j->arrival, Clock::now()), e2eBuckets());
        j->done = true;
      }
      j->sink->onFinish(i, std::move(result));
    };
    auto id = engine.add(job->request.sequences[i], std::move(sink));
    if (!id.ok()) {
      // The choices already queued go too: their sinks point at the job.
      for (auto [seq, choice] : job->running) {
        engine.cancel(seq);
        r.bySequence.erase(seq);
      }
      job->running.clear();
      ApiError e;
      e.message = "the prompt " + id.message();
      e.param = job->request.chat ? "messages" : "prompt";
      endJob(*job, e);
      return;
    }
    job->running.emplace(*id, i);
    r.bySequence.emplace(*id, j);
  }
  r.jobs.emplace(job->id, job);
}

void Server::Impl::endJob(Job &job, ApiError error) {
  // Called with the job's sequences possibly in the engine: the caller
  // cancels them.
  if (job.done)
    return;
  job.done = true;
  metrics.add("weft:requests_failed_total", 1);
  job.sink->onError(std::move(error));
}

void Server::Impl::recordStats(size_t replica, const gen::EngineStats &own) {
  gen::EngineStats stats;
  {
    std::lock_guard lock(mutex);
    replicas[replica].lastStats = own;
    for (const Replica &r : replicas) {
      const gen::EngineStats &e = r.lastStats;
      stats.running += e.running;
      stats.waiting += e.waiting;
      stats.totalBlocks += e.totalBlocks;
      stats.freeBlocks += e.freeBlocks;
      stats.preemptions += e.preemptions;
      stats.promptTokens += e.promptTokens;
      stats.generatedTokens += e.generatedTokens;
      stats.mixedSteps += e.mixedSteps;
    }
  }
  if (replicas.size() > 1) {
    std::string label = "replica=\"" + std::to_string(replica) + "\"";
    metrics.set("weft:replica_requests_running", double(own.running), label);
    metrics.set("weft:replica_requests_waiting", double(own.waiting), label);
  }
  metrics.set("vllm:num_requests_running", static_cast<double>(stats.running));
  metrics.set("vllm:num_requests_waiting", static_cast<double>(stats.waiting));
  double total = static_cast<double>(std::max<uint64_t>(1, stats.totalBlocks));
  metrics.set("vllm:kv_cache_usage_perc",
              1.0 - static_cast<double>(stats.freeBlocks) / total);
  metrics.set("weft:kv_cache_blocks", static_cast<double>(stats.freeBlocks),
              "state=\"free\"");
  metrics.set("weft:kv_cache_blocks", static_cast<double>(stats.totalBlocks),
              "state=\"total\"");
  metrics.set("vllm:num_preemptions_total",
              static_cast<double>(stats.preemptions));
  metrics.set("vllm:prompt_tokens_total",
              static_cast<double>(stats.promptTokens));
  metrics.set("vllm:generation_tokens_total",
              static_cast<double>(stats.generatedTokens));
  metrics.set("weft:mixed_steps_total", static_cast<double>(stats.mixedSteps));
}

Status Server::Impl::runScheduler(gen::GenerationEngine &engine,
                                  gen::StepDriver *leader, size_t replica,
                                  uint32_t firstRank) {
  Replica &r = replicas[replica];
  Clock::time_point lastContact = Clock::now(), lastReport = lastContact;
  std::optional<Clock::time_point> drainUntil;
  auto cancelJob = [&](Job &job) {
    for (auto [seq, choice] : job.running) {
      engine.cancel(seq);
      r.bySequence.erase(seq);
    }
    job.running.clear();
  };
  auto endAll = [&](const ApiError &error) {
    for (auto &[id, job] : r.jobs) {
      cancelJob(*job);
      endJob(*job, error);
    }
    r.jobs.clear();
  };
  // A failed step or exchange: the server is failed, and every request in
  // flight ends with a 500 saying `what` failed.
  auto failAll = [&](const Status &status, const std::string &what,
                     bool own = true) {
    std::string message = (own && replicas.size() > 1
                               ? "replica " + std::to_string(replica) + ": "
                               : std::string()) +
                          status.message();
    fail(message);
    ApiError e;
    e.status = 500;
    e.type = "InternalServerError";
    e.message = what + message;
    endAll(e);
    recordStats(replica, engine.stats());
    return status;
  };
  auto sweep = [&] {
    for (auto it = r.jobs.begin(); it != r.jobs.end();)
      it = it->second->done ? r.jobs.erase(it) : std::next(it);
  };
  recordStats(replica, engine.stats());
  while (true) {
    std::vector<std::shared_ptr<Job>> fresh;
    std::vector<uint64_t> gone;
    std::optional<std::string> otherFailed;
    {
      std::unique_lock lock(mutex);
      if (!engine.busy() && r.inbox.empty() && r.cancels.empty() && !draining &&
          !failed)
        wake.wait_for(lock, gen::kKeepAliveInterval, [&] {
          return !r.inbox.empty() || !r.cancels.empty() || draining || failed;
        });
      fresh.swap(r.inbox);
      gone.swap(r.cancels);
      if (failed)
        otherFailed = failure;
    }
    // Another replica failed: the server exits, this one's requests too.
    if (otherFailed) {
      for (const std::shared_ptr<Job> &job : fresh)
        r.jobs.emplace(job->id, job);
      return failAll(errorStatus(*otherFailed), "another replica failed: ",
                     /*own=*/false);
    }
    for (const std::shared_ptr<Job> &job : fresh)
      startJob(r, engine, job);
    for (uint64_t id : gone)
      if (auto it = r.jobs.find(id); it != r.jobs.end()) {
        cancelJob(*it->second);
        it->second->done = true;
      }
    Clock::time_point now = Clock::now();
    for (auto &[id, job] : r.jobs)
      if (!job->done && now > job->deadline) {
        cancelJob(*job);
        ApiError e;
        e.status = 504;
        e.type = "TimeoutError";
        e.message = "the request ran past the server's --request-timeout (" +
                    std::to_string(options.requestTimeout.count() / 1000.0) +
                    " s)";
        endJob(*job, e);
      }
    sweep();
    if (draining) {
      if (!drainUntil)
        drainUntil = now + options.shutdownGrace;
      if (r.jobs.empty())
        break;
      if (now > *drainUntil) {
        ApiError e;
        e.status = 503;
        e.type = "ServiceUnavailableError";
        e.message = "the server shut down before the request finished";
        endAll(e);
        break;
      }
    }
    if (engine.busy()) {
      Status status = engine.step();
      lastContact = Clock::now();
      if (!status.ok())
        return failAll(status, "the model failed: ");
      sweep();
    } else if (leader &&
               Clock::now() - lastContact >= gen::kKeepAliveInterval) {
      if (Status s = leader->keepAlive(); !s.ok())
        return failAll(s, "a rank failed: ");
      lastContact = Clock::now();
    }
    if (leader && Clock::now() - lastReport >= gen::kKeepAliveInterval) {
      if (Status s = report(*leader, firstRank); !s.ok())
        return failAll(s, "a rank failed: ");
      lastReport = lastContact = Clock::now();
    }
    recordStats(replica, engine.stats());
  }
  recordStats(replica, engine.stats());
  if (leader) {
    if (Status s = report(*leader, firstRank); !s.ok())
      return s;
    return leader->stop();
  }
  return okStatus();
}

Status Server::Impl::report(gen::StepDriver &leader, uint32_t firstRank) {
  auto counters = leader.report();
  if (!counters.ok())
    return counters.status();
  for (size_t r = 0; r < counters->size(); ++r) {
    const gen::RankCounters &c = (*counters)[r];
    std::string label = "rank=\"" + std::to_string(firstRank + r) + "\"";
    metrics.set("weft:rank_steps_total", static_cast<double>(c.steps), label);
    metrics.set("weft:rank_step_seconds_total", c.stepSeconds, label);
    metrics.set("weft:rank_collective_seconds_total", c.collectiveSeconds,
                label);
    for (const weft::runtime::monitor::MetricSample &m : c.hardware)
      metrics.set(m.name, m.value,
                  m.labels.empty() ? label : label + "," + m.labels);
  }
  return okStatus();
}

void Server::Impl::stopIo() {
  draining = true;
  net::post(ioc, [this] {
    beast::error_code ec;
    acceptor.close(ec);
    signals.cancel(ec);
  });
  // Answers in flight get a moment to be written.
  Clock::time_point until = Clock::now() + std::chrono::seconds(2);
  while (openConnections > 0 && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ioc.stop();
  for (std::thread &t : ioThreads)
    t.join();
  ioThreads.clear();
}

Server::Server(ModelInfo model, ServerOptions options)
    : impl(std::make_unique<Impl>(std::move(model), std::move(options))) {}

Server::~Server() {
  if (!impl->ioThreads.empty())
    impl->stopIo();
}

Status Server::listen() { return impl->listen(); }
uint16_t Server::port() const {
  beast::error_code ec;
  return impl->acceptor.local_endpoint(ec).port();
}
bool Server::setReady() { return impl->setReady(); }
Status Server::runScheduler(gen::GenerationEngine &engine,
                            gen::StepDriver *leader, size_t replica,
                            uint32_t firstRank) {
  return impl->runScheduler(engine, leader, replica, firstRank);
}
void Server::fail(const std::string &message) { impl->fail(message); }
std::string Server::failure() const { return impl->failureMessage(); }
void Server::stop() { impl->stopIo(); }
Metrics &Server::metrics() { return impl->metrics; }

Result<std::vector<int32_t>>
MeteredStepModel::runStep(const std::string &entry,
                          std::span<const NpyArray *const> inputs) {
  Clock::time_point start = Clock::now();
  auto out = inner.runStep(entry, inputs);
  double s = secondsBetween(start, Clock::now());
  metrics.observe("weft:step_seconds", s, stepBuckets(),
                  "entry=\"" + entry + "\"");
  return out;
}

} // namespace weft::runtime::serve
