// Loading an ONNX ModelProto and reading initializer bytes, inline or external.
#include "compiler/onnx/OnnxModel.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::weft;
using llvm::createStringError;
using llvm::inconvertibleErrorCode;

llvm::Expected<OnnxModel> mlir::weft::loadOnnxModel(llvm::StringRef path) {
  // A regular file only: a FIFO or device would block or never end.
  auto data = ::weft::runtime::readRegularFile(path.str(), kMaxModelBytes);
  if (!data.ok())
    return createStringError(inconvertibleErrorCode(), data.message());
  OnnxModel model;
  if (data->empty() || !model.proto.ParseFromString(*data))
    return createStringError(inconvertibleErrorCode(),
                             "'%s' is not an ONNX model (protobuf parse "
                             "failed: truncated or not a ModelProto)",
                             path.str().c_str());
  if (!model.proto.has_graph())
    return createStringError(inconvertibleErrorCode(),
                             "'%s' is not an ONNX model (no graph)",
                             path.str().c_str());
  model.path = path.str();
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  model.dir = dir.empty() ? "." : std::string(dir);
  for (const auto &imp : model.proto.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx")
      model.opset = imp.version();
  return model;
}

Type mlir::weft::onnxElementType(MLIRContext &ctx, int32_t dataType) {
  Builder b(&ctx);
  switch (dataType) {
  case onnx::TensorProto::FLOAT:
    return b.getF32Type();
  case onnx::TensorProto::FLOAT16:
    return b.getF16Type();
  case onnx::TensorProto::BFLOAT16:
    return b.getBF16Type();
  case onnx::TensorProto::DOUBLE:
    return b.getF64Type();
  case onnx::TensorProto::INT64:
    return b.getI64Type();
  case onnx::TensorProto::INT32:
    return b.getI32Type();
  case onnx::TensorProto::INT16:
    return b.getI16Type();
  case onnx::TensorProto::INT8:
    return b.getI8Type();
  case onnx::TensorProto::UINT8:
    return b.getIntegerType(8, /*isSigned=*/false);
  case onnx::TensorProto::UINT16:
    return b.getIntegerType(16, /*isSigned=*/false);
  case onnx::TensorProto::UINT32:
    return b.getIntegerType(32, /*isSigned=*/false);
  case onnx::TensorProto::UINT64:
    return b.getIntegerType(64, /*isSigned=*/false);
  case onnx::TensorProto::BOOL:
    return b.getI1Type();
  default:
    return {};
  }
}

llvm::Expected<std::optional<ExternalRef>>
mlir::weft::externalRefOf(const onnx::TensorProto &tensor) {
  if (tensor.data_location() != onnx::TensorProto::EXTERNAL)
    return std::nullopt;
  ExternalRef ref;
  for (const auto &kv : tensor.external_data()) {
    if (kv.key() == "location") {
      ref.location = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      long long v;
      if (llvm::StringRef(kv.value()).getAsInteger(10, v) || v < 0)
        return createStringError(inconvertibleErrorCode(),
                                 "initializer '%s': external data %s '%s' is "
                                 "not a non-negative integer",
                                 tensor.name().c_str(), kv.key().c_str(),
                                 kv.value().c_str());
      (kv.key() == "offset" ? ref.offset : ref.length) = v;
    }
  }
  if (ref.location.empty())
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data has no location",
                             tensor.name().c_str());
  if (llvm::sys::path::is_absolute(ref.location))
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data location '%s' is "
                             "an absolute path; it must be relative to the "
                             "model's directory",
                             tensor.name().c_str(), ref.location.c_str());
  for (auto it = llvm::sys::path::begin(ref.location),
            e = llvm::sys::path::end(ref.location);
       it != e; ++it)
    if (*it == "..")
      return createStringError(inconvertibleErrorCode(),
                               "initializer '%s': external data location '%s' "
                               "leaves the model's directory ('..')",
                               tensor.name().c_str(), ref.location.c_str());
  return ref;
}

static int64_t bytesPerElement(Type elem) {
  if (elem.isInteger(1))
    return 1;
  return (elem.getIntOrFloatBitWidth() + 7) / 8;
}

