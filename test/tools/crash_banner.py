"""Starts `weft-serve ARTIFACT --port 0`, waits until it is ready, sends it
SIGSEGV (as a crash would raise) and prints its exit status and stderr."""
import signal
import subprocess
import sys

proc = subprocess.Popen([sys.argv[1], sys.argv[2], "--port", "0"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
for line in proc.stdout:
    if "ready" in line:
        break
proc.send_signal(signal.SIGSEGV)
_, err = proc.communicate(timeout=60)
print("exit", proc.returncode)
sys.stdout.write(err)
