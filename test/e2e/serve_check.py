#!/usr/bin/env python3
"""Checks `weft serve` through the official `openai` client and raw HTTP:

  serve_check.py --weft WEFT --artifact DIR --tokenizer DIR [--nproc N]
      [--checks all|basic]

Starts `weft serve ARTIFACT --port 0` (with --nproc N when given), and
checks, against `weft generate` (the same greedy request) and the
`tokenizers` package:
  - chat and completions, streamed and not, give weft generate's text;
    streamed deltas add up to the whole text; usage counts are right;
  - 64 concurrent clients (8 prompts, 8 clients each) all get the text the
    prompt gets alone (greedy output does not depend on the batch);
  - /tokenize and /detokenize agree with tokenizers; /v1/models, /health;
  - malformed JSON, wrong types, an unknown model, a prompt longer than the
    context, max_tokens <= 0, invalid UTF-8, an oversized body and an
    unknown endpoint each get a 4xx error object, and the server keeps
    serving;
  - a client that disconnects mid-stream frees its KV blocks (/metrics);
  - a full queue answers 429 with Retry-After; a request past
    --request-timeout ends with 504;
  - SIGTERM under load: every accepted request is answered, the exit is 0.
Prints "ok: ..." lines; exits 1 on the first failure.
"""
import argparse
import concurrent.futures as cf
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import openai
from tokenizers import Tokenizer


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


class Server:
    started = []

    def __init__(self, args, extra=(), env=None):
        cmd = [args.weft, "serve", args.artifact, "--port", "0"] + list(extra)
        # Other tests' arguments (serve_monitor.py) may lack these.
        if getattr(args, "dp", None):
            cmd += ["--dp", str(args.dp)]
        cmd += shlex.split(getattr(args, "serve_args", None) or "")
        self.mpirun = bool(args.mpirun)
        self.hosts = []  # --nodes: the other "hosts"' weft serve
        if args.mpirun:
            cmd = shlex.split(args.mpirun) + cmd
        elif args.nproc:
            cmd += ["--nproc", str(args.nproc)]
        if args.nodes:
            # Each "host" runs --nproc ranks of the job; host 0 serves.
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            node = ["--nnodes", str(args.nodes), "--master-addr", "127.0.0.1",
                    "--master-port", str(port)]
            for k in range(1, args.nodes):
                self.hosts.append(subprocess.Popen(
                    cmd + node + ["--node-rank", str(k)],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True))
            cmd += node + ["--node-rank", "0"]
        Server.started.append(self)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, **(env or {})))
        self.lines = []
        self.port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                if "ready" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(120) or self.port is None or self.proc.poll() is not None:
            fail("weft serve did not start:\n" + "".join(self.lines))
        self.url = "http://127.0.0.1:%d" % self.port
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="none",
                                    max_retries=0, timeout=120)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), data

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        if status != 200:
            fail("/metrics answered %d" % status)
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, expect=0):
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("weft serve did not exit after SIGTERM")
        # mpirun exits 1 after a SIGTERM of its own even when every rank
        # exits 0: there, no rank may report an error.
        out = "".join(self.lines)
        if self.mpirun and sig == signal.SIGTERM:
            if "error:" in out:
                fail("a rank reported an error after SIGTERM:\n" + out)
        elif code != expect:
            fail("weft serve exited %d, expected %d:\n%s" % (code, expect, out))
        # The other hosts' ranks end when rank 0 stops them.
        for k, host in enumerate(self.hosts, 1):
            try:
                out, _ = host.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                host.kill()
                fail("host %d's weft serve did not exit after rank 0's" % k)
            if host.returncode != expect:
                fail("host %d's weft serve exited %d, expected %d:\n%s"
                     % (k, host.returncode, expect, out))


def generate_ref(args, prompt, max_tokens, chat):
    cmd = [args.weft, "generate", args.artifact, "--prompt", prompt,
           "--max-tokens", str(max_tokens), "--json"]
    if chat:
        cmd.append("--chat")
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        fail("weft generate failed: " + out.stderr)
    return json.loads(out.stdout.splitlines()[0])


