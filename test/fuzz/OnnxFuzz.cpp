// libFuzzer target: the ONNX loader and importer (`weft compile`'s first
// step) on hostile models. Each input is written as model.onnx into a
// directory that also holds weights.bin (2 MiB), so that external data can
// resolve; the model is imported with every symbolic input dim bound, and an
// imported module is verified and printed.
//
// The custom mutator works on the protobuf: it parses the input as a
// ModelProto and changes what a hand-edited or hostile model would (op types,
// node inputs and outputs, attributes and their types, initializer dims,
// dtypes, data and external-data fields, declared input and output types,
// opset imports, node order), falling back to libFuzzer's byte mutations when
// the input does not parse or one in eight times. The seeds
// (test/fuzz/corpus/onnx, make_onnx_corpus.py) are real models.
#include "compiler/onnx/Importer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/raw_ostream.h"

#include <onnx/onnx_pb.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);

// LLVM's allocators poison their free slab memory in inline code when built
// with ASan: code inlined here does, the same code inside the (uninstrumented)
// MLIR library does not unpoison, and MLIR's own copies then report
// use-after-poison on memory that is allocated. Manual poisoning is off.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

namespace {

const std::string &modelDir() {
  static const std::string dir = [] {
    std::string d = "/tmp/weft-fuzz-onnx-" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0700);
    std::vector<char> weights(size_t(2) << 20, 0x3c); // 0.0115 as f32/bf16
    if (std::FILE *f = std::fopen((d + "/weights.bin").c_str(), "wb")) {
      std::fwrite(weights.data(), 1, weights.size(), f);
      std::fclose(f);
    }
    std::atexit([] {
      std::string dir = "/tmp/weft-fuzz-onnx-" + std::to_string(::getpid());
      std::remove((dir + "/model.onnx").c_str());
      std::remove((dir + "/weights.bin").c_str());
      ::rmdir(dir.c_str());
    });
    return d;
  }();
  return dir;
}

// One context for many inputs (creating one per input would dominate the
// run), replaced now and then so that what it uniques does not pile up.
mlir::MLIRContext &context() {
  static std::unique_ptr<mlir::MLIRContext> ctx;
  static unsigned uses = 0;
  if (!ctx || ++uses % 2048 == 0) {
    ctx = std::make_unique<mlir::MLIRContext>(
        mlir::MLIRContext::Threading::DISABLED);
    ctx->getDiagEngine().registerHandler([](mlir::Diagnostic &) {});
  }
  return *ctx;
}

template <typename Rng> int64_t interestingInt(Rng &rng) {
  static constexpr std::array<int64_t, 16> values = {
      0,
      1,
      -1,
      2,
      -2,
      3,
      4,
      7,
      64,
      -7,
      13,
      int64_t(1) << 31,
      (int64_t(1) << 40) + 1,
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min(),
      -(int64_t(1) << 32)};
  return values[rng() % values.size()];
}

template <typename Rng> float interestingFloat(Rng &rng) {
  static constexpr std::array<float, 8> values = {
      0.0f,
      -0.0f,
      1.0f,
      -1.0f,
      1e30f,
      1e-30f,
      std::numeric_limits<float>::quiet_NaN(),
      std::numeric_limits<float>::infinity()};
  return values[rng() % values.size()];
}

// Names of values a node could read: graph inputs, initializers, outputs.
std::vector<std::string> valueNames(const onnx::GraphProto &g) {
  std::vector<std::string> names = {""};
  for (const auto &v : g.input())
    names.push_back(v.name());
  for (const auto &t : g.initializer())
    names.push_back(t.name());
  for (const auto &n : g.node())
    for (const auto &o : n.output())
      names.push_back(o);
  return names;
}

constexpr std::array<const char *, 24> kOpTypes = {"MatMul",
                                                   "Add",
                                                   "Reshape",
                                                   "Transpose",
                                                   "Gather",
                                                   "Softmax",
                                                   "Concat",
                                                   "Slice",
                                                   "Split",
                                                   "Expand",
                                                   "Where",
                                                   "Cast",
                                                   "ReduceSum",
                                                   "Squeeze",
                                                   "Unsqueeze",
                                                   "Range",
                                                   "Trilu",
                                                   "Gemm",
                                                   "Shape",
                                                   "Tile",
                                                   "CumSum",
                                                   "Constant",
                                                   "LayerNormalization",
                                                   "Conv"};

constexpr std::array<const char *, 20> kAttrNames = {"axis",
                                                     "axes",
                                                     "perm",
                                                     "keepdims",
                                                     "to",
                                                     "transA",
                                                     "transB",
                                                     "alpha",
                                                     "beta",
                                                     "epsilon",
                                                     "value",
                                                     "upper",
                                                     "split",
                                                     "num_outputs",
                                                     "allowzero",
                                                     "exclusive",
                                                     "reverse",
                                                     "stash_type",
                                                     "noop_with_empty_axes",
                                                     "interleaved"};

