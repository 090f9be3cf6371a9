"""Parse speed of HF stdout logs against the Python floor, and peak memory, each in a fresh process.

Writes a tqdm-heavy HF Trainer log (DeepSpeed launcher lines, about 2 KB of
progress-bar redraws per logged point, transformers-5 string-valued dicts, one
eval line every 10 logs, the final summary line) under /tmp, then times, each
as a whole process (start-up included), min of ``--repeat``:

- ``grep -c "'loss'"``: a C scan that parses nothing;
- the Python floor: one compiled regex ``findall`` over an mmap of the file;
- ``read_runs`` (the reader alone), with its point count;
- ``trainguard analyze --json`` (``python -m trainguard.cli``), and the same
  with ``TRAINGUARD_NO_PREFETCH=1`` (the log read by the main thread alone,
  after the imports, instead of on the other core during them).

The rows are run in turn, ``--repeat`` rounds, so that a slow spell of a
shared machine hits every row alike. The ratio column is against the floor
measured in the same run (issue 14's target: ``analyze --json`` within 2x). Peak RSS is the process's own
(``ru_maxrss`` of that child). ``--rss-mb 1024`` adds the 1 GB log, timed once,
for the memory target (<= 150 MB). ``--src DIR`` times another checkout's
``src`` (a before/after comparison in one run). Logs are deleted afterwards.

    .venv/bin/python bench/parse_speed.py                     # 200 MB
    .venv/bin/python bench/parse_speed.py --rss-mb 1024       # + the 1 GB memory check
    .venv/bin/python bench/parse_speed.py --src /tmp/old/src  # another tree, same log
"""

from __future__ import annotations

import argparse
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


_FLOOR = r"""
import mmap, re, sys
rx = re.compile(rb"\{'[^{}\n]*\}")
with open(sys.argv[1], "rb") as f:
    print(len(rx.findall(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))))
"""

_READ = r"""
import sys
from trainguard.readers import read_runs
runs = read_runs(sys.argv[1])
print(sum(r.history.total_points() for r in runs), len(runs[0].history["train_loss"]))
"""


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MB, exit code, last output line) of one child process, reaped with wait4 for its own RSS."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _pid, status, ru = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
    return dt, ru.ru_maxrss / 1024, proc.returncode, (lines or [""])[-1][:60]


def _measure(log: Path, src: Path, repeat: int, *, analyze: bool = True) -> list[tuple[str, float, float, str]]:
    """Each row's fastest of ``repeat`` runs, the rows taken in turn (a slow spell of a shared machine hits them all)."""
    # bytecode caching on, as for an installed package (see bench/startup.py)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TRAINGUARD_NO_PREFETCH")}
    env["PYTHONPATH"] = str(src)
    cmds: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("grep -c \"'loss'\"", ["grep", "-c", "'loss'", str(log)], None),
        ("Python floor (mmap + findall)", [PY, "-c", _FLOOR, str(log)], None),
        ("read_runs (reader alone)", [PY, "-c", _READ, str(log)], env),
    ]
    if analyze:
        cmd = [PY, "-m", "trainguard.cli", "analyze", str(log), "--json"]
        cmds.append(("trainguard analyze --json", cmd, env))
        cmds.append(("  the same, read-ahead off", cmd, {**env, "TRAINGUARD_NO_PREFETCH": "1"}))
    runs: list[list[tuple[float, float, int, str]]] = [[] for _ in cmds]
    for _ in range(repeat):
        for k, (_name, cmd, e) in enumerate(cmds):
            runs[k].append(_run(cmd, e))
    rows = []
    for (name, _cmd, _e), got in zip(cmds, runs, strict=True):
        dt, _rss, rc, out = min(got, key=lambda r: r[0])
        rss = max(r[1] for r in got)
        if name.startswith("grep"):
            note = f"{out} lines"
        elif name.startswith("Python floor"):
            note = f"{out} dicts"
        elif name.startswith("read_runs"):
            pts = out.split()
            note = f"{pts[0]} points, {pts[1]} train" if rc == 0 and len(pts) == 2 else f"exit {rc}: {out}"
        else:
            note = f"exit {rc}"
        rows.append((name, dt, rss, note))
    return rows


def _table(title: str, size: int, rows: list[tuple[str, float, float, str]]) -> None:
    floor = next(s for name, s, _, _ in rows if name.startswith("Python floor"))
    print(f"\n{title}")
    print(f"{'what':32s} {'seconds':>8s} {'MB/s':>7s} {'x floor':>8s} {'peak RSS MB':>12s}  note")
    for name, s, rss, note in rows:
        print(f"{name:32s} {s:8.2f} {size / 2**20 / s:7.0f} {s / floor:8.2f} {rss:12.0f}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--rss-mb", type=float, default=0, help="also read a log of this size once, for peak RSS (e.g. 1024)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per row; the fastest is shown")
    ap.add_argument("--src", type=Path, action="append", default=[], help="a src/ folder to time (repeatable); default: this checkout")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()), help="where the logs are written (never the repo)")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs (paths printed)")
    args = ap.parse_args()
    srcs = args.src or [ROOT / "src"]
    tmp = Path(tempfile.mkdtemp(prefix="trainguard-bench-", dir=args.tmp))
    try:
        log = tmp / "train.log"
        t = time.perf_counter()
        n = write_log(log, args.size_mb)
        size = log.stat().st_size
        print(f"wrote {size / 2**20:.0f} MB, {n} train points, {n // 10} eval points in {time.perf_counter() - t:.1f}s: {log}")
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=False)  # warm the page cache
        for src in srcs:
            _table(f"{size / 2**20:.0f} MB log, src = {src} (min of {args.repeat})", size, _measure(log, src, args.repeat))
        if args.rss_mb:
            log.unlink()
            big = tmp / "big.log"
            n = write_log(big, args.rss_mb)
            size = big.stat().st_size
            subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=False)
            for src in srcs:
                _table(f"{size / 2**20:.0f} MB log, src = {src} (once; target peak RSS <= 150 MB)", size, _measure(big, src, 1))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
