// weft-codegen-gpu-check OUTDIR: the codegen test cases prepared for a GPU
// machine (which has no MLIR): the kernel module compiled for sm_90a (cubin
// and compute_90 PTX), random inputs and the CPU interpreter's outputs, and
// cases.json describing them. test/gpu/run_codegen_kernels.py runs them.
#include "ElementwiseCases.h"

#include "compiler/codegen/CudaCodegen.h"
#include "runtime/artifact/DType.h"
#include "runtime/backends/cpu/CpuKernels.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>

using namespace weft::codegen_test;
using namespace weft::runtime;

namespace {

bool writeBytes(const std::string &path, const void *data, size_t size) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os.write(static_cast<const char *>(data), size);
  return !os.has_error();
}

std::string shapeJson(const Shape &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s.append(i ? ", " : "").append(std::to_string(shape[i]));
  return s + "]";
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    llvm::errs() << "usage: weft-codegen-gpu-check OUTDIR\n";
    return 2;
  }
  std::string dir = argv[1];
  if (auto ec = llvm::sys::fs::create_directories(dir)) {
    llvm::errs() << "cannot create " << dir << ": " << ec.message() << "\n";
    return 1;
  }
  mlir::weft::KernelModuleBuilder builder;
  std::string json = "[\n";
  for (auto [i, c] : llvm::enumerate(elementwiseCases())) {
    auto kernel = builder.addElementwise(c.spec, c.name);
    if (!kernel) {
      llvm::errs() << llvm::toString(kernel.takeError()) << "\n";
      return 1;
    }
    std::mt19937 rng(std::hash<std::string>()(c.name) & 0xffffffff);
    std::vector<std::vector<std::byte>> inputs;
    std::vector<InTensor> views;
    std::string inJson;
    for (auto [j, op] : llvm::enumerate(c.spec.inputs)) {
      inputs.emplace_back(numElements(op.shape) * dtypeSize(op.dtype) + 1);
      fillRandomElements(op.dtype, inputs.back().data(), numElements(op.shape),
                         rng);
      std::string file = llvm::formatv("{0}.in{1}.bin", c.name, j).str();
      writeBytes(dir + "/" + file, inputs.back().data(),
                 inputs.back().size() - 1);
      inJson += llvm::formatv(
          "{0}{{\"dtype\": \"{1}\", \"shape\": {2}, \"file\": \"{3}\"}",
          j ? ", " : "", dtypeName(op.dtype), shapeJson(op.shape), file);
    }
    for (auto [j, op] : llvm::enumerate(c.spec.inputs))
      views.push_back({op.dtype, op.shape, inputs[j].data()});
    std::vector<std::byte> out(
        numElements(c.spec.output.shape) * dtypeSize(c.spec.output.dtype) + 1);
    std::vector<OutTensor> outs = {
        {c.spec.output.dtype, c.spec.output.shape, out.data()}};
    weft::artifact::Step step;
    step.set_kind(weft::artifact::Step::ELEMENTWISE);
    for (const auto &in : c.spec.program)
      *step.add_program() = in;
    Status s = cpu::runStep(cpu::StepArgs{step, views, outs});
    if (!s.ok()) {
      llvm::errs() << c.name << ": " << s.message() << "\n";
      return 1;
    }
    std::string outFile = c.name + ".out.bin";
    writeBytes(dir + "/" + outFile, out.data(), out.size() - 1);
    json += llvm::formatv(
        "{0}  {{\"name\": \"{1}\", \"kernel\": \"{2}\", \"exact\": {3}, "
        "\"inputs\": [{4}], \"output\": {{\"dtype\": \"{5}\", \"shape\": {6}, "
        "\"file\": \"{7}\"}}",
        i ? ",\n" : "", c.name, *kernel, c.exact ? "true" : "false", inJson,
        dtypeName(c.spec.output.dtype), shapeJson(c.spec.output.shape),
        outFile);
  }
  json += "\n]\n";
  auto arch = mlir::weft::parseGpuArch("sm_90a");
  std::string source = builder.source();
  auto compiled = mlir::weft::compileKernelModule(builder, source, *arch);
  if (!compiled) {
    llvm::errs() << llvm::toString(compiled.takeError()) << "\n";
    return 1;
  }
  if (!writeBytes(dir + "/kernels.cu", source.data(), source.size()) ||
      !writeBytes(dir + "/kernels.sm_90a.cubin", compiled->cubin.data(),
                  compiled->cubin.size()) ||
      !writeBytes(dir + "/kernels.compute_90.ptx", compiled->ptx.data(),
                  compiled->ptx.size()) ||
      !writeBytes(dir + "/cases.json", json.data(), json.size())) {
    llvm::errs() << "cannot write into " << dir << "\n";
    return 1;
  }
  llvm::outs() << elementwiseCases().size() << " cases, "
               << builder.numKernels() << " kernels written to " << dir << "\n";
  return 0;
}
