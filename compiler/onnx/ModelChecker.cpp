// Checks of an ONNX model against the format and the operator schemas.
#include "compiler/onnx/ModelChecker.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/ConvertUTF.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unordered_map>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#ifdef WEFT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

using llvm::createStringError;
using llvm::inconvertibleErrorCode;

namespace {

/// Initializers larger than this lose their bytes in the copy given to
/// shape inference: it reads only small constant inputs (shapes, axes).
constexpr size_t kInferenceKeepBytes = 64 * 1024;

llvm::Error refuse(const std::string &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

std::string printable(const std::string &s) {
  std::string out;
  for (unsigned char c : s)
    if (c >= 0x20 && c < 0x7f)
      out += char(c);
    else
      out += "\\x" + llvm::utohexstr(c, /*LowerCase=*/true, /*Width=*/2);
  return out;
}

llvm::Error checkName(const std::string &name, const std::string &what) {
  const llvm::UTF8 *begin = reinterpret_cast<const llvm::UTF8 *>(name.data());
  if (llvm::isLegalUTF8String(&begin, begin + name.size()))
    return llvm::Error::success();
  return refuse(what + " '" + printable(name) + "' is not valid UTF-8");
}

llvm::Error checkNames(const onnx::GraphProto &graph) {
  for (const auto &node : graph.node()) {
    if (auto err = checkName(node.name(), "node name"))
      return err;
    for (const std::string &v : node.input())
      if (auto err =
              checkName(v, "node '" + printable(node.name()) + "': input name"))
        return err;
    for (const std::string &v : node.output())
      if (auto err = checkName(v, "node '" + printable(node.name()) +
                                      "': output name"))
        return err;
  }
  for (const auto *list : {&graph.input(), &graph.output()})
    for (const auto &v : *list)
      if (auto err = checkName(v.name(), "graph value name"))
        return err;
  for (const auto &init : graph.initializer())
    if (auto err = checkName(init.name(), "initializer name"))
      return err;
  return llvm::Error::success();
}

llvm::Error checkStructure(const onnx::ModelProto &model) {
  llvm::StringSet<> domains;
  for (const auto &imp : model.opset_import()) {
    std::string domain = imp.domain() == "ai.onnx" ? "" : imp.domain();
    if (!domains.insert(domain).second)
      return refuse(
          "opset_import lists the " +
          (domain.empty() ? std::string("default ONNX") : "'" + domain + "'") +
          " domain twice");
  }
  const onnx::GraphProto &graph = model.graph();
  llvm::StringSet<> outputs;
  for (const auto &out : graph.output())
    if (!outputs.insert(out.name()).second)
      return refuse("graph output '" + out.name() + "' is listed twice");
  // Every value has one definition (ONNX graphs are SSA): a graph input, an
  // initializer (which may also be listed as an input, its default) or one
  // node's output. A second one silently won before.
  llvm::StringMap<std::string> defined;
  for (const auto &in : graph.input())
    if (!defined.try_emplace(in.name(), "a graph input").second)
      return refuse("graph input '" + in.name() + "' is listed twice");
  llvm::StringSet<> initializers;
  for (const auto &init : graph.initializer()) {
    if (!initializers.insert(init.name()).second)
      return refuse("initializer '" + init.name() + "' is given twice");
    defined.try_emplace(init.name(), "an initializer");
  }
  for (const auto &node : graph.node())
    for (const std::string &out : node.output()) {
      if (out.empty())
        continue; // an optional output left out
      auto [it, fresh] = defined.try_emplace(
          out, "node '" + node.name() + "' (" + node.op_type() + ")");
      if (!fresh)
        return refuse("node '" + node.name() + "' (" + node.op_type() +
                      "): output '" + out + "' is already " + it->second +
                      (llvm::StringRef(it->second).starts_with("node")
                           ? "'s output"
                           : ""));
    }
  return checkNames(graph);
}

/// The default-domain opset, and the newest the linked ONNX library knows.
std::pair<int, int> opsets(const onnx::ModelProto &model) {
  int opset = 0;
  for (const auto &imp : model.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx")
      opset = int(imp.version());
  auto ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = ranges.find("");
  return {opset, it == ranges.end() ? 0 : it->second.second};
}

llvm::Error checkSchemas(const onnx::ModelProto &model) {
  std::unordered_map<std::string, int> imports;
  for (const auto &imp : model.opset_import())
    imports[imp.domain() == "ai.onnx" ? "" : imp.domain()] = int(imp.version());
  onnx::checker::CheckerContext ctx;
  ctx.set_ir_version(int(model.ir_version()));
  ctx.set_opset_imports(imports);
  onnx::checker::LexicalScopeContext scope;
  for (const auto &node : model.graph().node()) {
    // Nodes of other domains (Microsoft's, exporters' functions) have no
    // schema here; the importer refuses what it does not support.
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      continue;
    try {
      onnx::checker::check_node(node, ctx, scope);
    } catch (const std::exception &e) {
      return refuse("node '" + node.name() + "' (" + node.op_type() +
                    "): not valid ONNX: " + e.what());
    }
  }
  // Strict inference (on forChecker's copy, whose large initializers lost
  // their bytes).
  onnx::ModelProto copy = model;
  try {
    onnx::ShapeInferenceOptions options(/*check_type=*/true,
                                        /*strict_mode=*/1);
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       options);
  } catch (const std::exception &e) {
    return refuse(std::string("not valid ONNX: ") + e.what());
  }
  return llvm::Error::success();
}

/// Operators whose inputs, outputs or attribute names changed after opset
/// 17 (from ONNX's operator changelog, opsets 18 to 24): at a newer opset
/// only their attribute types are checked against opset 17's schema.
bool signatureChangedAfter17(const std::string &op) {
  static const std::set<std::string> changed = {
      // 18: axes became an input; Split gained num_outputs; Pad an axes
      // input; Resize antialias, axes and keep_aspect_ratio_policy; LpPool
      // ceil_mode.
      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
      "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Split",
      "Pad", "Resize", "LpPool", "CenterCropPad", "Col2Im",
      // 19: AveragePool dilations; Cast and CastLike saturate; quantization.
      "AveragePool", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear",
      // 20: DFT's dft_length and axis inputs; GridSample; 21:
      // GroupNormalization stash_type, block quantization; later: the
      // operators added or reworked since (Attention, RMSNormalization,
      // RotaryEmbedding, TopK, Swish).
      "DFT", "GridSample", "GroupNormalization", "QLinearMatMul", "Attention",
      "RMSNormalization", "RotaryEmbedding", "TopK", "Swish", "TensorScatter",
      "If", "Loop", "Scan"};
  return changed.count(op) > 0;
}

/// For an opset newer than the library's: what the newest known schema
/// (opset 17's) says of each node. ONNX never retypes an attribute name, so
/// attribute types are checked for every operator; input and output counts
/// and attribute names only for operators whose signature has not changed
/// since.
llvm::Error checkNewerOpset(const onnx::ModelProto &model, int known) {
  const auto *registry = onnx::OpSchemaRegistry::Instance();
  for (const auto &node : model.graph().node()) {
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      continue;
    const onnx::OpSchema *schema =
        registry->GetSchema(node.op_type(), known, "");
    if (!schema)
      continue;
    auto bad = [&](const std::string &why) {
      return refuse("node '" + node.name() + "' (" + node.op_type() +
                    "): not valid ONNX: " + why);
    };
    if (!signatureChangedAfter17(node.op_type())) {
      int inputs = node.input_size(), outputs = node.output_size();
      if (inputs < schema->min_input() || inputs > schema->max_input())
        return bad("it has " + std::to_string(inputs) +
                   " inputs; the operator takes " +
                   std::to_string(schema->min_input()) +
                   (schema->max_input() == schema->min_input()
                        ? ""
                        : " to " + std::to_string(schema->max_input())));
      if (outputs < schema->min_output() || outputs > schema->max_output())
        return bad("it has " + std::to_string(outputs) +
                   " outputs; the operator gives " +
                   std::to_string(schema->min_output()) +
                   (schema->max_output() == schema->min_output()
                        ? ""
                        : " to " + std::to_string(schema->max_output())));
      for (const auto &attr : node.attribute())
        if (!schema->attributes().count(attr.name()))
          return bad("unknown attribute '" + attr.name() + "'");
    }
    for (const auto &attr : node.attribute()) {
      auto it = schema->attributes().find(attr.name());
      if (it == schema->attributes().end() || attr.type() == it->second.type)
        continue;
      return refuse("node '" + node.name() + "' (" + node.op_type() +
                    "): not valid ONNX: attribute '" + attr.name() + "' is " +
                    onnx::AttributeProto::AttributeType_Name(attr.type()) +
                    ", the operator's schema says " +
                    onnx::AttributeProto::AttributeType_Name(it->second.type));
    }
  }
  return llvm::Error::success();
}

/// The ONNX library's checker and shape inference index shapes with
/// attribute values they have not range-checked (e.g. LayerNormalization's
/// axis for its Mean output): a model that crashes them must be refused, not
/// crash weft. They run in a child process, forked once (after the schema
/// registry is built) and fed one model at a time through a socket; a child
/// that dies is reported as the model's refusal and replaced on next use.
class CheckerProcess {
public:
  static CheckerProcess &get() {
    static CheckerProcess process;
    return process;
  }

  /// Checks `model` (known: the library's newest opset, or 0 for a full
  /// check) in the child.
  llvm::Error check(const onnx::ModelProto &model, int known) {
    std::lock_guard<std::mutex> lock(mutex);
    if (pid <= 0 && !start())
      return run(model, known); // no child: check in this process
    std::string request;
    if (!model.SerializeToString(&request))
      return refuse("not valid ONNX: the model does not serialize");
    uint64_t header[2] = {uint64_t(known), request.size()};
    if (!writeAll(fd, header, sizeof(header)) ||
        !writeAll(fd, request.data(), request.size()))
      return died();
    uint64_t length = 0;
    if (!readAll(fd, &length, sizeof(length)))
      return died();
    std::string message(length, '\0');
    if (!readAll(fd, message.data(), length))
      return died();
    return message.empty() ? llvm::Error::success() : refuse(message);
  }

  static llvm::Error run(const onnx::ModelProto &model, int known) {
    return known ? checkNewerOpset(model, known) : checkSchemas(model);
  }

private:
  bool start() {
    (void)onnx::OpSchemaRegistry::Schema("Add", 17, ""); // build it once
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      return false;
    pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return false;
    }
    if (pid == 0) {
      ::close(fds[0]);
      serve(fds[1]); // never returns
    }
    ::close(fds[1]);
    fd = fds[0];
    return true;
  }

  [[noreturn]] static void serve(int fd) {
    // A crash ends the child quietly; the parent reports it.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE})
      std::signal(sig, SIG_DFL);
#ifdef WEFT_ASAN
    // So does a sanitizer's report: not the death callback the parent
    // installed (a fuzzer's would record the parent's input as a crash).
    __sanitizer_set_death_callback(nullptr);
#endif
    for (;;) {
      uint64_t header[2];
      if (!readAll(fd, header, sizeof(header)))
        ::_exit(0); // the parent is done
      std::string request(header[1], '\0');
      onnx::ModelProto model;
      if (!readAll(fd, request.data(), request.size()) ||
          !model.ParseFromString(request))
        ::_exit(2);
      llvm::Error err = run(model, int(header[0]));
      std::string message = err ? llvm::toString(std::move(err)) : "";
      uint64_t length = message.size();
      if (!writeAll(fd, &length, sizeof(length)) ||
          !writeAll(fd, message.data(), message.size()))
        ::_exit(0);
    }
  }

  /// The child ended mid-request: reap it and say how.
  llvm::Error died() {
    ::close(fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = 0;
    if (WIFSIGNALED(status))
      return refuse("not valid ONNX: the ONNX library's checker crashed on "
                    "this model (" +
                    std::string(::strsignal(WTERMSIG(status))) + ")");
    return refuse("not valid ONNX: the ONNX library's checker failed on this "
                  "model (exit status " +
                  std::to_string(WEXITSTATUS(status)) + ")");
  }

  /// Calls `io(p, n)` (read or send) until `size` bytes went through.
  template <typename Io> static bool transferAll(char *p, size_t size, Io io) {
    while (size) {
      ssize_t n = io(p, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      p += n;
      size -= size_t(n);
    }
    return true;
  }

  static bool readAll(int fd, void *data, size_t size) {
    return transferAll(static_cast<char *>(data), size,
                       [fd](char *p, size_t n) { return ::read(fd, p, n); });
  }

  static bool writeAll(int fd, const void *data, size_t size) {
    // MSG_NOSIGNAL: a dead peer is an error here, not SIGPIPE.
    return transferAll(
        const_cast<char *>(static_cast<const char *>(data)), size,
        [fd](char *p, size_t n) { return ::send(fd, p, n, MSG_NOSIGNAL); });
  }

  std::mutex mutex;
  pid_t pid = 0;
  int fd = -1; // a socket to the child
};

/// What the child needs of the model: large initializers lose their bytes
/// (inference reads only small constant inputs: shapes, axes).
onnx::ModelProto forChecker(const onnx::ModelProto &model) {
  onnx::ModelProto copy;
  *copy.mutable_opset_import() = model.opset_import();
  copy.set_ir_version(model.ir_version());
  onnx::GraphProto &graph = *copy.mutable_graph();
  graph = model.graph();
  for (auto &init : *graph.mutable_initializer())
    if (init.raw_data().size() > kInferenceKeepBytes) {
      init.clear_raw_data();
      init.set_data_location(onnx::TensorProto::EXTERNAL);
    }
  return copy;
}

} // namespace

llvm::Error mlir::weft::checkOnnxModel(const onnx::ModelProto &model) {
  if (auto err = checkStructure(model))
    return err;
  auto [opset, known] = opsets(model);
  // The schemas of a newer opset than the library's differ for some
  // operators (inputs turned attributes and back): checking whole nodes
  // against older ones would refuse valid models, so there only what has
  // not changed is checked.
  if (opset == 0)
    return llvm::Error::success();
  if (opset > known)
    return CheckerProcess::get().check(forChecker(model), known);
  return CheckerProcess::get().check(forChecker(model), 0);
}
