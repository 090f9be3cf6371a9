"""Does ``trainguard run`` hold a chatty child back? The child's own wall time, bare and wrapped.

    .venv/bin/python bench/run_tee.py [--mb 19]

The child writes ``--mb`` MB of metric lines (``step N | loss X | lr Y``) as
fast as it can and reports how long its writes took. The tee copies bytes
before anything is parsed and parsing runs behind a bounded queue, so the
wrapped child should take about as long as the bare one; the table also says
how much output the parser skipped to keep up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
n = int(float(sys.argv[1]) * 1e6 / 40)
out = sys.stdout
t = time.perf_counter()
for i in range(n):
    out.write(f"step {i} | loss {3.0 - i * 1e-7:.6f} | lr 1.0e-03\\n")
out.flush()
open(sys.argv[2], "w").write(f"{time.perf_counter() - t:.3f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=19.0)
    a = ap.parse_args()
    from trainguard.live.guard import Guard
    from trainguard.live.policy import Policy
    from trainguard.live.process import run_command

    with tempfile.TemporaryDirectory() as d:
        child, took = Path(d) / "chatty.py", Path(d) / "took"
        child.write_text(CHILD)
        cmd = [sys.executable, str(child), str(a.mb), str(took)]
        with open(os.devnull, "wb") as null:
            t = time.perf_counter()
            subprocess.run(cmd, stdout=null, check=True)
            bare = (float(took.read_text()), time.perf_counter() - t)
            t = time.perf_counter()
            r = run_command(cmd, Guard(Policy(alert_only=True)), out=null, say=lambda s: None, instrument=False)
            wrapped = (float(took.read_text()), time.perf_counter() - t)
    print(f"{'':34} {'child writes, s':>16} {'wall, s':>8}")
    print(f"{'bare (> /dev/null)':34} {bare[0]:16.2f} {bare[1]:8.2f}")
    print(f"{'trainguard run (tee + live parse)':34} {wrapped[0]:16.2f} {wrapped[1]:8.2f}")
    print(f"{a.mb:g} MB of metric lines; guard.log calls {r.points:,}; parsing skipped "
          f"{r.parse_skipped_bytes / 1e6:.1f} MB to keep up (output passed through whole); exit code {r.exit_code}")


if __name__ == "__main__":
    main()
