// TCP sockets with deadlines: every wait is a poll() bounded by the
// caller's deadline, so nothing here blocks past it.
#include "runtime/comm/Socket.h"

#include "runtime/comm/Transport.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

namespace weft::runtime::comm {

namespace {

std::string errnoText(int err) { return std::strerror(err); }

Status configure(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return errorStatus("cannot make a socket nonblocking: " + errnoText(errno));
  int one = 1;
  // Collectives send small messages and wait for answers: no Nagle delay.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return okStatus();
}

std::string timedOut(Clock::time_point start, const std::string &what) {
  return "timed out after " +
         secondsString(std::chrono::duration<double>(Clock::now() - start)) +
         " " + what;
}

} // namespace

Clock::time_point deadlineAfter(std::chrono::duration<double> d) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(d);
}

int pollMillis(Clock::time_point deadline, int cap) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  if (left < 0)
    return 0;
  return static_cast<int>(std::min<int64_t>(left + 1, cap));
}

Socket &Socket::operator=(Socket &&other) noexcept {
  if (this != &other) {
    reset();
    fd = other.release();
  }
  return *this;
}

void Socket::reset() {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

Result<uint16_t> parsePort(const std::string &text, const std::string &what) {
  unsigned value = 0;
  auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      value < 1 || value > 65535)
    return errorStatus(what + "='" + text +
                       "' is not a port number (1 to 65535)");
  return static_cast<uint16_t>(value);
}

Result<Endpoint> resolve(const std::string &host, uint16_t port,
                         const std::string &what) {
  if (host.empty())
    return errorStatus(what + " is empty");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *found = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || !found)
    return errorStatus("cannot resolve " + what + "='" + host +
                       "': " + gai_strerror(rc));
  Endpoint ep;
  std::memcpy(&ep.addr, found->ai_addr, found->ai_addrlen);
  ep.length = found->ai_addrlen;
  ep.text = (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
            ":" + service;
  freeaddrinfo(found);
  return ep;
}

Result<Socket> listenOn(const Endpoint &at, int backlog) {
  Socket s(::socket(at.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid())
    return errorStatus("cannot create a socket: " + errnoText(errno));
  int one = 1;
  setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(s.get(), reinterpret_cast<const sockaddr *>(&at.addr),
             at.length) != 0)
    return errorStatus("cannot listen on " + at.text + ": " + errnoText(errno));
  if (::listen(s.get(), backlog) != 0)
    return errorStatus("cannot listen on " + at.text + ": " + errnoText(errno));
  if (Status st = configure(s.get()); !st.ok())
    return st;
  return s;
}

Result<uint16_t> localPort(const Socket &s) {
  sockaddr_storage addr{};
  socklen_t length = sizeof(addr);
  if (getsockname(s.get(), reinterpret_cast<sockaddr *>(&addr), &length) != 0)
    return errorStatus("getsockname: " + errnoText(errno));
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
}

Result<std::string> localHost(const Socket &s) {
  sockaddr_storage addr{};
  socklen_t length = sizeof(addr);
  if (getsockname(s.get(), reinterpret_cast<sockaddr *>(&addr), &length) != 0)
    return errorStatus("getsockname: " + errnoText(errno));
  char text[INET6_ADDRSTRLEN] = {};
  const void *raw =
      addr.ss_family == AF_INET6
          ? static_cast<const void *>(
                &reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_addr)
          : static_cast<const void *>(
                &reinterpret_cast<sockaddr_in *>(&addr)->sin_addr);
  if (!inet_ntop(addr.ss_family, raw, text, sizeof(text)))
    return errorStatus("inet_ntop: " + errnoText(errno));
  return std::string(text);
}

Result<uint16_t> freeLocalPort() {
  auto at = resolve("127.0.0.1", 0, "the loopback address");
  if (!at.ok())
    return at.status();
  auto s = listenOn(*at, 1);
  if (!s.ok())
    return s.status();
  return localPort(*s);
}

std::vector<std::string> interfaceAddresses() {
  std::vector<std::string> out, loopback;
  ifaddrs *all = nullptr;
  if (getifaddrs(&all) != 0)
    return {"127.0.0.1"};
  for (ifaddrs *i = all; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
        !(i->ifa_flags & IFF_UP))
      continue;
    char text[INET_ADDRSTRLEN] = {};
    if (!inet_ntop(AF_INET,
                   &reinterpret_cast<sockaddr_in *>(i->ifa_addr)->sin_addr,
                   text, sizeof(text)))
      continue;
    ((i->ifa_flags & IFF_LOOPBACK) ? loopback : out).push_back(text);
  }
  freeifaddrs(all);
  out.insert(out.end(), loopback.begin(), loopback.end());
  if (out.empty())
    out.push_back("127.0.0.1");
  return out;
}

Result<Socket> acceptBefore(const Socket &listener, Clock::time_point deadline,
                            const std::string &what) {
  auto start = Clock::now();
  while (true) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      Socket s(fd);
      if (Status st = configure(fd); !st.ok())
        return st;
      return s;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
        errno != ECONNABORTED)
      return errorStatus("accept: " + errnoText(errno));
    if (Clock::now() >= deadline)
      return errorStatus(timedOut(start, what));
    pollfd p{listener.get(), POLLIN, 0};
    ::poll(&p, 1, pollMillis(deadline, 100));
  }
}

Result<Socket> connectBefore(const Endpoint &to, Clock::time_point deadline,
                             const std::string &what) {
  auto start = Clock::now();
  std::string last = "nothing listens there yet";
  while (true) {
    Socket s(::socket(to.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid())
      return errorStatus("cannot create a socket: " + errnoText(errno));
    if (Status st = configure(s.get()); !st.ok())
      return st;
    int rc = ::connect(s.get(), reinterpret_cast<const sockaddr *>(&to.addr),
                       to.length);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{s.get(), POLLOUT, 0};
      int ready = ::poll(&p, 1, pollMillis(deadline, 1000));
      socklen_t len = sizeof(err);
      if (ready > 0)
        getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      else
        err = ETIMEDOUT;
    }
    if (err == 0)
      return s;
    // Refused or unreachable: the listener may not have started yet.
    last = errnoText(err);
    if (Clock::now() >= deadline)
      return errorStatus(timedOut(start, what) + " (" + last + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status writeAll(int fd, const void *data, size_t bytes,
                Clock::time_point deadline, const std::string &what) {
  auto start = Clock::now();
  const char *p = static_cast<const char *>(data);
  while (bytes) {
    ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      bytes -= n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return errorStatus(what + ": " + errnoText(errno));
    if (Clock::now() >= deadline)
      return errorStatus(timedOut(start, what));
    pollfd pf{fd, POLLOUT, 0};
    ::poll(&pf, 1, pollMillis(deadline));
  }
  return okStatus();
}

Status readAll(int fd, void *data, size_t bytes, Clock::time_point deadline,
               const std::string &what) {
  auto start = Clock::now();
  char *p = static_cast<char *>(data);
  while (bytes) {
    ssize_t n = ::recv(fd, p, bytes, 0);
    if (n > 0) {
      p += n;
      bytes -= n;
      continue;
    }
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return errorStatus(what + ": " + kClosedText);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return errorStatus(what + ": " + errnoText(errno));
    if (Clock::now() >= deadline)
      return errorStatus(timedOut(start, what));
    pollfd pf{fd, POLLIN, 0};
    ::poll(&pf, 1, pollMillis(deadline));
  }
  return okStatus();
}

} // namespace weft::runtime::comm