def metric(values, name):
    for key, v in values.items():
        if key == name or key.startswith(name + "{"):
            return v
    fail("no metric " + name)


def check_basic(args, srv, model):
    c = srv.client
    question = "What is the capital of France?"
    ref = generate_ref(args, question, 24, chat=True)
    r = c.chat.completions.create(model=model, max_tokens=24, temperature=0,
                                  messages=[{"role": "user", "content": question}])
    if r.choices[0].message.content != ref["text"]:
        fail("chat text %r != weft generate's %r" %
             (r.choices[0].message.content, ref["text"]))
    if r.usage.prompt_tokens != len(ref["prompt_ids"]) or \
            r.usage.completion_tokens != len(ref["ids"]):
        fail("chat usage %s, expected %d prompt and %d completion tokens" %
             (r.usage, len(ref["prompt_ids"]), len(ref["ids"])))
    if r.choices[0].finish_reason != ref["finish_reason"]:
        fail("finish_reason %s != %s" % (r.choices[0].finish_reason,
                                         ref["finish_reason"]))
    ok("chat completion equals weft generate --chat: %r" % ref["text"])

    stream = c.chat.completions.create(
        model=model, max_tokens=24, temperature=0, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": question}])
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    if text != ref["text"] or finish != ref["finish_reason"] or usage is None \
            or usage.completion_tokens != len(ref["ids"]) or chunks < 3:
        fail("streamed chat %r (%s, %s, %d chunks) != %r" %
             (text, finish, usage, chunks, ref["text"]))
    ok("streamed chat: %d chunks add up to the same text, with usage" % chunks)

    prompt = "The three primary colors are"
    ref = generate_ref(args, prompt, 20, chat=False)
    r = c.completions.create(model=model, prompt=prompt, max_tokens=20,
                             temperature=0)
    if r.choices[0].text != ref["text"]:
        fail("completion %r != weft generate's %r" %
             (r.choices[0].text, ref["text"]))
    text = ""
    for chunk in c.completions.create(model=model, prompt=prompt,
                                      max_tokens=20, temperature=0,
                                      stream=True):
        for ch in chunk.choices:
            text += ch.text
    if text != ref["text"]:
        fail("streamed completion %r != %r" % (text, ref["text"]))
    r = c.completions.create(model=model, prompt=ref["prompt_ids"],
                             max_tokens=20, temperature=0)
    if r.choices[0].text != ref["text"]:
        fail("a token-id prompt gave %r, not %r" % (r.choices[0].text,
                                                     ref["text"]))
    ok("completions (text, streamed, token ids) equal weft generate: %r" %
       ref["text"])

    # Seeded sampling is reproducible; n gives several choices.
    a = c.completions.create(model=model, prompt=prompt, max_tokens=12,
                             temperature=0.9, top_p=0.9, seed=7, n=2)
    b = c.completions.create(model=model, prompt=prompt, max_tokens=12,
                             temperature=0.9, top_p=0.9, seed=7, n=2)
    if [x.text for x in a.choices] != [x.text for x in b.choices] or \
            len(a.choices) != 2:
        fail("seeded sampling is not reproducible")
    ok("seeded sampling with n=2 is reproducible")

    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    text = "Hello, world! Ünïcödé 😀 tokens"
    status, _, data = srv.request("POST", "/tokenize",
                                  json.dumps({"prompt": text}))
    ids = tok.encode(text).ids
    if status != 200 or json.loads(data)["tokens"] != ids:
        fail("/tokenize gave %s, tokenizers %s" % (data, ids))
    status, _, data = srv.request("POST", "/detokenize",
                                  json.dumps({"tokens": ids}))
    if status != 200 or json.loads(data)["prompt"] != tok.decode(ids):
        fail("/detokenize gave %s" % data)
    models = c.models.list()
    if [m.id for m in models.data] != [model]:
        fail("/v1/models lists %s" % models.data)
    ok("/tokenize and /detokenize agree with tokenizers; /v1/models")

    # Every rank's counters: each rank of a replica runs its every step
    # (with --dp, every replica has served some of the requests above).
    dp = args.dp or 1

    def replica_steps(steps):
        ranks = sorted(steps, key=lambda k: int(re.search(
            r'rank="(\d+)"', k).group(1)))
        per = len(ranks) // dp
        return [{steps[k] for k in ranks[d * per:(d + 1) * per]}
                for d in range(dp)]

    for _ in range(50):
        steps = {k: v for k, v in srv.metrics().items()
                 if k.startswith("weft:rank_steps_total")}
        groups = replica_steps(steps) if steps else []
        if steps and min(steps.values()) > 0 and \
                all(len(g) == 1 for g in groups):
            break
        time.sleep(0.1)
    else:
        fail("per-rank steps: %s" % steps)
    if args.dp:
        routed = {k: v for k, v in srv.metrics().items()
                  if k.startswith("weft:replica_requests_total")}
        if len(routed) != dp or min(routed.values()) <= 0:
            fail("requests per replica: %s" % routed)
        ok("/metrics: %d replicas, each served requests (%s)" % (
            dp, ", ".join("%d" % v for v in routed.values())))
    coll = [v for k, v in srv.metrics().items()
            if k.startswith("weft:rank_collective_seconds_total")]
    if len(steps) > 1 and min(coll) <= 0:
        fail("per-rank collective seconds: %s" % coll)
    if args.dp:
        ok("/metrics: %d rank(s); the ranks of each replica ran its steps "
           "(%s)" % (len(steps), ", ".join(
               "%d" % min(g) for g in replica_steps(steps))))
    else:
        ok("/metrics: %d rank(s), each %d steps" %
           (len(steps), list(steps.values())[0]))


def check_concurrent(args, srv, model):
    prompts = ["Tell me about %s." % t for t in
               ["the sea", "mountains", "Paris", "cats", "rain", "books",
                "music", "the moon"]]
    alone = {}
    for p in prompts:
        r = srv.client.completions.create(model=model, prompt=p, max_tokens=12,
                                          temperature=0)
        alone[p] = r.choices[0].text

    def one(i):
        p = prompts[i % len(prompts)]
        if i % 2:
            text = ""
            for chunk in srv.client.completions.create(
                    model=model, prompt=p, max_tokens=12, temperature=0,
                    stream=True):
                for ch in chunk.choices:
                    text += ch.text
            return p, text
        r = srv.client.completions.create(model=model, prompt=p, max_tokens=12,
                                          temperature=0)
        return p, r.choices[0].text

    with cf.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    bad = [(p, t) for p, t in results if t != alone[p]]
    if bad:
        fail("%d of 64 concurrent answers differ from the prompt alone, "
             "e.g. %r: %r != %r" % (len(bad), bad[0][0], bad[0][1],
                                    alone[bad[0][0]]))
    ok("64 concurrent clients get the answers their prompts get alone")
    if "mixed" in (args.serve_args or ""):
        mixed = metric(srv.metrics(), "weft:mixed_steps_total")
        if mixed <= 0:
            fail("--schedule mixed ran no mixed step")
        ok("%d steps carried decodes and prompt chunks together" % mixed)


def check_errors(args, srv, model):
    def expect(body, want, what, param=None, raw=False):
        data = body if raw else json.dumps(body)
        got, headers, out = srv.request(
            "POST", "/v1/completions" if not what.startswith("chat")
            else "/v1/chat/completions", data,
            {"Content-Type": "application/json"})
        if got != want:
            fail("%s: status %d, expected %d: %s" % (what, got, want, out[:300]))
        err = json.loads(out).get("error")
        if not err or not err.get("message") or not err.get("type"):
            fail("%s: no OpenAI error object: %s" % (what, out[:300]))
        if param and err.get("param") != param:
            fail("%s: param %s, expected %s" % (what, err.get("param"), param))
        return err

    expect(b'{"prompt": "hi", "max_tokens": ', 400, "malformed JSON",
           raw=True)
    expect(b'{"prompt": "caf\xff", "max_tokens": 4}', 400,
           "invalid UTF-8", raw=True)
    expect(b'[1, 2]', 400, "a body that is not an object", raw=True)
    expect({"prompt": "hi", "max_tokens": "four"}, 400, "wrong type",
           "max_tokens")
    expect({"prompt": 5}, 400, "wrong prompt type", "prompt")
    expect({"prompt": "hi", "temperature": -1}, 400,
           "temperature out of range", "temperature")
    err = expect({"model": "nope", "prompt": "hi"}, 404, "unknown model",
                 "model")
    if err.get("code") != "model_not_found":
        fail("unknown model: code %s" % err.get("code"))
    expect({"prompt": "hi", "max_tokens": 0}, 400, "max_tokens 0",
           "max_tokens")
    expect({"prompt": "hi", "max_tokens": -3}, 400, "max_tokens < 0",
           "max_tokens")
    err = expect({"prompt": "word " * 400, "max_tokens": 4}, 400,
                 "a prompt longer than the context", "prompt")
    if "maximum context length" not in err["message"]:
        fail("context error: " + err["message"])
    expect({"prompt": "hi", "logprobs": 2}, 400, "unsupported logprobs",
           "logprobs")
    expect({"prompt": [999999999]}, 400, "an id out of range", "prompt")
    expect({"messages": "hi"}, 400, "chat with wrong messages",
           "messages")
    expect({"messages": [{"role": "wizard", "content": "x"}]}, 400,
           "chat with an unknown role", "messages")
    big = json.dumps({"prompt": "x" * (300 * 1024)})
    got, _, out = srv.request("POST", "/v1/completions", big)
    if got != 413 or "error" not in json.loads(out):
        fail("oversized body: %d %s" % (got, out[:200]))
    got, _, out = srv.request("GET", "/v1/nothing")
    if got != 404 or "error" not in json.loads(out):
        fail("unknown endpoint: %d" % got)
    got, _, out = srv.request("GET", "/v1/completions")
    if got != 405:
        fail("GET /v1/completions: %d" % got)
    try:
        srv.client.completions.create(model=model, prompt="hi", max_tokens=0)
        fail("the openai client got no error for max_tokens 0")
    except openai.BadRequestError as e:
        if "max_tokens" not in str(e):
            fail("openai error without the field: %s" % e)
    r = srv.client.completions.create(model=model, prompt="Hello",
                                      max_tokens=3, temperature=0)
    if r.usage.completion_tokens < 1:
        fail("the server does not serve after the errors")
    ok("malformed JSON, invalid UTF-8, wrong types, unknown model, long "
       "prompt, max_tokens <= 0, oversized body, unknown endpoint: 4xx "
       "error objects, and the server keeps serving")


def check_disconnect(args, srv, model):
    before = metric(srv.metrics(), "weft:requests_cancelled_total")
    s = socket.create_connection(("127.0.0.1", srv.port))
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 200,
                       "temperature": 0, "stream": True,
                       "ignore_eos": True}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    got = b""
    while got.count(b"data: ") < 3:
        chunk = s.recv(4096)
        if not chunk:
            fail("the stream ended early")
        got += chunk
    running = metric(srv.metrics(), "vllm:num_requests_running")
    usage = metric(srv.metrics(), "vllm:kv_cache_usage_perc")
    if running < 1 or usage <= 0:
        fail("mid-stream: %s running, KV usage %s" % (running, usage))
    s.close()
    for _ in range(100):
        m = srv.metrics()
        if metric(m, "weft:requests_cancelled_total") > before and \
                metric(m, "vllm:num_requests_running") == 0 and \
                metric(m, "vllm:kv_cache_usage_perc") == 0:
            ok("a client gone mid-stream is cancelled and its KV blocks are "
               "freed (usage %.4f -> 0)" % usage)
            return
        time.sleep(0.1)
    fail("the disconnected stream's blocks were not freed: %s" % m)


