# Conformance of weft's chat templates with transformers: renders many
# conversations through every fixture template with apply_chat_template
# (tokenize=False) and with weft-chat-template-driver, and requires
# byte-identical prompts, or a refusal from both.
import argparse
import datetime as real_datetime
import json
import os
import random
import subprocess
import sys
import tempfile

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402
from transformers.utils import chat_template_utils  # noqa: E402

# strftime_now reads this clock on both sides (local time).
NOW = 1733500000

# Each fixture: its special tokens, and whether its template takes tools.
FIXTURES = {
    "smollm2": dict(bos="<|im_start|>", eos="<|im_end|>", tools=False),
    "qwen2": dict(bos=None, eos="<|im_end|>", tools=False),
    "qwen2.5": dict(bos=None, eos="<|im_end|>", tools=True),
    "llama3.1": dict(bos="<|begin_of_text|>", eos="<|eot_id|>", tools=True),
    "llama3.2": dict(bos="<|begin_of_text|>", eos="<|eot_id|>", tools=True),
    "mistral-v0.1": dict(bos="<s>", eos="</s>", tools=False),
    "mistral-v0.3": dict(bos="<s>", eos="</s>", tools=True),
    "llama2": dict(bos="<s>", eos="</s>", tools=False),
    "gemma": dict(bos="<bos>", eos="<eos>", tools=False),
}

CONTENTS = [
    "Hello",
    "",
    "  leading and trailing spaces  ",
    "multi\nline\ncontent\n",
    "trailing newlines\n\n",
    "unicode: h\u00e9llo w\u00f6rld \u4f60\u597d \U0001f642",
    "jinja-looking {{ x }} {% if y %} {# z #} {%- raw -%}",
    "\u00a0non-breaking and ideographic spaces\u3000",
    "tab\tseparated\tvalues\t",
    "quotes ' \" and a \\ backslash",
    "<|im_end|> looks special [INST] too",
    "What is 2 + 2?",
    "line\u2028separator and \x7f delete",
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city \u2600",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
        "return": {"type": "string"},
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}


class FixedDatetime(real_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return real_datetime.datetime.fromtimestamp(NOW, tz)


def make_tokenizer(fixture, template):
    vocab = {"<unk>": 0}
    for token in (fixture["bos"], fixture["eos"]):
        if token:
            vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    kwargs = {"unk_token": "<unk>", "chat_template": template}
    if fixture["bos"]:
        kwargs["bos_token"] = fixture["bos"]
    if fixture["eos"]:
        kwargs["eos_token"] = fixture["eos"]
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def plain_conversation(rng, turns, system, last_role="user"):
    messages = []
    if system:
        messages.append({"role": "system", "content": rng.choice(CONTENTS)})
    roles = ["user", "assistant"]
    for i in range(turns):
        messages.append({"role": roles[i % 2], "content": rng.choice(CONTENTS)})
    if last_role == "assistant" and messages[-1]["role"] == "user":
        messages.append({"role": "assistant", "content": rng.choice(CONTENTS)})
    return messages


def tool_conversations(name):
    call = {
        "id": "call12345",
        "type": "function",
        "function": {
            "name": "get_weather",
            "arguments": {"city": "Z\u00fcrich", "unit": "c", "days": 2},
        },
    }
    user = {"role": "user", "content": "Weather in Z\u00fcrich?"}
    assistant_call = {"role": "assistant", "content": "", "tool_calls": [call]}
    if name == "mistral-v0.3":
        assistant_call = {"role": "assistant", "tool_calls": [call]}
    tool_reply = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
                  "content": "Sunny, 21 \u00b0C"}
    done = {"role": "assistant", "content": "It is sunny."}
    convs = [
        [user],
        [{"role": "system", "content": "Use tools wisely."}, user],
        [user, assistant_call, tool_reply],
        [user, assistant_call, tool_reply, done, {"role": "user", "content": "Thanks"}],
    ]
    if name.startswith("llama3"):
        convs.append([user, assistant_call,
                      {"role": "tool", "content": {"temperature": 21, "sky": "sunny"}}])
    if name == "qwen2.5":
        two = dict(tool_reply, content="second result")
        convs.append([user, {"role": "assistant", "content": "Let me check.",
                             "tool_calls": [call, call]}, tool_reply, two])
    return convs


