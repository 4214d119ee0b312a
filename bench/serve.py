#!/usr/bin/env python3
"""Load generator and A/B tool for OpenAI-compatible HTTP servers: `weft
serve`, and any other server with streaming /v1/completions or
/v1/chat/completions (vLLM, SGLang, transformers serve). One run sends a
stream of requests, streamed (`stream: true`, `stream_options:
{"include_usage": true}`), and reports the serving metrics:

  python3 bench/serve.py [--base-url http://127.0.0.1:8000 | --host H --port P]
      [--endpoint completions|chat] [--model NAME] [--api-key KEY]
      [--num-prompts 100] [--request-rate inf] [--burstiness 1]
      [--max-concurrency C] [--seed 0] [--warmup 0] [--timeout 600]
      [--dataset random] [--input-len 1024] [--output-len 128]
      [--range-ratio 0] [--prompt-ids] [--vocab-size 32000]
      [--dataset sharegpt --dataset-path FILE] [--sharegpt-output-len N]
      [--tokenizer tokenizer.json] [--ignore-eos] [--temperature 0]
      [--extra-body JSON] [--percentiles 50,90,99] [--json FILE]

  python3 bench/serve.py --ladder [--ladder-rates 1,2,4,8,16,inf]
      [--saturation-gain 0.05] ...       # find the saturation throughput

  python3 bench/serve.py --compare URL_A URL_B [--interleave]
      [--bootstrap 2000] ...              # A/B with confidence intervals

Requests. --num-prompts N requests arrive as a Poisson process of
--request-rate R requests/s (exponential gaps, or gamma gaps of shape
--burstiness; `inf`, the default, sends them all at once), seeded by
--seed; --max-concurrency C caps the requests in flight (a request whose
arrival has come waits for a free slot). Prompts: `--dataset random` (the
default) draws input and output lengths uniformly from [L x (1 - r), L x
(1 + r)] around --input-len and --output-len (r = --range-ratio, 0 <= r <
1) and builds a text of seeded random English words of about that many
tokens (words x 1.3 = tokens; exactly, by the tokenizer, with --tokenizer);
--prompt-ids sends the prompt as an array of token ids instead (the
/v1/completions `prompt` may be one; completions only): the tokenizer's
ids of such a text with --tokenizer, else uniform random ids below
--vocab-size. `--dataset sharegpt --dataset-path FILE` reads a ShareGPT
JSON file (a list of {"conversations": [{"from": "human", "value": ...},
{"from": "gpt", "value": ...}, ...]}), shuffled by --seed: the first human
turn is the prompt and the length of the gpt answer after it, in tokens
(words x 1.3, or by --tokenizer), the max_tokens (--sharegpt-output-len
fixes it); conversations whose prompt or answer is under
--sharegpt-min-len (4) tokens, whose prompt is over --sharegpt-max-input
(1024) or whose prompt + answer is over --sharegpt-max-len (2048) are
skipped. Greedy (--temperature 0) unless asked; --ignore-eos sends
`ignore_eos: true` (a vLLM extension), so that every request generates
max_tokens tokens; --extra-body adds fields to
every request body. --model defaults to the first id of GET /v1/models.
--warmup N sends the first N prompts one at a time before the timed run
(not counted; before the ladder's smoke step, before both A/B runs).

Metrics, per request (wall clock, time.perf_counter, from just before
the connection is taken): TTFT, time to the first chunk that carries
text (`choices[].text`, or the chat delta's `content` or
`reasoning_content`, or token ids in `choices[].token_ids`, which a
server without a tokenizer sends; the chat's first role-only chunk does
not count);
ITL, each gap between two consecutive chunks with text (a chunk holding
several tokens is one gap); E2EL, time to the end of the stream; TPOT =
(E2EL - TTFT) / (output tokens - 1), for requests of 2 tokens or more;
output tokens from the final chunk's usage.completion_tokens (the count
of text chunks where the server sends no usage), input tokens from
usage.prompt_tokens (else the prompt's estimate). A request succeeds on
HTTP 200 with at least one text chunk and a complete body; else it fails
with its error text (HTTP status and body, timeout after --timeout s,
connection error, an `error` event, a stream cut short). A stream that
ends without `data: [DONE]` (transformers 5.25's serve sends none) still
succeeds; the table counts them. Over the successful requests: duration
(first send to last completion), completed, failed, request throughput
(completed / duration), output token throughput (output tokens /
duration), total token throughput ((input + output tokens) / duration),
and the mean, median, standard deviation and --percentiles of TTFT,
TPOT, ITL (all gaps of all requests pooled) and E2EL in ms (numpy's
linear-interpolated percentiles). Printed as a table; --json FILE writes
the configuration, the summary and per-request arrays (arrival and send
times, TTFT, ITLs, TPOT, E2EL, tokens, errors).

Ladder (--ladder): a smoke step first (the first 4 prompts one at a time;
a failure there ends the run with an error), then the --num-prompts
stream at each --ladder-rates rate in turn (default 1, 2, 4, ... 1024
requests/s then inf; --max-concurrency applies to each step). It stops at
the first step whose output token throughput grows by less than
--saturation-gain (default 0.05) over the step before, or that has failed
requests; the saturation throughput is the highest output token
throughput of the steps. One table row per step.

A/B (--compare URL_A URL_B): the same request stream (prompts, arrival
times, seed, --max-concurrency per endpoint) goes to A, then to B, or to
both at once with --interleave (each request sent to A and to B at its
arrival time: drift of the machine or the network hits both alike; use it
where A and B do not share a GPU). For TTFT, TPOT, ITL and E2EL the table
gives, for the mean and each --percentiles value, A, B, B - A and the 95%
confidence interval of B - A from a paired bootstrap over the requests
that succeeded on both (--bootstrap 2000 resamples, seeded by --seed; a
resample draws requests with replacement, the same ones for A and B, ITL
gaps following their request), and whether the difference is significant
(the interval excludes 0). Throughputs are given without an interval.
The interval covers the spread between requests, not a drift between the
two runs (a cold server, a busy machine): warm up with --warmup, prefer
--interleave, and compare a server with itself to see the noise floor.

The client is the standard library's asyncio with its own HTTP/1.1 and
server-sent-events reader (keep-alive connections, no limit on their
number; the open-file limit is raised to its maximum), so the script
needs only numpy (and the `tokenizers` package for --tokenizer). One
Python thread reads every stream: at tens of thousands of chunks per
second its own delay starts to show in ITL; split such a load over
several clients. Exit status: 0, or 1 when no request succeeded (or the
ladder's smoke step failed), 2 on a bad flag; errors print
`serve.py: error: ...`.
"""
import argparse
import asyncio
import datetime
import json
import math
import os
import random
import resource
import shlex
import ssl
import sys
import time
import urllib.parse