def check_limits(args, model):
    # One sequence at a time, one waiting at most: a burst gets 429s.
    srv = Server(args, ["--max-num-seqs", "1", "--max-queue", "1",
                        "--kv-cache-blocks", "8"])
    # Two prompts, the second needing more blocks than the cache has: a 400
    # naming it, and the first one's sequence gone too.
    two = json.dumps({"model": model, "prompt": [[1] * 10, [1] * 120],
                      "max_tokens": 100, "temperature": 0})
    status, _, out = srv.request("POST", "/v1/completions", two)
    if status != 400 or "KV cache blocks" not in out.decode():
        fail("a prompt the cache cannot hold: %d %s" % (status, out[:300]))
    if metric(srv.metrics(), "vllm:num_requests_running") != 0:
        fail("the refused request's first prompt still runs")
    ok("a prompt the KV cache can never hold gets 400, and its request's "
       "other prompt is dropped")
    body = json.dumps({"model": model, "prompt": "Count: one, two,",
                       "max_tokens": 40, "temperature": 0,
                       "ignore_eos": True})

    def post(_):
        return srv.request("POST", "/v1/completions", body)

    with cf.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, range(6)))
    limited = [a for a in answers if a[0] == 429]
    if not limited or any(a[0] not in (200, 429) for a in answers):
        fail("a burst of 6 over --max-queue 1: statuses %s" %
             [a[0] for a in answers])
    if limited[0][1].get("Retry-After") is None or \
            json.loads(limited[0][2])["error"]["type"] != "RateLimitError":
        fail("429 without Retry-After or error object")
    ok("a full queue answers 429 with Retry-After (%d of 6)" % len(limited))
    srv.stop()
    srv = Server(args, ["--request-timeout", "1"])
    long = json.dumps({"model": model, "prompt": "Count:", "max_tokens": 220,
                       "temperature": 0, "ignore_eos": True})
    status, _, out = srv.request("POST", "/v1/completions", long)
    if status != 504 or "request-timeout" not in json.loads(out)["error"]["message"]:
        # The CPU may be fast enough to finish in time.
        if status != 200:
            fail("past --request-timeout: %d %s" % (status, out[:200]))
        print("note: the long request finished within --request-timeout")
    else:
        ok("a request past --request-timeout ends with 504")
    srv.stop()


