#!/usr/bin/env python3
"""Checks the parts of the GPU machine's scripts that need no GPU, torch or
transformers:

- fill_weights.py maps every external initializer of make_llama.py's graphs
  onto the parameters of Hugging Face's LlamaForCausalLM, listed here from
  its module structure (not from make_llama.py), and refuses graphs that
  do not match;
- bench/prefill.py's roofline cost against hand-computed FLOPs and bytes,
  and its command-line refusals;
- bench/decode.py's roofline floor, its command-line refusals and its weft
  runs against stand-in weft binaries (JSON lines, a failure, none), at
  several tp degrees with their speed-ups, targets and planner rows;
- bench/serve_gpu.py's --tp and --dp and its saturation lines;
- generate_check.py's token comparisons (against the reference, against
  the one-GPU run);
- fault_check.py's reading of errors and timings, and its refusals;
- scripts/gpu/cases.py's case list fits the layouts and the presets, with
  gpu-prepare --multi-gpu's generation artifacts.

  check_gpu_scripts.py SRC_ROOT SCRATCH_DIR
"""
import contextlib
import io
import math
import os
import subprocess
import sys

import numpy as np
import onnx

SRC, SCRATCH = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "scripts", "gpu"))
sys.path.insert(0, os.path.join(SRC, "bench"))
import cases as C  # noqa: E402
import decode  # noqa: E402
import fault_check as FC  # noqa: E402
import fill_weights as F  # noqa: E402
import generate_check as G  # noqa: E402
import prefill  # noqa: E402
import serve_gpu  # noqa: E402

