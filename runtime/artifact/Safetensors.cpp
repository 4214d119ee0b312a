// The header of a safetensors file: each tensor's dtype, shape and bytes.
#include "runtime/artifact/Safetensors.h"

#include "runtime/support/Json.h"

namespace weft::runtime {

namespace {

DType dtypeOfSafetensors(const std::string &name) {
  static const std::map<std::string, DType> names = {
      {"F32", DType::F32},  {"F16", DType::F16}, {"BF16", DType::BF16},
      {"F64", DType::F64},  {"I64", DType::I64}, {"I32", DType::I32},
      {"I16", DType::I16},  {"I8", DType::I8},   {"U8", DType::U8},
      {"U16", DType::U16},  {"U32", DType::U32}, {"U64", DType::U64},
      {"BOOL", DType::BOOL}};
  auto it = names.find(name);
  return it == names.end() ? DType::DTYPE_UNSPECIFIED : it->second;
}

bool readUnsigned(const JsonValue &v, uint64_t &out) {
  if (v.kind != JsonValue::Kind::Number || !v.isInteger || v.integer < 0)
    return false;
  out = static_cast<uint64_t>(v.integer);
  return true;
}

Status parseShape(const JsonValue *v, Shape &shape) {
  if (!v || v->kind != JsonValue::Kind::Array)
    return errorStatus("'shape' is not an array");
  for (const JsonValue &d : v->array) {
    uint64_t dim;
    if (!readUnsigned(d, dim))
      return errorStatus("'shape' holds a non-integer or negative dim");
    shape.push_back(static_cast<int64_t>(dim));
  }
  return okStatus();
}

Status parseOffsets(const JsonValue *v, SafetensorsTensor &t,
                    uint64_t dataStart, uint64_t dataSize) {
  if (!v || v->kind != JsonValue::Kind::Array || v->array.size() != 2 ||
      !readUnsigned(v->array[0], t.begin) || !readUnsigned(v->array[1], t.end))
    return errorStatus("'data_offsets' is not [begin, end]");
  if (t.begin > t.end || t.end > dataSize)
    return errorStatus("'data_offsets' [" + std::to_string(t.begin) + ", " +
                       std::to_string(t.end) +
                       ") lie outside the data section (" +
                       std::to_string(dataSize) + " bytes)");
  t.begin += dataStart;
  t.end += dataStart;
  return okStatus();
}

Result<SafetensorsTensor> parseTensor(const JsonValue &v, uint64_t dataStart,
                                      uint64_t dataSize) {
  if (v.kind != JsonValue::Kind::Object)
    return errorStatus("entry is not an object");
  SafetensorsTensor t;
  const JsonValue *dtype = v.find("dtype");
  if (!dtype || dtype->kind != JsonValue::Kind::String)
    return errorStatus("'dtype' is missing or not a string");
  t.dtypeName = dtype->string;
  t.dtype = dtypeOfSafetensors(t.dtypeName);
  if (Status s = parseShape(v.find("shape"), t.shape); !s.ok())
    return s;
  if (Status s = parseOffsets(v.find("data_offsets"), t, dataStart, dataSize);
      !s.ok())
    return s;
  if (t.dtype != DType::DTYPE_UNSPECIFIED) {
    auto bytes = checkedBytes(t.shape, t.dtype);
    if (!bytes.ok())
      return bytes.status();
    if (*bytes != t.end - t.begin)
      return errorStatus("holds " + std::to_string(t.end - t.begin) +
                         " bytes, shape " + shapeString(t.shape) + " of " +
                         t.dtypeName + " needs " + std::to_string(*bytes));
  }
  return t;
}

} // namespace

Result<SafetensorsHeader> parseSafetensors(const std::byte *data, uint64_t size,
                                           const std::string &path) {
  auto fail = [&](const std::string &what) {
    return errorStatus(path + ": not a valid safetensors file (" + what + ")");
  };
  if (size < 8)
    return fail("shorter than its 8-byte header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | static_cast<uint8_t>(data[i]);
  if (headerLen > size - 8)
    return fail("header length " + std::to_string(headerLen) +
                " is past the end of the file");
  auto json = parseJson(
      std::string_view(reinterpret_cast<const char *>(data + 8), headerLen));
  if (!json.ok())
    return fail(json.message());
  if (json->kind != JsonValue::Kind::Object)
    return fail("header is not a JSON object");
  SafetensorsHeader header;
  header.dataStart = 8 + headerLen;
  uint64_t dataSize = size - header.dataStart;
  for (const auto &[name, value] : json->object) {
    if (name == "__metadata__")
      continue;
    auto tensor = parseTensor(value, header.dataStart, dataSize);
    if (!tensor.ok())
      return fail("tensor '" + name + "': " + tensor.message());
    if (!header.tensors.emplace(name, std::move(*tensor)).second)
      return fail("tensor '" + name + "' appears twice");
  }
  return header;
}

} // namespace weft::runtime
