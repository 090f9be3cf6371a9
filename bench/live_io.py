"""What the process-level live guard costs: tee + live parse throughput, and the per-step hooks.

    .venv/bin/python bench/live_io.py [--mb 10]

Rows:
- ``cat`` alone vs ``trainguard run -- cat`` (library call, output to
  /dev/null) over a file of genuine HF Trainer stdout repeated to ``--mb``
  MB: what wrapping a command costs in bandwidth (a real trainer writes a
  few KB/s, so anything above ~10 MB/s is free in practice);
- ``LineFeed`` alone (sniff, HF reader, grouping, Guard) in MB/s and
  points/s;
- ``ResourceMonitor.on_step`` and ``Notifier.send`` in microseconds per
  call (both run on the training thread).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "tests" / "live" / "data" / "hf_overfit_stdout.log"


def _best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=10.0)
    a = ap.parse_args()
    from trainguard.live.feed import LineFeed
    from trainguard.live.guard import Guard
    from trainguard.live.notify import Notifier
    from trainguard.live.policy import Policy
    from trainguard.live.process import run_command
    from trainguard.live.resources import ResourceMonitor

    log = LOG.read_bytes()
    reps = max(1, int(a.mb * 1e6 / len(log)))
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as f:
        for _ in range(reps):
            f.write(log)
        big = f.name
    size_mb = os.path.getsize(big) / 1e6
    rows: list[tuple[str, str]] = []
    try:
        with open(os.devnull, "wb") as null:
            t_cat = _best(lambda: subprocess.run(["cat", big], stdout=null, check=True))
            rows.append(("cat alone", f"{size_mb / t_cat:,.0f} MB/s"))
            guard_holder: list[Guard] = []

            def wrapped() -> None:
                g = Guard(Policy(alert_only=True))
                guard_holder.append(g)
                run_command(["cat", big], g, out=null, say=lambda s: None)

            t_run = _best(wrapped, repeat=1)
            rows.append(("trainguard run -- cat (tee + live parse)",
                         f"{size_mb / t_run:,.1f} MB/s ({guard_holder[-1].points:,} guard.log calls)"))

        text = log.decode("utf-8")
        feed_reps = max(1, int(5e6 / len(text)))

        def feed_only() -> None:
            g = Guard(Policy(alert_only=True))
            lf = LineFeed(g)
            for _ in range(feed_reps):
                for i in range(0, len(text), 65536):
                    lf.feed(text[i:i + 65536])
            lf.close()
            guard_holder.append(g)

        t_feed = _best(feed_only, repeat=1)
        pts = guard_holder[-1].run.history.total_points()
        rows.append(("LineFeed (HF reader + Guard)",
                     f"{len(text) * feed_reps / 1e6 / t_feed:,.1f} MB/s, {pts / t_feed:,.0f} points/s"))

        mon = ResourceMonitor(Guard(), min_interval_s=1.0)
        n = 200_000
        t = time.perf_counter()
        for s in range(1, n + 1):
            mon.on_step(s)
        rows.append(("ResourceMonitor.on_step", f"{(time.perf_counter() - t) / n * 1e6:.2f} µs/call"))

        notifier = Notifier(["json://127.0.0.1:9/x"], backend=lambda *_: True)
        n = 20_000
        t = time.perf_counter()
        for i in range(n):
            notifier.send(f"alert {i % 7}", "body", "warning")
        rows.append(("Notifier.send (deduped/limited, fake backend)",
                     f"{(time.perf_counter() - t) / n * 1e6:.2f} µs/call"))
        notifier.close()
    finally:
        os.unlink(big)

    w = max(len(r[0]) for r in rows)
    print(f"live I/O bench: {size_mb:.1f} MB of genuine HF stdout ({reps} copies), python {sys.version.split()[0]}")
    print(f"{'what':<{w}}  result")
    print("-" * (w + 40))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
