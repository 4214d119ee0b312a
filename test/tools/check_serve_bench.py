#!/usr/bin/env python3
"""Checks bench/serve.py's --json files from serve-bench.test against what
test/tools/serve_bench_mock.py was told to do. One line per check, `FAIL`
on a wrong one, `PASSED: N failure(s)` at the end (exit 1 on failures).

  check_serve_bench.py run FILE [--ttft MS] [--itl MS] [--completed N]
      [--failed N] [--tokens-per-chunk K] [--input-range LO,HI]
      [--output-range LO,HI]
      [--max-tokens A,B,...] [--error TEXT] [--no-done]
  check_serve_bench.py ladder FILE [--tokens-per-chunk K]
  check_serve_bench.py compare FILE [--interleave]

Latencies get generous bounds (the machine may be busy): the TTFT mean
within [0.9 x, 3 x + 20 ms] of the mock's delay and no TTFT under 0.9 x,
the TPOT mean within [0.8 x, 3 x + 20 ms], the ITL median within [0.8 x,
2.5 x].
"""
import argparse
import json
import sys

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def near(value, want, what, low=0.9):
    lo, hi = low * want, 3 * want + 20
    check(value is not None and lo <= value <= hi,
          f"{what} {value if value is None else round(value, 2)} ms in "
          f"[{lo:.1f}, {hi:.1f}]")


