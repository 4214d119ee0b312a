#!/usr/bin/env python3
"""weft serve's per-rank hardware metrics from a stand-in
/sys/class/infiniband (WEFT_SYSFS_ROOT, made by make_sysfs_ib.py): each
host's first rank reports its host's ports, through rank 0's /metrics.

  serve_monitor.py --weft weft --artifact ART --sysfs ROOT [--nproc N --nodes M]

Expects port_xmit_data and port_rcv_data x 4 as bytes, the error counters,
ib_port_active, and no GPU metric for CPU ranks.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_check  # noqa: E402
from serve_check import fail, ok  # noqa: E402


def get(m, name, labels):
    """The value of NAME whose labels end with LABELS (after the common
    model_name), or None."""
    for key, v in m.items():
        if key.startswith(name + "{") and key.endswith("," + labels + "}"):
            return v
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--sysfs", required=True)
    ap.add_argument("--nproc", type=int)
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--hosts", type=int, default=1,
                    help="hosts whose first rank reports the ports")
    args = ap.parse_args()
    args.mpirun = None
    os.environ["WEFT_SYSFS_ROOT"] = args.sysfs
    srv = serve_check.Server(args)
    model = srv.client.models.list().data[0].id
    srv.client.completions.create(model=model, prompt=[1, 2, 3], max_tokens=4)
    # Reports arrive once a second.
    deadline = time.time() + 30
    while True:
        m = srv.metrics()
        ranks = {k.split('rank="')[1].split('"')[0] for k in m
                 if k.startswith("weft:ib_transmit_bytes_total{")}
        if len(ranks) >= args.hosts or time.time() > deadline:
            break
        time.sleep(0.5)
    if len(ranks) != args.hosts:
        fail("ports reported by ranks %s, expected %d hosts' first ranks"
             % (sorted(ranks), args.hosts))
    for r in sorted(ranks):
        for i in range(8):
            labels = 'rank="%s",device="mlx5_%d",port="1"' % (r, i)
            sent = get(m, "weft:ib_transmit_bytes_total", labels)
            got = get(m, "weft:ib_receive_bytes_total", labels)
            if sent != 4 * (123456789 + i) or got != 4 * (987654321 + i):
                fail("rank %s mlx5_%d: sent %s received %s bytes" % (
                    r, i, sent, got))
            active = get(m, "weft:ib_port_active", labels)
            if active != (0 if i == 3 else 1):
                fail("rank %s mlx5_%d: ib_port_active %s" % (r, i, active))
            downed = get(m, "weft:ib_errors_total",
                         labels + ',counter="link_downed"')
            if downed != (1 if i == 3 else 0):
                fail("rank %s mlx5_%d: link_downed %s" % (r, i, downed))
    if any(k.startswith("weft:gpu_") for k in m):
        fail("GPU metrics from CPU ranks")
    ok("/metrics: 8 InfiniBand ports of %d host(s) (ranks %s), bytes = "
       "4 x port_xmit_data/port_rcv_data, mlx5_3 down; no GPU metrics"
       % (args.hosts, ", ".join(sorted(ranks))))
    srv.stop()


if __name__ == "__main__":
    main()
