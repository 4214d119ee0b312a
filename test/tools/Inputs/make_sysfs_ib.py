#!/usr/bin/env python3
"""Writes a stand-in for /sys/class/infiniband (for WEFT_SYSFS_ROOT): N
devices mlx5_0.. with one port each, as the kernel lays them out.

  make_sysfs_ib.py ROOT --ports 8 [--rate 400] [--layer InfiniBand]
      [--down mlx5_3] [--xmit WORDS] [--rcv WORDS] [--symbol-errors N]
"""
import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("root")
p.add_argument("--ports", type=int, default=8)
p.add_argument("--rate", type=int, default=400)
p.add_argument("--layer", default="InfiniBand")
p.add_argument("--down", action="append", default=[])
p.add_argument("--xmit", type=int, default=123456789)
p.add_argument("--rcv", type=int, default=987654321)
p.add_argument("--symbol-errors", type=int, default=0)
a = p.parse_args()

for i in range(a.ports):
    dev = "mlx5_%d" % i
    port = os.path.join(a.root, "class", "infiniband", dev, "ports", "1")
    os.makedirs(os.path.join(port, "counters"), exist_ok=True)
    down = dev in a.down
    files = {
        "state": "1: DOWN" if down else "4: ACTIVE",
        "phys_state": "3: Disabled" if down else "5: LinkUp",
        "rate": "%d Gb/sec (4X NDR)" % a.rate,
        "link_layer": a.layer,
        "counters/port_xmit_data": str(a.xmit + i),
        "counters/port_rcv_data": str(a.rcv + i),
        "counters/symbol_error": str(a.symbol_errors),
        "counters/link_downed": "1" if down else "0",
        "counters/port_rcv_errors": "0",
    }
    for name, text in files.items():
        with open(os.path.join(port, name), "w") as f:
            f.write(text + "\n")