def invalid_conversations(name):
    convs = [
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        [{"role": "assistant", "content": "first"}],
        [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
        [{"role": "user", "content": "a"}, {"role": "narrator", "content": "b"}],
        [],
        [{"role": "user", "content": None}],
        [{"role": "user"}],
    ]
    if name == "mistral-v0.3":
        bad = {"id": "short", "type": "function",
               "function": {"name": "f", "arguments": {}}}
        convs.append([{"role": "user", "content": "x"},
                      {"role": "assistant", "tool_calls": [bad]}])
    if name.startswith("llama3"):
        two = {"type": "function", "function": {"name": "f", "arguments": {}}}
        convs.append([{"role": "user", "content": "x"},
                      {"role": "assistant", "tool_calls": [two, two]}])
    return convs


def build_cases(name, fixture, rng):
    cases = []
    for turns in range(1, 7):
        for system in (False, True):
            for last in ("user", "assistant"):
                for gen in (True, False):
                    for _ in range(2):
                        cases.append(dict(messages=plain_conversation(rng, turns, system, last),
                                          add_generation_prompt=gen))
    for messages in invalid_conversations(name):
        cases.append(dict(messages=messages, add_generation_prompt=True))
    cases.append(dict(messages=[{"role": "user", "content": "hi",
                                 "reasoning_content": "hmm"}],
                      add_generation_prompt=True))
    if fixture["tools"]:
        for tools in ([WEATHER_TOOL], [WEATHER_TOOL, SEARCH_TOOL]):
            for messages in tool_conversations(name):
                for gen in (True, False):
                    cases.append(dict(messages=messages, add_generation_prompt=gen,
                                      tools=tools))
    if name.startswith("llama3"):
        cases.append(dict(messages=[{"role": "user", "content": "x"}],
                          add_generation_prompt=True, extra={"date_string": "01 Jan 2030"}))
        cases.append(dict(messages=[{"role": "user", "content": "x"}],
                          add_generation_prompt=True, tools=[WEATHER_TOOL],
                          extra={"tools_in_user_message": False}))
    if name == "llama3.1":
        cases.append(dict(messages=[{"role": "user", "content": "x"}],
                          add_generation_prompt=True,
                          extra={"builtin_tools": ["brave_search", "code_interpreter"]}))
    return cases


# Jinja features one at a time, rendered over a two-message conversation.
SNIPPETS = [
    "{{ messages | length }}|{{ messages[0].content | upper }}|{{ 'a' ~ 1 ~ none }}",
    "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/"
    "{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}",
    "{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}"
    ">{{ loop.nextitem.role if loop.nextitem is defined else '-' }} {% endfor %}",
    "{% for m in messages if m.role == 'assistant' %}{{ m.content }}{% else %}none{% endfor %}",
    "{% for m in [] %}x{% else %}empty{% endfor %}",
    "{% for k, v in {'b': 1, 'a': [1, 2.5, 'x']}.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% for k, v in {'x': 1} | items %}"
    "{{ k }}{{ v }}{% endfor %}",
    "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
    "{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}",
    "{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
    "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c', punct='.') }}",
    "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inner{% endcall %}",
    "{% filter upper %}shout {{ 'it' }}{% endfilter %}",
    "{{ '  x  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'Hello World' | lower }}|"
    "{{ 'hello world-wide (x)' | title }}|{{ 'hELLO' | capitalize }}",
    "{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ 'abc' | first }}{{ [3, 1, 2] | sort | join(',') }}"
    "{{ [3, 1, 2] | sort(reverse=true) | list }}",
    "{{ undefined_thing | default('dflt') }}|{{ '' | default('e', true) }}|{{ none | d('n') }}",
    "{{ {'a': 1, 'b': [1, 2], 'c': {'d': none, 'e': true}, 'f': 'é\\n\"'} | tojson }}",
    "{{ {'a': 1, 'b': [1, 2], 'c': {}} | tojson(indent=2) }}|{{ [] | tojson(indent=4) }}",
    "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|{{ 'ü' | tojson(ensure_ascii=true) }}",
    "{{ [1.0, 0.1, 1e-05, 1e16, 123456789.125, -0.0, 3.14159] | tojson }}",
    "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }}"
    " {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }}",
    "{{ '12' | int + 1 }} {{ '3.7' | int }} {{ 'x' | int }} {{ '2.5' | float }} {{ 3 | float }}"
    " {{ 3.7 | int }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }}",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}",
    "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'x-y'.replace('-', '+') }}",
    "{{ '  s  '.strip() }}|{{ '  s  '.lstrip() }}|{{ '  s  '.rstrip() }}|{{ 'xsx'.strip('x') }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}"
    "{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='content') | join }}",
    "{{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }}"
    " {{ [1, 2, 3] | select('divisibleby', 3) | list }} {{ ['a', 'B'] | map('upper') | list }}",
    "{{ [1, 1, 2, 'a', 'A'] | unique | list }} {{ {'b': 1, 'a': 2} | dictsort }} {{ [1, 2, 3] | sum }}"
    " {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ 'abc' | reverse }} {{ [1, 2] | reverse | list }}",
    "{{ 'a\nb\n\nc' | indent }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent(1, blank=true) }}",
    "{{ '<a href=\"x\">&\\'' | e }} {{ 'x' | safe }} {{ 'abc' | replace('b', 'B') }} {{ 'aaa' | replace('a', 'b', 2) }}",
    "{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is integer }}{{ true is boolean }}"
    "{{ 'x' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'x' is iterable }}{{ 1 is iterable }}"
    "{{ none is none }}{{ x is undefined }}{{ 2 is even }}{{ 3 is odd }}{{ 1 is true }}{{ false is false }}",
    "{{ 'ab' is sequence }}{{ 3 is in [1, 3] }}{{ 'a' is in 'cat' }}{{ 2 is eq 2 }}{{ 2 is ne 3 }}"
    "{{ 'x' is lower }}{{ 'X' is upper }}{{ 3 is gt 2 }}{{ 3 is lessthan 2 }}{{ 'trim' is filter }}",
    "{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ 1 != 2 }}{{ 'a' in ['a'] }}"
    "{{ 'z' not in 'abc' }}{{ 'k' in {'k': 1} }}{{ not 0 }}{{ 0 or 'x' }}{{ 1 and 'y' }}{{ none or [] }}",
    "{{ 'yes' if messages else 'no' }}{{ 'y' if false }}[{{ 'a' if false else 'b' if true else 'c' }}]",
    "{{ messages[-1].content }}{{ messages[1:] | length }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}"
    "{{ [1, 2, 3, 4][::2] }}{{ 'héllo'[1] }}{{ 'héllo' | length }}{{ [1, 2][5] is undefined }}",
    "{{ messages[0]['role'] }}{{ messages[0].get('role') }}{{ messages[0].get('nope', 'dflt') }}"
    "{{ messages[0].keys() | list }}{{ messages[0].values() | list | length }}",
    "{{ [1, 'a', none, true, 1.5, {'k': 'v'}, [2]] }} {{ {'a': 'it\\'s'} }} {{ ('t', 1) }}",
    "{{ 'a' + 'b' }}{{ [1] + [2] }}{{ 'ab' * 2 }}{{ 3 * 'x' }}{{ -(2) }}{{ +3 }}{{ 10 - 2 * 3 }}{{ (10 - 2) * 3 }}",
    "{{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}",
    "{{ \"double\" }}{{ 'single' }}{{ 'esc\\t\\x41\\u00e9\\\\' }}{{ 'con' 'cat' }}",
    "{#- comment -#}   {{- ' trimmed ' -}}   {# other #}\n  x  \n{%- if true %}\n  y\n{% endif %}\nz",
    "a\n  {% if true %}\n    b\n  {% endif %}\n  {%+ if true %}c{% endif %}\n{% for i in [1, 2] -%}\n{{ i }}\n{%- endfor %}",
    "  {{ 'x' }}\n{% if true %}  {{ 'y' }}  {% endif %}  \n{# c #}\n  {%- if true -%}  z  {%- endif -%}  \nend",
    "{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }};{% endfor %}",
    "{% if messages | length > 1 %}many{% elif messages %}one{% else %}none{% endif %}",
    "{{ strftime_now('%Y-%m-%d %H:%M %b %A') }}",
    "{% generation %}gen {{ messages[0].role }}{% endgeneration %}",
    "{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}{{ bos_token }}{{ eos_token }}",
    "{{ messages[0].content.upper() }}{{ 'x'.title() }}{{ 'a b'.title() }}{{ ','.join(['a', 'b']) }}",
    "{{ messages | map(attribute='role') | join(', ') }} {{ messages | map(attribute='nope', default='d') | list }}",
    "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}",
    "{{ {'a': {'b': 1}}['a']['b'] }}{{ {'a': {'b': 1}}.a.b }}{{ [[1, 2]][0][1] }}",
]

