// A Hugging Face tokenizer read from tokenizer.json: encoding text to ids
// and decoding ids to text (whole or streamed), as the `tokenizers` library
// does.
#ifndef WEFT_RUNTIME_TOKENIZER_TOKENIZER_H
#define WEFT_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer {

class Normalizer;
class PreTokenizer;
class Model;
class PostProcessor;
class Decoder;
class AddedVocabulary;

struct EncodeOptions {
  /// The post-processor's tokens (BOS, [CLS]...), as `tokenizers` adds by
  /// default; a chat template that writes them itself turns this off.
  bool addSpecialTokens = true;
};

class Tokenizer {
public:
  /// Reads tokenizer.json text; errors start with `fileName` and name the
  /// JSON path of what is unsupported or malformed.
  static runtime::Result<std::shared_ptr<Tokenizer>>
  fromJson(std::string_view json, const std::string &fileName);
  static runtime::Result<std::shared_ptr<Tokenizer>>
  fromFile(const std::string &path);
  ~Tokenizer();

  /// Appends the ids of `text` (valid UTF-8) to `ids`. Safe to call from
  /// several threads.
  runtime::Status encode(std::string_view text, std::vector<uint32_t> &ids,
                         EncodeOptions options = {}) const;
  runtime::Result<std::vector<uint32_t>>
  encode(std::string_view text, EncodeOptions options = {}) const;

  /// The text of `ids`; an id without a token is an error.
  runtime::Result<std::string> decode(std::span<const uint32_t> ids,
                                      bool skipSpecialTokens = false) const;

  std::optional<uint32_t> tokenToId(std::string_view token) const;
  /// The token of `id` (an added token first, then the model's), or nullptr.
  const std::string *idToToken(uint32_t id) const;
  /// One past the largest id.
  uint32_t vocabSize() const;
  bool isSpecial(uint32_t id) const;
  /// The ids of the special added tokens, ascending.
  std::vector<uint32_t> specialIds() const;

private:
  Tokenizer();
  runtime::Status encodeText(std::string_view text, uint32_t startCredit,
                             std::vector<uint32_t> &ids) const;

  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> preTokenizer;
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> postProcessor;
  std::unique_ptr<Decoder> decoder;
  std::unique_ptr<AddedVocabulary> added;
  // Truncation and padding of a single sequence, where the file sets them.
  std::optional<size_t> truncateTo;
  bool truncateLeft = false;
  std::optional<size_t> padTo;
  uint32_t padId = 0;
  bool padLeft = false;
  size_t padMultiple = 0;
};

/// Decodes ids one at a time for streaming: each step returns the text that
/// became final (never half of a multi-byte character), and the pieces
/// concatenated with finish() equal decode() of all the ids.
class IncrementalDecoder {
public:
  explicit IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer,
                              bool skipSpecialTokens = false);
  runtime::Result<std::string> step(uint32_t id);
  /// The rest of the text (held-back bytes that never completed).
  runtime::Result<std::string> finish();

private:
  std::shared_ptr<const Tokenizer> tokenizer;
  bool skipSpecial;
  std::vector<uint32_t> ids;
  // ids[prefixIndex, readIndex) decode to the text already emitted past
  // the context the window starts with.
  size_t prefixIndex = 0, readIndex = 0;
  std::string emitted;
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_TOKENIZER_H
