// A fatal signal in a standalone weft binary (weft-run, weft-serve,
// weft-generate, weft-doctor) says what it is and where to report it, with
// a stack, as the `weft` driver does through LLVM; then the signal's default
// action runs (exit status 128 + N, a core dump where enabled).
#ifndef WEFT_RUNTIME_SUPPORT_CRASHHANDLER_H
#define WEFT_RUNTIME_SUPPORT_CRASHHANDLER_H

namespace weft::runtime {

/// Installs the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT,
/// on an alternate stack (a stack overflow is reported too). `prog` names
/// the binary in the banner; it must outlive the process.
void installCrashHandler(const char *prog);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_CRASHHANDLER_H