llvm::Expected<::weft::runtime::RegularFile>
mlir::weft::openExternalData(const onnx::TensorProto &tensor,
                             const ExternalRef &ref, llvm::StringRef dir) {
  // Symlinks are resolved and must stay in the model's directory, as '..'
  // and absolute locations must (SafeFile.h).
  auto path = ::weft::runtime::resolveInside(dir.str(), ref.location,
                                             "external data location");
  if (!path.ok())
    return createStringError(inconvertibleErrorCode(), "initializer '%s': %s",
                             tensor.name().c_str(), path.message().c_str());
  auto file = ::weft::runtime::RegularFile::open(*path);
  if (!file.ok())
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data file: %s",
                             tensor.name().c_str(), file.message().c_str());
  return std::move(*file);
}

/// The length of an external range, checked against its file's `size` and
/// the `expected` bytes of the tensor's shape and type.
static llvm::Expected<int64_t> externalLength(const onnx::TensorProto &tensor,
                                              const ExternalRef &ref,
                                              const std::string &file,
                                              uint64_t size, int64_t expected) {
  // Both the offset and the length may be near INT64_MAX: compare without
  // overflowing.
  if (ref.offset > int64_t(size))
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data offset %lld is "
                             "past the end of '%s' (%llu bytes)",
                             tensor.name().c_str(), (long long)ref.offset,
                             file.c_str(), (unsigned long long)size);
  int64_t length = ref.length < 0 ? int64_t(size) - ref.offset : ref.length;
  if (length > int64_t(size) - ref.offset)
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data range [%lld, "
                             "%llu) is past the end of '%s' (%llu bytes)",
                             tensor.name().c_str(), (long long)ref.offset,
                             (unsigned long long)ref.offset + length,
                             file.c_str(), (unsigned long long)size);
  if (length != expected)
    return createStringError(inconvertibleErrorCode(),
                             "initializer '%s': external data holds %lld "
                             "bytes, its shape and type need %lld",
                             tensor.name().c_str(), (long long)length,
                             (long long)expected);
  return length;
}

llvm::Expected<int64_t> mlir::weft::tensorBytes(const onnx::TensorProto &tensor,
                                                Type elem,
                                                llvm::StringRef what) {
  std::string name =
      what.empty() ? "initializer '" + tensor.name() + "'" : what.str();
  int64_t bytes = bytesPerElement(elem);
  for (int64_t d : tensor.dims()) {
    if (d < 0)
      return createStringError(inconvertibleErrorCode(),
                               "%s has a negative dimension", name.c_str());
    if (__builtin_mul_overflow(bytes, d, &bytes) || bytes > kMaxTensorBytes)
      return createStringError(inconvertibleErrorCode(),
                               "%s is larger than %lld bytes", name.c_str(),
                               (long long)kMaxTensorBytes);
  }
  return bytes;
}

llvm::Error mlir::weft::checkExternalData(const onnx::TensorProto &tensor,
                                          RankedTensorType type,
                                          llvm::StringRef dir) {
  auto ref = externalRefOf(tensor);
  if (!ref)
    return ref.takeError();
  if (!*ref)
    return llvm::Error::success();
  auto bytes = tensorBytes(tensor, type.getElementType());
  if (!bytes)
    return bytes.takeError();
  int64_t expected = *bytes;
  // An absent file is allowed (weights are referenced, not read); anything
  // else there must be a regular file inside the model's directory whose
  // range fits, so that the runtime never meets a bad reference.
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, (*ref)->location);
  if (!llvm::sys::fs::exists(path)) {
    if ((*ref)->length >= 0 && (*ref)->length != expected)
      return createStringError(inconvertibleErrorCode(),
                               "initializer '%s': external data holds %lld "
                               "bytes, its shape and type need %lld",
                               tensor.name().c_str(), (long long)(*ref)->length,
                               (long long)expected);
    auto inside = ::weft::runtime::resolveInside(dir.str(), (*ref)->location,
                                                 "external data location");
    if (!inside.ok())
      return createStringError(inconvertibleErrorCode(), "initializer '%s': %s",
                               tensor.name().c_str(), inside.message().c_str());
    return llvm::Error::success();
  }
  auto opened = openExternalData(tensor, **ref, dir);
  if (!opened)
    return opened.takeError();
  auto length =
      externalLength(tensor, **ref, opened->path(), opened->size(), expected);
  if (!length)
    return length.takeError();
  return llvm::Error::success();
}

