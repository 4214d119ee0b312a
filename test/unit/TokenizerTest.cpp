// Unit tests of the tokenizer's pieces: BPE merges, byte fallback,
// WordPiece, Unigram's Viterbi, added-token matching, streaming decode and
// the refusal of unsupported components.
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/TokenizerFiles.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using weft::tokenizer::IncrementalDecoder;
using weft::tokenizer::Tokenizer;
using weft::tokenizer::TokenizerFiles;

namespace {
std::shared_ptr<Tokenizer> load(const std::string &json) {
  auto t = Tokenizer::fromJson(json, "tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.message();
  return t.ok() ? *t : nullptr;
}

std::vector<uint32_t> encode(const Tokenizer &t, const std::string &text) {
  auto ids = t.encode(text);
  EXPECT_TRUE(ids.ok()) << ids.message();
  return ids.ok() ? *ids : std::vector<uint32_t>{};
}

using Ids = std::vector<uint32_t>;

// a b c d, merges by rank: "b c" first, then "a bc" (array form), "a b".
const char *kBpe = R"({
  "added_tokens": [
    {"id": 9, "content": "<s>", "special": true, "normalized": false},
    {"id": 10, "content": "[M]", "special": true, "lstrip": true,
     "rstrip": true, "normalized": false},
    {"id": 11, "content": "cd", "special": false, "single_word": true,
     "normalized": false}],
  "pre_tokenizer": {"type": "WhitespaceSplit"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "d": 3,
    "bc": 4, "abc": 5, "ab": 6},
    "merges": ["b c", ["a", "bc"], "a b"]}
})";

TEST(TokenizerTest, BpeAppliesMergesByRank) {
  auto t = load(kBpe);
  // "b c" outranks "a b", so "abc" is a + bc -> abc, never ab + c.
  EXPECT_EQ(encode(*t, "abc"), (Ids{5}));
  EXPECT_EQ(encode(*t, "abd"), (Ids{6, 3}));
  EXPECT_EQ(encode(*t, "cab bc"), (Ids{2, 6, 4}));
}

TEST(TokenizerTest, AddedTokensMatchBeforeTheModel) {
  auto t = load(kBpe);
  EXPECT_EQ(encode(*t, "a<s>b"), (Ids{0, 9, 1}));
  // lstrip and rstrip take the spaces around [M].
  EXPECT_EQ(encode(*t, "a [M] b"), (Ids{0, 10, 1}));
  // single_word: "cd" inside a word is left to the model.
  EXPECT_EQ(encode(*t, "a cd"), (Ids{0, 11}));
  EXPECT_EQ(encode(*t, "acd"), (Ids{0, 2, 3}));
}

const char *kByteFallback = R"({
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
    "vocab": {"<unk>": 0, "▁": 1, "a": 2, "<0xC3>": 3, "<0xA9>": 4,
              "<0xE2>": 5},
    "merges": []}
})";

TEST(TokenizerTest, BpeFallsBackToBytes) {
  auto t = load(kByteFallback);
  // é is not in the vocabulary: its two UTF-8 bytes are.
  EXPECT_EQ(encode(*t, "aé"), (Ids{1, 2, 3, 4}));
  // z has no byte token either: unk.
  EXPECT_EQ(encode(*t, "z"), (Ids{1, 0}));
  EXPECT_EQ(*t->decode(Ids{1, 2, 3, 4}), "aé");
  // A lone lead byte decodes to U+FFFD.
  EXPECT_EQ(*t->decode(Ids{2, 5}), "a\xEF\xBF\xBD");
}

TEST(TokenizerTest, IncrementalDecoderHoldsSplitCharacters) {
  std::shared_ptr<const Tokenizer> t = load(kByteFallback);
  IncrementalDecoder stream(t);
  EXPECT_EQ(*stream.step(1), "");
  EXPECT_EQ(*stream.step(2), "a");
  // Half of é: nothing yet, then the whole character.
  EXPECT_EQ(*stream.step(3), "");
  EXPECT_EQ(*stream.step(4), "é");
  EXPECT_EQ(*stream.step(2), "a");
  EXPECT_EQ(*stream.step(3), "");
  // The stream ends on half a character: finish() gives what decode does.
  auto rest = stream.finish();
  ASSERT_TRUE(rest.ok()) << rest.message();
  EXPECT_EQ(*rest, "\xEF\xBF\xBD");
}

