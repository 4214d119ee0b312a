// Checks of ELEMENTWISE programs (over broadcast inputs) and SWIGLU.
#include "runtime/steps/StepChecks.h"

#include <cmath>
#include <limits>

namespace weft::runtime::steps {

using artifact::Instr;

size_t instrArity(Instr::Op op) {
  if (op == Instr::INPUT)
    return 0;
  if (op == Instr::SELECT)
    return 3;
  if (op >= Instr::ADD && op <= Instr::GE)
    return 2;
  return 1;
}

bool isComparison(Instr::Op op) { return op >= Instr::EQ && op <= Instr::GE; }

namespace {

Status checkInstr(const StepArgs &args, int k) {
  const Instr &in = args.step.program(k);
  if (!Instr::Op_IsValid(in.op()) || in.op() == Instr::OP_UNSPECIFIED)
    return errorStatus("unknown op " + std::to_string(in.op()));
  std::string name = Instr::Op_Name(in.op());
  if (dtypeSize(in.dtype()) == 0)
    return errorStatus(name + " has dtype " + dtypeName(in.dtype()));
  if (static_cast<size_t>(in.args_size()) != instrArity(in.op()))
    return errorStatus(name + " takes " + std::to_string(instrArity(in.op())) +
                       " arguments, has " + std::to_string(in.args_size()));
  for (uint32_t a : in.args())
    if (a >= static_cast<uint32_t>(k))
      return errorStatus(name + " reads instruction " + std::to_string(a) +
                         ", which is not an earlier one");
  if (in.op() == Instr::INPUT) {
    if (in.index() >= args.inputs.size())
      return errorStatus("INPUT " + std::to_string(in.index()) +
                         " but the step has " +
                         std::to_string(args.inputs.size()) + " inputs");
    if (args.inputs[in.index()].dtype != in.dtype())
      return errorStatus("INPUT " + std::to_string(in.index()) + " is " +
                         dtypeName(args.inputs[in.index()].dtype) +
                         ", the instruction says " + dtypeName(in.dtype()));
  }
  if ((isComparison(in.op()) || in.op() == Instr::ISNAN) &&
      in.dtype() != DType::BOOL)
    return errorStatus(name + " must yield bool, not " + dtypeName(in.dtype()));
  return okStatus();
}

} // namespace

Status checkElementwise(const StepArgs &args) {
  if (args.outputs.size() != 1)
    return errorStatus("expects 1 output, has " +
                       std::to_string(args.outputs.size()));
  const OutTensor &out = args.outputs[0];
  for (size_t i = 0; i < args.inputs.size(); ++i)
    if (!broadcastsTo(args.inputs[i].shape, out.shape))
      return errorStatus("input " + std::to_string(i) + " of shape " +
                         shapeString(args.inputs[i].shape) +
                         " does not broadcast to the output's " +
                         shapeString(out.shape));
  if (args.step.program_size() == 0)
    return errorStatus("empty program");
  for (int k = 0; k < args.step.program_size(); ++k)
    if (Status s = checkInstr(args, k); !s.ok())
      return s.withPrefix("program[" + std::to_string(k) + "]: ");
  DType last = args.step.program(args.step.program_size() - 1).dtype();
  if (last != out.dtype)
    return errorStatus("the program yields " + dtypeName(last) +
                       ", the output is " + dtypeName(out.dtype));
  return okStatus();
}

Status checkSwiglu(const StepArgs &args) {
  if (Status s = expectArity(args, 2, 1); !s.ok())
    return s;
  const OutTensor &out = args.outputs[0];
  for (size_t i = 0; i < 2; ++i) {
    if (Status s = expectFloat(args.inputs[i].dtype, i ? "up" : "gate");
        !s.ok())
      return s;
    if (args.inputs[i].shape != out.shape)
      return errorStatus(std::string(i ? "up" : "gate") + " has shape " +
                         shapeString(args.inputs[i].shape) + ", the output " +
                         shapeString(out.shape));
  }
  return expectFloat(out.dtype, "output");
}

} // namespace weft::runtime::steps
