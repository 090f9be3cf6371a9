"""Runs per second of ``trainguard scan`` by worker count, over ../shared/realruns (copied N times).

    .venv/bin/python bench/scan.py [--copies 3] [--jobs 1 2] [--html]

Each row is a cold scan (no cache) of the same tree through the library
entry point (``trainguard.scan.scan``), timed with the wall clock; the
last row is a warm rescan (cache hits only). The tree is the real runs
copied ``--copies`` times into a temp folder, so there are enough runs to
spread across workers. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REALRUNS = Path(os.environ.get("TRAINGUARD_REALRUNS", ROOT.parent / "shared" / "realruns" / "runs"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--html", action="store_true", help="also write the index and one HTML report per run")
    a = ap.parse_args()
    if not REALRUNS.is_dir():
        print(f"real runs not found at {REALRUNS}; set TRAINGUARD_REALRUNS")
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from trainguard.scan import scan

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        for i in range(a.copies):
            shutil.copytree(REALRUNS, tree / f"copy{i}")
        print(f"tree: {a.copies} copies of {REALRUNS} ({os.cpu_count()} CPUs visible)")
        print(f"{'jobs':>6} {'runs':>6} {'skipped':>8} {'seconds':>9} {'runs/s':>8} {'speed-up':>9}")
        base = None
        for jobs in a.jobs:
            html = Path(tmp) / f"site{jobs}" if a.html else None
            t0 = time.perf_counter()
            res = scan([str(tree)], jobs=jobs, html_dir=html, cache_dir=None)
            dt = time.perf_counter() - t0
            rate = len(res.runs) / dt
            base = base or rate or 1.0
            print(f"{jobs:>6} {len(res.runs):>6} {len(res.skipped):>8} {dt:>9.2f} {rate:>8.1f} {rate / base:>8.2f}x")
        cache = Path(tmp) / "cache"
        scan([str(tree)], jobs=max(a.jobs), cache_dir=cache)
        t0 = time.perf_counter()
        res = scan([str(tree)], jobs=max(a.jobs), cache_dir=cache)
        dt = time.perf_counter() - t0
        print(f"{'warm':>6} {len(res.runs):>6} {len(res.skipped):>8} {dt:>9.2f} {len(res.runs) / dt:>8.1f}   (cache: {res.cached} hits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