import numpy as np

PROG = "serve.py"
SMOKE_PROMPTS = 4
DEFAULT_LADDER = [2.0 ** k for k in range(11)] + [math.inf]
WORDS_PER_TOKEN = 1 / 1.3
METRICS = [("ttft", "TTFT", "Time to First Token"),
           ("tpot", "TPOT", "Time per Output Token (excl. 1st token)"),
           ("itl", "ITL", "Inter-token Latency"),
           ("e2el", "E2EL", "End-to-end Latency")]
ENGLISH = ("the of and to a in is it you that he was for on are with as his "
           "they be at one have this from or had by not word but what some "
           "we can out other were all there when up use your how said an "
           "each she which do their time if will way about many then them "
           "write would like so these her long make thing see him two has "
           "look more day could go come did number sound no most people my "
           "over know water than call first who may down side been now find "
           "river light house small great where help through much before "
           "line right too mean old any same tell boy follow came want show "
           "also around form three place well large must big even such "
           "because turn here why ask went men read need land different "
           "home us move try kind hand picture again change off play spell "
           "air away animal point mother world near build self earth father "
           "head stand own page should country found answer school grow "
           "study still learn plant cover food sun four between state keep "
           "eye never last let thought city tree cross farm hard start might "
           "story saw far sea draw left late run while press close night "
           "real life few north open seem together next white children "
           "begin got walk example ease paper group always music those both "
           "mark often letter until mile river car feet care second book "
           "carry took science eat room friend began idea fish mountain stop "
           "once base hear horse cut sure watch color face wood main enough "
           "plain girl usual young ready above ever red list though feel "
           "talk bird soon body dog family direct pose leave song measure "
           "door product black short numeral class wind question happen "
           "complete ship area half rock order fire south problem piece told "
           "knew pass since top whole king space heard best hour better true "
           "during hundred five remember step early hold west ground "
           "interest reach fast verb sing listen six table travel less "
           "morning ten simple several vowel toward war lay against pattern "
           "slow center love person money serve appear road map rain rule "
           "govern pull cold notice voice unit power town fine certain fly "
           "fall lead cry dark machine note wait plan figure star box noun "
           "field rest correct able pound done beauty drive stood contain "
           "front teach week final gave green oh quick develop ocean warm "
           "free minute strong special mind behind clear tail produce fact "
           "street inch multiply nothing course stay wheel full force blue "
           "object decide surface deep moon island foot system busy test "
           "record boat common gold possible plane stead dry wonder laugh "
           "thousand ago ran check game shape equate hot miss brought heat "
           "snow tire bring yes distant fill east paint language among"
           ).split()


class Failure(Exception):
    """A bad input or an unreachable server: `serve.py: error: ...`."""


def die(msg):
    sys.stdout.flush()
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# --- flags -------------------------------------------------------------------

def csv(kind, name):
    def parse(text):
        try:
            items = [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a list of "
                                             f"{name}")
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return items
    return parse