def check_run(j, a, name="run"):
    s, r = j["summary"], j["requests"]
    n = len(r["success"])
    if a.completed is not None:
        check(s["completed"] == a.completed,
              f"{name}: completed {s['completed']} == {a.completed}")
    check(s["failed"] == a.failed, f"{name}: failed {s['failed']} == "
          f"{a.failed}")
    check(sum(r["success"]) == s["completed"] and n == s["completed"] +
          s["failed"], f"{name}: {n} per-request records agree")
    ok = [i for i in range(n) if r["success"][i]]
    bad = [i for i in range(n) if not r["success"][i]]
    check(all(r["output_tokens"][i] == r["max_tokens"][i] for i in ok),
          f"{name}: output tokens == max_tokens for every success")
    k = a.tokens_per_chunk
    check(all(r["chunks"][i] == -(-r["max_tokens"][i] // k) for i in ok),
          f"{name}: {k} token(s) a chunk")
    check(s["total_output_tokens"] == sum(r["max_tokens"][i] for i in ok),
          f"{name}: total output tokens {s['total_output_tokens']}")
    check(all(len(r["itl_ms"][i]) == r["chunks"][i] - 1 for i in ok),
          f"{name}: one ITL per chunk after the first")
    without = sum(1 for i in ok if not r["done"][i])
    want = len(ok) if a.no_done else 0
    check(s["streams_without_done"] == without == want,
          f"{name}: {want} stream(s) without data: [DONE]")
    if a.error:
        check(all(a.error in r["error"][i] for i in bad) and
              all(a.error in e for e in s["errors"]),
              f"{name}: every failure says '{a.error}'")
    if a.input_range:
        lo, hi = a.input_range
        check(all(lo <= x <= hi for x in r["prompt_len"]) and
              len(set(r["prompt_len"])) > 1,
              f"{name}: prompt lengths {r['prompt_len']} in [{lo}, {hi}]")
        check(r["input_tokens"] == r["prompt_len"],
              f"{name}: the server counted the prompts' tokens alike")
    if a.output_range:
        lo, hi = a.output_range
        check(all(lo <= x <= hi for x in r["max_tokens"]) and
              len(set(r["max_tokens"])) > 1,
              f"{name}: max_tokens {r['max_tokens']} in [{lo}, {hi}]")
    if a.max_tokens:
        check(sorted(r["max_tokens"]) == sorted(a.max_tokens),
              f"{name}: max_tokens {sorted(r['max_tokens'])}")
    if a.ttft:
        near(s["ttft_ms"]["mean"], a.ttft, f"{name}: mean TTFT")
        check(all(r["ttft_ms"][i] >= 0.9 * a.ttft for i in ok),
              f"{name}: no TTFT under {0.9 * a.ttft:g} ms")
    if a.itl:
        near(s["tpot_ms"]["mean"], a.itl, f"{name}: mean TPOT", 0.8)
        itl = s["itl_ms"]["median"]
        want = a.itl * k
        check(itl is not None and 0.8 * want <= itl <= 2.5 * want,
              f"{name}: median ITL {itl and round(itl, 2)} ms near {want:g}")
    check(s["duration_s"] > 0 and abs(
        s["output_throughput"] - s["total_output_tokens"] /
        s["duration_s"]) < 1e-6 * max(1, s["output_throughput"]),
        f"{name}: output throughput = output tokens / duration")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["run", "ladder", "compare"])
    p.add_argument("file")
    p.add_argument("--ttft", type=float)
    p.add_argument("--itl", type=float)
    p.add_argument("--completed", type=int)
    p.add_argument("--failed", type=int, default=0)
    p.add_argument("--tokens-per-chunk", type=int, default=1)
    p.add_argument("--input-range", type=lambda t: [int(x) for x in
                                                    t.split(",")])
    p.add_argument("--output-range", type=lambda t: [int(x) for x in
                                                     t.split(",")])
    p.add_argument("--max-tokens", type=lambda t: [int(x) for x in
                                                   t.split(",")])
    p.add_argument("--error")
    p.add_argument("--no-done", action="store_true")
    p.add_argument("--interleave", action="store_true")
    a = p.parse_args()
    with open(a.file) as f:
        j = json.load(f)
    if a.mode == "run":
        check(j["mode"] == "single", "mode single")
        check_run(j, a)
    elif a.mode == "ladder":
        steps = j["steps"]
        smoke = steps[0]["summary"]
        check(smoke["label"] == "smoke" and smoke["num_prompts"] == 4 and
              smoke["max_concurrency"] == 1 and smoke["request_rate"] ==
              "inf", "the smoke step: 4 prompts one at a time")
        check(len(steps) >= 3, f"{len(steps) - 1} rate steps after it")
        check(len(steps) - 1 < len(j["rates"]),
              "stopped before the last rate")
        for k, step in enumerate(steps):
            check_run(step, a, step["summary"]["label"])
        sat = j["saturation"]
        check(sat["saturated"], f"saturated: {sat['stop_reason']}")
        tputs = [s["summary"]["output_throughput"] for s in steps[1:]]
        check(sat["output_throughput"] == max(tputs),
              "the saturation throughput is the steps' highest")
        gains = [s["summary"]["gain"] for s in steps[1:]]
        check(gains[0] is None and all(g is not None for g in gains[1:]),
              "a gain for every step after the first")
        check(gains[-1] < j["config"]["saturation_gain"] and
              all(g >= j["config"]["saturation_gain"] for g in gains[1:-1]),
              "only the last step gained less than --saturation-gain")
    else:
        check(j["mode"] == "compare" and j["interleave"] == a.interleave,
              f"mode compare, interleave {a.interleave}")
        rows = {(r["metric"], r["stat"]): r for r in j["comparison"]}
        for metric in ["ttft", "tpot", "itl", "e2el"]:
            for stat in ["mean", "p50"]:
                r = rows[(metric, stat)]
                check(r["diff"] is not None and r["diff"] > 0 and
                      r["ci95"][0] > 0 and r["significant"] and
                      r["verdict"] == "B slower",
                      f"{metric} {stat}: B - A {r['diff']:+.2f} ms, CI "
                      f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}], "
                      "B slower")
                check(r["ci95"][0] <= r["diff"] <= r["ci95"][1],
                      f"{metric} {stat}: the CI holds the difference")
        r = rows[("ttft", "mean")]
        check(50 <= r["diff"] <= 250, f"TTFT mean B - A {r['diff']:.1f} ms "
              "near 100")
        check(j["paired_requests"] == len(j["a"]["requests"]["success"]),
              "every request paired")
        check(j["a"]["requests"]["max_tokens"] ==
              j["b"]["requests"]["max_tokens"] and
              j["a"]["requests"]["arrival_s"] ==
              j["b"]["requests"]["arrival_s"],
              "A and B got the same stream")
    print(f"PASSED: {len(failures)} failure(s)" if not failures else
          f"FAILED: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
