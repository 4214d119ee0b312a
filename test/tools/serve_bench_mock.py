#!/usr/bin/env python3
"""An OpenAI-compatible mock server for bench/serve.py's tests (standard
library only): POST /v1/completions and /v1/chat/completions, streamed
(server-sent events, chunked, `data: [DONE]` at the end, a final usage
chunk with stream_options.include_usage) or not, and GET /v1/models.

  serve_bench_mock.py [--port 0] [--port-file F] [--background]
      [--lifetime 60] [--ttft-ms 50] [--itl-ms 10] [--max-parallel K]
      [--fail-every K] [--fail-status 500] [--no-usage] [--no-done]
      [--tokens-per-chunk 1] [--model mock]
  serve_bench_mock.py --stop F

A request generates max_tokens tokens (max_completion_tokens for chat;
16 when neither is given), one word each, sent --tokens-per-chunk words
to a text chunk: the first token --ttft-ms after the request got one of
--max-parallel slots (unlimited by default), then one each --itl-ms, on a
fixed schedule from that moment (a chunk goes when its last token is
due), which slides when the mock falls behind: two chunks are never
closer than --itl-ms a token. --no-usage leaves usage out, --no-done the
final `data: [DONE]`. The chat stream
starts with a role-only chunk (empty content) at once. prompt_tokens is
the length of a token-id prompt, else words x 1.3. --fail-every K answers
every K-th generation request (1-based) with --fail-status and a JSON
error. --port 0 takes a free port; --port-file gets "PORT PID".
--background returns once the server listens; the server stops by itself
after --lifetime seconds, or at `--stop F` (SIGTERM to the pid in F).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def make_handler(cfg):
    lock = threading.Lock()
    state = dict(count=0)
    slots = threading.Semaphore(cfg.max_parallel) if cfg.max_parallel \
        else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_json(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self.send_json(200, {"object": "list", "data": [
                    {"id": cfg.model, "object": "model", "owned_by": "mock"}]})
            else:
                self.send_json(404, {"error": {"message": "not found"}})

        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def event(self, obj):
            payload = obj if isinstance(obj, str) else json.dumps(obj)
            self.chunk(f"data: {payload}\n\n".encode())

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            chat = self.path == "/v1/chat/completions"
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                self.send_json(404, {"error": {"message": "not found"}})
                return
            try:
                req = json.loads(raw)
            except ValueError:
                self.send_json(400, {"error": {"message": "bad JSON"}})
                return
            with lock:
                state["count"] += 1
                n = state["count"]
            if cfg.fail_every and n % cfg.fail_every == 0:
                self.send_json(cfg.fail_status, {"error": {
                    "message": f"mock failure of request {n}",
                    "type": "mock", "code": cfg.fail_status}})
                return
            tokens = req.get("max_completion_tokens") if chat else None
            tokens = tokens or req.get("max_tokens") or 16
            if chat:
                prompt = " ".join(str(m.get("content", ""))
                                  for m in req.get("messages", []))
            else:
                prompt = req.get("prompt", "")
            if isinstance(prompt, list):
                prompt_tokens = len(prompt)
            else:
                prompt_tokens = max(1, round(len(str(prompt).split()) * 1.3))
            usage = {"prompt_tokens": prompt_tokens,
                     "completion_tokens": tokens,
                     "total_tokens": prompt_tokens + tokens}
            rid = f"cmpl-mock-{n}"
            kind = "chat.completion.chunk" if chat else "text_completion"
            base = {"id": rid, "object": kind, "created": int(time.time()),
                    "model": req.get("model", cfg.model)}
            stream = bool(req.get("stream"))
            if slots:
                slots.acquire()
            try:
                if stream:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    if chat:
                        self.event(dict(base, choices=[{
                            "index": 0, "delta": {"role": "assistant",
                                                  "content": ""},
                            "finish_reason": None}]))
                t0 = time.monotonic()
                words = []
                k = cfg.tokens_per_chunk
                sent = None
                for first in range(0, tokens, k):
                    last = min(first + k, tokens) - 1
                    due = t0 + (cfg.ttft_ms + last * cfg.itl_ms) / 1e3
                    if sent is not None:   # late: no burst to catch up
                        due = max(due, sent + (last - first + 1) *
                                  cfg.itl_ms / 1e3)
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    text = "".join(f" w{i}" for i in range(first, last + 1))
                    words.append(text)
                    if stream:
                        c = {"index": 0, "finish_reason": None}
                        if chat:
                            c["delta"] = {"content": text}
                        else:
                            c["text"] = text
                        self.event(dict(base, choices=[c]))
                    sent = time.monotonic()
            finally:
                if slots:
                    slots.release()
            if not stream:
                c = {"index": 0, "finish_reason": "length"}
                if chat:
                    c["message"] = {"role": "assistant",
                                    "content": "".join(words)}
                else:
                    c["text"] = "".join(words)
                obj = dict(base, object="chat.completion" if chat
                           else "text_completion", choices=[c])
                if not cfg.no_usage:
                    obj["usage"] = usage
                self.send_json(200, obj)
                return
            c = {"index": 0, "finish_reason": "length"}
            if chat:
                c["delta"] = {}
            else:
                c["text"] = ""
            self.event(dict(base, choices=[c]))
            if (req.get("stream_options") or {}).get("include_usage") \
                    and not cfg.no_usage:
                self.event(dict(base, choices=[], usage=usage))
            if not cfg.no_done:
                self.event("[DONE]")
            self.chunk(b"")

    return Handler


def stop(port_file):
    try:
        with open(port_file) as f:
            pid = int(f.read().split()[1])
    except (OSError, IndexError, ValueError) as e:
        sys.exit(f"serve_bench_mock.py: error: {port_file}: no pid ({e})")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    for _ in range(100):    # gone, or a zombie not yet reaped by init
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return 0
        except (OSError, IndexError):
            return 0
        time.sleep(0.05)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--background", action="store_true")
    p.add_argument("--lifetime", type=float, default=60.0)
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=10.0)
    p.add_argument("--max-parallel", type=int, default=0)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--no-usage", action="store_true")
    p.add_argument("--no-done", action="store_true")
    p.add_argument("--tokens-per-chunk", type=int, default=1)
    p.add_argument("--model", default="mock")
    p.add_argument("--stop", metavar="PORT_FILE")
    cfg = p.parse_args()
    if cfg.stop:
        return stop(cfg.stop)
    if cfg.tokens_per_chunk < 1:
        p.error("--tokens-per-chunk must be >= 1")
    if cfg.background and not cfg.port_file:
        p.error("--background needs --port-file")
    server = Server(("127.0.0.1", cfg.port), make_handler(cfg))
    if cfg.background:
        if cfg.port_file and os.path.exists(cfg.port_file):
            os.unlink(cfg.port_file)
        if os.fork():
            server.server_close()
            deadline = time.time() + 10
            while time.time() < deadline:
                if os.path.exists(cfg.port_file):
                    with open(cfg.port_file) as f:
                        print(f.read().split()[0])
                    return 0
                time.sleep(0.02)
            sys.exit("serve_bench_mock.py: error: the server did not start")
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    port = server.server_address[1]
    threading.Timer(cfg.lifetime, server.shutdown).start()
    if cfg.port_file:
        tmp = cfg.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port} {os.getpid()}\n")
        os.rename(tmp, cfg.port_file)
    if not cfg.background:
        print(f"listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
