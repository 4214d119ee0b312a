// Generation entry points from a cache-less graph: `weft compile
// --generate` compiles the model once per prompt-length and batch-size
// bucket and rewrites each compiled graph here into a prefill or decode
// step over a paged KV cache (docs/generation.md).
#ifndef WEFT_COMPILER_GENERATE_GENERATION_H
#define WEFT_COMPILER_GENERATE_GENERATION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::weft {

/// The graph input that takes token ids ([batch, seq] integers, seq
/// symbolic, batch symbolic or 1) and its dims' names.
struct TokenInput {
  std::string name;
  std::string batchDim; // empty: the batch is fixed at 1
  std::string seqDim;
};

/// Finds the token input of the ONNX model at `modelPath`.
llvm::Expected<TokenInput> findTokenInput(llvm::StringRef modelPath);

/// The buckets and the cache of a generation artifact.
struct GenerationOptions {
  int64_t maxSeq = 2048;
  int64_t blockSize = 16;
  std::vector<int64_t> promptBuckets = {128, 512, 2048};
  std::vector<int64_t> batchBuckets = {1, 8, 32};
  int64_t prefillRows = 8; // sequences one prefill may pack
};

/// One entry point: "prefill@T" (T packed prompt tokens, logits at `rows`
/// of them) or "decode@B" (tokens = rows = B; 2 for B = 1, whose second
/// token is padding: compiled at one position, an export's position-0
/// rotary tables fold away and hide where positions enter the graph).
struct GenerationEntry {
  std::string name;
  bool prefill = false;
  int64_t tokens = 0;
  int64_t rows = 0;
  int64_t bucket = 0;
};

/// The entries `options` asks for, prefills first, each bucket capped at
/// max_seq.
std::vector<GenerationEntry>
generationEntries(const GenerationOptions &options);

/// A constant operand that depends on the tokens' positions (a rotary
/// table, position ids, a learned position embedding): operand `operand`
/// of the `op`-th computing op (constants and weights not counted), whose
/// dim `dim` runs over positions.
struct PositionalOperand {
  size_t op;
  unsigned operand;
  int64_t dim;
};

/// Finds the positional operands by comparing the graph compiled at
/// `probeTokens` positions with the one at `maxSeq` (probeTokens !=
/// maxSeq): constant operands whose types differ in one dim only, sized by
/// the positions. Both graphs lose their attention masks first (a mask the
/// import does not fold, above 2048 positions, is a computation). Fails
/// with a diagnostic where the graphs differ in structure or a constant
/// changes otherwise.
FailureOr<SmallVector<PositionalOperand>>
findPositionalOperands(func::FuncOp probe, int64_t probeTokens,
                       func::FuncOp reference, int64_t maxSeq);

/// Rewrites `func` (the graph compiled at batch 1 and seq entry.tokens,
/// fused and split for its tensor-parallel rank) into the entry: inputs
/// weft.positions, weft.token_seq, weft.block_tables (weft.logit_rows for
/// a prefill), weft.sample_params and weft.sample_seeds appended; every
/// attention becomes a paged attention over its layer's weft.kv_cache;
/// the `positional` constants become gathers at the tokens' positions from
/// `reference` (the same graph compiled at seq = max_seq, whose tables
/// hold every position); a prefill computes the LM head only at
/// weft.logit_rows; the outputs become weft.next_ids (a weft.sample of
/// the logits) and the logits. Emits a diagnostic and fails on a graph it
/// cannot make generate (an attention that is not causal, a positional
/// constant without a counterpart in `reference`, logits that are not the
/// output of a projection).
LogicalResult makeGenerationEntry(func::FuncOp func, func::FuncOp reference,
                                  ArrayRef<PositionalOperand> positional,
                                  const GenerationEntry &entry,
                                  const GenerationOptions &options);

} // namespace mlir::weft

#endif // WEFT_COMPILER_GENERATE_GENERATION_H
