"""Parse speed of HF stdout logs: trainguard against ``grep -c "'loss'"`` on the same file, same run.

Writes a tqdm-heavy HF Trainer log (DeepSpeed launcher lines, about 2 KB of
progress-bar redraws per logged point, transformers-5 string-valued dicts, one
eval line every 10 logs, the final summary line) into a temp dir, then times,
each in a fresh process so peak RSS is its own:

- ``grep -c "'loss'"`` (the floor: a C scan that parses nothing);
- ``trainguard.readers.read_run`` (the reader alone);
- ``trainguard analyze --json`` when the CLI implements it, else
  ``read_run`` + ``trainguard.analyze(run)``.

Memory should be bounded by the number of points, not the file size: compare
the RSS column across ``--size-mb`` values. The file is deleted afterwards.

    .venv/bin/python bench/parse_speed.py            # 1 GB
    .venv/bin/python bench/parse_speed.py --size-mb 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

_LAUNCHER = (
    "[2025-12-06 14:56:52,123] [INFO] [runner.py:607:main] cmd = /usr/bin/python3 -u -m deepspeed.launcher.launch "
    "--world_info=eyJsb2NhbGhvc3QiOiBbMF19 --master_addr=127.0.0.1 --master_port=29500 Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100\n"
    "[2025-12-06 14:56:54,001] [INFO] [launch.py:164:main] dist_world_size=8\n"
    "[2025-12-06 14:56:54,001] [INFO] [launch.py:168:main] Setting CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7\n"
)


def write_log(path: Path, size_mb: float, *, seed: int = 0, logging_steps: int = 10, width: int = 120) -> int:
    """Write the synthetic log; returns the number of train points written."""
    rng = random.Random(seed)
    target = int(size_mb * 1024 * 1024)
    n_points = max(10, target // 2300)
    total = n_points * logging_steps
    spe = max(1, total // 3)
    pad = " " * (width - 60)
    k = step = written = 0
    loss = 5.0
    with open(path, "wb", buffering=1 << 20) as f:
        head = _LAUNCHER + f"\r  0%|          | 0/{total} [00:00<?, ?it/s]"
        f.write(head.encode())
        written += len(head)
        while written < target:
            parts = []
            for j in range(14):  # ~14 redraws x ~150 B: about 2 KB of bar per logged point
                s = step + (j * logging_steps) // 14
                pct = 100 * s // total
                parts.append(f"\r{pct:3d}%|{'#' * (pct // 10):<10}{pad}| {s}/{total} [01:{j:02d}<10:00, {rng.uniform(1, 9):.2f}it/s]")
            step += logging_steps
            k += 1
            loss *= 0.9999
            pct = 100 * step // total
            bar = f"\r{pct:3d}%|{'#' * (pct // 10):<10}{pad}| {step}/{total} [01:00<10:00, 5.00it/s]"
            parts.append("\r" + " " * width + "\r")
            parts.append(f"{{'loss': '{loss:.4g}', 'grad_norm': '{rng.uniform(0.5, 2):.4g}', 'learning_rate': '0.0001', 'epoch': '{step / spe:.4g}'}}\n")
            parts.append(bar)
            if k % 10 == 0:
                for e in range(3):
                    parts.append(f"\n\r {e * 50:2d}%|          | {e}/2 [00:00<?, ?it/s]\x1b[A")
                parts.append("\r" + " " * 40 + "\r\x1b[A")
                parts.append(f"{{'eval_loss': '{loss * 1.1:.4g}', 'eval_runtime': '0.02', 'eval_samples_per_second': '1555', "
                             f"'eval_steps_per_second': '97.18', 'epoch': '{step / spe:.4g}'}}\n")
                parts.append(bar)
            b = "".join(parts).encode()
            f.write(b)
            written += len(b)
        f.write(f"\r{{'train_runtime': '1000', 'train_samples_per_second': '9.9', 'train_steps_per_second': '1.1', "
                f"'train_loss': '2.5', 'epoch': '{step / spe:.4g}'}}\n".encode())
    return k


_CHILD = r"""
import resource, sys, time, json
t = time.perf_counter()
import trainguard
from trainguard.readers import read_runs
mode, path = sys.argv[1], sys.argv[2]
runs = read_runs(path)
pts = sum(r.history.total_points() for r in runs)
tl = len(runs[0].train_loss)
if mode == "analyze":
    trainguard.analyze(runs[0])
print(json.dumps({"s": time.perf_counter() - t, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "points": pts, "train": tl}))
"""


def _child(mode: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([PY, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli_ready() -> bool:
    exe = shutil.which("trainguard", path=str(Path(PY).parent)) or shutil.which("trainguard")
    if not exe:
        return False
    src = (ROOT / "src" / "trainguard" / "commands" / "analyze.py").read_text()
    return "NotImplementedError" not in src


def _time_cmd(cmd: list[str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    ru = os.wait4 if False else None  # noqa: F841 - RSS of a finished child comes from RUSAGE_CHILDREN below
    return dt, out.returncode, out.stdout.strip()[:40]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1024)
    ap.add_argument("--keep", action="store_true", help="keep the generated log (printed path)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainguard-bench-"))
    log = tmp / "train.log"
    try:
        t = time.perf_counter()
        n = write_log(log, args.size_mb)
        size = log.stat().st_size
        print(f"wrote {size / 2**20:.0f} MB, {n} train points, {n // 10} eval points in {time.perf_counter() - t:.1f}s: {log}")
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=False)  # warm the page cache for everyone
        rows = []
        import resource

        grep_s = []
        for _ in range(3):
            dt, _rc, out = _time_cmd(["grep", "-c", "'loss'", str(log)])
            grep_s.append(dt)
        g = min(grep_s)
        rows.append(("grep -c \"'loss'\"", g, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, out))
        r = _child("read", log)
        rows.append(("read_runs (reader)", r.get("s"), r.get("rss"), r.get("error") or f"{r['train']} train pts, {r['points']} total"))
        if _cli_ready():
            exe = shutil.which("trainguard", path=str(Path(PY).parent)) or "trainguard"
            dt, rc, _out = _time_cmd([exe, "analyze", str(log), "--json"])
            rows.append(("trainguard analyze --json", dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, f"exit {rc}"))
        else:
            a = _child("analyze", log)
            rows.append(("read_runs + analyze()", a.get("s"), a.get("rss"), a.get("error") or "CLI analyze not implemented yet"))
        print(f"\n{'what':28s} {'seconds':>8s} {'MB/s':>8s} {'x grep':>7s} {'peak RSS MB':>12s}  note")
        for name, s, rss, note in rows:
            if s is None:
                print(f"{name:28s} {'-':>8s} {'-':>8s} {'-':>7s} {'-':>12s}  {note}")
                continue
            print(f"{name:28s} {s:8.2f} {size / 2**20 / s:8.0f} {s / g:7.1f} {(rss or 0) / 1024:12.0f}  {note}")
        print("\n(peak RSS of grep and the CLI row is the max over child processes so far; the reader rows are their own process)")
    finally:
        if args.keep:
            print(f"kept {log}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
