// Links the compiler's artifact and codegen libraries and nothing else:
// test/runtime/compiler-links.test reads this binary's link line, which
// lists every library the compiler's libraries pull in.
#include "compiler/artifact/PlanBuilder.h"
#include "compiler/codegen/ElementwiseKernel.h"

int main() { return 0; }
