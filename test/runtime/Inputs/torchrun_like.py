#!/usr/bin/env python3
"""Starts N copies of a command as a torchrun-style launcher would: each
with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1
and a free MASTER_PORT; rank N-1 first, so the others must wait for rank 0.

  torchrun_like.py N COMMAND...   exits with the first non-zero status
"""
import os
import socket
import subprocess
import sys
import time


def main():
    n, cmd = int(sys.argv[1]), sys.argv[2:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for r in reversed(range(n)):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(n),
                   LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(n),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(cmd, env=env))
        time.sleep(0.2)
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main())