def check_sigterm(args, model):
    srv = Server(args, ["--shutdown-grace", "60"])
    results = []

    def one(i):
        try:
            text, finish = "", None
            for chunk in srv.client.completions.create(
                    model=model, prompt="Story %d:" % i, max_tokens=24,
                    temperature=0, stream=True,
                    extra_body={"ignore_eos": True}):
                for ch in chunk.choices:
                    text += ch.text
                    finish = ch.finish_reason or finish
            results.append(finish)
        except Exception as e:  # noqa: BLE001
            results.append("error: %s" % e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for _ in range(200):
        if metric(srv.metrics(), "vllm:generation_tokens_total") > 0:
            break
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    code = srv.proc.wait(60)
    if results.count("length") != 16 or code != 0:
        fail("SIGTERM under load: %s, exit %d" % (results, code))
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        fail("the server still accepts after SIGTERM")
    except OSError:
        pass
    ok("SIGTERM under load: all 16 accepted requests answered in full, "
       "exit 0")


def rank_processes(root):
    """Rank -> pid of every process below ROOT that is a rank (by WEFT_RANK
    or OMPI_COMM_WORLD_RANK in its environment)."""
    ranks, todo = {}, [root]
    while todo:
        pid = todo.pop()
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                              text=True).stdout.split()
        todo += [int(k) for k in kids]
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0")
                           if b"=" in kv)
        except OSError:
            continue
        for var in (b"OMPI_COMM_WORLD_RANK", b"WEFT_RANK"):
            if var in env and pid != root:
                ranks[int(env[var])] = pid
                break
    return ranks


