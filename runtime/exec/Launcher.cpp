// Starting the ranks of a job as child processes and reporting the failure
// that came first.
#include "runtime/exec/Launcher.h"

#include "runtime/comm/Socket.h"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace weft::runtime {

namespace {

using comm::Clock;

struct Child {
  pid_t pid = -1;
  int reportFd = -1;       // read end of its report pipe, until EOF
  std::string report;      // "self\nMESSAGE" or "peer N\nMESSAGE"
  uint64_t reportedAt = 0; // order in which reports began to arrive
  bool running = false;
  int signalSent = 0;    // the last signal sent after another rank failed
  int status = 0;        // from waitpid
  uint64_t failedAt = 0; // order of failures seen; 0: none
};

bool failedStatus(int status) {
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

/// Reads what is available from `c`'s report pipe; closes it at EOF.
void readReport(Child &c, uint64_t &arrivals) {
  char buf[4096];
  while (c.reportFd >= 0) {
    ssize_t n = ::read(c.reportFd, buf, sizeof(buf));
    if (n > 0) {
      if (c.report.empty())
        c.reportedAt = ++arrivals;
      c.report.append(buf, n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    ::close(c.reportFd);
    c.reportFd = -1;
  }
}

/// The rank another's report blames, if it is such a report.
std::optional<uint32_t> blamedPeer(const Child &c) {
  if (c.report.compare(0, 5, "peer ") != 0)
    return std::nullopt;
  uint32_t peer = 0;
  size_t end = c.report.find('\n');
  auto [ptr, ec] =
      std::from_chars(c.report.data() + 5,
                      c.report.data() + std::min(end, c.report.size()), peer);
  if (ec != std::errc())
    return std::nullopt;
  return peer;
}

std::string reportMessage(const Child &c) {
  size_t nl = c.report.find('\n');
  return nl == std::string::npos ? c.report : c.report.substr(nl + 1);
}

/// Whether `c` ended by a signal this launcher sent.
bool killedByUs(const Child &c) {
  if (!WIFSIGNALED(c.status) || !c.signalSent)
    return false;
  int sig = WTERMSIG(c.status);
  return sig == SIGTERM || (sig == SIGKILL && c.signalSent == SIGKILL);
}

LaunchOutcome describe(const std::vector<Child> &children, const Child &c,
                       uint32_t firstRank) {
  std::string rank =
      "rank " + std::to_string(firstRank + (&c - children.data()));
  LaunchOutcome out;
  out.exitCode = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 1;
  if (!c.report.empty())
    out.message = rank + ": " + reportMessage(c);
  else if (WIFSIGNALED(c.status))
    out.message = rank + " was killed by signal " +
                  std::to_string(WTERMSIG(c.status)) + " (" +
                  strsignal(WTERMSIG(c.status)) + ")";
  else
    out.message = rank + " exited with status " + std::to_string(out.exitCode) +
                  " without saying why";
  return out;
}

/// The failure to report: a rank's own error (the earliest), else the rank
/// another blames, else one that died without a word (not by this
/// launcher's signal), else the first to fail.
LaunchOutcome firstFailure(const std::vector<Child> &children,
                           uint32_t firstRank) {
  const Child *own = nullptr, *blamed = nullptr, *silent = nullptr,
              *any = nullptr;
  for (const Child &c : children) {
    if (!c.failedAt)
      continue;
    std::optional<uint32_t> peer = blamedPeer(c);
    if (!c.report.empty() && !peer && (!own || c.reportedAt < own->reportedAt))
      own = &c;
    // A peer of another node is not ours to describe.
    const Child *p =
        peer && *peer >= firstRank && *peer - firstRank < children.size()
            ? &children[*peer - firstRank]
            : nullptr;
    if (p && p->failedAt && p->report.empty() && !killedByUs(*p) &&
        (!blamed || p->failedAt < blamed->failedAt))
      blamed = p;
    if (c.report.empty() && !killedByUs(c) &&
        (!silent || c.failedAt < silent->failedAt))
      silent = &c;
    if (!any || c.failedAt < any->failedAt)
      any = &c;
  }
  return describe(children,
                  own      ? *own
                  : blamed ? *blamed
                  : silent ? *silent
                           : *any,
                  firstRank);
}

/// A termination signal to forward to rank 0 (forwardTerminationToRank0).
volatile std::sig_atomic_t gTerminationSignal = 0;

void signalRunning(std::vector<Child> &children, int sig) {
  for (Child &c : children)
    if (c.running) {
      ::kill(c.pid, sig);
      c.signalSent = sig;
    }
}

} // namespace

Result<LaunchOutcome> launchLocalRanks(const LocalLaunch &launch) {
  bool slice = !launch.masterAddr.empty();
  uint16_t masterPort = launch.masterPort;
  if (!slice) {
    auto port = comm::freeLocalPort();
    if (!port.ok())
      return port.status().withPrefix("choosing MASTER_PORT: ");
    masterPort = *port;
  }
  uint32_t world = slice ? launch.worldSize : launch.nproc;
  uint32_t firstRank = slice ? launch.firstRank : 0;
  // The parent's environment, less what each child is told.
  std::set<std::string> ours = {"WEFT_RANK",       "WEFT_WORLD_SIZE",
                                "WEFT_LOCAL_RANK", "WEFT_LOCAL_WORLD_SIZE",
                                "MASTER_ADDR",     "MASTER_PORT",
                                kStatusFdVar};
  std::vector<std::string> base;
  bool nvlsSet = false;
  for (char **e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (ours.count(key))
      continue;
    nvlsSet |= key == "NCCL_NVLS_ENABLE";
    base.push_back(std::move(kv));
  }
  // NVLink multicast (NVLS) stays off unless asked for.
  if (!nvlsSet)
    base.push_back("NCCL_NVLS_ENABLE=0");
  base.push_back("WEFT_WORLD_SIZE=" + std::to_string(world));
  base.push_back("WEFT_LOCAL_WORLD_SIZE=" + std::to_string(launch.nproc));
  base.push_back("MASTER_ADDR=" + (slice ? launch.masterAddr : "127.0.0.1"));
  base.push_back("MASTER_PORT=" + std::to_string(masterPort));

  std::vector<char *> argv;
  for (const std::string &a : launch.args)
    argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);

  std::vector<Child> children(launch.nproc);
  pid_t parent = ::getpid();
  for (uint32_t r = 0; r < launch.nproc; ++r) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      signalRunning(children, SIGKILL);
      return errorStatus(std::string("cannot create a pipe: ") +
                         std::strerror(errno));
    }
    std::vector<std::string> env = base;
    env.push_back("WEFT_RANK=" + std::to_string(firstRank + r));
    env.push_back("WEFT_LOCAL_RANK=" + std::to_string(r));
    env.push_back(std::string(kStatusFdVar) + "=" + std::to_string(fds[1]));
    std::vector<char *> envp;
    for (const std::string &kv : env)
      envp.push_back(const_cast<char *>(kv.c_str()));
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls from here to exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(127);
      ::fcntl(fds[1], F_SETFD, 0);
      ::execve("/proc/self/exe", argv.data(), envp.data());
      static const char failed[] = "self\ncannot start this executable again "
                                   "(exec of /proc/self/exe failed)";
      (void)!::write(fds[1], failed, sizeof(failed) - 1);
      ::_exit(127);
    }
    int err = errno;
    ::close(fds[1]);
    if (pid < 0) {
      ::close(fds[0]);
      signalRunning(children, SIGKILL);
      return errorStatus("cannot start rank " + std::to_string(firstRank + r) +
                         ": " + std::strerror(err));
    }
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    children[r].pid = pid;
    children[r].reportFd = fds[0];
    children[r].running = true;
  }

  uint64_t arrivals = 0, failures = 0;
  std::optional<Clock::time_point> killAt;
  struct sigaction oldTerm {
  }, oldInt{};
  // Rank 0 stops the others; on another node's slice the signal ends this
  // launcher, and its children with it.
  bool forwarding = launch.forwardTerminationToRank0 && firstRank == 0;
  if (forwarding) {
    struct sigaction forward {};
    forward.sa_handler = [](int sig) { gTerminationSignal = sig; };
    sigemptyset(&forward.sa_mask);
    ::sigaction(SIGTERM, &forward, &oldTerm);
    ::sigaction(SIGINT, &forward, &oldInt);
  }
  auto running = [&] {
    for (const Child &c : children)
      if (c.running)
        return true;
    return false;
  };
  while (running()) {
    if (int sig = gTerminationSignal; sig && children[0].running) {
      gTerminationSignal = 0;
      ::kill(children[0].pid, sig);
    }
    std::vector<pollfd> fds;
    for (const Child &c : children)
      if (c.reportFd >= 0)
        fds.push_back({c.reportFd, POLLIN, 0});
    if (fds.empty())
      ::usleep(20000);
    else
      ::poll(fds.data(), fds.size(), 20);
    for (Child &c : children)
      readReport(c, arrivals);
    for (Child &c : children) {
      if (!c.running || ::waitpid(c.pid, &c.status, WNOHANG) != c.pid)
        continue;
      c.running = false;
      if (!failedStatus(c.status))
        continue;
      c.failedAt = ++failures;
      if (!killAt) {
        signalRunning(children, SIGTERM);
        killAt = comm::deadlineAfter(launch.grace);
      }
    }
    if (killAt && Clock::now() >= *killAt) {
      signalRunning(children, SIGKILL);
      killAt = Clock::time_point::max();
    }
  }
  if (forwarding) {
    ::sigaction(SIGTERM, &oldTerm, nullptr);
    ::sigaction(SIGINT, &oldInt, nullptr);
  }
  for (Child &c : children) {
    if (c.reportFd >= 0)
      ::fcntl(c.reportFd, F_SETFL, 0);
    readReport(c, arrivals);
  }
  if (!failures)
    return LaunchOutcome{};
  return firstFailure(children, firstRank);
}

bool reportToLauncher(const std::string &message,
                      std::optional<uint32_t> failedPeer) {
  const char *var = std::getenv(kStatusFdVar);
  int fd = -1;
  if (!var ||
      std::from_chars(var, var + std::strlen(var), fd).ec != std::errc() ||
      fd < 0)
    return false;
  std::string text =
      (failedPeer ? "peer " + std::to_string(*failedPeer) : "self") + "\n" +
      message;
  const char *p = text.data();
  size_t left = text.size();
  while (left) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    left -= n;
  }
  ::close(fd);
  ::unsetenv(kStatusFdVar);
  return true;
}

Result<std::vector<std::string>> ownCommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in)
    return errorStatus("cannot read /proc/self/cmdline");
  std::string all((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos)
      end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

} // namespace weft::runtime
