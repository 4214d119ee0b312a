// Unit tests of the chat-template Jinja interpreter: whitespace control,
// loops, macros, namespaces, filters, and refusals with their lines.
#include "runtime/tokenizer/ChatTemplate.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <gtest/gtest.h>

using weft::tokenizer::ChatTemplate;
using weft::tokenizer::ChatTemplateOptions;
using Json = nlohmann::ordered_json;

namespace {

const char *kMessages =
    R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])";

/// Renders `source` over kMessages; a failure comes back as "ERROR: <msg>".
std::string render(const std::string &source, Json context = Json::object()) {
  auto tmpl = ChatTemplate::parse(source, "t.jinja");
  if (!tmpl.ok())
    return "ERROR: " + tmpl.message();
  ChatTemplateOptions options;
  options.context = std::move(context);
  auto text = tmpl->render(Json::parse(kMessages), options);
  return text.ok() ? *text : "ERROR: " + text.message();
}

TEST(ChatTemplate, TrimsBlocksAndStripsTheirIndentation) {
  EXPECT_EQ(render("a\n  {% if true %}\n    b\n  {% endif %}\nc"),
            "a\n    b\nc");
  EXPECT_EQ(render("{# note #}\nx"), "x");
  // Output tags keep their newline; `+` keeps the indentation.
  EXPECT_EQ(render("{{ 'x' }}\ny"), "x\ny");
  EXPECT_EQ(render("  {%+ if true %}z{% endif %}"), "  z");
}

TEST(ChatTemplate, DashesStripWhitespaceOnTheirSide) {
  EXPECT_EQ(render("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(render("a\n{%- if true -%}\n  b  \n{%- endif %}"), "ab");
  // keep_trailing_newline is off: one final newline goes.
  EXPECT_EQ(render("x\n"), "x");
}

TEST(ChatTemplate, LoopsExposeLoopVariables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}"
                   "{{ loop.revindex }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }};{% endfor %}"),
            "102TrueFalse2;211FalseTrue2;");
  EXPECT_EQ(render("{% for m in messages if m.role == 'assistant' %}"
                   "{{ loop.length }}{{ m.content }}{% endfor %}"),
            "1Hello");
  EXPECT_EQ(render("{% for m in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}"
                   "{% endfor %}"),
            "a1b2");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 1 %}{% continue %}"
                   "{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}"
                   "{% endfor %}"),
            "02");
}

TEST(ChatTemplate, SetInALoopStaysInTheLoopButNamespacesCarry) {
  EXPECT_EQ(render("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}"
                   "{% endfor %}{{ x }}"),
            "1");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for m in messages %}"
                   "{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"),
            "2");
  EXPECT_EQ(render("{% set x %}a{{ 1 + 1 }}{% endset %}[{{ x }}]"), "[a2]");
}

TEST(ChatTemplate, MacrosTakeDefaultsKeywordsAndCaller) {
  EXPECT_EQ(render("{% macro m(a, b='!') %}{{ a }}{{ b }}{% endmacro %}"
                   "{{ m('x') }}{{ m('y', '?') }}{{ m(b='.', a='z') }}"),
            "x!y?z.");
  EXPECT_EQ(render("{% macro box() %}[{{ caller() }}]{% endmacro %}"
                   "{% call box() %}in{% endcall %}"),
            "[in]");
}

TEST(ChatTemplate, FiltersBehaveAsJinjaWithTransformersTojson) {
  EXPECT_EQ(render("{{ {'a': [1, 2.5], 'b': 'é'} | tojson }}"),
            R"({"a": [1, 2.5], "b": "é"})");
  EXPECT_EQ(render("{{ {'a': [1]} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(render("{{ messages | selectattr('role', 'equalto', 'user') | "
                   "map(attribute='content') | join(',') }}"),
            "Hi");
  EXPECT_EQ(render("{{ '  x ' | trim }}|{{ nope | default('d') }}|"
                   "{{ [3, 1] | sort | list }}|{{ 'a b' | title }}"),
            "x|d|[1, 3]|A B");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }}{{ ('t',) }}"),
            "[1, 'a', None, True]('t',)");
}

TEST(ChatTemplate, ContextSuppliesSpecialTokensAndToolsDefaultToNone) {
  EXPECT_EQ(
      render("{{ bos_token }}{{ tools is none }}{{ add_generation_prompt }}",
             Json{{"bos_token", "<s>"}}),
      "<s>TrueTrue");
}