def check_replica_failure(args):
    """--dp: one replica's steps fail (WEFT_TEST_FAIL_REPLICA) while every
    replica has requests: every request ends (those of the failed replica
    and of the others with an error, none hangs), and the server exits
    non-zero naming the replica."""
    srv = Server(args, [], env={"WEFT_TEST_FAIL_REPLICA": "1",
                                "WEFT_TEST_FAIL_AFTER_STEPS": "6"})
    model = srv.client.models.list().data[0].id

    def one(i):
        try:
            text = ""
            for chunk in srv.client.completions.create(
                    model=model, prompt="Story %d: once upon a time" % i,
                    max_tokens=100, temperature=0, stream=True,
                    extra_body={"ignore_eos": True}):
                for ch in chunk.choices:
                    text += ch.text
            return "finished"
        except Exception as e:  # noqa: BLE001
            return "error: %s" % e

    start = time.time()
    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    try:
        code = srv.proc.wait(60)
    except subprocess.TimeoutExpired:
        fail("weft serve did not exit after a replica failed")
    errors = [r for r in results if r.startswith("error")]
    out = "".join(srv.lines)
    if not errors:
        fail("no request ended with an error: %s" % results)
    if code == 0 or "replica 1" not in out:
        fail("after a replica failed: exit %d, output %s" % (code, out))
    ok("a replica failing: all 8 requests end (%d with an error) and weft "
       "serve exits %d naming replica 1, in %.0f s" % (
           len(errors), code, time.time() - start))


