// Finds initializers' raw_data byte ranges in a serialized ONNX model.
#include "compiler/artifact/WeightLocator.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <climits>

using namespace mlir::weft;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

namespace {
// Field numbers of onnx.proto: ModelProto.graph, GraphProto.initializer,
// TensorProto.name and TensorProto.raw_data.
constexpr int kModelGraph = 7, kGraphInitializer = 5, kTensorName = 8,
              kTensorRawData = 9;

/// Reads a length-delimited field's size and limits the stream to it.
bool enter(CodedInputStream &in, CodedInputStream::Limit &limit) {
  uint32_t len;
  if (!in.ReadVarint32(&len))
    return false;
  limit = in.PushLimit(int(len));
  return true;
}

bool readTensor(CodedInputStream &in, llvm::StringMap<ByteRange> &out) {
  std::string name;
  ByteRange raw;
  bool hasRaw = false;
  while (uint32_t tag = in.ReadTag()) {
    int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == kTensorName && WireFormatLite::GetTagWireType(tag) ==
                                    WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::ReadString(&in, &name))
        return false;
    } else if (field == kTensorRawData &&
               WireFormatLite::GetTagWireType(tag) ==
                   WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t len;
      if (!in.ReadVarint32(&len))
        return false;
      raw = {uint64_t(in.CurrentPosition()), len};
      hasRaw = true;
      if (!in.Skip(int(len)))
        return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  if (hasRaw)
    out[name] = raw;
  return true;
}

bool readGraph(CodedInputStream &in, llvm::StringMap<ByteRange> &out) {
  while (uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == kGraphInitializer &&
        WireFormatLite::GetTagWireType(tag) ==
            WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      CodedInputStream::Limit limit = 0;
      if (!enter(in, limit) || !readTensor(in, out))
        return false;
      in.PopLimit(limit);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return true;
}
} // namespace

llvm::Expected<llvm::StringMap<ByteRange>>
mlir::weft::locateRawData(llvm::StringRef modelBytes) {
  CodedInputStream in(reinterpret_cast<const uint8_t *>(modelBytes.data()),
                      int(std::min<size_t>(modelBytes.size(), INT_MAX)));
  in.SetTotalBytesLimit(INT_MAX);
  llvm::StringMap<ByteRange> out;
  while (uint32_t tag = in.ReadTag()) {
    bool ok;
    if (WireFormatLite::GetTagFieldNumber(tag) == kModelGraph &&
        WireFormatLite::GetTagWireType(tag) ==
            WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      CodedInputStream::Limit limit = 0;
      ok = enter(in, limit) && readGraph(in, out);
      in.PopLimit(limit);
    } else {
      ok = WireFormatLite::SkipField(&in, tag);
    }
    if (!ok)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "malformed model protobuf");
  }
  return out;
}
