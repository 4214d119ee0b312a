// PCRE2 behind the tokenizer's Regex: 8-bit UTF mode with Unicode properties
// for \p{L}, \s and \w, and JIT compilation for speed.
#include "runtime/tokenizer/Regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace weft::tokenizer {

struct Regex::Impl {
  pcre2_code *code = nullptr;
  // One match-data block per thread: matching allocates nothing.
  ~Impl() { pcre2_code_free(code); }
};

Regex::~Regex() = default;

runtime::Result<std::shared_ptr<Regex>>
Regex::compile(const std::string &pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    return runtime::errorStatus("invalid regex '" + pattern + "' at offset " +
                                std::to_string(offset) + ": " +
                                reinterpret_cast<const char *>(buf));
  }
  // Without JIT (an unsupported CPU) matching still works, only slower.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  std::shared_ptr<Regex> re(new Regex());
  re->impl = std::make_unique<Impl>();
  re->impl->code = code;
  return re;
}

std::string Regex::escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}-/#&~ ").find(c) !=
        std::string_view::npos)
      out += '\\';
    out += c;
  }
  return out;
}

namespace {
struct MatchData {
  pcre2_match_data *data = pcre2_match_data_create(4, nullptr);
  ~MatchData() { pcre2_match_data_free(data); }
};
} // namespace

void Regex::findAll(std::string_view text, std::vector<Span> &out) const {
  thread_local MatchData md;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(impl->code, subject, text.size(), pos,
                         PCRE2_NO_UTF_CHECK, md.data, nullptr);
    if (rc < 0)
      break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md.data);
    size_t b = ov[0], e = ov[1];
    out.push_back({b, e});
    if (e > b) {
      pos = e;
      continue;
    }
    if (b >= text.size())
      break;
    // Past the empty match by one whole code point.
    pos = b + 1;
    while (pos < text.size() &&
           (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80)
      ++pos;
  }
}

} // namespace weft::tokenizer