def check_auth(args):
    """--api-key: the official client with the key is answered as without
    one; a wrong key or none gets 401 with OpenAI's error object (the
    client raises AuthenticationError); /health and /metrics stay open.
    The key comes from WEFT_API_KEY, as a deployment would pass it."""
    srv = Server(args, [], env={"WEFT_API_KEY": "k-42_secret"})
    keyed = openai.OpenAI(base_url=srv.url + "/v1", api_key="k-42_secret",
                          max_retries=0, timeout=120)
    model = keyed.models.list().data[0].id
    r = keyed.completions.create(model=model, prompt="The capital of France is",
                                 max_tokens=8, temperature=0)
    ref = generate_ref(args, "The capital of France is", 8, False)
    if r.choices[0].text != ref["text"]:
        fail("with the key: %r != weft generate's %r"
             % (r.choices[0].text, ref["text"]))
    for key in ["k-42_secreT", "none"]:
        c = openai.OpenAI(base_url=srv.url + "/v1", api_key=key,
                          max_retries=0, timeout=60)
        try:
            c.completions.create(model=model, prompt="Hi", max_tokens=2)
            fail("a wrong API key was answered")
        except openai.AuthenticationError as e:
            if e.status_code != 401 or "not this server's" not in str(e):
                fail("a wrong key: %s" % e)
    for path, method, body in [("/v1/models", "GET", None),
                               ("/v1/completions", "POST", "{}"),
                               ("/tokenize", "POST", "{}")]:
        status, _, data = srv.request(method, path, body)
        err = json.loads(data).get("error", {})
        if status != 401 or err.get("type") != "AuthenticationError":
            fail("%s without a key: %d %s" % (path, status, data))
    for path in ["/health", "/metrics"]:
        status, _, _ = srv.request("GET", path)
        if status != 200:
            fail("%s with --api-key answered %d" % (path, status))
    srv.stop()
    ok("--api-key: the client with the key gets weft generate's text; a "
       "wrong key or none gets 401; /health and /metrics stay open")


