// Helpers of the runtime unit tests: temp dirs, tensors, one-step runs.
#ifndef WEFT_TEST_UNIT_RUNTIMETESTUTIL_H
#define WEFT_TEST_UNIT_RUNTIMETESTUTIL_H

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/StepAttrs.h"
#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/support/Float16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace weft::runtime::test {

/// A directory under the system's temp dir, removed with its contents.
class TempDir {
public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "weft-rt-XXXXXX").string();
    path = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string &name) const { return path + "/" + name; }
  std::string path;
};

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// A tensor owned by a test.
struct HostTensor {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<std::byte> bytes;

  InTensor view() const { return InTensor{dtype, shape, bytes.data()}; }
  std::string str() const {
    return std::string(reinterpret_cast<const char *>(bytes.data()),
                       bytes.size());
  }
};

template <typename T>
HostTensor makeTensor(DType dtype, Shape shape, const std::vector<T> &values) {
  HostTensor t{dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

inline HostTensor f32(Shape shape, std::vector<float> v) {
  return makeTensor(DType::F32, std::move(shape), v);
}
inline HostTensor i64(Shape shape, std::vector<int64_t> v) {
  return makeTensor(DType::I64, std::move(shape), v);
}
inline HostTensor i32(Shape shape, std::vector<int32_t> v) {
  return makeTensor(DType::I32, std::move(shape), v);
}
inline HostTensor boolean(Shape shape, std::vector<uint8_t> v) {
  return makeTensor(DType::BOOL, std::move(shape), v);
}
inline HostTensor f16(Shape shape, const std::vector<float> &v) {
  std::vector<uint16_t> h;
  for (float x : v)
    h.push_back(floatToHalf(x));
  return makeTensor(DType::F16, std::move(shape), h);
}
inline HostTensor bf16(Shape shape, const std::vector<float> &v) {
  std::vector<uint16_t> h;
  for (float x : v)
    h.push_back(floatToBf16(x));
  return makeTensor(DType::BF16, std::move(shape), h);
}

/// Elements of a float tensor (f32, f16, bf16) as floats.
inline std::vector<float> floats(const HostTensor &t) {
  size_t n = t.bytes.size() / dtypeSize(t.dtype);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.dtype == DType::F32) {
      std::memcpy(&out[i], t.bytes.data() + 4 * i, 4);
      continue;
    }
    uint16_t h;
    std::memcpy(&h, t.bytes.data() + 2 * i, 2);
    out[i] = t.dtype == DType::F16 ? halfToFloat(h) : bf16ToFloat(h);
  }
  return out;
}

/// Elements of an integer tensor (i64, i32, bool) as int64.
inline std::vector<int64_t> ints(const HostTensor &t) {
  size_t size = dtypeSize(t.dtype), n = t.bytes.size() / size;
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (size == 8) {
      std::memcpy(&out[i], t.bytes.data() + 8 * i, 8);
    } else if (size == 4) {
      int32_t v;
      std::memcpy(&v, t.bytes.data() + 4 * i, 4);
      out[i] = v;
    } else {
      out[i] = static_cast<int64_t>(t.bytes[i]);
    }
  }
  return out;
}

/// The attrs message (StepAttrs.h) of `step`'s kind, set (empty) if absent.
inline google::protobuf::Message &stepAttrs(artifact::Step &step) {
  artifact::Step::AttrsCase c = attrsCaseFor(step.kind());
  if (c == artifact::Step::ATTRS_NOT_SET)
    throw std::logic_error(artifact::Step::Kind_Name(step.kind()) +
                           " takes no attributes");
  const google::protobuf::FieldDescriptor *field =
      artifact::Step::descriptor()->FindFieldByNumber(static_cast<int>(c));
  return *step.GetReflection()->MutableMessage(&step, field);
}