TEST(ChatTemplate, RefusesUnsupportedConstructsWithTheirLine) {
  EXPECT_EQ(render("a\n\n{{ x | wordcount }}"),
            "ERROR: t.jinja:3: unsupported filter 'wordcount'");
  EXPECT_EQ(render("\n{{ x | xyz }}"),
            "ERROR: t.jinja:2: unsupported filter 'xyz'");
  // A Jinja built-in weft lacks fails only where it runs.
  EXPECT_EQ(render("{% if false %}{{ x | batch(2) }}{% endif %}ok"), "ok");
  EXPECT_EQ(render("{% if x is foo %}{% endif %}"),
            "ERROR: t.jinja:1: unsupported test 'foo'");
  EXPECT_EQ(render("\n{% include 'x' %}"),
            "ERROR: t.jinja:2: unsupported statement 'include'");
  EXPECT_EQ(render("{% for m in messages %}"),
            "ERROR: t.jinja:1: missing '{% endfor %}' before the end of the "
            "template");
  EXPECT_EQ(render("{{ 'x' + }}"), "ERROR: t.jinja:1: unexpected end of tag");
  EXPECT_EQ(render("{{ 'upper'.upper().format(1) }}"),
            "ERROR: t.jinja:1: unsupported method 'str.format'");
}

TEST(ChatTemplate, RaiseExceptionAndRuntimeErrorsCarryTheirLine) {
  EXPECT_EQ(render("x\n{{ raise_exception('no ' ~ 'way') }}"),
            "ERROR: t.jinja:2: the template raised an error: no way");
  EXPECT_EQ(render("\n\n{{ missing.attr }}"),
            "ERROR: t.jinja:3: undefined value used: 'missing' is undefined");
  EXPECT_EQ(render("{{ 'a' + 1 }}"),
            "ERROR: t.jinja:1: unsupported operand type(s) for +: 'str' and "
            "'int'");
  // jinja2's immutable sandbox refuses to modify lists.
  EXPECT_EQ(render("{% set l = [] %}{{ l.append(1) }}"),
            "ERROR: t.jinja:1: access to attribute 'append' of 'list' object "
            "is unsafe");
  EXPECT_EQ(render("{{ 'é' | upper }}"),
            "ERROR: t.jinja:1: unsupported: upper of non-ASCII text");
}

TEST(ChatTemplate, RefusesBadConversations) {
  auto tmpl = ChatTemplate::parse("{{ messages | length }}", "t.jinja");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_EQ(tmpl->render(Json::array(), {}).message(),
            "cannot apply a chat template to an empty conversation");
  EXPECT_EQ(tmpl->render(Json::parse("[1]"), {}).message(),
            "message 0 is not a JSON object");
  // Null keys are dropped, as transformers does.
  auto text =
      tmpl->render(Json::parse(R"([{"role": "user", "content": null}])"), {});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "1");
}

TEST(ChatTemplate, SelectsTheDefaultOrToolUseTemplate) {
  Json list = Json::parse(R"([{"name": "tool_use", "template": "T"},
                              {"name": "default", "template": "D"}])");
  EXPECT_EQ(*weft::tokenizer::selectChatTemplate(list), "D");
  EXPECT_EQ(*weft::tokenizer::selectChatTemplate(list, true), "T");
  EXPECT_EQ(*weft::tokenizer::selectChatTemplate(Json("S")), "S");
  EXPECT_FALSE(weft::tokenizer::selectChatTemplate(Json(3)).ok());
}

TEST(ChatTemplate, LoadsTheJinjaFileBeforeTheConfigAndReadsSpecialTokens) {
  std::map<std::string, std::string> files = {
      {"tokenizer_config.json",
       R"({"chat_template": "config", "bos_token": "<s>",
           "eos_token": {"content": "</s>", "special": true},
           "pad_token": null})"},
      {"chat_template.jinja", "file"}};
  auto tmpl = weft::tokenizer::loadChatTemplate(files, "dir");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_EQ(tmpl->origin(), "chat_template.jinja");
  auto context = weft::tokenizer::specialTokensContext(files, "dir");
  ASSERT_TRUE(context.ok());
  EXPECT_EQ(context->dump(), R"({"bos_token":"<s>","eos_token":"</s>"})");
}

TEST(ChatTemplateText, FloatsPrintAsPythonRepr) {
  using weft::tokenizer::jinja::pyFloatRepr;
  EXPECT_EQ(pyFloatRepr(1.0), "1.0");
  EXPECT_EQ(pyFloatRepr(0.1), "0.1");
  EXPECT_EQ(pyFloatRepr(1e-05), "1e-05");
  EXPECT_EQ(pyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(pyFloatRepr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(pyFloatRepr(-0.0), "-0.0");
  EXPECT_EQ(pyFloatRepr(0.0001), "0.0001");
}

} // namespace
