// Which typed attributes message (Step.attrs) each step kind carries: the
// contract between the compiler that writes plans and every reader of them.
#ifndef WEFT_RUNTIME_ARTIFACT_STEPATTRS_H
#define WEFT_RUNTIME_ARTIFACT_STEPATTRS_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <string>

namespace weft::runtime {

/// The attrs message a step of `kind` carries (Step::ATTRS_NOT_SET for the
/// kinds without attributes).
artifact::Step::AttrsCase attrsCaseFor(int kind);
/// The name of an attrs message ("GemmAttrs"), "no attributes" for none.
std::string attrsName(artifact::Step::AttrsCase c);
/// Refuses a step that does not carry the attrs message of its kind, naming
/// the step: past this, checks and kernels read that message's fields
/// without looking.
Status expectAttrs(const artifact::Step &step);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_STEPATTRS_H