/// The field `key` of `step`'s attrs message: the tests name attributes as
/// docs/artifact.md's table does; an unknown name is a test bug.
inline const google::protobuf::FieldDescriptor *attrField(artifact::Step &step,
                                                          const char *key) {
  google::protobuf::Message &attrs = stepAttrs(step);
  const google::protobuf::FieldDescriptor *f =
      attrs.GetDescriptor()->FindFieldByName(key);
  if (!f)
    throw std::logic_error(attrs.GetTypeName() + " has no field '" + key + "'");
  return f;
}

/// Sets an integer or boolean attribute of `step`.
inline void setAttr(artifact::Step &step, const char *key, int64_t v) {
  const google::protobuf::FieldDescriptor *f = attrField(step, key);
  google::protobuf::Message &attrs = stepAttrs(step);
  if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_BOOL)
    attrs.GetReflection()->SetBool(&attrs, f, v != 0);
  else
    attrs.GetReflection()->SetInt64(&attrs, f, v);
}

/// Sets a float attribute of `step`.
inline void setAttr(artifact::Step &step, const char *key, double v) {
  google::protobuf::Message &attrs = stepAttrs(step);
  attrs.GetReflection()->SetDouble(&attrs, attrField(step, key), v);
}

/// Sets a list attribute of `step` (replacing its values).
inline void setAttr(artifact::Step &step, const char *key, const Shape &v) {
  const google::protobuf::FieldDescriptor *f = attrField(step, key);
  google::protobuf::Message &attrs = stepAttrs(step);
  attrs.GetReflection()->ClearField(&attrs, f);
  for (int64_t x : v)
    attrs.GetReflection()->AddInt64(&attrs, f, x);
}

/// A step of `kind` carrying its attrs message, with the named integer,
/// float and list attributes set.
inline artifact::Step
makeStep(artifact::Step::Kind kind,
         std::initializer_list<std::pair<const char *, int64_t>> intAttrs = {},
         std::initializer_list<std::pair<const char *, double>> floatAttrs = {},
         std::initializer_list<std::pair<const char *, Shape>> listAttrs = {}) {
  artifact::Step step;
  step.set_kind(kind);
  step.set_name("test");
  if (attrsCaseFor(kind) != artifact::Step::ATTRS_NOT_SET)
    stepAttrs(step);
  for (auto &[k, v] : intAttrs)
    setAttr(step, k, v);
  for (auto &[k, v] : floatAttrs)
    setAttr(step, k, v);
  for (auto &[k, v] : listAttrs)
    setAttr(step, k, v);
  return step;
}

/// An ELEMENTWISE instruction.
inline artifact::Instr instr(artifact::Instr::Op op, DType dtype,
                             std::initializer_list<uint32_t> args = {},
                             uint32_t index = 0) {
  artifact::Instr in;
  in.set_op(op);
  in.set_dtype(dtype);
  for (uint32_t a : args)
    in.add_args(a);
  in.set_index(index);
  return in;
}

/// Runs one step with fresh outputs of the given dtypes and shapes; the
/// outputs, or the kernel's error. `threads` 0 runs serially.
inline Result<std::vector<HostTensor>>
runKernel(const artifact::Step &step, const std::vector<HostTensor> &inputs,
          const std::vector<std::pair<DType, Shape>> &outputs,
          unsigned threads = 2) {
  std::vector<InTensor> ins;
  for (const HostTensor &t : inputs)
    ins.push_back(t.view());
  std::vector<HostTensor> outs;
  for (auto &[dtype, shape] : outputs) {
    HostTensor t{dtype, shape, {}};
    t.bytes.resize(numElements(shape) * dtypeSize(dtype));
    outs.push_back(std::move(t));
  }
  std::vector<OutTensor> outViews;
  for (HostTensor &t : outs)
    outViews.push_back(OutTensor{t.dtype, t.shape, t.bytes.data()});
  ThreadPool pool(threads ? threads : 1);
  cpu::StepArgs args{step, ins, outViews, threads ? &pool : nullptr};
  if (Status s = cpu::runStep(args); !s.ok())
    return s;
  return outs;
}