def check_rank_failure(args):
    """A rank killed (or, with --fault stop, hung) mid-stream: the request
    ends with an error, and the server exits non-zero naming the rank, all
    within the timeouts."""
    timeout = 5 if args.fault == "stop" else 20
    srv = Server(args, ["--timeout", str(timeout)])
    model = srv.client.models.list().data[0].id
    world = args.world or args.nproc
    ranks = rank_processes(srv.proc.pid)
    if sorted(ranks) != list(range(world)):
        fail("expected ranks 0-%d, found %s" % (world - 1, ranks))
    outcome = {}

    def stream():
        try:
            text = ""
            for chunk in srv.client.completions.create(
                    model=model, prompt="Once upon a time", max_tokens=200,
                    temperature=0, stream=True,
                    extra_body={"ignore_eos": True}):
                for ch in chunk.choices:
                    text += ch.text
            outcome["result"] = "finished: %r" % text
        except Exception as e:  # noqa: BLE001
            outcome["result"] = "error: %s" % e

    t = threading.Thread(target=stream)
    t.start()
    for _ in range(200):
        if metric(srv.metrics(), "vllm:generation_tokens_total") > 2:
            break
        time.sleep(0.05)
    victim = ranks[world - 1]
    start = time.time()
    os.kill(victim, signal.SIGKILL if args.fault == "kill" else signal.SIGSTOP)
    try:
        t.join(60)
        if t.is_alive() or not outcome.get("result", "").startswith("error"):
            fail("the stream did not end with an error: %s" % outcome)
        try:
            code = srv.proc.wait(60)
        except subprocess.TimeoutExpired:
            fail("weft serve did not exit after a rank %s"
                 % ("died" if args.fault == "kill" else "hung"))
    finally:
        if args.fault == "stop":
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
    took = time.time() - start
    out = "".join(srv.lines)
    if code == 0 or "rank %d" % (world - 1) not in out:
        fail("after a rank failed: exit %d, output %s" % (code, out))
    if took > timeout + 30:
        fail("weft serve took %.0f s to end (timeout %d s)" % (took, timeout))
    ok("a rank %s mid-stream: the request ends with an error and weft "
       "serve exits non-zero naming rank %d" % (
           "killed" if args.fault == "kill" else "hung (SIGSTOP)", world - 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--nproc", type=int)
    ap.add_argument("--mpirun", help="launch the ranks with this command "
                    "(e.g. 'mpirun -np 3') instead of --nproc")
    ap.add_argument("--nodes", type=int,
                    help="with --nproc: as many weft serve processes, one "
                    "per 'host' (--nnodes, --node-rank), each --nproc ranks")
    ap.add_argument("--checks", default="all")
    ap.add_argument("--fault", choices=["kill", "stop"], default="kill",
                    help="rank-failure: SIGKILL or SIGSTOP the last rank")
    ap.add_argument("--world", type=int,
                    help="the artifact's ranks (default --nproc)")
    ap.add_argument("--serve-args", help="more options of weft serve")
    ap.add_argument("--dp", type=int,
                    help="serve this many data-parallel replicas (--dp)")
    args = ap.parse_args()
    if args.checks == "rank-failure":
        return check_rank_failure(args)
    if args.checks == "replica-failure":
        return check_replica_failure(args)
    if args.checks == "auth":
        return check_auth(args)
    srv = Server(args, ["--max-body-bytes", str(256 * 1024)])
    model = srv.client.models.list().data[0].id
    status, _, data = srv.request("GET", "/health")
    if status != 200:
        fail("/health answered %d" % status)
    check_basic(args, srv, model)
    if args.checks in ("all", "concurrent"):
        check_concurrent(args, srv, model)
    if args.checks == "all":
        check_errors(args, srv, model)
        check_disconnect(args, srv, model)
        m = srv.metrics()
        for name in ["vllm:time_to_first_token_seconds_count",
                     "vllm:inter_token_latency_seconds_count",
                     "vllm:e2e_request_latency_seconds_count",
                     "vllm:prompt_tokens_total", "vllm:generation_tokens_total"]:
            if metric(m, name) <= 0:
                fail("metric %s is %s" % (name, metric(m, name)))
        ok("/metrics: vLLM's names, counters and histograms filled")
    srv.stop()
    if args.checks == "all":
        check_limits(args, model)
        check_sigterm(args, model)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        for srv in Server.started:
            print("--- weft serve said:\n" + "".join(srv.lines))
        sys.exit(1)