# Refusals: transformers raises and weft must refuse too.
BAD_SNIPPETS = [
    "{{ raise_exception('custom failure') }}",
    "{{ messages[5].content.x }}",
    "{{ 'a' + 1 }}",
    "{{ undefined_var + 'x' }}",
    "{{ none.x.y }}",
    "{{ 1 / 0 }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{{ 1 < 'a' }}",
    "{{ x.y }}",
    "{% for a, b in [1] %}{% endfor %}",
    "{{ undefined_fn() }}",
    "{{ 3() }}",
    "{% set x = 1 %}{% set x.y = 2 %}",
    "{{ namespace(_private=1) }}",
]

# Where transformers renders something no prompt should hold (a generator's
# repr) or an option outside the subset: weft refuses.
STRICTER_SNIPPETS = [
    "{{ messages | items }}",
    "{{ 'ab' | tojson(indent='x') }}",
]


def render_transformers(tok, case):
    kwargs = dict(case.get("extra", {}))
    try:
        text = tok.apply_chat_template(case["messages"], tools=case.get("tools"),
                                       add_generation_prompt=case["add_generation_prompt"],
                                       tokenize=False, **kwargs)
        return True, text
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return False, f"{type(e).__name__}: {e}"


def weft_case(path, tok, case):
    context = dict(tok.special_tokens_map)
    if "tools" in case:
        context["tools"] = case["tools"]
    context.update(case.get("extra", {}))
    return {"template": path, "messages": case["messages"],
            "add_generation_prompt": case["add_generation_prompt"],
            "context": context, "now": NOW}