failures = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def expect_refused(parse, argv, message, script):
    """parse(argv) must exit 2 with `message` in its stderr (argparse's
    usage error)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parse(argv)
            code = 0
        except SystemExit as e:
            code = e.code
    expect(code == 2 and message in err.getvalue(),
           f"{script} {' '.join(argv)}: refused ({message})")


def hf_llama_parameters(h, layers, heads, kv_heads, ff, vocab):
    """LlamaForCausalLM.named_parameters() shapes: nn.Linear weights are
    [out_features, in_features], no biases, untied LM head."""
    kv = kv_heads * (h // heads)
    params = {"model.embed_tokens.weight": [vocab, h],
              "model.norm.weight": [h], "lm_head.weight": [vocab, h]}
    for i in range(layers):
        p = f"model.layers.{i}."
        params.update({
            p + "self_attn.q_proj.weight": [heads * (h // heads), h],
            p + "self_attn.k_proj.weight": [kv, h],
            p + "self_attn.v_proj.weight": [kv, h],
            p + "self_attn.o_proj.weight": [h, heads * (h // heads)],
            p + "mlp.gate_proj.weight": [ff, h],
            p + "mlp.up_proj.weight": [ff, h],
            p + "mlp.down_proj.weight": [h, ff],
            p + "input_layernorm.weight": [h],
            p + "post_attention_layernorm.weight": [h]})
    return params


def make(preset, dtype, layers=None, mutation=None):
    out = os.path.join(SCRATCH, f"{preset}_{dtype}" +
                       (f"_{mutation}" if mutation else ""))
    argv = [sys.executable, os.path.join(SRC, "test", "models", "make_llama.py"),
            "--preset", preset, "--dtype", dtype, "-o", out]
    if layers:
        argv += ["--layers", str(layers)]
    if mutation:
        argv += ["--mutate", mutation]
    subprocess.run(argv, check=True, capture_output=True)
    return onnx.load(os.path.join(out, "model.onnx"), load_external_data=False)


def refuses(inits, params, message):
    try:
        F.plan_writes(inits, params)
    except F.FillError as e:
        return message in str(e)
    return False


# --- fill_weights: the mapping ------------------------------------------------
shapes = {"tiny": (128, 2, 8, 4, 352, 256), "1b": (2048, 16, 32, 8, 8192, 32000),
          "8b": (4096, 32, 32, 8, 14336, 128256)}
for preset, dtype in (("tiny", "f32"), ("tiny", "bf16"), ("1b", "bf16"),
                      ("8b", "bf16")):
    model = make(preset, dtype)
    cfg = F.llama_config_of(model)
    h, layers, heads, kv, ff, vocab = shapes[preset]
    expect((cfg["hidden_size"], cfg["num_hidden_layers"],
            cfg["num_attention_heads"], cfg["num_key_value_heads"],
            cfg["intermediate_size"], cfg["vocab_size"]) == shapes[preset],
           f"{preset} {dtype}: llama_config metadata has the preset's shape")
    params = hf_llama_parameters(*shapes[preset])
    inits = F.external_initializers(model)
    plan = F.plan_writes(inits, params)
    expect(len(plan) == len(params) and not any(t for _, _, t in plan),
           f"{preset} {dtype}: all {len(params)} parameters map 1:1, "
           "none transposed")
    itemsize = 4 if dtype == "f32" else 2
    total = sum(itemsize * math.prod(s) for s in params.values())
    end = max(i[4] + i[5] for i in inits)
    expect(total <= end < total + 64 * len(params),
           f"{preset} {dtype}: model.weights holds {total} bytes of "
           f"parameters in {end} (64-byte aligned)")
    expect({i[3] for i in inits} == {"model.weights"},
           f"{preset} {dtype}: one file, model.weights")
theta = {p: F.llama_config_of(make(p, "bf16"))["rope_theta"]
         for p in ("1b", "8b")}
expect(theta == {"1b": 10000.0, "8b": 500000.0},
       f"rope theta as in TinyLlama-1.1B and Llama-3-8B: {theta}")

# An x @ W layout (name.T, [in, out]) is transposed.
model = make("tiny", "f32")
inits = F.external_initializers(model)
params = hf_llama_parameters(*shapes["tiny"])
renamed = [(n + ".T", d[::-1], *rest) if n.endswith("q_proj.weight")
           else (n, d, *rest) for n, d, *rest in inits]
plan = F.plan_writes(renamed, params)
expect(sorted(p for _, p, t in plan if t) ==
       sorted(n for n in params if n.endswith("q_proj.weight")),
       "q_proj.weight.T [in, out] maps to q_proj.weight, transposed")

# Refusals: an unknown name, a wrong shape, an unused parameter, overlaps.
bad = [("model.layers.9.mlp.up_proj.weight",) + tuple(inits[0][1:])] + inits[1:]
expect(refuses(bad, params, "initializer 'model.layers.9.mlp.up_proj.weight': "
               "no parameter of that name"), "refuses an unknown name")
expect(refuses(bad, params, "parameter 'model.embed_tokens.weight' is not in "
               "the graph"), "refuses a parameter the graph lacks")
wrong = [(inits[0][0], [7, 7]) + tuple(inits[0][2:])] + inits[1:]
expect(refuses(wrong, params, "initializer 'model.embed_tokens.weight' "
               "[7, 7]: parameter 'model.embed_tokens.weight' has shape "
               "[256, 128]"), "refuses a shape mismatch")
overlap = [inits[0], (inits[1][0], inits[1][1], inits[1][2], inits[1][3],
                      inits[0][4] + 4, inits[1][5])] + inits[2:]
expect(refuses(overlap, params, "overlap in the weight file"),
       "refuses overlapping ranges")
two = [inits[0][:3] + ("other.bin",) + inits[0][4:]] + inits[1:]
expect(refuses(two, params, "expected one"), "refuses two weight files")
nometa = onnx.ModelProto()
try:
    F.llama_config_of(nometa)
    expect(False, "refuses a graph without llama_config")
except F.FillError as e:
    expect("no 'llama_config' metadata" in str(e),
           "refuses a graph without llama_config")
# The command line: a missing model is a usage error.
r = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "gpu",
                                                 "fill_weights.py"),
                    os.path.join(SCRATCH, "none.onnx"), "--seed", "1"],
                   capture_output=True, text=True)
expect(r.returncode == 2 and "none.onnx: no such file" in r.stderr,
       "fill_weights.py refuses a missing model")

# --- bench/prefill.py ----------------------------------------------------------
# 1b, batch 1 x 512: 2 FLOPs per token per projection weight (q, k, v, o,
# gate, up, down in 16 layers, and the LM head) plus causal attention,
# 2 * 512^2 * 2048 per layer; bytes: every parameter once (bf16) and the
# bf16 logits.
proj = 16 * (2 * 2048 ** 2 + 2 * 2048 * 512 + 3 * 2048 * 8192) + 2048 * 32000
flops = 2 * 512 * proj + 16 * 2 * 512 * 512 * 2048
weights = proj + 32000 * 2048 + (2 * 16 + 1) * 2048
cfg = F.llama_config_of(make("1b", "bf16"))
expect(prefill.model_cost(cfg, 1, 512) == (flops, 2 * weights + 2 * 512 * 32000),
       f"roofline cost of 1b at 1 x 512: {flops} FLOPs")
expect(2 * weights == sum(2 * math.prod(s) for s in
                         hf_llama_parameters(*shapes["1b"]).values()),
       f"1b has {weights} parameters, as LlamaForCausalLM")
for argv, message in ((["--models", "3b"], "'3b' is not one of 1b, 8b"),
                      (["--systems", "jax"], "'jax' is not one of"),
                      (["--tp", "3"], "'3' is not one of 1, 2, 4"),
                      (["--batches", "0"], "0 is not a positive batch size"),
                      (["--iters", "0"], "--iters must be >= 1")):
    expect_refused(prefill.parse_args, argv, message, "prefill.py")
a = prefill.parse_args(["--models", "8b", "--systems", "eager,weft",
                        "--batches", "1"])
expect((a.models, a.systems, a.batches, a.tp) ==
       (["8b"], ["eager", "weft"], [1], [1, 2, 4]), "prefill.py parses lists")

# --- bench/decode.py -----------------------------------------------------------
# 1b: every parameter but the embedding table in bf16 (q, k, v, o, gate, up,
# down and two norms in 16 layers, the final norm, the LM head); KV per
# context token: K and V, 16 layers, 8 kv heads of 64, 2 bytes.
weights_1b = 2 * (16 * (2 * 2048 ** 2 + 2 * 2048 * 512 + 3 * 2048 * 8192
                        + 2 * 2048) + 2048 + 2048 * 32000)
expect(decode.decode_cost(cfg) == (weights_1b, 2 * 16 * 512 * 2),
       f"decode cost of 1b: {weights_1b} weight bytes, 32 KiB KV per token")
expect(weights_1b == sum(2 * math.prod(s) for n, s in hf_llama_parameters(
    *shapes["1b"]).items() if n != "model.embed_tokens.weight"),
       "the weights read by a decode step: all but the embedding table")
cfg8 = F.llama_config_of(make("8b", "bf16"))
expect(decode.decode_cost(cfg8)[1] == 2 * 32 * 1024 * 2,
       "8b: 128 KiB KV per context token")
floor = decode.floor_ms(cfg, 8, 128, 128, 2e12)
expect(abs(floor - (weights_1b + 8 * 32768 * 192) / 2e12 * 1e3) < 1e-9,
       f"1b floor at 8 x 128, 128 new, 2 TB/s: {floor:.4f} ms per step "
       "(mean context 192)")
for argv, message in ((["--models", "70b"], "'70b' is not one of 1b, 8b"),
                      (["--systems", "vllm"], "'vllm' is not one of"),
                      (["--new-tokens", "1"], "--new-tokens must be >= 2"),
                      (["--batches", "0"], "must be positive"),
                      (["--peer-warmup", "0"], "the first call compiles")):
    expect_refused(decode.parse_args, argv, message, "decode.py")
expect(decode.runs_of([128, 512, 2048], [1, 8, 32], 128) ==
       [(1, 128), (1, 512), (1, 2048), (8, 128), (32, 128)],
       "decode.py runs batch 1 at each prompt, each batch at the first")

# weft's runs against stand-ins: one printing a JSON object per prompt (its
# ids as many as --max-tokens), one failing, none at all.
fake = os.path.join(SCRATCH, "fake-weft")
with open(fake, "w") as f:
    f.write("""#!/usr/bin/env python3