def rate(text):
    try:
        r = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or inf")
    if not r > 0 or math.isnan(r):
        raise argparse.ArgumentTypeError(
            f"{text}: a request rate must be > 0 (inf: all at once)")
    return r


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG, usage="%(prog)s [options] (--help lists them)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("server")
    g.add_argument("--base-url", help="the server's URL (default "
                   "http://127.0.0.1:8000; a trailing /v1 is allowed)")
    g.add_argument("--host", help="instead of --base-url: http://HOST:PORT")
    g.add_argument("--port", type=int, help="with --host (default 8000)")
    g.add_argument("--endpoint", choices=["completions", "chat"],
                   default="completions",
                   help="/v1/completions or /v1/chat/completions")
    g.add_argument("--model", help="default: the first id of GET /v1/models")
    g.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"),
                   help="sent as a bearer token (default $OPENAI_API_KEY)")
    g.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one request may take in all (default 600)")
    g = p.add_argument_group("request stream")
    g.add_argument("--num-prompts", type=int, default=100)
    g.add_argument("--request-rate", type=rate, default=math.inf,
                   help="requests/s, Poisson arrivals (default inf: all at "
                   "once)")
    g.add_argument("--burstiness", type=float, default=1.0,
                   help="shape of the gamma gaps between arrivals (1: "
                   "Poisson; lower is burstier)")
    g.add_argument("--max-concurrency", type=int,
                   help="requests in flight at most")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--warmup", type=int, default=0,
                   help="untimed requests first, one at a time")
    g = p.add_argument_group("prompts")
    g.add_argument("--dataset", choices=["random", "sharegpt"],
                   default="random")
    g.add_argument("--dataset-path", help="the ShareGPT JSON file")
    g.add_argument("--input-len", type=int, default=1024)
    g.add_argument("--output-len", type=int, default=128)
    g.add_argument("--range-ratio", type=float, default=0.0)
    g.add_argument("--prompt-ids", action="store_true",
                   help="send token ids as the prompt (completions only)")
    g.add_argument("--vocab-size", type=int, default=32000,
                   help="random ids for --prompt-ids are below it (without "
                   "--tokenizer)")
    g.add_argument("--tokenizer", help="a tokenizer.json (or its directory) "
                   "for token counts, via the tokenizers package")
    g.add_argument("--sharegpt-output-len", type=int)
    g.add_argument("--sharegpt-min-len", type=int, default=4)
    g.add_argument("--sharegpt-max-input", type=int, default=1024)
    g.add_argument("--sharegpt-max-len", type=int, default=2048)
    g = p.add_argument_group("sampling")
    g.add_argument("--ignore-eos", action="store_true",
                   help="send ignore_eos: true")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--extra-body", help="a JSON object merged into each "
                   "request body")
    g = p.add_argument_group("modes and output")
    g.add_argument("--ladder", action="store_true",
                   help="smoke step, then rising request rates until "
                   "saturation")
    g.add_argument("--ladder-rates", type=csv(rate, "rates"),
                   help="the ladder's rates (default 1,2,4,...,1024,inf)")
    g.add_argument("--saturation-gain", type=float, default=0.05,
                   help="the ladder stops below this relative gain of "
                   "output token throughput (default 0.05)")
    g.add_argument("--compare", nargs=2, metavar=("URL_A", "URL_B"),
                   help="A/B: the same stream to both")
    g.add_argument("--interleave", action="store_true",
                   help="with --compare: A and B at once, not A then B")
    g.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap resamples for --compare (default 2000)")
    g.add_argument("--percentiles", type=csv(float, "numbers"),
                   default=[50.0, 90.0, 99.0])
    g.add_argument("--json", help="write everything to this file")
    a = p.parse_args(argv)

    if a.base_url and (a.host or a.port):
        p.error("--base-url and --host/--port are exclusive")
    if a.port is not None and not a.host:
        a.host = "127.0.0.1"
    if a.host:
        a.base_url = f"http://{a.host}:{a.port or 8000}"
    a.base_url = a.base_url or "http://127.0.0.1:8000"
    if a.compare and (a.host or a.port):
        p.error("--compare names both URLs; --host/--port do not apply")
    urls = a.compare or [a.base_url]
    for url in urls:
        try:
            parse_url(url)
        except ValueError as e:
            p.error(str(e))
    if a.num_prompts < 1:
        p.error(f"--num-prompts {a.num_prompts}: must be >= 1")
    if a.max_concurrency is not None and a.max_concurrency < 1:
        p.error(f"--max-concurrency {a.max_concurrency}: must be >= 1")
    if not a.burstiness > 0:
        p.error(f"--burstiness {a.burstiness}: must be > 0")
    if not a.timeout > 0:
        p.error(f"--timeout {a.timeout}: must be > 0")
    if a.warmup < 0:
        p.error(f"--warmup {a.warmup}: must be >= 0")
    if a.input_len < 1 or a.output_len < 1:
        p.error("--input-len and --output-len must be >= 1")
    if not 0 <= a.range_ratio < 1:
        p.error(f"--range-ratio {a.range_ratio}: must be in [0, 1)")
    if a.vocab_size < 1:
        p.error(f"--vocab-size {a.vocab_size}: must be >= 1")
    if a.temperature < 0:
        p.error(f"--temperature {a.temperature}: must be >= 0")
    if a.dataset == "sharegpt" and not a.dataset_path:
        p.error("--dataset sharegpt needs --dataset-path FILE")
    if a.dataset == "random" and a.dataset_path:
        p.error("--dataset-path is for --dataset sharegpt")
    if a.sharegpt_output_len is not None and a.sharegpt_output_len < 1:
        p.error("--sharegpt-output-len must be >= 1")
    if a.prompt_ids and a.endpoint != "completions":
        p.error("--prompt-ids needs --endpoint completions (a chat message "
                "is text)")
    if a.prompt_ids and a.dataset == "sharegpt" and not a.tokenizer:
        p.error("--prompt-ids with --dataset sharegpt needs --tokenizer")
    for q in a.percentiles:
        if not 0 <= q <= 100:
            p.error(f"--percentiles: {q:g} is not in [0, 100]")
    a.percentiles = sorted(set(a.percentiles))
    if a.ladder and a.compare:
        p.error("--ladder and --compare are exclusive")
    if a.ladder_rates and not a.ladder:
        p.error("--ladder-rates needs --ladder")
    if a.interleave and not a.compare:
        p.error("--interleave needs --compare")
    if a.bootstrap < 100:
        p.error(f"--bootstrap {a.bootstrap}: use at least 100 resamples")
    if a.saturation_gain < 0:
        p.error(f"--saturation-gain {a.saturation_gain}: must be >= 0")
    if a.extra_body:
        try:
            a.extra_body = json.loads(a.extra_body)
        except ValueError as e:
            p.error(f"--extra-body: not valid JSON: {e}")
        if not isinstance(a.extra_body, dict):
            p.error("--extra-body: not a JSON object")
    else:
        a.extra_body = {}
    return a


# --- prompts -----------------------------------------------------------------

class Counter:
    """Token counts of texts: by a tokenizer.json, or words x 1.3."""

    def __init__(self, path=None):
        self.tok = None
        if path:
            if os.path.isdir(path):
                path = os.path.join(path, "tokenizer.json")
            try:
                from tokenizers import Tokenizer
            except ImportError:
                raise Failure("--tokenizer needs the tokenizers package")
            if not os.path.isfile(path):
                raise Failure(f"--tokenizer: cannot read '{path}': no such "
                              "file")
            try:
                self.tok = Tokenizer.from_file(path)
            except Exception as e:
                raise Failure(f"--tokenizer: '{path}': {e}")

    def count(self, text):
        if self.tok:
            return len(self.tok.encode(text, add_special_tokens=False).ids)
        return max(1, round(len(text.split()) / WORDS_PER_TOKEN))

    def ids(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids


def lengths(rng, center, ratio, n):
    lo = max(1, int(math.floor(center * (1 - ratio))))
    hi = max(lo, int(math.ceil(center * (1 + ratio))))
    return rng.integers(lo, hi + 1, n).tolist()


def random_requests(a, counter):
    """--dataset random: [{prompt, input_tokens, max_tokens}]."""
    rng = np.random.default_rng([a.seed, 1])
    ins = lengths(rng, a.input_len, a.range_ratio, a.num_prompts)
    outs = lengths(rng, a.output_len, a.range_ratio,
                   a.num_prompts)
    out = []
    for n_in, n_out in zip(ins, outs):
        if a.prompt_ids and not counter.tok:
            prompt = rng.integers(0, a.vocab_size, n_in).tolist()
        elif counter.tok:
            words = []
            ids = []
            while len(ids) < n_in:
                words += rng.choice(ENGLISH, n_in + 8).tolist()
                ids = counter.ids(" ".join(words))
            ids = ids[:n_in]
            prompt = ids if a.prompt_ids else counter.tok.decode(ids)
        else:
            n_words = max(1, round(n_in * WORDS_PER_TOKEN))
            prompt = " ".join(rng.choice(ENGLISH, n_words).tolist())
        out.append(dict(prompt=prompt, input_tokens=n_in, max_tokens=n_out))
    return out


def sharegpt_requests(a, counter):
    """--dataset sharegpt: the first human turn and the length of the gpt
    answer after it, shuffled by --seed, too short and too long ones
    skipped."""
    path = a.dataset_path
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise Failure(f"cannot read dataset '{path}': {e.strerror or e}")
    except (ValueError, UnicodeDecodeError) as e:
        raise Failure(f"dataset '{path}': not valid JSON: {e}")
    if not isinstance(data, list):
        raise Failure(f"dataset '{path}': not a ShareGPT JSON list of "
                      "conversations")
    order = list(range(len(data)))
    random.Random(a.seed).shuffle(order)
    out = []
    skipped = 0
    for i in order:
        if len(out) == a.num_prompts:
            break
        entry = data[i]
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        prompt = answer = None
        for t in turns if isinstance(turns, list) else []:
            if not isinstance(t, dict) or not isinstance(t.get("value"), str):
                continue
            who = t.get("from")
            if prompt is None and who in ("human", "user"):
                prompt = t["value"]
            elif prompt is not None and who in ("gpt", "assistant"):
                answer = t["value"]
                break
        if prompt is None or answer is None:
            skipped += 1
            continue
        n_in = counter.count(prompt)
        n_out = a.sharegpt_output_len or counter.count(answer)
        if (n_in < a.sharegpt_min_len or n_out < a.sharegpt_min_len
                or n_in > a.sharegpt_max_input
                or n_in + n_out > a.sharegpt_max_len):
            skipped += 1
            continue
        if a.prompt_ids:
            prompt = counter.ids(prompt)
            n_in = len(prompt)
        out.append(dict(prompt=prompt, input_tokens=n_in, max_tokens=n_out))
    if len(out) < a.num_prompts:
        raise Failure(f"dataset '{path}': {len(out)} usable conversations of "
                      f"{len(data)} ({skipped} skipped: no human turn with "
                      "a gpt answer, or too short or too long), "
                      f"--num-prompts is {a.num_prompts}")
    return out


def arrivals(n, request_rate, burstiness, seed):
    """Seconds from the start of a run at which each request is due: the
    first at 0, then gamma gaps of mean 1 / rate (exponential at
    burstiness 1); all 0 at rate inf. The same seed gives the same gaps
    scaled by 1 / rate at every rate."""
    if math.isinf(request_rate):
        return [0.0] * n
    rng = np.random.default_rng([seed, 2])
    gaps = rng.gamma(burstiness, 1.0 / burstiness, n - 1) / request_rate
    return [0.0] + np.cumsum(gaps).tolist()


# --- HTTP client -------------------------------------------------------------

def parse_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"'{url}' is not an http:// or https:// URL")
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"'{url}': bad port")
    prefix = u.path.rstrip("/")
    if prefix.endswith("/v1"):
        prefix = prefix[:-3]
    return u.scheme, u.hostname, port, prefix