def run_driver(driver, requests):
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    out = subprocess.run([driver, "--batch"], input=lines.encode(), capture_output=True,
                         check=True).stdout.decode()
    return [json.loads(line) for line in out.split("\n") if line]


def check_template(name, path, tok, cases, driver, quiet=False):
    expected = [render_transformers(tok, c) for c in cases]
    answers = run_driver(driver, [weft_case(path, tok, c) for c in cases])
    identical = refused = 0
    failures = []
    for case, (ok, text), answer in zip(cases, expected, answers):
        if ok and answer["ok"] and answer["text"] == text:
            identical += 1
        elif not ok and not answer["ok"]:
            identical += 1
            refused += 1
        else:
            failures.append((case, ok, text, answer))
    if not quiet or failures:
        print(f"{name}: {len(cases)} cases, {identical} identical "
              f"({refused} refused by both)")
    for case, ok, text, answer in failures[:5]:
        print("  MISMATCH", json.dumps(case, ensure_ascii=False))
        print("    transformers:", repr(text) if ok else "refused: " + text)
        print("    weft:        ", repr(answer.get("text")) if answer["ok"]
              else "refused: " + answer["error"])
    return not failures and identical == len(cases)


def train_tokenizer(specials):
    """A small byte-level BPE tokenizer trained on the test's own texts."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    corpus = CONTENTS * 20 + ["You are a helpful AI assistant named SmolLM",
                              "Cutting Knowledge Date: December 2023 Today Date"] * 20
    tok.train_from_iterator(corpus, trainer)
    return tok


def check_chat_ids(name, model_dir, weft, conversations):
    """`weft tokenize --chat` against apply_chat_template(tokenize=True)."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    expected = []
    for messages in conversations:
        out = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        expected.append(list(out["input_ids"] if hasattr(out, "keys") else out))
    lines = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in conversations)
    run = subprocess.run([weft, "tokenize", "--tokenizer", model_dir, "--chat"],
                         input=lines.encode(), capture_output=True)
    if run.returncode != 0:
        print(f"{name}: weft tokenize --chat failed: {run.stderr.decode()}")
        return False
    got = [json.loads(line) for line in run.stdout.decode().split("\n") if line]
    identical = sum(1 for a, b in zip(expected, got) if a == b)
    print(f"{name} (weft tokenize --chat): {len(conversations)} conversations, "
          f"{identical} identical id lists")
    for a, b, m in zip(expected, got, conversations):
        if a != b:
            print("  MISMATCH", json.dumps(m, ensure_ascii=False), a, b)
            break
    return identical == len(conversations) == len(got)