TEST(TokenizerTest, WordPieceTakesLongestPrefixes) {
  auto t = load(R"({
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3],
                       "cls": ["[CLS]", 2]},
    "model": {"type": "WordPiece", "unk_token": "[UNK]",
      "vocab": {"[UNK]": 0, "un": 1, "[CLS]": 2, "[SEP]": 3, "##aff": 4,
                "##able": 5, "!": 6, "##a": 7}}
  })");
  EXPECT_EQ(encode(*t, "Unaffable!"), (Ids{2, 1, 4, 5, 6, 3}));
  // No way to cover "unx": the whole word is unk.
  EXPECT_EQ(encode(*t, "unx"), (Ids{2, 0, 3}));
  EXPECT_EQ(*t->decode(Ids{1, 4, 5, 6}), "unaffable!");
}

TEST(TokenizerTest, UnigramFindsTheBestSegmentation) {
  auto t = load(R"({
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁",
                      "prepend_scheme": "always", "split": true},
    "decoder": {"type": "Metaspace", "replacement": "▁",
                "prepend_scheme": "always", "split": true},
    "model": {"type": "Unigram", "unk_id": 0, "vocab": [
      ["<unk>", 0.0], ["▁", -1.0], ["a", -2.0], ["b", -2.0], ["ab", -3.0],
      ["▁ab", -4.5], ["c", -1.0]]}
  })");
  // ▁ab (-4.5) beats ▁ + ab (-4.0)? No: -4.0 is higher, so ▁ + ab.
  EXPECT_EQ(encode(*t, "ab"), (Ids{1, 4}));
  // Unknown characters fuse into one unk.
  EXPECT_EQ(encode(*t, "xyc"), (Ids{1, 0, 6}));
  EXPECT_EQ(*t->decode(Ids{1, 4, 1, 6}), "ab c");
}

TEST(TokenizerTest, UnsupportedComponentNamesItsPath) {
  auto t = Tokenizer::fromJson(R"({
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Whitespace"}, {"type": "X"}]},
    "model": {"type": "BPE", "vocab": {}, "merges": []}
  })",
                               "tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.message(), "tokenizer.json: pre_tokenizer.pretokenizers[1].type: "
                         "unsupported 'X'");
}

TEST(TokenizerTest, DecodeRefusesUnknownIds) {
  auto t = load(kBpe);
  auto text = t->decode(Ids{0, 42});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.message(),
            "id 42 is out of range (the vocabulary has 12 ids)");
}

TEST(TokenizerTest, FilesReadConfigFields) {
  // eos_token as a dict with "content", eos_token_id as an int.
  auto files = TokenizerFiles::fromContents(
      {{"tokenizer.json", kBpe},
       {"tokenizer_config.json",
        R"({"bos_token": "<s>", "eos_token": {"content": "[M]"},
            "chat_template": "{{ messages }}"})"},
       {"generation_config.json", R"({"eos_token_id": 9})"}},
      "dir");
  ASSERT_TRUE(files.ok()) << files.message();
  EXPECT_EQ(files->bosToken, "<s>");
  EXPECT_EQ(files->eosToken, "[M]");
  EXPECT_EQ(files->chatTemplate, "{{ messages }}");
  EXPECT_EQ(files->eosTokenIds, (Ids{9}));
  // Without generation_config.json, the EOS ids come from eos_token.
  files = TokenizerFiles::fromContents(
      {{"tokenizer.json", kBpe},
       {"tokenizer_config.json", R"({"eos_token": "[M]"})"},
       {"chat_template.jinja", "{{ x }}"}},
      "dir");
  ASSERT_TRUE(files.ok()) << files.message();
  EXPECT_EQ(files->eosTokenIds, (Ids{10}));
  EXPECT_EQ(files->chatTemplate, "{{ x }}");
  // With both, chat_template.jinja wins, as in transformers.
  files = TokenizerFiles::fromContents(
      {{"tokenizer.json", kBpe},
       {"tokenizer_config.json", R"({"chat_template": "{{ config }}"})"},
       {"chat_template.jinja", "{{ jinja }}"}},
      "dir");
  ASSERT_TRUE(files.ok()) << files.message();
  EXPECT_EQ(files->chatTemplate, "{{ jinja }}");
  // A missing tokenizer.json is named.
  auto none = TokenizerFiles::fromContents({}, "dir");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.message(), "dir: no tokenizer.json");
}
} // namespace