/// The single output of a step that must succeed.
inline HostTensor runOne(const artifact::Step &step,
                         const std::vector<HostTensor> &inputs, DType dtype,
                         const Shape &shape) {
  auto out = runKernel(step, inputs, {{dtype, shape}});
  EXPECT_TRUE(out.ok()) << out.message();
  return out.ok() ? (*out)[0] : HostTensor{dtype, shape, {}};
}

/// The error of a step that must fail.
inline std::string runError(const artifact::Step &step,
                            const std::vector<HostTensor> &inputs, DType dtype,
                            const Shape &shape) {
  auto out = runKernel(step, inputs, {{dtype, shape}});
  EXPECT_FALSE(out.ok());
  return out.ok() ? "" : out.message();
}

/// A plan whose entry "attend" is one PAGED_ATTENTION (one head of dim 2,
/// blocks of 2 tokens, one row of 2 blocks): buffers 0-2 the inputs q, k,
/// v [1, 1, 1, 2] f32, 3 and 4 the KV-cache STATE buffers "k_cache" and
/// "v_cache" [0, 2, 1, 2] f32 (their blocks are the session's), 5-7 the
/// inputs positions, token_seq and block_tables [1, 2], 8 the output.
inline artifact::Plan pagedAttentionPlan() {
  using artifact::Buffer;
  artifact::Plan plan;
  plan.set_format_version(kArtifactFormatVersion);
  plan.set_arena_bytes(64 * 9);
  artifact::EntryPoint *entry = plan.add_entry_points();
  entry->set_name("attend");
  artifact::Step *step = entry->add_steps();
  step->set_kind(artifact::Step::PAGED_ATTENTION);
  step->set_name("attention");
  step->mutable_paged_attention()->set_scale(1.0);
  step->mutable_paged_attention()->set_block_size(2);
  struct Operand {
    const char *name;
    Buffer::Kind kind;
    DType dtype;
    Shape shape;
  };
  const Operand operands[] = {
      {"q", Buffer::INPUT, DType::F32, {1, 1, 1, 2}},
      {"k", Buffer::INPUT, DType::F32, {1, 1, 1, 2}},
      {"v", Buffer::INPUT, DType::F32, {1, 1, 1, 2}},
      {"k_cache", Buffer::STATE, DType::F32, {0, 2, 1, 2}},
      {"v_cache", Buffer::STATE, DType::F32, {0, 2, 1, 2}},
      {"positions", Buffer::INPUT, DType::I64, {1, 1}},
      {"token_seq", Buffer::INPUT, DType::I32, {1}},
      {"block_tables", Buffer::INPUT, DType::I32, {1, 2}},
      {"out", Buffer::OUTPUT, DType::F32, {1, 1, 1, 2}},
  };
  for (uint32_t id = 0; id < std::size(operands); ++id) {
    const Operand &o = operands[id];
    Buffer *b = plan.add_buffers();
    b->set_id(id);
    b->set_kind(o.kind);
    b->set_name(o.name);
    b->set_dtype(o.dtype);
    for (int64_t d : o.shape)
      b->add_shape(d);
    b->set_bytes(numElements(o.shape) * dtypeSize(o.dtype));
    if (o.kind == Buffer::STATE)
      b->set_bytes(2 * 1 * 2 * 4); // one block
    else
      b->set_offset(64 * id);
    if (o.kind == Buffer::OUTPUT) {
      step->add_outputs(id);
      entry->add_outputs(id);
    } else {
      step->add_inputs(id);
      if (o.kind == Buffer::INPUT)
        entry->add_inputs(id);
    }
  }
  return plan;
}

inline void expectNear(const std::vector<float> &got,
                       const std::vector<float> &want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]))
      EXPECT_EQ(got[i], want[i]) << "element " << i;
    else
      EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
  }
}

} // namespace weft::runtime::test

#endif // WEFT_TEST_UNIT_RUNTIMETESTUTIL_H