def check_chat_command(args, rng):
    good = True
    layouts = {"smollm2": "config", "qwen2.5": "jinja", "llama3.1": "list",
               "mistral-v0.3": "config", "gemma": "jinja"}
    for name, layout in layouts.items():
        fixture = FIXTURES[name]
        with open(os.path.join(args.fixtures, "chat_templates", name + ".jinja"),
                  encoding="utf-8") as f:
            template = f.read()
        specials = [t for t in (fixture["bos"], fixture["eos"], "<unk>") if t]
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>"}
        if fixture["bos"]:
            config["bos_token"] = fixture["bos"]
        config["eos_token"] = fixture["eos"]
        with tempfile.TemporaryDirectory() as model_dir:
            train_tokenizer(specials).save(os.path.join(model_dir, "tokenizer.json"))
            if layout == "jinja":
                with open(os.path.join(model_dir, "chat_template.jinja"), "w",
                          encoding="utf-8") as f:
                    f.write(template)
            elif layout == "list":
                config["chat_template"] = [{"name": "default", "template": template},
                                           {"name": "other", "template": "x"}]
            else:
                config["chat_template"] = template
            with open(os.path.join(model_dir, "tokenizer_config.json"), "w",
                      encoding="utf-8") as f:
                json.dump(config, f)
            tok = AutoTokenizer.from_pretrained(model_dir)
            conversations = []
            for turns in (1, 3, 5):
                for system in (False, True):
                    for _ in range(3):
                        messages = plain_conversation(rng, turns, system)
                        try:
                            tok.apply_chat_template(messages, add_generation_prompt=True,
                                                    tokenize=False)
                        except Exception:  # noqa: BLE001 - keep what transformers takes
                            continue
                        conversations.append(messages)
            good &= check_chat_ids(f"{name} ({layout})", model_dir, args.weft, conversations)
    hf_dir = os.path.join(args.fixtures, "smollm2")
    if os.path.exists(os.path.join(hf_dir, "tokenizer.json")):
        conversations = [plain_conversation(rng, t, s) for t in (1, 2, 3, 4, 5, 6)
                         for s in (False, True)]
        good &= check_chat_ids("smollm2 (real tokenizer)", hf_dir, args.weft, conversations)
    return good


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", required=True)
    parser.add_argument("--fixtures", required=True, help="test/fixtures")
    parser.add_argument("--weft", help="weft, to check `weft tokenize --chat` too")
    args = parser.parse_args()
    chat_template_utils.datetime = FixedDatetime
    rng = random.Random(14)
    good = True
    for name, fixture in FIXTURES.items():
        path = os.path.join(args.fixtures, "chat_templates", name + ".jinja")
        with open(path, encoding="utf-8") as f:
            template = f.read()
        tok = make_tokenizer(fixture, template)
        good &= check_template(name, path, tok, build_cases(name, fixture, rng), args.driver)
    snippet_fixture = dict(bos="<s>", eos="</s>", tools=False)
    snippet_messages = [{"role": "user", "content": "Hello there"},
                        {"role": "assistant", "content": "Hi!"}]
    with tempfile.TemporaryDirectory() as tmp:
        for label, snippets in (("jinja snippets", SNIPPETS),
                                ("jinja refusals", BAD_SNIPPETS)):
            for i, snippet in enumerate(snippets):
                path = os.path.join(tmp, f"snippet{i}.jinja")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(snippet)
                tok = make_tokenizer(snippet_fixture, snippet)
                cases = [dict(messages=snippet_messages, add_generation_prompt=True)]
                good &= check_template(f"{label} #{i}", path, tok, cases, args.driver,
                                       quiet=True)
        for i, snippet in enumerate(STRICTER_SNIPPETS):
            path = os.path.join(tmp, f"stricter{i}.jinja")
            with open(path, "w", encoding="utf-8") as f:
                f.write(snippet)
            answer = run_driver(args.driver, [{"template": path, "messages": snippet_messages}])[0]
            if answer["ok"]:
                print(f"weft renders {snippet!r} where it should refuse")
                good = False
        print(f"jinja snippets: {len(SNIPPETS)} identical; refusals: {len(BAD_SNIPPETS)} "
              f"refused by both, {len(STRICTER_SNIPPETS)} refused by weft only")
    # A real model directory, where one is checked in.
    hf_dir = os.path.join(args.fixtures, "smollm2")
    if os.path.exists(os.path.join(hf_dir, "tokenizer_config.json")):
        tok = AutoTokenizer.from_pretrained(hf_dir)
        with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False,
                                         encoding="utf-8") as f:
            f.write(tok.chat_template)
        try:
            cases = build_cases("smollm2", FIXTURES["smollm2"], rng)
            good &= check_template("smollm2 (model directory)", f.name, tok, cases,
                                   args.driver)
        finally:
            os.unlink(f.name)
    if args.weft:
        good &= check_chat_command(args, rng)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
