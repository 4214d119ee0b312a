// NVRTC compilation of generated kernel modules: one compilation for the
// cubin, one for the PTX of the virtual architecture.
#include "compiler/codegen/Nvrtc.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

#include <nvrtc.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace mlir;
using namespace mlir::weft;

namespace {

/// The directory holding cuda_fp16.h and cuda_bf16.h: $CUDA_HOME/include,
/// else the one found when weft was built.
bool findCudaInclude(std::string &dir, std::string &error) {
  auto hasHeaders = [](llvm::StringRef d) {
    llvm::SmallString<256> p(d);
    llvm::sys::path::append(p, "cuda_fp16.h");
    return llvm::sys::fs::exists(p);
  };
  if (std::optional<std::string> home =
          llvm::sys::Process::GetEnv("CUDA_HOME")) {
    llvm::SmallString<256> p(*home);
    llvm::sys::path::append(p, "include");
    if (!hasHeaders(p)) {
      error = llvm::formatv("CUDA_HOME is '{0}', but '{1}' has no "
                            "cuda_fp16.h; set CUDA_HOME to the CUDA "
                            "toolkit's directory",
                            *home, p)
                  .str();
      return false;
    }
    dir = std::string(p);
    return true;
  }
  if (hasHeaders(WEFT_CUDA_INCLUDE_DIR)) {
    dir = WEFT_CUDA_INCLUDE_DIR;
    return true;
  }
  error = "cannot find the CUDA headers (cuda_fp16.h) the generated kernels "
          "include: '" WEFT_CUDA_INCLUDE_DIR "' has none; set CUDA_HOME to "
          "the CUDA toolkit's directory";
  return false;
}

struct ProgramDeleter {
  void operator()(_nvrtcProgram *p) const { nvrtcDestroyProgram(&p); }
};
using Program = std::unique_ptr<_nvrtcProgram, ProgramDeleter>;

/// The first `FILE(LINE): error` of an NVRTC log, or 0.
unsigned firstErrorLine(llvm::StringRef log, llvm::StringRef fileName) {
  std::string prefix = fileName.str() + "(";
  for (size_t pos = log.find(prefix); pos != llvm::StringRef::npos;
       pos = log.find(prefix, pos + 1)) {
    llvm::StringRef rest = log.substr(pos + prefix.size());
    unsigned line;
    if (!rest.consumeInteger(10, line) && rest.starts_with("): error"))
      return line;
  }
  return 0;
}

/// Compiles once for `archOption`; `out` gets the cubin or the PTX.
bool compileOnce(llvm::StringRef source, llvm::StringRef fileName,
                 const std::string &archOption, const std::string &include,
                 bool cubin, std::string &out, NvrtcFailure &failure) {
  nvrtcProgram raw = nullptr;
  std::string src = source.str(), name = fileName.str();
  nvrtcResult rc =
      nvrtcCreateProgram(&raw, src.c_str(), name.c_str(), 0, nullptr, nullptr);
  if (rc != NVRTC_SUCCESS) {
    failure.message = std::string("NVRTC cannot create a program: ") +
                      nvrtcGetErrorString(rc);
    return false;
  }
  Program prog(raw);
  // No fast math and no FMA contraction: each instruction rounds as the
  // CPU interpreter's does.
  std::string includeOption = std::string("--include-path=").append(include);
  std::vector<const char *> options = {archOption.c_str(), "--std=c++17",
                                       "-default-device", "--fmad=false",
                                       includeOption.c_str()};
  rc = nvrtcCompileProgram(prog.get(), options.size(), options.data());
  size_t logSize = 0;
  std::string log;
  if (nvrtcGetProgramLogSize(prog.get(), &logSize) == NVRTC_SUCCESS &&
      logSize > 1) {
    log.resize(logSize);
    nvrtcGetProgramLog(prog.get(), log.data());
    log.resize(logSize - 1);
  }
  if (rc != NVRTC_SUCCESS) {
    failure.message = llvm::formatv("NVRTC failed ({0}) with {1}",
                                    nvrtcGetErrorString(rc), archOption)
                          .str();
    failure.log = log;
    failure.line = firstErrorLine(log, fileName);
    return false;
  }
  size_t size = 0;
  rc = cubin ? nvrtcGetCUBINSize(prog.get(), &size)
             : nvrtcGetPTXSize(prog.get(), &size);
  if (rc == NVRTC_SUCCESS) {
    out.resize(size);
    rc = cubin ? nvrtcGetCUBIN(prog.get(), out.data())
               : nvrtcGetPTX(prog.get(), out.data());
  }
  if (rc != NVRTC_SUCCESS || size == 0) {
    failure.message = llvm::formatv("NVRTC produced no {0} with {1}",
                                    cubin ? "cubin" : "PTX", archOption)
                          .str();
    return false;
  }
  if (!cubin && out.back() == '\0')
    out.pop_back(); // the PTX's size counts its terminating NUL
  return true;
}

} // namespace

bool mlir::weft::nvrtcAvailable() { return true; }

bool mlir::weft::compileWithNvrtc(llvm::StringRef source,
                                  llvm::StringRef fileName, const GpuArch &arch,
                                  NvrtcOutput &output, NvrtcFailure &failure) {
  auto start = std::chrono::steady_clock::now();
  std::string include;
  if (!findCudaInclude(include, failure.message))
    return false;
  // The cubin and the PTX compile side by side.
  NvrtcFailure ptxFailure;
  bool ptxOk = false;
  std::thread ptxThread([&] {
    ptxOk =
        compileOnce(source, fileName,
                    std::string("--gpu-architecture=").append(arch.virtualName),
                    include, /*cubin=*/false, output.ptx, ptxFailure);
  });
  bool cubinOk = compileOnce(
      source, fileName, std::string("--gpu-architecture=").append(arch.name),
      include, /*cubin=*/true, output.cubin, failure);
  ptxThread.join();
  if (!cubinOk)
    return false;
  if (!ptxOk) {
    failure = std::move(ptxFailure);
    return false;
  }
  output.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return true;
}
