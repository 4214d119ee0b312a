// weft-gen-host-kernels OUT.cpp: writes the kernels of the codegen test
// cases as host C++ (KernelDialect::Host), with the table the tests call
// them through.
#include "ElementwiseCases.h"

#include "compiler/codegen/CudaCodegen.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

using namespace weft::codegen_test;

int main(int argc, char **argv) {
  if (argc != 2) {
    llvm::errs() << "usage: weft-gen-host-kernels OUT.cpp\n";
    return 2;
  }
  mlir::weft::KernelModuleBuilder builder(mlir::weft::KernelDialect::Host);
  std::vector<std::pair<std::string, std::string>> entries; // case, kernel
  std::vector<size_t> arity;
  for (const ElementwiseCase &c : elementwiseCases()) {
    auto name =
        builder.addElementwise(c.spec, std::string("case ").append(c.name));
    if (!name) {
      llvm::errs() << "weft-gen-host-kernels: "
                   << llvm::toString(name.takeError()) << "\n";
      return 1;
    }
    entries.emplace_back(c.name, *name);
    arity.push_back(c.spec.inputs.size());
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(argv[1], ec, llvm::sys::fs::OF_Text);
  if (ec) {
    llvm::errs() << "weft-gen-host-kernels: cannot write '" << argv[1]
                 << "': " << ec.message() << "\n";
    return 1;
  }
  os << builder.source()
     << "\n// The tests' table: case name, kernel, caller.\n"
     << "#include \"ElementwiseCases.h\"\n\n"
     << "namespace weft::codegen_test {\nnamespace {\n";
  for (auto [i, entry] : llvm::enumerate(entries)) {
    os << "void call" << i << "(void *out, const void *const *in) {\n  "
       << entry.second << "(out";
    for (size_t j = 0; j < arity[i]; ++j)
      os << ", in[" << j << "]";
    os << ");\n}\n";
  }
  os << "} // namespace\n\nextern const HostKernel kHostKernels[] = {\n";
  for (auto [i, entry] : llvm::enumerate(entries))
    os << "    {\"" << entry.first << "\", \"" << entry.second << "\", call"
       << i << "},\n";
  os << "};\nextern const size_t kNumHostKernels = " << entries.size()
     << ";\n} // namespace weft::codegen_test\n";
  return 0;
}