class HTTPError(Exception):
    pass


class Endpoint:
    """One server: keep-alive HTTP/1.1 connections, opened as needed."""

    def __init__(self, url, api_key=None):
        scheme, self.host, self.port, self.prefix = parse_url(url)
        self.url = url
        self.ssl = ssl.create_default_context() if scheme == "https" else None
        self.host_header = (self.host if ":" not in self.host
                            else f"[{self.host}]") + f":{self.port}"
        self.api_key = api_key
        self.idle = []
        self.model = None

    async def _open(self):
        return await asyncio.open_connection(self.host, self.port,
                                             ssl=self.ssl, limit=1 << 22)

    def close(self):
        for _, w in self.idle:
            w.close()
        self.idle = []

    async def call(self, method, path, payload=None, sink=None):
        """(status, body bytes); with sink, a 200 body goes to sink(bytes)
        piece by piece as it arrives and body is b''."""
        body = b"" if payload is None else json.dumps(payload).encode()
        head = [f"{method} {self.prefix}{path} HTTP/1.1",
                f"Host: {self.host_header}", "User-Agent: weft-bench-serve",
                "Accept: text/event-stream, application/json",
                f"Content-Length: {len(body)}"]
        if payload is not None:
            head.append("Content-Type: application/json")
        if self.api_key:
            head.append(f"Authorization: Bearer {self.api_key}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in range(2):
            reused = bool(self.idle)
            reader, writer = self.idle.pop() if reused else await self._open()
            keep = False
            try:
                try:
                    writer.write(request)
                    await writer.drain()
                    status_line = await reader.readline()
                    if not status_line:
                        raise ConnectionResetError("connection closed")
                except (ConnectionError, asyncio.IncompleteReadError):
                    if reused and attempt == 0:
                        continue   # the server closed it while idle: again
                    raise
                status, headers = await read_head(status_line, reader)
                out = sink if status == 200 and sink else None
                pieces = []
                keep = await read_body(reader, headers,
                                       out or pieces.append)
                keep = keep and headers.get("connection", "") != "close" \
                    and status_line.startswith(b"HTTP/1.1")
                return status, b"".join(pieces)
            finally:
                if keep:
                    self.idle.append((reader, writer))
                else:
                    writer.close()
        raise ConnectionResetError("connection closed")


async def read_head(status_line, reader):
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") \
            or not parts[1].isdigit():
        raise HTTPError(f"not an HTTP response: {status_line[:80]!r}")
    headers = {}
    while True:
        line = await reader.readline()
        if not line:
            raise HTTPError("connection closed in the response headers")
        line = line.rstrip(b"\r\n")
        if not line:
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip().lower() \
            if k.strip().lower() in ("connection", "transfer-encoding") \
            else v.strip()
    return int(parts[1]), headers


async def read_body(reader, headers, sink):
    """The body into sink; True if the connection may be reused."""
    if "chunked" in headers.get("transfer-encoding", ""):
        while True:
            line = await reader.readline()
            if not line:
                raise HTTPError("the stream was cut short (no final chunk)")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise HTTPError(f"bad chunk size line {line[:40]!r}")
            if size == 0:
                while (await reader.readline()).strip():
                    pass    # trailers
                return True
            sink(await reader.readexactly(size))
            await reader.readline()
    if "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 1 << 16))
            if not data:
                raise HTTPError("the body was cut short")
            sink(data)
            left -= len(data)
        return True
    while True:
        data = await reader.read(1 << 16)
        if not data:
            return False
        sink(data)


class SSE:
    """Server-sent events from byte pieces: on_event(data, time) per event,
    the time being when its last piece arrived."""

    def __init__(self, on_event):
        self.on_event = on_event
        self.rest = b""
        self.data = []

    def feed(self, piece):
        t = time.perf_counter()
        lines = (self.rest + piece).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self.data:
                    self.on_event(b"\n".join(self.data), t)
                    self.data = []
            elif line.startswith(b"data:"):
                v = line[5:]
                self.data.append(v[1:] if v.startswith(b" ") else v)

    def close(self):
        if self.rest.startswith(b"data:"):
            self.feed(b"\n")
        if self.data:
            self.on_event(b"\n".join(self.data), time.perf_counter())
            self.data = []


def error_text(status, body):
    text = body.decode("utf-8", "replace").strip()
    try:
        j = json.loads(text)
        err = j.get("error", j) if isinstance(j, dict) else j
        text = err.get("message", text) if isinstance(err, dict) else str(err)
    except ValueError:
        pass
    text = " ".join(str(text).split())
    return f"HTTP {status}: {text[:300]}" if text else f"HTTP {status}"


# --- one request, one run ----------------------------------------------------

def build_payload(a, model, req):
    body = dict(model=model, max_tokens=req["max_tokens"],
                temperature=a.temperature, stream=True,
                stream_options={"include_usage": True})
    if a.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": req["prompt"]}]
        body["max_completion_tokens"] = req["max_tokens"]
    else:
        body["prompt"] = req["prompt"]
    if a.ignore_eos:
        body["ignore_eos"] = True
    body.update(a.extra_body)
    return body


async def send(ep, a, req):
    """One streamed request: its record (times in seconds)."""
    path = "/v1/chat/completions" if a.endpoint == "chat" \
        else "/v1/completions"
    chat = a.endpoint == "chat"
    rec = dict(ok=False, error="", ttft=None, itl=[], e2el=None,
               output_tokens=0, prompt_tokens=None, chunks=0, done=False)
    st = dict(first=None, last=None, usage=None, done=False, error=None)

    def on_event(data, t):
        if data.strip() == b"[DONE]":
            st["done"] = True
            return
        try:
            obj = json.loads(data)
        except ValueError:
            st["error"] = st["error"] or \
                f"not JSON in the stream: {data[:100]!r}"
            return
        if not isinstance(obj, dict):
            return
        if obj.get("error"):
            e = obj["error"]
            st["error"] = st["error"] or "error event: " + " ".join(str(
                e.get("message", e) if isinstance(e, dict) else e).split())
            return
        if obj.get("usage"):
            st["usage"] = obj["usage"]
        text = False
        for c in obj.get("choices") or []:
            if chat:
                d = c.get("delta") or {}
                text = text or bool(d.get("content") or
                                    d.get("reasoning_content") or
                                    d.get("reasoning"))
            else:
                text = text or bool(c.get("text"))
            # Token ids (vLLM's return_token_ids; a server without a
            # tokenizer sends only these) count as output too.
            text = text or bool(c.get("token_ids"))
        if text:
            if st["first"] is None:
                st["first"] = t
            else:
                rec["itl"].append(t - st["last"])
            st["last"] = t
            rec["chunks"] += 1

    sse = SSE(on_event)
    t0 = time.perf_counter()
    rec["start"] = t0
    try:
        status, body = await asyncio.wait_for(
            ep.call("POST", path, build_payload(a, ep.model, req), sse.feed),
            a.timeout)
        sse.close()
    except asyncio.TimeoutError:
        rec["error"] = f"timeout after {a.timeout:g} s"
        return rec
    except (OSError, HTTPError, asyncio.IncompleteReadError) as e:
        rec["error"] = f"{type(e).__name__}: {e}"
        return rec
    end = time.perf_counter()
    rec["e2el"] = end - t0
    usage = st["usage"] or {}
    if status != 200:
        rec["error"] = error_text(status, body)
    elif st["error"]:
        rec["error"] = st["error"]
    elif st["first"] is None:
        rec["error"] = "no text in the stream"
    else:
        rec["ok"] = True
        rec["done"] = st["done"]
        rec["ttft"] = st["first"] - t0
        ct = usage.get("completion_tokens")
        rec["output_tokens"] = ct if isinstance(ct, int) else rec["chunks"]
        pt = usage.get("prompt_tokens")
        rec["prompt_tokens"] = pt if isinstance(pt, int) else None
    return rec


async def run_stream(ep, a, reqs, times, concurrency, t0=None):
    """Sends reqs[i] at t0 + times[i] (concurrency at most in flight):
    {records, duration, peak}."""
    sem = asyncio.Semaphore(concurrency) if concurrency else None
    live = dict(now=0, peak=0)
    t0 = time.perf_counter() if t0 is None else t0

    async def one(i):
        delay = t0 + times[i] - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if sem:
            await sem.acquire()
        live["now"] += 1
        live["peak"] = max(live["peak"], live["now"])
        try:
            rec = await send(ep, a, reqs[i])
        finally:
            live["now"] -= 1
            if sem:
                sem.release()
        rec["end"] = time.perf_counter()
        return rec

    recs = await asyncio.gather(*(one(i) for i in range(len(reqs))))
    end = max(r["end"] for r in recs) if recs else t0
    for i, r in enumerate(recs):
        r.update(index=i, arrival=times[i], start=r["start"] - t0,
                 end=r["end"] - t0, input_tokens=reqs[i]["input_tokens"],
                 max_tokens=reqs[i]["max_tokens"])
    return dict(records=recs, duration=end - t0, peak=live["peak"])


# --- metrics -----------------------------------------------------------------

def tpot(r):
    if r["ok"] and r["output_tokens"] > 1:
        return (r["e2el"] - r["ttft"]) / (r["output_tokens"] - 1)
    return None


def describe(xs, percentiles):
    """mean, median, std and percentiles of xs (ms), None when empty."""
    if len(xs) == 0:
        return dict(n=0, mean=None, median=None, std=None,
                    **{f"p{q:g}": None for q in percentiles})
    x = np.asarray(xs, dtype=float)
    out = dict(n=int(x.size), mean=float(x.mean()),
               median=float(np.median(x)), std=float(x.std()))
    for q, v in zip(percentiles, np.percentile(x, percentiles)):
        out[f"p{q:g}"] = float(v)
    return out


def summarize(run, percentiles, meta=None):
    recs = run["records"]
    ok = [r for r in recs if r["ok"]]
    dur = run["duration"]
    n_in = sum(r["prompt_tokens"] if r["prompt_tokens"] is not None
               else r["input_tokens"] for r in ok)
    n_out = sum(r["output_tokens"] for r in ok)
    s = dict(meta or {})
    s.update(duration_s=dur, completed=len(ok), failed=len(recs) - len(ok),
             total_input_tokens=n_in, total_output_tokens=n_out,
             request_throughput=len(ok) / dur if dur > 0 else 0.0,
             output_throughput=n_out / dur if dur > 0 else 0.0,
             total_token_throughput=(n_in + n_out) / dur if dur > 0 else 0.0,
             peak_concurrency=run["peak"],
             streams_without_done=sum(1 for r in ok if not r["done"]))
    s["ttft_ms"] = describe([r["ttft"] * 1e3 for r in ok], percentiles)
    s["tpot_ms"] = describe([tpot(r) * 1e3 for r in ok if tpot(r)
                             is not None], percentiles)
    s["itl_ms"] = describe([g * 1e3 for r in ok for g in r["itl"]],
                           percentiles)
    s["e2el_ms"] = describe([r["e2el"] * 1e3 for r in ok], percentiles)
    errors = {}
    for r in recs:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    s["errors"] = errors
    return s


def per_request(run):
    """The records as parallel arrays (ms; None where a request failed)."""
    recs = run["records"]

    def ms(x):
        return None if x is None else x * 1e3
    return dict(
        arrival_s=[r["arrival"] for r in recs],
        start_s=[r["start"] for r in recs],
        success=[r["ok"] for r in recs],
        error=[r["error"] for r in recs],
        input_tokens=[r["prompt_tokens"] if r["prompt_tokens"] is not None
                      else r["input_tokens"] for r in recs],
        prompt_len=[r["input_tokens"] for r in recs],
        max_tokens=[r["max_tokens"] for r in recs],
        output_tokens=[r["output_tokens"] if r["ok"] else 0 for r in recs],
        chunks=[r["chunks"] for r in recs],
        done=[r["done"] for r in recs],
        ttft_ms=[ms(r["ttft"]) for r in recs],
        tpot_ms=[ms(tpot(r)) for r in recs],
        e2el_ms=[ms(r["e2el"]) if r["ok"] else None for r in recs],
        itl_ms=[[g * 1e3 for g in r["itl"]] if r["ok"] else [] for r in recs])


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def fmt_rate(r):
    return "inf" if math.isinf(r) else f"{r:g}"


def stat_label(q):
    return "Median" if q == 50 else f"P{q:g}"


def print_summary(s, percentiles, title="Serving Benchmark Result"):
    w = 50

    def row(k, v):
        print(f"{k:<40} {v}")
    print(f" {title} ".center(w, "="))
    row("Endpoint:", f"{s['url']} ({s['model']})")
    row("Request rate (req/s):", fmt_rate(s["request_rate"]))
    row("Max concurrency:", s["max_concurrency"] or "none")
    row("Successful requests:", s["completed"])
    row("Failed requests:", s["failed"])
    row("Benchmark duration (s):", fmt(s["duration_s"]))
    row("Total input tokens:", s["total_input_tokens"])
    row("Total generated tokens:", s["total_output_tokens"])
    row("Request throughput (req/s):", fmt(s["request_throughput"]))
    row("Output token throughput (tok/s):", fmt(s["output_throughput"]))
    row("Total token throughput (tok/s):", fmt(s["total_token_throughput"]))
    row("Peak concurrent requests:", s["peak_concurrency"])
    if s["streams_without_done"]:
        row("Streams without data: [DONE]:", s["streams_without_done"])
    for key, short, long in METRICS:
        d = s[f"{key}_ms"]
        print(f"{long}".center(w, "-"))
        row(f"Mean {short} (ms):", fmt(d["mean"]))
        if 50 not in percentiles:
            row(f"Median {short} (ms):", fmt(d["median"]))
        for q in percentiles:
            row(f"{stat_label(q)} {short} (ms):", fmt(d[f"p{q:g}"]))
    if s["errors"]:
        print("Errors".center(w, "-"))
        for e, n in sorted(s["errors"].items(), key=lambda x: -x[1])[:5]:
            print(f"{n} x {e}")
    print("=" * w)


# --- bootstrap ---------------------------------------------------------------

def weighted_percentiles(values, labels, weights, qs):
    """numpy's linear percentiles of the sample in which sorted value j
    (of request labels[j]) appears weights[labels[j]] times."""
    c = np.cumsum(weights[labels])
    n = int(c[-1]) if c.size else 0
    if n == 0:
        return np.full(len(qs), np.nan)
    h = (n - 1) * np.asarray(qs) / 100.0
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    vlo = values[np.searchsorted(c, lo, side="right")]
    vhi = values[np.searchsorted(c, hi, side="right")]
    return vlo + (h - lo) * (vhi - vlo)


def boot_pooled(lists, idx, qs):
    """Bootstrap of pooled per-request lists (ITL): rows of [mean, qs...]
    per resample of requests idx (resamples x requests)."""
    m = len(lists)
    counts = np.array([len(x) for x in lists], dtype=np.int64)
    sums = np.array([float(np.sum(x)) for x in lists])
    flat = np.concatenate([np.asarray(x, float) for x in lists]) \
        if counts.sum() else np.zeros(0)
    labels = np.repeat(np.arange(m), counts)
    order = np.argsort(flat, kind="stable")
    values, labels = flat[order], labels[order]
    out = np.empty((idx.shape[0], 1 + len(qs)))
    for b in range(idx.shape[0]):
        w = np.bincount(idx[b], minlength=m)
        n = (w * counts).sum()
        out[b, 0] = (w * sums).sum() / n if n else np.nan
        out[b, 1:] = weighted_percentiles(values, labels, w, qs)
    return out


def point(xs, qs):
    x = np.asarray(xs, float)
    if x.size == 0:
        return np.full(1 + len(qs), np.nan)
    return np.concatenate([[x.mean()], np.percentile(x, qs)])


def compare(run_a, run_b, percentiles, resamples, seed):
    """Rows of {metric, stat, a, b, diff, ci, significant} over the
    requests that succeeded on both, paired by index."""
    ra, rb = run_a["records"], run_b["records"]
    pairs = [i for i in range(len(ra)) if ra[i]["ok"] and rb[i]["ok"]]
    qs = list(percentiles)
    stats = ["mean"] + [f"p{q:g}" for q in qs]
    rng = np.random.default_rng([seed, 3])
    rows = []
    for key, short, _ in METRICS:
        if key == "tpot":
            use = [i for i in pairs if tpot(ra[i]) is not None and
                   tpot(rb[i]) is not None]
        else:
            use = pairs
        m = len(use)
        if key == "itl":
            la = [np.asarray(ra[i]["itl"]) * 1e3 for i in use]
            lb = [np.asarray(rb[i]["itl"]) * 1e3 for i in use]
            pa = point(np.concatenate(la) if la else [], qs)
            pb = point(np.concatenate(lb) if lb else [], qs)
        else:
            def values(recs):
                if key == "tpot":
                    return np.array([tpot(recs[i]) for i in use]) * 1e3
                return np.array([recs[i][key] for i in use], float) * 1e3
            va, vb = values(ra), values(rb)
            pa, pb = point(va, qs), point(vb, qs)
        if m >= 2:
            idx = rng.integers(0, m, (resamples, m))
            if key == "itl":
                ba, bb = boot_pooled(la, idx, qs), boot_pooled(lb, idx, qs)
            else:
                sa, sb = va[idx], vb[idx]
                ba = np.column_stack([sa.mean(axis=1)] +
                                     list(np.percentile(sa, qs, axis=1)))
                bb = np.column_stack([sb.mean(axis=1)] +
                                     list(np.percentile(sb, qs, axis=1)))
            d = bb - ba
            lo = np.nanpercentile(d, 2.5, axis=0)
            hi = np.nanpercentile(d, 97.5, axis=0)
        else:
            lo = hi = np.full(len(stats), np.nan)
        for k, stat in enumerate(stats):
            diff = pb[k] - pa[k]
            ci = None if np.isnan(lo[k]) else [float(lo[k]), float(hi[k])]
            sig = ci is not None and (ci[0] > 0 or ci[1] < 0)
            rows.append(dict(metric=key, stat=stat, n=m,
                             a=None if np.isnan(pa[k]) else float(pa[k]),
                             b=None if np.isnan(pb[k]) else float(pb[k]),
                             diff=None if np.isnan(diff) else float(diff),
                             ci95=ci, significant=bool(sig),
                             verdict=("B slower" if diff > 0 else "B faster")
                             if sig else "no difference"))
    return rows, len(pairs)


def signed(v):
    return "n/a" if v is None else f"{v:+.2f}"


def print_compare(rows, sa, sb, n_pairs, percentiles):
    print(f"A: {sa['url']} ({sa['model']}); B: {sb['url']} ({sb['model']}); "
          f"{n_pairs} requests succeeded on both (A failed {sa['failed']}, "
          f"B failed {sb['failed']})")
    print()
    print("| metric | A | B | B - A | 95% CI of B - A | significant |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key, label in [("request_throughput", "request throughput (req/s)"),
                       ("output_throughput", "output token throughput "
                        "(tok/s)"),
                       ("total_token_throughput", "total token throughput "
                        "(tok/s)")]:
        print(f"| {label} | {fmt(sa[key])} | {fmt(sb[key])} | "
              f"{signed(sb[key] - sa[key])} | | |")
    names = dict((k, s) for k, s, _ in METRICS)
    for r in rows:
        stat = "median" if r["stat"] == "p50" else r["stat"]
        ci = "n/a" if r["ci95"] is None else \
            f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]"
        sig = f"yes: {r['verdict']}" if r["significant"] else "no"
        print(f"| {names[r['metric']]} {stat} (ms) | {fmt(r['a'])} | "
              f"{fmt(r['b'])} | {signed(r['diff'])} | {ci} | {sig} |")


