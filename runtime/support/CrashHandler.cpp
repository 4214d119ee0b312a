#include "runtime/support/CrashHandler.h"

#include <csignal>
#include <cstring>
#include <execinfo.h>
#include <initializer_list>
#include <unistd.h>

namespace weft::runtime {
namespace {

const char *gProg = "weft";

/// write(2) of a NUL-terminated string: async-signal-safe, unlike stdio.
void say(const char *s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0)
      return;
    s += w;
    n -= size_t(w);
  }
}

void onFatalSignal(int sig) {
  say(gProg);
  say(" crashed (");
  say(sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal");
  say("): this is a bug in weft, not in your model or artifact. Please "
      "report it to the weft maintainers with the command line and the "
      "stack below.\nStack:\n");
  void *frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  // SA_RESETHAND restored the default action: raising again ends the
  // process as the signal would have.
  ::raise(sig);
}

} // namespace

void installCrashHandler(const char *prog) {
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  (void)prog;
  return; // the sanitizer's own reports are better
#endif
#endif
  gProg = prog;
  // backtrace() loads libgcc on first use, which must not happen in the
  // handler.
  void *frame;
  ::backtrace(&frame, 1);
  static char altStack[64 * 1024];
  stack_t ss{};
  ss.ss_sp = altStack;
  ss.ss_size = sizeof(altStack);
  ::sigaltstack(&ss, nullptr);
  struct sigaction sa{};
  sa.sa_handler = onFatalSignal;
  sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT})
    ::sigaction(sig, &sa, nullptr);
}

} // namespace weft::runtime
