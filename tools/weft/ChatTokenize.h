// `weft tokenize --chat`: conversations in, the ids of their chat-template
// prompts out.
#ifndef WEFT_TOOLS_WEFT_CHATTOKENIZE_H
#define WEFT_TOOLS_WEFT_CHATTOKENIZE_H

#include "runtime/tokenizer/TokenizerFiles.h"

namespace weft::cli {

/// Each stdin line is a JSON list of messages; renders it with the
/// tokenizer's chat template (add_generation_prompt=True, the config's
/// special tokens), encodes it without adding special tokens, as
/// transformers' apply_chat_template does, and prints the JSON id array.
/// Returns the exit status.
int runChatTokenize(const tokenizer::TokenizerFiles &files,
                    const std::string &source);

} // namespace weft::cli

#endif // WEFT_TOOLS_WEFT_CHATTOKENIZE_H