import json, sys
a = sys.argv
n = int(a[a.index("--max-tokens") + 1])
if "--prompt-ids" in a:
    prompts = [a[a.index("--prompt-ids") + 1].split(",")]
else:
    prompts = [json.loads(l)["prompt_ids"]
               for l in open(a[a.index("--prompt-file") + 1])]
for p in prompts:
    print(json.dumps({"prompt_ids": [int(x) for x in p], "ids": [7] * n,
                      "ttft_ms": 2.0 * len(p), "ms_per_token": 4.0}))
""")
os.chmod(fake, 0o755)
gen_case = dict(C.generation_cases(bench=True)[0], max_seq=1024)
opts = decode.parse_args(["--weft", fake])
lines = []
runs = decode.weft_runs("1b", gen_case, decode.runs_of([128, 512, 1020],
                                                       [1, 8], 128),
                        16, 32000, opts, lines.append)
expect([(r["batch"], r["prompt"], r["ttft_ms"], r["ms_per_token"])
        for r in runs] == [(1, 128, 256.0, 4.0), (1, 512, 1024.0, 4.0),
                           (8, 128, 256.0, 4.0)],
       "decode.py reads ttft_ms and ms_per_token of each run (batch 8 from "
       "a prompt file of 8)")
expect(any(line.startswith("SKIP weft 1b 1 x 1020: 1020 + 16 tokens exceed "
                           "the artifact's max_seq 1024") for line in lines),
       "decode.py skips a prompt that the artifact's max_seq cannot hold")
expect("<128 ids>" in runs[0]["command"] and
       "--max-tokens 16 --ignore-eos --json" in runs[0]["command"],
       f"decode.py shows weft's command without the ids: "
       f"{runs[0]['command']}")
lines = []
opts.weft = "/bin/false"
expect(decode.weft_runs("1b", gen_case, [(1, 128)], 16, 32000, opts,
                        lines.append) == [] and
       lines[0].startswith("FAIL weft 1b warm-up: exit 1: /bin/false"),
       "a failing weft: reported with its command, no results")
lines = []
opts.weft = os.path.join(SCRATCH, "no-weft")
expect(decode.weft_runs("1b", gen_case, [(1, 128)], 16, 32000, opts,
                        lines.append) == [] and "is missing" in lines[0],
       "a missing weft: reported, no results")
lines = []
expect(decode.weft_runs("1b", dict(gen_case, compile_error="weft: error: "
                                   "x"), [(1, 128)], 16, 32000, opts,
                        lines.append) == [] and "did not compile" in lines[0],
       "an artifact that did not compile: reported, no results")

# --tp: each tp artifact's runs (ranks as processes with --nproc), the
# speed-up over tp 1, the targets and the planner's rows.
a = decode.parse_args(["--tp", "1,2,4", "--nproc", "--weft", fake])
expect(a.tp == [1, 2, 4] and a.nproc, "decode.py parses --tp and --nproc")
for argv, message in ((["--tp", "0"], "positive degrees"),
                      (["--tp", "2,2"], "each once")):
    expect_refused(decode.parse_args, argv, message, "decode.py")
tp2_case = C.find_generation(C.multi_gpu_cases()["generation_bench"],
                             "llama8b_bf16", 2)
lines = []
runs = decode.weft_runs("8b", tp2_case, [(1, 128)], 16, 128256, a,
                        lines.append)
expect(len(runs) == 1 and runs[0]["tp"] == 2 and
       "--nproc 2" in runs[0]["command"] and
       "llama8b_bf16.tp2.generate.weft" in runs[0]["command"] and
       lines[-1].startswith("weft 8b tp 2 1 x 128: "),
       f"decode.py runs the tp 2 artifact as 2 processes: "
       f"{runs[0]['command'] if runs else lines}")
results = [dict(model="8b", system="weft", batch=b, prompt=128, tp=tp,
                ms_per_token=ms)
           for tp, b, ms in ((1, 1, 7.0), (2, 1, 4.0), (4, 1, 3.5),
                             (1, 8, 8.0), (2, 8, 5.0))]
results.append(dict(model="1b", system="weft", batch=1, prompt=128, tp=2,
                    ms_per_token=1.0))
decode.add_speedups(results)
expect([r["speedup"] for r in results] == [1.0, 1.75, 2.0, 1.0, 1.6, None],
       "speed-up: tp 1's ms/token over the run's, per model, batch and "
       "prompt; none without a tp 1 run")
targets = decode.target_lines(results, 1, 128)
expect(targets == [
    "8b tp 2 at 1 x 128: 1.75x tp 1's decode speed (target 1.6x: met)",
    "8b tp 4 at 1 x 128: 2.00x tp 1's decode speed (target 2.4x: NOT met)",
    "1b tp 2 at 1 x 128: no tp 1 run to compare with"],
       f"decode.py says whether the tp targets are met: {targets}")
plan_index = {"planner_decode": [
    dict(topology="h100x4", model="llama8b_bf16", tp=2, batch=1, prompt=128,
         gen=128, decode_ms=5.0, command="weft plan ..."),
    dict(topology="h200x4", model="llama8b_bf16", tp=2, batch=1, prompt=128,
         gen=128, decode_ms=9.0, command="weft plan ...")]}
rows = decode.planner_rows(plan_index, results, "NVIDIA H100 80GB HBM3", 128)
expect([(r["tp"], r["batch"], r["predicted_ms"], round(r["error"], 2))
        for r in rows] == [(2, 1, 5.0, 0.25)],
       "the planner's prediction beside the measurement of the same tp, "
       "batch and prompt on the card's topology (error +25%)")
expect(decode.planner_rows(plan_index, results, "NVIDIA H100", 64) == [],
       "no planner row for another number of new tokens")
expect(C.planner_topology("NVIDIA H200") == "h200x4" and
       C.planner_topology("NVIDIA H100 80GB HBM3") == "h100x4",
       "the planner's topology follows the card")

# --- bench/serve_gpu.py's layouts ----------------------------------------------
a = serve_gpu.parse_args(["--tp", "1,2,4", "--dp", "1,2", "--peer-models", ""])
expect((a.tp, a.dp, a.peer_models) == ([1, 2, 4], [1, 2], []),
       "serve_gpu.py parses --tp, --dp and an empty --peer-models")
for argv, message in ((["--dp", "0"], "positive numbers"),
                      (["--tp", "x"], "positive numbers"),
                      (["--tp", "2,2"], "each once")):
    expect_refused(serve_gpu.parse_args, argv, message, "serve_gpu.py")
ladder = lambda tok_s: {"ladder": [{"output_throughput": 10.0},  # noqa: E731
                                   {"output_throughput": tok_s}]}
served = [dict(model="8b", tp=1, dp=1, alternate=ladder(1000.0)),
          dict(model="8b", tp=2, dp=1, alternate=ladder(1500.0)),
          dict(model="8b", tp=1, dp=2, alternate=ladder(1900.0)),
          dict(model="8b", tp=4, dp=1)]
expect(serve_gpu.saturation_lines(served, ["alternate"]) == [
    "8b weft alternate tp 2 at saturation: 1500 output tok/s on 2 GPUs, "
    "1.50x the one-GPU server's 1000",
    "8b weft alternate dp 2 at saturation: 1900 output tok/s on 2 GPUs, "
    "1.90x the one-GPU server's 1000"],
       "serve_gpu.py sets each layout's saturation against one GPU's")

# --- generate_check.py's comparison -------------------------------------------
logits = [np.array([0.0, 1.0, 0.95, 0.2]), np.array([0.0, 1.0, 0.5, 0.2])]
expect(G.compare([1, 1], [1, 1], logits)[:2] == (2, True), "all agree")
expect(G.compare([2, 0], [1, 1], logits)[:2] == (0, True),
       "a disagreement where the reference leads by 0.05: bf16 noise")
expect(G.compare([1, 2], [1, 1], logits)[:2] == (1, False),
       "a disagreement where the reference leads by 0.5: a failure")
expect(not G.compare([1], [1, 1], logits)[1], "too few tokens fail")
expect(not G.compare([9, 1], [1, 1], logits)[1], "an id outside the "
       "vocabulary fails")
# Against the one-GPU run: equal, or a near-tie in the reference's logits
# after the prefix both share.
calls = []


def next_logits(ids):
    calls.append(list(ids))
    return np.array([0.0, 1.0, 0.95, 0.2])


expect(G.compare_runs([1, 2], [1, 2], [7], next_logits)[:2] == (2, True)
       and calls == [], "the one-GPU run's ids: all equal")
expect(G.compare_runs([1, 2, 0], [1, 1, 1], [7], next_logits)[:2] ==
       (1, True) and calls == [[7, 1]],
       "a difference 0.05 apart in the reference's logits after the shared "
       "prefix (prompt + ids before it): a near-tie")
expect(G.compare_runs([1, 3], [1, 1], [7], next_logits)[:2] == (1, False),
       "a difference 0.8 apart: a failure")
expect(G.compare_runs([3, 1], [1, 1], [7], next_logits)[:2] == (0, False),
       "the order does not matter (0.8 apart the other way)")
expect(not G.compare_runs([1], [1, 1], [7], next_logits)[1] and
       not G.compare_runs([9], [1], [7], next_logits)[1],
       "too few tokens, or an id outside the vocabulary, fail")
expect([len(p) for p in G.prompt_ids(256)] == G.PROMPT_LENS and
       max(G.PROMPT_LENS) > max(C.GEN_TEST[0][3]),
       "generate_check's prompts: one longer than the largest prompt bucket")

# --- gpu_test.py's comparisons -----------------------------------------------------
import gpu_test as T  # noqa: E402
ref = np.array([[0.0, 1.0, 5.0], [0.0, 2.0, 2.01]])
got = np.array([[0.0, 1.0, 4.9], [0.0, 2.02, 2.0]])
expect(T.top1(got, ref) == (1.0, 1, 0.5),
       "top-1 agreement counts only positions with a clear reference lead "
       "(a near-tie flipped is not a miss)")
expect(abs(T.rel_err(got, ref) - 0.1 / 5.0) < 1e-12,
       "rel err is max|got - ref| / max|ref|")
expect(T.rel_err(got[:1], ref) == float("inf"), "a shape mismatch fails")

# The bf16 rule: weft within BF16_FACTOR x torch bf16's own errors (max and
# rms) against torch f32, and top-1 agreement; a mutant's scale error fails.
rng = np.random.default_rng(0)
exact = rng.standard_normal((2, 16, 64))
torch_bf16 = exact * (1 + 4e-3 * rng.standard_normal(exact.shape))
ok, detail, ratio = T.bf16_verdict(
    exact * (1 + 6e-3 * rng.standard_normal(exact.shape)), torch_bf16, exact)
expect(ok and 0.5 < ratio < 1.0 and "limits" in detail,
       f"bf16 rule: 1.5x torch bf16's own error passes (error / limit "
       f"{ratio:.2f})")
ok, detail, ratio = T.bf16_verdict(
    exact * (1 + 1.2e-2 * rng.standard_normal(exact.shape)), torch_bf16,
    exact)
expect(not ok and ratio > 1.0,
       f"bf16 rule: 3x torch bf16's own error fails (error / limit "
       f"{ratio:.2f})")
ok, detail, ratio = T.bf16_verdict(exact * 1.05, torch_bf16, exact)
expect(not ok, "bf16 rule: a 5% scale error fails though top-1 agrees")
ok, detail, ratio = T.bf16_verdict(exact + 5e-5, exact, exact)
expect(ok and "limits 1.00e-04 / 1.00e-04" in detail,
       "bf16 rule: limits never below the f32 tolerance")
expect(abs(T.rms_err(exact * 1.01, exact) - 0.01) < 1e-12,
       "rms err is ||got - ref|| / ||ref||")


# Top-1 against torch f32 where its lead is clear, as often as torch bf16:
# 100 positions led by 2% of max|ref|; a flip raises the runner-up by 3%.
def flipped(logits, n):
    out = logits.copy()
    out[:n, 1] = out[:n, 0] + 0.01 * np.abs(logits).max()
    return out


lead = np.zeros((100, 8))
lead[:, 0], lead[:, 1] = 1.0, 0.98
own = flipped(lead, 10)  # torch bf16 agrees at 90% of the positions
ok, detail, _ = T.bf16_verdict(flipped(lead, 14), own, lead)
expect(ok and "top-1 as torch f32's 0.860" in detail and "min 0.850" in
       detail, "bf16 rule: top-1 within TOP1_SLACK of torch bf16's own "
       "passes")
ok, detail, _ = T.bf16_verdict(flipped(lead, 20), own, lead)
expect(not ok, "bf16 rule: top-1 further below torch bf16's own fails")
right = lead.copy()
right[:, 7] = 0.03  # torch bf16's error, with no flip
ok, detail, ratio = T.bf16_verdict(flipped(lead, 6), right, lead)
expect(not ok and ratio < 1.0 and "min 0.950" in detail,
       "bf16 rule: with torch bf16 always right, top-1 must be >= 0.95")

# --- gpu_test.py's run of test/gpu/run_codegen_kernels.py -----------------------
# The step against stand-in scripts: one passing, one failing (its failures
# logged, the passes not), and what gpu-prepare may have left in cases.json.
codegen_root = os.path.join(SCRATCH, "codegen-dist")
os.makedirs(os.path.join(codegen_root, "codegen-check"), exist_ok=True)
with open(os.path.join(codegen_root, "codegen-check", "cases.json"), "w") as f:
    f.write("[]")
stand_ins = {
    "pass": "print('PASS kernels.sm_90a.cubin add_f32 (k0)')\n"
            "print('PASSED: 0 failures, 250 case runs')\n",
    "fail": "print('PASS kernels.sm_90a.cubin add_f32 (k0)')\n"
            "print('FAIL kernels.compute_90.ptx exp_bf16 (k1)')\n"
            "print('    aligned grid 3: 2 of 1000 differ')\n"
            "print('FAILED: 1 failures, 250 case runs')\n"
            "raise SystemExit(1)\n",
}
for kind, body in stand_ins.items():
    with open(os.path.join(SCRATCH, f"codegen-{kind}.py"), "w") as f:
        f.write("import sys\nassert sys.argv[1].endswith('codegen-check')\n"
                + body)
prepared = {"codegen_check": {"dir": "codegen-check", "cases": 125}}


def codegen_step(index, stand_in="pass", root=codegen_root):
    log = T.Log()
    with contextlib.redirect_stdout(io.StringIO()):
        T.run_codegen_kernels(index, log, root, script=os.path.join(
            SCRATCH, f"codegen-{stand_in}.py"))
    return log


log = codegen_step(prepared)
expect([r["status"] for r in log.results] == ["PASS"] and
       log.results[0]["detail"].startswith("125 cases, exit 0,") and
       log.results[0]["detail"].endswith(
           "PASSED: 0 failures, 250 case runs") and
       not any(line.startswith("    PASS") for line in log.lines),
       "gpu_test: run_codegen_kernels.py passing is one PASS with its summary")
log = codegen_step(prepared, "fail")
expect([r["status"] for r in log.results] == ["FAIL"] and
       "    FAIL kernels.compute_90.ptx exp_bf16 (k1)" in log.lines and
       "        aligned grid 3: 2 of 1000 differ" in log.lines and
       "FAILED: 1 failures" in log.results[0]["detail"] and
       log.results[0]["detail"].endswith(
           "codegen-fail.py " + os.path.join(codegen_root, "codegen-check")),
       "gpu_test: its failures are logged and the step fails with its "
       "command")
expect(codegen_step({}).results[0]["status"] == "FAIL",
       "gpu_test: a dist/gpu without the codegen check fails")
expect(codegen_step({"codegen_check": {"skipped": "--no-codegen-check"}})
       .results[0]["status"] == "SKIP",
       "gpu_test: --no-codegen-check skips the step, saying so")
expect(codegen_step({"codegen_check": {"error": "not built"}})
       .results[0]["detail"] == "not prepared: not built",
       "gpu_test: a failed preparation fails the step with its error")
expect("cases.json is missing" in codegen_step(
           prepared, root=os.path.join(SCRATCH, "no-dist")).results[0]
       ["detail"], "gpu_test: codegen-check missing from dist/gpu fails")
expect(T.CODEGEN_SCRIPT == os.path.join(SRC, "test", "gpu",
                                        "run_codegen_kernels.py") and
       os.path.isfile(T.CODEGEN_SCRIPT),
       "gpu_test runs test/gpu/run_codegen_kernels.py")

import prepare as P  # noqa: E402
entry, err = P.prepare_codegen_check(os.path.join(SCRATCH, "no-tool"),
                                     os.path.join(SCRATCH, "no-tool-dist"))
expect(entry is None and err.endswith("no-tool is not built (it is built "
                                      "with the CUDA toolkit, "
                                      "WEFT_ENABLE_CUDA; --no-codegen-check "
                                      "leaves the codegen kernel check out)"),
       "prepare.py: no weft-codegen-gpu-check is an error naming it")

# run_codegen_kernels.py's comparison (its CUDA part needs a GPU).
sys.path.insert(0, os.path.join(SRC, "test", "gpu"))
import run_codegen_kernels as K  # noqa: E402
f32 = lambda *xs: np.array(xs, np.float32).tobytes()
expect(len(K.compare(f32(1.0, -0.0, np.nan), f32(1.0, -0.0, np.nan), "f32",
                     True)[0]) == 0, "codegen compare: equal bits pass, NaN "
       "matches NaN")
expect(list(K.compare(f32(1.0, 0.0), f32(1.0, -0.0), "f32", True)[0]) == [1],
       "codegen compare: an exact case tells +0 from -0")
expect(list(K.compare(f32(1.0 + 2e-6, 2.0), f32(1.0, 2.0 + 1e-4), "f32",
                      False)[0]) == [1],
       "codegen compare: a transcendental case allows a few ulp, not 5e-5")
bf16 = lambda *xs: (np.array(xs, np.float32).view(np.uint32) >> 16).astype(
    np.uint16).tobytes()
expect(list(K.compare(bf16(1.0, 1.0), bf16(1.0078125, 1.03125), "bf16",
                      False)[0]) == [1],
       "codegen compare: bf16 within one bf16 ulp, not four")
expect(list(K.compare(np.array([0, 2], np.uint8).tobytes(),
                      np.array([0, 1], np.uint8).tobytes(), "bool",
                      True)[0]) == [],
       "codegen compare: any non-zero bool is true")

# --- cases.py ------------------------------------------------------------------
cases = C.test_cases()
names = [c["name"] for c in cases]
expect(len(names) == len(set(names)), f"{len(cases)} test cases, unique names")
expect(all(c["tp"] * c["pp"] <= 4 for c in cases), "every layout fits 4 GPUs")
expect({c["reference"] for c in cases if c["dtype"] == "bf16"} == {"torch"}
       and {c["reference"] for c in cases if c["dtype"] == "f32"} == {"ort"},
       "f32 against onnxruntime, bf16 against torch")
expect({(c["tp"], c["pp"]) for c in cases if c["model"] == "llama1b_bf16"} ==
       {(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)},
       "llama1b_bf16 on 1 GPU, tp2, tp4, pp2, tp2 x pp2")
mutants = [c for c in cases if c.get("mutation")]
sys.path.insert(0, os.path.join(SRC, "test", "e2e"))
import mutate  # noqa: E402
expect(C.MUTATIONS == mutate.MUTATIONS and
       {(c["base"], c["mutation"]) for c in mutants} ==
       {(b[0], m) for b in C.MUTANT_BASES for m in mutate.MUTATIONS},
       f"{len(mutants)} mutant cases: every mutation of mutate.py for each "
       "base")
llama_models = {m[0]: m for m in C.LLAMA}
expect(all(c["base"] in llama_models and c["dtype"] == "bf16" and
           c["reference"] == "torch" and
           c["preset"] == llama_models[c["base"]][1] and
           C.weights_model(c) == c["base"] for c in mutants),
       "each mutant is a bf16 case of a cases.py Llama model, checked "
       "against its base's torch reference with its base's weights")
# A mutant declares its base's parameters at the same offsets: the base's
# model.weights serves it (weft-run --model-dir BASE).
base_inits = F.external_initializers(make("tiny", "bf16"))
for m in C.MUTATIONS:
    graph = make("tiny", "bf16", mutation=m)
    meta = {p.key: p.value for p in graph.metadata_props}
    expect(F.external_initializers(graph) == base_inits and
           meta.get("mutation") == m,
           f"make_llama.py --mutate {m}: the base's parameters and offsets, "
           "metadata 'mutation'")
bench = C.bench_cases()
expect(len(bench) == 12 and {b["tp"] for b in bench} == {1, 2, 4},
       "12 benchmark artifacts: 1b and 8b, batch 1 and 8, tp 1, 2, 4")

# The 8-GPU server's layouts: the 8b model splits every way; each artifact
# is both a test and a benchmark case; bench/prefill.py takes them only with
# --full-node and skips them on fewer GPUs.
full_tests, full_bench = C.full_node_cases()
h, layers, heads, kv_heads, ff, vocab = shapes["8b"]
expect(len(full_tests) == 6 and
       [c["name"] for c in full_tests] == [c["name"] for c in full_bench],
       "6 full-node artifacts (tp8, tp4pp2, tp2pp4 at batch 1 and 8), each a "
       "test and a benchmark case")
expect(all(c["tp"] * c["pp"] == 8 and heads % c["tp"] == 0 and
           kv_heads % c["tp"] == 0 and layers % c["pp"] == 0 and
           c["topology"] == C.FULL_NODE_TOPOLOGY and c["reference"] == "torch"
           for c in full_tests), "each fills 8 GPUs and splits the 8b evenly")
skipped = []
prefill.weft_runs("llama8b_bf16", full_bench, [1, 8], [1, 2, 4], 1, 0, 4,
                  skipped.append)
expect(skipped == [], "bench/prefill.py leaves them out without --full-node")
prefill.weft_runs("llama8b_bf16", full_bench, [1, 8], [1, 2, 4], 1, 0, 4,
                  skipped.append, full_node=True)
expect(len(skipped) == 6 and all("needs 8 GPUs, 4 present" in line
                                 for line in skipped),
       "and skips them on 4 GPUs with --full-node")

# The generation artifacts: the tiny test case, and the benchmark shapes
# at 1 GPU with prompt buckets up to max_seq.
gen = C.generation_cases() + C.generation_cases(bench=True)
expect([c["name"] for c in gen] == ["tiny_bf16.generate",
                                    "llama1b_bf16.generate",
                                    "llama8b_bf16.generate"] and
       all(max(c["prompt_buckets"]) <= c["max_seq"] and c["tp"] == 1
           for c in gen), "3 generation artifacts, buckets within max_seq")
expect([c["prompt_buckets"] for c in C.generation_cases(True, 1024)] ==
       [[128, 512]] * 2, "--gen-max-seq 1024 drops the 2048 bucket")

# gpu-prepare --multi-gpu: the tiny model at every multi-GPU layout, the
# 8b's benchmark and serving artifacts at tp 1, 2 and 4, each dividing the
# heads, kv heads and layers evenly.
multi = C.multi_gpu_cases()
expect([c["name"] for c in multi["generation"]] ==
       [f"tiny_bf16.{x}.generate" for x in C.MULTI] and
       [(c["tp"], c["pp"]) for c in multi["generation"]] ==
       [C.LAYOUTS[x] for x in C.MULTI],
       "--multi-gpu: the tiny generation artifact at tp 2, tp 4, pp 2 and "
       "tp 2 x pp 2")
expect([c["name"] for c in multi["generation_bench"]] ==
       ["llama8b_bf16.generate", "llama8b_bf16.tp2.generate",
        "llama8b_bf16.tp4.generate"] and
       [c["name"] for c in multi["generation_serve"]] ==
       ["llama8b_bf16.serve", "llama8b_bf16.tp2.serve",
        "llama8b_bf16.tp4.serve"] and
       all("prefill_rows" in c for c in multi["generation_serve"]),
       "--multi-gpu: the 8b's benchmark and serving artifacts at tp 1, 2, 4")
tiny_cfg = F.llama_config_of(make("tiny", "bf16"))
for c in multi["generation"] + multi["generation_bench"]:
    cfg_c = tiny_cfg if c["preset"] == "tiny" else cfg8
    expect(cfg_c["num_attention_heads"] % c["tp"] == 0 and
           cfg_c["num_key_value_heads"] % c["tp"] == 0 and
           cfg_c["num_hidden_layers"] % c["pp"] == 0 and
           c["tp"] * c["pp"] <= 4,
           f"{c['name']} splits its model evenly on at most 4 GPUs")
expect(C.gen_name("m") == "m.generate" and
       C.gen_name("m", "tp2", "serve") == "m.tp2.serve" and
       C.layout_name(2, 2) == "tp2pp2",
       "generation artifacts' names: the layout between model and purpose")
expect(C.generation_cases()[0]["name"] == "tiny_bf16.generate",
       "the one-GPU names stay as they were")

# --- fault_check.py ------------------------------------------------------------
err = ("weft: error: rank 3 was killed by signal 9 (Killed)\n"
       "rank 13: unrelated\n")
expect(FC.error_line(err, 3) == "weft: error: rank 3 was killed by signal "
       "9 (Killed)" and FC.error_line(err, 1) is None and
       FC.error_line("weft: error: rank 13: x", 1) is None,
       "fault_check.py finds the error line naming the rank, not rank 13")
expect(abs(FC.engine_seconds([
    {"ttft_ms": 100.0, "ms_per_token": 2.0, "ids": [1] * 11},
    {"ttft_ms": 500.0, "ms_per_token": 1.0, "ids": [1] * 101}]) - 0.6)
       < 1e-9, "the engine's time: the last prompt's ttft and decode")
for argv, message in ((["--layouts", "1gpu"], "not a layout of several"),
                      (["--checks", "kill"], "not one of")):
    expect_refused(FC.main, argv, message, "fault_check.py")

print(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