# --- modes -------------------------------------------------------------------

async def probe(ep, a):
    """GET /v1/models: the default model; an unreachable server is an
    error."""
    try:
        status, body = await asyncio.wait_for(ep.call("GET", "/v1/models"),
                                              min(a.timeout, 30.0))
    except asyncio.TimeoutError:
        raise Failure(f"{ep.url}: GET /v1/models got no answer in "
                      f"{min(a.timeout, 30.0):g} s")
    except (OSError, HTTPError, asyncio.IncompleteReadError) as e:
        raise Failure(f"cannot reach {ep.url}: {e}")
    if a.model:
        ep.model = a.model
        return
    if status != 200:
        raise Failure(f"{ep.url}: GET /v1/models: {error_text(status, body)}"
                      " (name the model with --model)")
    try:
        ep.model = json.loads(body)["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise Failure(f"{ep.url}: GET /v1/models lists no model id (name the "
                      "model with --model)")


async def timed_run(ep, a, reqs, request_rate, concurrency, label, t0=None):
    times = arrivals(len(reqs), request_rate, a.burstiness, a.seed)
    run = await run_stream(ep, a, reqs, times, concurrency, t0)
    meta = dict(label=label, url=ep.url, model=ep.model,
                endpoint=a.endpoint, num_prompts=len(reqs),
                request_rate=request_rate, max_concurrency=concurrency)
    run["summary"] = summarize(run, a.percentiles, meta)
    return run


async def warmup(ep, a, reqs):
    if a.warmup:
        n = min(a.warmup, len(reqs))
        await run_stream(ep, a, reqs[:n], [0.0] * n, 1)


def first_error(s):
    return next(iter(sorted(s["errors"].items(), key=lambda x: -x[1])))[0]


def jsonable(v):
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def run_json(run):
    return dict(summary=run["summary"], requests=per_request(run))


async def single(a, reqs, out):
    ep = Endpoint(a.base_url, a.api_key)
    await probe(ep, a)
    await warmup(ep, a, reqs)
    run = await timed_run(ep, a, reqs, a.request_rate, a.max_concurrency,
                          "run")
    ep.close()
    print_summary(run["summary"], a.percentiles)
    out.update(mode="single", **run_json(run))
    if not run["summary"]["completed"]:
        return f"every request failed; the first error: " \
            f"{first_error(run['summary'])}"
    return None


async def ladder(a, reqs, out):
    ep = Endpoint(a.base_url, a.api_key)
    await probe(ep, a)
    await warmup(ep, a, reqs)
    rates = a.ladder_rates or DEFAULT_LADDER
    steps = []
    result = dict(mode="ladder", rates=rates, steps=steps)
    out.update(result)
    smoke = await timed_run(ep, a, reqs[:SMOKE_PROMPTS], math.inf, 1,
                            "smoke")
    steps.append(run_json(smoke))
    ss = smoke["summary"]
    print(f"smoke: {ss['completed']}/{ss['completed'] + ss['failed']} ok, "
          f"{fmt(ss['output_throughput'])} output tok/s, mean TTFT "
          f"{fmt(ss['ttft_ms']['mean'])} ms", flush=True)
    rows = [ss]
    stop = None
    best = None
    if ss["failed"]:
        stop = f"the smoke step failed: {first_error(ss)}"
    else:
        prev = None
        for r in rates:
            run = await timed_run(ep, a, reqs, r, a.max_concurrency,
                                  f"rate {fmt_rate(r)}")
            steps.append(run_json(run))
            s = run["summary"]
            s["gain"] = None if prev is None or prev <= 0 else \
                s["output_throughput"] / prev - 1
            rows.append(s)
            print(f"rate {fmt_rate(r)}: {s['completed']}/"
                  f"{s['completed'] + s['failed']} ok, "
                  f"{fmt(s['output_throughput'])} output tok/s" +
                  ("" if s["gain"] is None else
                   f" ({s['gain'] * 100:+.1f}%)"), flush=True)
            if s["failed"]:
                stop = (f"rate {fmt_rate(r)} had {s['failed']} failed "
                        f"requests (first: {first_error(s)})")
                break
            if best is None or s["output_throughput"] > \
                    best["output_throughput"]:
                best = s
            if s["gain"] is not None and s["gain"] < a.saturation_gain:
                stop = (f"rate {fmt_rate(r)} gained "
                        f"{s['gain'] * 100:+.1f}% < "
                        f"{a.saturation_gain * 100:g}%")
                break
            prev = s["output_throughput"]
    ep.close()
    print()
    qmax = f"p{max(a.percentiles):g}"
    print(f"Ladder: {a.base_url} ({ep.model}), {a.num_prompts} prompts a "
          f"step, max concurrency {a.max_concurrency or 'none'}")
    print()
    print(f"| step | rate req/s | max conc. | prompts | completed | failed "
          f"| duration s | req/s | output tok/s | total tok/s | gain | "
          f"TTFT mean ms | "
          f"TTFT {qmax} ms | TPOT mean ms | TPOT {qmax} ms | ITL mean ms | "
          f"E2EL mean ms |")
    print("| " + " | ".join(["---"] * 17) + " |")
    for s in rows:
        gain = "" if s.get("gain") is None else f"{s['gain'] * 100:+.1f}%"
        print(f"| {s['label']} | {fmt_rate(s['request_rate'])} | "
              f"{s['max_concurrency'] or ''} | {s['num_prompts']} | "
              f"{s['completed']} | {s['failed']} | "
              f"{fmt(s['duration_s'])} | {fmt(s['request_throughput'])} | "
              f"{fmt(s['output_throughput'])} | "
              f"{fmt(s['total_token_throughput'])} | {gain} | "
              f"{fmt(s['ttft_ms']['mean'])} | {fmt(s['ttft_ms'][qmax])} | "
              f"{fmt(s['tpot_ms']['mean'])} | {fmt(s['tpot_ms'][qmax])} | "
              f"{fmt(s['itl_ms']['mean'])} | {fmt(s['e2el_ms']['mean'])} |")
    print()
    saturated = bool(stop and "gained" in stop)
    if best is None:
        line = f"No saturation throughput: {stop}"
    elif saturated:
        line = (f"Saturated: {fmt(best['output_throughput'])} output tok/s "
                f"({fmt(best['request_throughput'])} req/s) at rate "
                f"{fmt_rate(best['request_rate'])}; {stop}")
    elif stop:
        line = (f"Stopped: {stop}; the highest output throughput was "
                f"{fmt(best['output_throughput'])} tok/s at rate "
                f"{fmt_rate(best['request_rate'])}")
    else:
        line = (f"Not saturated up to rate {fmt_rate(rates[-1])}: the highest "
                f"output throughput was {fmt(best['output_throughput'])} "
                f"tok/s at rate {fmt_rate(best['request_rate'])}")
    print(line)
    out["saturation"] = dict(
        saturated=saturated, stop_reason=stop, line=line,
        output_throughput=best and best["output_throughput"],
        request_throughput=best and best["request_throughput"],
        request_rate=best and best["request_rate"])
    if ss["failed"]:
        return stop
    return None


async def ab(a, reqs, out):
    eps = [Endpoint(u, a.api_key) for u in a.compare]
    for ep in eps:
        await probe(ep, a)
    for ep in eps:
        await warmup(ep, a, reqs)
    if a.interleave:
        t0 = time.perf_counter()
        ra, rb = await asyncio.gather(*(
            timed_run(ep, a, reqs, a.request_rate, a.max_concurrency, name,
                      t0) for ep, name in zip(eps, "AB")))
    else:
        ra = await timed_run(eps[0], a, reqs, a.request_rate,
                             a.max_concurrency, "A")
        rb = await timed_run(eps[1], a, reqs, a.request_rate,
                             a.max_concurrency, "B")
    for ep in eps:
        ep.close()
    print_summary(ra["summary"], a.percentiles, "A")
    print_summary(rb["summary"], a.percentiles, "B")
    print()
    rows, n_pairs = compare(ra, rb, a.percentiles, a.bootstrap, a.seed)
    print_compare(rows, ra["summary"], rb["summary"], n_pairs,
                  a.percentiles)
    out.update(mode="compare", interleave=a.interleave, a=run_json(ra),
               b=run_json(rb), paired_requests=n_pairs, comparison=rows)
    if n_pairs == 0:
        return "no request succeeded on both A and B"
    return None


def raise_open_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (
                hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
        except (ValueError, OSError):
            pass


def main(argv=None):
    a = parse_args(argv)
    raise_open_files()
    command = "python3 bench/serve.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    out = dict(tool="bench/serve.py",
               date=datetime.datetime.now().isoformat(timespec="seconds"),
               command=command,
               config={k: ("(set)" if k == "api_key" and v else v)
                       for k, v in vars(a).items()})
    try:
        if a.json:
            parent = os.path.dirname(os.path.abspath(a.json))
            if not os.path.isdir(parent):
                raise Failure(f"--json: cannot write '{a.json}': directory "
                              f"'{parent}' does not exist")
        counter = Counter(a.tokenizer)
        reqs = random_requests(a, counter) if a.dataset == "random" \
            else sharegpt_requests(a, counter)
        mode = ladder if a.ladder else ab if a.compare else single
        error = asyncio.run(mode(a, reqs, out))
    except Failure as e:
        die(str(e))
    except KeyboardInterrupt:
        die("interrupted")
    if a.json:
        try:
            with open(a.json, "w") as f:
                json.dump(jsonable(out), f, indent=1)
        except OSError as e:
            die(f"--json: cannot write '{a.json}': {e.strerror or e}")
    if error:
        die(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
