// Small matchers shared by the recognition passes.
#ifndef WEFT_PASSES_PATTERNUTILS_H
#define WEFT_PASSES_PATTERNUTILS_H

#include "dialects/Weft/WeftOps.h"

#include "mlir/IR/PatternMatch.h"

#include <optional>

namespace mlir::weft {

/// The value of a constant whose elements are all equal, if v is one.
std::optional<double> splatValue(Value v);

/// Whether v is a constant splat within a relative 1e-3 of `expected`.
bool isSplatNear(Value v, double expected);

/// v with weft.cast ops stripped (norms upcast to f32 around the math).
Value stripCasts(Value v);

/// For a binary op, returns the operand that is not `known`, or null if
/// neither operand is `known`.
Value otherOperand(Operation *op, Value known);

/// Matches op(a, b) in either operand order: calls `match(first, second)` with
/// both orders and returns the first success.
template <typename Fn> bool matchEitherOrder(Operation *op, Fn match) {
  if (op->getNumOperands() != 2)
    return false;
  return match(op->getOperand(0), op->getOperand(1)) ||
         match(op->getOperand(1), op->getOperand(0));
}

/// The single user of v, or null.
Operation *soleUser(Value v);

/// Whether v's element type is floating point.
bool isFloatTensor(Value v);

/// Whether v is a weight or a constant (a compile-time parameter).
bool isParameter(Value v);

/// A projection whose GEMM epilogue is still free, reached from a value
/// `v` that an epilogue fusion would fold in: the linear itself, or a
/// reshape of it (GPT-2's Conv1D projects a [batch * seq, n] view).
struct EpilogueSite {
  LinearOp linear;
  ReshapeOp reshape; // null when v is the linear's result
};

/// The site of v, if v is a linear or a reshape of one, each the other's
/// only use, with no residual, no GELU and no widened result yet.
std::optional<EpilogueSite> freeEpilogueSite(Value v);

} // namespace mlir::weft

#endif // WEFT_PASSES_PATTERNUTILS_H