template <typename Rng>
void mutateAttribute(onnx::AttributeProto &a, Rng &rng) {
  switch (rng() % 7) {
  case 0:
    a.set_i(interestingInt(rng));
    a.set_type(onnx::AttributeProto::INT);
    break;
  case 1:
    a.set_f(interestingFloat(rng));
    a.set_type(onnx::AttributeProto::FLOAT);
    break;
  case 2: // ints: change, add or drop one
    a.set_type(onnx::AttributeProto::INTS);
    if (a.ints_size() && rng() % 2)
      a.set_ints(rng() % a.ints_size(), interestingInt(rng));
    else if (rng() % 2)
      a.add_ints(interestingInt(rng));
    else
      a.clear_ints();
    break;
  case 3:
    a.set_s(rng() % 2 ? "NOTSET" : std::string(rng() % 5, '\xff'));
    a.set_type(onnx::AttributeProto::STRING);
    break;
  case 4: // a type that disagrees with the value held
    a.set_type(onnx::AttributeProto::AttributeType(rng() % 15));
    break;
  case 5:
    a.set_name(kAttrNames[rng() % kAttrNames.size()]);
    break;
  default: { // a tensor value, as Constant's
    onnx::TensorProto *t = a.mutable_t();
    a.set_type(onnx::AttributeProto::TENSOR);
    t->set_data_type(int(rng() % 17));
    t->clear_dims();
    for (unsigned i = 0, n = rng() % 3; i < n; ++i)
      t->add_dims(rng() % 4 ? int64_t(rng() % 4) : interestingInt(rng));
    t->set_raw_data(std::string(rng() % 40, char(rng())));
    break;
  }
  }
}

template <typename Rng> void mutateTensor(onnx::TensorProto &t, Rng &rng) {
  switch (rng() % 6) {
  case 0:
    if (t.dims_size())
      t.set_dims(rng() % t.dims_size(),
                 rng() % 2 ? int64_t(rng() % 8) : interestingInt(rng));
    break;
  case 1:
    if (rng() % 2 || !t.dims_size())
      t.add_dims(rng() % 4);
    else
      t.mutable_dims()->RemoveLast();
    break;
  case 2:
    t.set_data_type(int(rng() % 26));
    break;
  case 3:
    if (t.has_raw_data())
      t.mutable_raw_data()->resize(rng() % (t.raw_data().size() + 8));
    else
      t.add_float_data(interestingFloat(rng));
    break;
  case 4: { // external data: location, offset or length
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    if (!t.external_data_size()) {
      auto *e = t.add_external_data();
      e->set_key("location");
      e->set_value("weights.bin");
    }
    auto *e = t.mutable_external_data(rng() % t.external_data_size());
    static constexpr std::array<const char *, 6> values = {
        "weights.bin", "../weights.bin",     "/etc/passwd", "",
        "-1",          "9223372036854775804"};
    if (rng() % 2)
      e->set_value(values[rng() % values.size()]);
    else
      e->set_value(std::to_string(rng() % 2 ? int64_t(rng() % (3 << 20))
                                            : interestingInt(rng)));
    break;
  }
  default:
    t.set_data_location(onnx::TensorProto::DataLocation(rng() % 2));
    break;
  }
}

template <typename Rng>
void mutateValueInfo(onnx::ValueInfoProto &v, Rng &rng) {
  auto *tt = v.mutable_type()->mutable_tensor_type();
  switch (rng() % 4) {
  case 0:
    tt->set_elem_type(int(rng() % 26));
    break;
  case 1:
    if (tt->shape().dim_size()) {
      auto *d =
          tt->mutable_shape()->mutable_dim(rng() % tt->shape().dim_size());
      if (rng() % 3)
        d->set_dim_value(rng() % 2 ? int64_t(rng() % 8) : interestingInt(rng));
      else
        d->set_dim_param(rng() % 2 ? "batch" : "");
    }
    break;
  case 2:
    if (rng() % 2)
      tt->mutable_shape()->add_dim()->set_dim_value(rng() % 4);
    else
      tt->clear_shape();
    break;
  default:
    v.set_name(rng() % 2 ? "" : v.name() + "_");
    break;
  }
}

