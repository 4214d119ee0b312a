// libFuzzer target: the tokenizer on hostile input. The first byte picks
// what the rest is:
//   0: a tokenizer.json (what an artifact or a model directory carries),
//      read and, when accepted, run on a fixed text and its ids decoded;
//   1: text encoded with SmolLM2's tokenizer (the bundled default's), its
//      ids decoded, and decoded incrementally as a server streams them;
//   2: token ids (4 bytes each) decoded with it, as /detokenize would.
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#ifndef WEFT_FUZZ_TOKENIZER
#error "WEFT_FUZZ_TOKENIZER: the path of the tokenizer.json that texts use"
#endif

using weft::tokenizer::Tokenizer;

namespace {

const std::shared_ptr<Tokenizer> &smollm2() {
  static std::shared_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::fromFile(WEFT_FUZZ_TOKENIZER);
    if (!t.ok())
      __builtin_trap(); // the fixture must load
    return *t;
  }();
  return tok;
}

bool validUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80         ? 1
               : (c >> 5) == 6  ? 2
               : (c >> 4) == 14 ? 3
               : (c >> 3) == 30 ? 4
                                : 0;
    if (!n || i + n > s.size())
      return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2)
        return false;
    i += n;
  }
  return true;
}

void roundTrip(const std::shared_ptr<Tokenizer> &tok, std::string_view text) {
  auto ids = tok->encode(text);
  if (!ids.ok())
    return;
  (void)tok->decode(*ids);
  weft::tokenizer::IncrementalDecoder stream(tok);
  for (uint32_t id : *ids)
    (void)stream.step(id);
  (void)stream.finish();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 3) {
  case 0: {
    auto tok = Tokenizer::fromJson(rest, "tokenizer.json");
    if (tok.ok())
      roundTrip(*tok,
                "Hello, world! 123 h\xc3\xa9llo \xe4\xbd\xa0\xe5\xa5\xbd");
    break;
  }
  case 1:
    if (validUtf8(rest))
      roundTrip(smollm2(), rest);
    break;
  default: {
    std::vector<uint32_t> ids(rest.size() / 4);
    if (!ids.empty())
      std::memcpy(ids.data(), rest.data(), ids.size() * 4);
    (void)smollm2()->decode(ids);
    break;
  }
  }
  return 0;
}
