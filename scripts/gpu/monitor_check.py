#!/usr/bin/env python3
"""On a GPU host: weft-doctor's table, and weft-serve's per-rank GPU metrics
(NVML) against nvidia-smi, the independent reference.

  monitor_check.py --bin DIR --artifact ART --model-dir DIR

Runs `weft-doctor` and `weft-doctor --json` (GPU rows must be ok, NVML
found); starts `weft-serve ART --backend cuda`, sends requests, reads
/metrics and checks weft:gpu_memory_total_bytes equals nvidia-smi's
memory.total, weft:gpu_memory_used_bytes is within 5% (+256 MiB) of its
memory.used + memory.reserved, the temperature within 3 C, the power draw within 25%, and the
XID counter present. Prints "ok: ..." lines; exits 1 on the first failure.
"""
import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


def smi():
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,memory.total,memory.used,"
         "temperature.gpu,power.draw,memory.reserved",
         "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True).stdout
    i, total, used, temp, power, reserved = [
        x.strip() for x in out.splitlines()[0].split(",")]
    # NVML's used memory counts the driver's reservation, which nvidia-smi
    # shows apart.
    used = float(used) + float(reserved)
    return {"total": float(total) * 2**20, "used": used * 2**20,
            "temp": float(temp), "power": float(power)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--model-dir", required=True)
    a = ap.parse_args()

    r = subprocess.run([a.bin + "/weft-doctor"], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    rows = [json.loads(line) for line in subprocess.run(
        [a.bin + "/weft-doctor", "--json"], capture_output=True,
        text=True).stdout.splitlines()]
    gpus = [x for x in rows if x["check"].startswith("gpu ")]
    if not gpus or any(x["status"] == "FAIL" for x in gpus):
        fail("weft-doctor found no GPU, or a GPU failed: %s" % rows)
    ok("weft-doctor: %d GPU(s), exit %d" % (len(gpus), r.returncode))

    srv = subprocess.Popen(
        [a.bin + "/weft-serve", a.artifact, "--backend", "cuda", "--port", "0",
         "--model-dir", a.model_dir, "--kv-cache-gib", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port, ready, lines = None, threading.Event(), []

    def pump():
        nonlocal port
        for line in srv.stdout:
            lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if "ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(120) or port is None:
        fail("weft-serve did not start:\n" + "".join(lines))
    url = "http://127.0.0.1:%d" % port
    models = json.load(urllib.request.urlopen(url + "/v1/models"))
    for _ in range(8):
        body = json.dumps({"model": models["data"][0]["id"],
                           "prompt": [1, 2, 3, 4], "max_tokens": 16}).encode()
        req = urllib.request.Request(url + "/v1/completions", body,
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
    time.sleep(2.5)  # reports come once a second
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    m = {}
    for line in text.splitlines():
        if line.startswith("weft:gpu_"):
            name, value = line.rsplit(" ", 1)
            m[name.split("{")[0]] = float(value)
            print("  " + line)
    ref = smi()
    srv.terminate()
    srv.wait(60)
    for name in ["weft:gpu_memory_total_bytes", "weft:gpu_memory_used_bytes",
                 "weft:gpu_temperature_celsius", "weft:gpu_power_watts",
                 "weft:gpu_utilization_percent", "weft:gpu_xid_errors_total"]:
        if name not in m:
            fail("no %s in /metrics" % name)
    if m["weft:gpu_memory_total_bytes"] != ref["total"]:
        fail("memory total %s, nvidia-smi %s" % (
            m["weft:gpu_memory_total_bytes"], ref["total"]))
    # Both read while the server holds its memory.
    if abs(m["weft:gpu_memory_used_bytes"] - ref["used"]) > \
            0.05 * ref["used"] + 256 * 2**20:
        fail("memory used %s, nvidia-smi %s" % (
            m["weft:gpu_memory_used_bytes"], ref["used"]))
    if abs(m["weft:gpu_temperature_celsius"] - ref["temp"]) > 3:
        fail("temperature %s, nvidia-smi %s" % (
            m["weft:gpu_temperature_celsius"], ref["temp"]))
    if abs(m["weft:gpu_power_watts"] - ref["power"]) > \
            0.25 * ref["power"] + 20:
        fail("power %s, nvidia-smi %s" % (m["weft:gpu_power_watts"],
                                          ref["power"]))
    ok("weft-serve /metrics GPU metrics agree with nvidia-smi: total %.1f GiB,"
       " used %.2f GiB (smi %.2f), %g C (smi %g), %.0f W (smi %.0f), %d XIDs"
       % (ref["total"] / 2**30, m["weft:gpu_memory_used_bytes"] / 2**30,
          ref["used"] / 2**30, m["weft:gpu_temperature_celsius"], ref["temp"],
          m["weft:gpu_power_watts"], ref["power"],
          m["weft:gpu_xid_errors_total"]))


if __name__ == "__main__":
    main()
