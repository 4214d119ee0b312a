// TCP sockets for the bootstrap and the transport: addresses, listening,
// connecting with retries, and whole reads and writes, each bounded by a
// deadline.
#ifndef WEFT_RUNTIME_COMM_SOCKET_H
#define WEFT_RUNTIME_COMM_SOCKET_H

#include "runtime/support/Status.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace weft::runtime::comm {

using Clock = std::chrono::steady_clock;

/// now + `d`.
Clock::time_point deadlineAfter(std::chrono::duration<double> d);

/// An owned file descriptor, closed on destruction.
class Socket {
public:
  Socket() = default;
  explicit Socket(int fd) : fd(fd) {}
  Socket(Socket &&other) noexcept : fd(other.release()) {}
  Socket &operator=(Socket &&other) noexcept;
  ~Socket() { reset(); }
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;

  int get() const { return fd; }
  bool valid() const { return fd >= 0; }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
  void reset();

private:
  int fd = -1;
};

/// A resolved address to connect to or listen on.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t length = 0;
  /// "host:port" as given, for messages.
  std::string text;
};

/// Resolves `host` (a name or a numeric IPv4/IPv6 address) and `port`;
/// `what` names where they came from ("MASTER_ADDR").
Result<Endpoint> resolve(const std::string &host, uint16_t port,
                         const std::string &what);

/// Parses a port number 1-65535; `what` names its source ("MASTER_PORT").
Result<uint16_t> parsePort(const std::string &text, const std::string &what);

/// A nonblocking socket listening on `at` (port 0: any free port).
Result<Socket> listenOn(const Endpoint &at, int backlog);
/// The port a socket is bound to.
Result<uint16_t> localPort(const Socket &s);
/// The numeric address of this end of a connected socket ("10.0.0.3").
Result<std::string> localHost(const Socket &s);
/// A port on 127.0.0.1 that was free a moment ago.
Result<uint16_t> freeLocalPort();
/// The IPv4 addresses of this host's interfaces that are up, loopback last
/// ("10.0.0.3", ..., "127.0.0.1"): where other hosts may reach it when its
/// name does not resolve there.
std::vector<std::string> interfaceAddresses();

/// Accepts one connection (made nonblocking, no Nagle delay) before
/// `deadline`.
Result<Socket> acceptBefore(const Socket &listener, Clock::time_point deadline,
                            const std::string &what);
/// Connects to `to`, retrying while nobody listens there yet, until
/// `deadline`. The socket is nonblocking, with no Nagle delay.
Result<Socket> connectBefore(const Endpoint &to, Clock::time_point deadline,
                             const std::string &what);

/// Writes all `bytes` of `data` to nonblocking `fd` before `deadline`.
Status writeAll(int fd, const void *data, size_t bytes,
                Clock::time_point deadline, const std::string &what);
/// Reads exactly `bytes` into `data` from nonblocking `fd` before
/// `deadline`. A connection closed first is an error whose message ends
/// with kClosedText.
Status readAll(int fd, void *data, size_t bytes, Clock::time_point deadline,
               const std::string &what);
constexpr const char *kClosedText = "the connection was closed";

/// Milliseconds from now to `deadline` for poll(), at least 0, at most
/// `cap`.
int pollMillis(Clock::time_point deadline, int cap = 1000);

} // namespace weft::runtime::comm

#endif // WEFT_RUNTIME_COMM_SOCKET_H
