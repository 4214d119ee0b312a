// Which typed attributes message each step kind carries.
#include "runtime/artifact/StepAttrs.h"

namespace weft::runtime {

artifact::Step::AttrsCase attrsCaseFor(int kind) {
  using artifact::Step;
  switch (kind) {
  case Step::GEMM:
    return Step::kGemm;
  case Step::ATTENTION:
    return Step::kAttention;
  case Step::LAYER_NORM:
  case Step::RMS_NORM:
    return Step::kNorm;
  case Step::ROTARY:
    return Step::kRotary;
  case Step::SOFTMAX:
    return Step::kSoftmax;
  case Step::EMBEDDING:
    return Step::kEmbedding;
  case Step::GATHER:
  case Step::GATHER_ND:
  case Step::GATHER_ELEMENTS:
    return Step::kGather;
  case Step::REDUCE:
    return Step::kReduce;
  case Step::TRANSPOSE:
    return Step::kTranspose;
  case Step::SLICE:
    return Step::kSlice;
  case Step::CONCAT:
    return Step::kConcat;
  case Step::CUMSUM:
    return Step::kCumsum;
  case Step::TRILU:
    return Step::kTrilu;
  case Step::TILE:
    return Step::kTile;
  case Step::COLLECTIVE:
    return Step::kCollective;
  case Step::SEND:
  case Step::RECV:
    return Step::kSendRecv;
  case Step::PAGED_ATTENTION:
    return Step::kPagedAttention;
  default:
    return Step::ATTRS_NOT_SET;
  }
}

std::string attrsName(artifact::Step::AttrsCase c) {
  if (c == artifact::Step::ATTRS_NOT_SET)
    return "no attributes";
  const google::protobuf::FieldDescriptor *field =
      artifact::Step::descriptor()->FindFieldByNumber(static_cast<int>(c));
  return field ? field->message_type()->name()
               : "attrs field " + std::to_string(static_cast<int>(c));
}

Status expectAttrs(const artifact::Step &step) {
  artifact::Step::AttrsCase want = attrsCaseFor(step.kind());
  if (step.attrs_case() == want)
    return okStatus();
  std::string what =
      artifact::Step::Kind_Name(step.kind()) + " step '" + step.name() + "'";
  if (want == artifact::Step::ATTRS_NOT_SET)
    return errorStatus(what + " takes no attributes but carries " +
                       attrsName(step.attrs_case()));
  if (step.attrs_case() == artifact::Step::ATTRS_NOT_SET)
    return errorStatus(what + " carries no " + attrsName(want));
  return errorStatus(what + " carries " + attrsName(step.attrs_case()) +
                     ", expected " + attrsName(want));
}

} // namespace weft::runtime