template <typename Rng> void mutateModel(onnx::ModelProto &m, Rng &rng) {
  onnx::GraphProto &g = *m.mutable_graph();
  int nodes = g.node_size();
  switch (rng() % 12) {
  case 0:
    if (nodes)
      g.mutable_node(rng() % nodes)
          ->set_op_type(kOpTypes[rng() % kOpTypes.size()]);
    break;
  case 1: { // a node reads another value, or a different number of them
    if (!nodes)
      break;
    onnx::NodeProto &n = *g.mutable_node(rng() % nodes);
    std::vector<std::string> names = valueNames(g);
    const std::string &pick = names[rng() % names.size()];
    if (n.input_size() && rng() % 3)
      n.set_input(rng() % n.input_size(), pick);
    else if (rng() % 2)
      n.add_input(pick);
    else if (n.input_size())
      n.mutable_input()->RemoveLast();
    break;
  }
  case 2: { // a node's outputs: renamed to an existing value, added, dropped
    if (!nodes)
      break;
    onnx::NodeProto &n = *g.mutable_node(rng() % nodes);
    std::vector<std::string> names = valueNames(g);
    if (n.output_size() && rng() % 2)
      n.set_output(rng() % n.output_size(), names[rng() % names.size()]);
    else if (rng() % 2)
      n.add_output("extra" + std::to_string(rng() % 4));
    else if (n.output_size())
      n.mutable_output()->RemoveLast();
    break;
  }
  case 3:
  case 4: { // attributes
    if (!nodes)
      break;
    onnx::NodeProto &n = *g.mutable_node(rng() % nodes);
    if (n.attribute_size() && rng() % 4)
      mutateAttribute(*n.mutable_attribute(rng() % n.attribute_size()), rng);
    else if (rng() % 2 || !n.attribute_size()) {
      onnx::AttributeProto *a = n.add_attribute();
      a->set_name(kAttrNames[rng() % kAttrNames.size()]);
      mutateAttribute(*a, rng);
    } else {
      n.mutable_attribute()->DeleteSubrange(rng() % n.attribute_size(), 1);
    }
    break;
  }
  case 5:
  case 6:
    if (g.initializer_size())
      mutateTensor(*g.mutable_initializer(rng() % g.initializer_size()), rng);
    break;
  case 7:
    if (g.input_size() && rng() % 2)
      mutateValueInfo(*g.mutable_input(rng() % g.input_size()), rng);
    else if (g.output_size())
      mutateValueInfo(*g.mutable_output(rng() % g.output_size()), rng);
    break;
  case 8: { // opset imports
    if (!m.opset_import_size() || rng() % 4 == 0) {
      auto *o = m.add_opset_import();
      o->set_domain(rng() % 2 ? "" : "com.microsoft");
      o->set_version(rng() % 25);
    } else {
      m.mutable_opset_import(rng() % m.opset_import_size())
          ->set_version(rng() % 2 ? int64_t(rng() % 25) : interestingInt(rng));
    }
    break;
  }
  case 9: // delete or duplicate a node
    if (nodes && rng() % 2)
      g.mutable_node()->DeleteSubrange(rng() % nodes, 1);
    else if (nodes)
      *g.add_node() = g.node(rng() % nodes);
    break;
  case 10: // swap two nodes: a value read before it is produced
    if (nodes > 1)
      g.mutable_node()->SwapElements(rng() % nodes, rng() % nodes);
    break;
  default: // domains and graph-level oddities
    if (nodes && rng() % 2)
      g.mutable_node(rng() % nodes)
          ->set_domain(rng() % 2 ? "com.microsoft" : "ai.onnx");
    else if (g.output_size() && rng() % 2)
      *g.add_output() = g.output(rng() % g.output_size());
    else
      m.set_ir_version(rng() % 12);
    break;
  }
}

} // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned seed) {
  std::minstd_rand rng(seed);
  onnx::ModelProto model;
  if (rng() % 8 == 0 || !model.ParseFromArray(data, int(size)))
    return LLVMFuzzerMutate(data, size, maxSize);
  for (unsigned i = 0, n = 1 + rng() % 3; i < n; ++i)
    mutateModel(model, rng);
  std::string out;
  if (!model.SerializeToString(&out) || out.size() > maxSize)
    return LLVMFuzzerMutate(data, size, maxSize);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string path = modelDir() + "/model.onnx";
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);

  // Bind every symbolic dim of the graph's inputs, as --dim would.
  mlir::weft::ImportOptions options;
  onnx::ModelProto model;
  if (model.ParseFromArray(data, int(size)))
    for (const auto &in : model.graph().input())
      for (const auto &d : in.type().tensor_type().shape().dim())
        if (d.has_dim_param())
          options.dims[d.dim_param()] = 2;

  mlir::MLIRContext &ctx = context();
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::weft::importOnnxModel(ctx, path, options);
  if (module)
    module->print(llvm::nulls());
  return 0;
}