/// Reads the raw little-endian bytes of a tensor, inline or external.
static llvm::Expected<std::string> rawBytes(const onnx::TensorProto &tensor,
                                            llvm::StringRef dir,
                                            int64_t expected) {
  auto ref = externalRefOf(tensor);
  if (!ref)
    return ref.takeError();
  if (!*ref)
    return tensor.raw_data();
  auto opened = openExternalData(tensor, **ref, dir);
  if (!opened)
    return opened.takeError();
  std::string file = opened->path();
  uint64_t size = opened->size();
  auto length = externalLength(tensor, **ref, file, size, expected);
  if (!length)
    return length.takeError();
  auto bytes = opened->read((*ref)->offset, *length);
  if (!bytes.ok())
    return createStringError(inconvertibleErrorCode(), "initializer '%s': %s",
                             tensor.name().c_str(), bytes.message().c_str());
  return std::move(*bytes);
}

llvm::Expected<DenseElementsAttr>
mlir::weft::readTensorData(const onnx::TensorProto &tensor,
                           RankedTensorType type, llvm::StringRef dir) {
  Type elem = type.getElementType();
  auto bytes = tensorBytes(tensor, elem);
  if (!bytes)
    return bytes.takeError();
  int64_t n = type.getNumElements(), expected = *bytes;
  auto bad = [&](const char *why) {
    return createStringError(inconvertibleErrorCode(), "initializer '%s': %s",
                             tensor.name().c_str(), why);
  };
  bool typed = tensor.data_location() != onnx::TensorProto::EXTERNAL &&
               !tensor.has_raw_data();
  if (!typed) {
    auto bytes = rawBytes(tensor, dir, expected);
    if (!bytes)
      return bytes.takeError();
    if (int64_t(bytes->size()) != expected)
      return bad("raw_data size does not match its shape and type");
    if (elem.isInteger(1)) {
      SmallVector<bool> v;
      for (char c : *bytes)
        v.push_back(c != 0);
      return DenseElementsAttr::get(type, ArrayRef<bool>(v));
    }
    return DenseElementsAttr::getFromRawBuffer(
        type, ArrayRef<char>(bytes->data(), bytes->size()));
  }
  // Typed fields.
  auto count = [&](int size) { return size == n || (size == 1 && n == 1); };
  if (elem.isF32()) {
    if (!count(tensor.float_data_size()))
      return bad("float_data size does not match its shape");
    return DenseElementsAttr::get(
        type, ArrayRef<float>(tensor.float_data().data(), n));
  }
  if (elem.isF64()) {
    if (!count(tensor.double_data_size()))
      return bad("double_data size does not match its shape");
    return DenseElementsAttr::get(
        type, ArrayRef<double>(tensor.double_data().data(), n));
  }
  if (elem.isInteger(64)) {
    if (!count(tensor.int64_data_size()))
      return bad("int64_data size does not match its shape");
    return DenseElementsAttr::get(
        type, ArrayRef<int64_t>(tensor.int64_data().data(), n));
  }
  // int32_data carries int32, int16, int8, uint8, bool, and the bit patterns
  // of float16 and bfloat16.
  if (!count(tensor.int32_data_size()))
    return bad("int32_data size does not match its shape");
  if (auto ft = dyn_cast<FloatType>(elem)) {
    SmallVector<APFloat> v;
    for (int32_t bits : tensor.int32_data())
      v.push_back(APFloat(ft.getFloatSemantics(), APInt(16, uint16_t(bits))));
    return DenseElementsAttr::get(type, v);
  }
  if (elem.isInteger(1)) {
    SmallVector<bool> v;
    for (int32_t x : tensor.int32_data())
      v.push_back(x != 0);
    return DenseElementsAttr::get(type, ArrayRef<bool>(v));
  }
  unsigned width = elem.getIntOrFloatBitWidth();
  SmallVector<APInt> v;
  for (int32_t x : tensor.int32_data())
    v.push_back(APInt(width, uint64_t(int64_t(x)), /*isSigned=*/true,
                      /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, v);
}
