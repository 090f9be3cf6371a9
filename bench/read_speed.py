"""Reading speed: our TensorBoard decoder vs tbparse and EventAccumulator; text/CSV readers vs ``grep -c``.

Usage: ``.venv/bin/python bench/read_speed.py [--scalars 1000000] [--text-mb 50]``

The event file is written by a hand-built TFRecord writer (real CRCs, the
same bytes ``SummaryWriter.add_scalar`` produces: tag + simple_value) because
SummaryWriter itself takes ~6 s per 100k scalars; tbparse reading it back
with the same count is the check that the bytes are right. Targets (issue 14):
TensorBoard >= 20x the faster of tbparse / EventAccumulator; free text
>= 60 MB/s; CSV >= 150 MB/s (``grep -c`` on the same file is printed beside).
Our readers are timed min of 3 (a shared machine's slow spell is not their
speed); tbparse and EventAccumulator once, as they take seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from trainguard.readers import table, tensorboard, text
from trainguard.readers._tfrecord import frame

TAGS = (b"train/loss", b"train/learning_rate", b"train/grad_norm", b"eval/loss")


def _varint(x: int) -> bytes:
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _event(tag: bytes, step: int, wall: float, value: float) -> bytes:
    val = b"\x0a" + _varint(len(tag)) + tag + b"\x15" + struct.pack("<f", value)
    summ = b"\x0a" + _varint(len(val)) + val
    return b"\x09" + struct.pack("<d", wall) + b"\x10" + _varint(step) + b"\x2a" + _varint(len(summ)) + summ


def write_events(path: Path, n: int) -> None:
    """An event file with ``n`` scalars over 4 tags, as SummaryWriter.add_scalar would write them."""
    with open(path, "wb") as f:
        f.write(frame(b"\x09" + struct.pack("<d", 1.7e9) + b"\x1a\x0dbrain.Event:2"))
        buf = []
        for i in range(n):
            buf.append(frame(_event(TAGS[i % 4], i // 4, 1.7e9 + i * 0.01, math.sin(i / 100))))
            if len(buf) >= 100_000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))


def write_text_logs(folder: Path, mb: float) -> tuple[Path, Path]:
    """A build-nanogpt style log and the same numbers as CSV, each about ``mb`` MB."""
    line = "step {s} | loss: {l:.4f} | lr {lr:.4e} | norm: {n:.4f} | dt: {dt:.2f}ms | tok/sec: {t:.2f}\n"
    log, csv = folder / "train.log", folder / "metrics.csv"
    n = int(mb * 1e6 / len(line.format(s=100000, l=1, lr=1, n=1, dt=1, t=1)))
    with open(log, "w") as f, open(csv, "w") as g:
        g.write("step,loss,lr,grad_norm,dt,tok_per_sec\n")
        for s in range(n):
            v = (s, 3 + math.sin(s), 1e-3, 0.5 + math.cos(s) / 4, 100.5, 6900.25)
            f.write(line.format(s=v[0], l=v[1], lr=v[2], n=v[3], dt=v[4], t=v[5]))
            g.write(f"{v[0]},{v[1]:.4f},{v[2]:.4e},{v[3]:.4f},{v[4]:.2f},{v[5]:.2f}\n")
    return log, csv


def _time(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _grep(path: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["grep", "-c", "loss", str(path)], check=False, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalars", type=int, default=1_000_000)
    ap.add_argument("--text-mb", type=float, default=50.0)
    ap.add_argument("--skip-libs", action="store_true", help="do not time tbparse / EventAccumulator")
    ap.add_argument("--formats-mb", type=float, default=10.0, help="size of each issue-11 format log")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        d = Path(tmp)
        (d / "run").mkdir()
        ev = d / "run" / "events.out.tfevents.1700000000.bench"
        dt_w, _ = _time(lambda: write_events(ev, a.scalars))
        print(f"wrote {a.scalars:,} scalars ({ev.stat().st_size / 1e6:.1f} MB) in {dt_w:.1f} s\n")
        rows: list[tuple[str, float, int]] = []
        t_ours, run = min((_time(lambda: tensorboard.read(ev)) for _ in range(3)), key=lambda x: x[0])  # min of 3
        got = sum(len(s) for s in run.history.values())
        rows.append(("trainguard tensorboard", t_ours, got))
        if not a.skip_libs:
            from tbparse import SummaryReader

            t, df = _time(lambda: SummaryReader(str(d / "run")).scalars)
            rows.append(("tbparse", t, len(df)))
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            def ea() -> int:
                acc = EventAccumulator(str(ev), size_guidance={"scalars": 0})
                acc.Reload()
                return sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"])

            t, n = _time(ea)
            rows.append(("EventAccumulator(scalars=0)", t, n))
        print(f"{'TensorBoard reader':30} {'seconds':>9} {'scalars':>10} {'scalars/s':>12} {'vs ours':>8}")
        for name, t, n in rows:
            print(f"{name:30} {t:9.2f} {n:10,} {n / t:12,.0f} {t / t_ours:7.1f}x")
        if len(rows) > 1:
            best = min(t for _, t, _ in rows[1:])
            print(f"speed-up over the faster library: {best / t_ours:.1f}x (target >= 20x)")
            if any(n != got for _, _, n in rows):
                print("WARNING: readers disagree on the scalar count")
        log, csv = write_text_logs(d, a.text_mb)
        print(f"\n{'line reader':30} {'MB':>7} {'seconds':>9} {'MB/s':>9} {'grep -c MB/s':>13} {'slower':>7}")
        targets = {"text (free-text)": 60, "table (CSV)": 150}
        for name, path, fn in (("text (free-text)", log, text.read), ("table (CSV)", csv, table.read)):
            mb = path.stat().st_size / 1e6
            t, r = min((_time(lambda fn=fn, path=path: fn(path)) for _ in range(3)), key=lambda x: x[0])  # min of 3
            tg = min(_grep(path) for _ in range(3))
            print(f"{name:30} {mb:7.1f} {t:9.2f} {mb / t:9.1f} {mb / tg:13.1f} {t / tg:6.1f}x  ({len(r.train_loss):,} points; "
                  f"target >= {targets[name]} MB/s)")
        format_rows(d, a.formats_mb)


def _format_logs(folder: Path, mb: float) -> list[tuple[str, Path]]:
    """One log per text format added in issue 11, each about ``mb`` MB, shaped like the real thing."""
    shapes = {
        "keras_stdout": ("Epoch {i}/{n}\n25/25 - 2s 41ms/step - accuracy: 0.4100 - loss: {l:.4f} - val_accuracy: 0.5200 - val_loss: {v:.4f}\n"),
        "multiline": "Epoch: {i}\nTraining loss: {l:.4f}\nValidation loss: {v:.4f}\nValidation f1: 0.7190\n-----------------------------------\n",
        "megatron": (" iteration {i:8d}/{n:8d} | consumed samples: {i:12d} | elapsed time per iteration (ms): 512.1 | learning rate: 3.000000E-04 |"
                     " global batch size:   128 | lm loss: {l:.6E} | loss scale: 1.0 | grad norm: 1.234 | number of skipped iterations:   0 |"
                     " number of nan iterations:   0 |\n"),
        "coqui": ("   --> TIME: 2023-01-04 10:00:30 -- STEP: 25/406 -- GLOBAL_STEP: {i}\n     | > loss: {l:.5f}  (3.62018)\n"
                  "     | > grad_norm: 5.60123  (6.01012)\n     | > current_lr: 2.5e-07 \n     | > step_time: 0.3101  (0.42012)\n"),
        "wandb_export": '"{i}","{l:.6f}","{l:.6f}","{v:.6f}"\n',
    }
    heads = {"wandb_export": '"Step","run-1 - train/loss","run-1 - train/loss__MIN","run-1 - train/loss__MAX"\n'}
    out = []
    for name, shape in shapes.items():
        one = len(shape.format(i=100000, n=100000, l=1.0, v=1.0))
        n = max(10, int(mb * 1e6 / one))
        p = folder / f"{name}.{'csv' if name == 'wandb_export' else 'log'}"
        with open(p, "w") as f:
            f.write(heads.get(name, ""))
            f.writelines(shape.format(i=i + 1, n=n, l=3 + math.sin(i), v=3 + math.cos(i)) for i in range(n))
        out.append((name, p))
    rows = [{"step": i, "train_loss": 3 + math.sin(i), "val_loss": 3 + math.cos(i)} for i in range(max(10, int(mb * 1e6 / 70)))]
    p = folder / "metrics.json"
    p.write_text(json.dumps({"run_name": "bench", "metrics": rows}))
    out.append(("json_metrics", p))
    return out


def format_rows(folder: Path, mb: float) -> None:
    """A row per text format added in issue 11: the reader picked with no flags, MB/s, and grep -c for scale."""
    from trainguard.readers import read_runs

    print(f"\n{'format (no flags)':30} {'MB':>7} {'seconds':>9} {'MB/s':>9} {'grep -c MB/s':>13} {'slower':>7}")
    for name, path in _format_logs(folder, mb):
        size = path.stat().st_size / 1e6
        t, runs = _time(lambda path=path: read_runs(path))
        tg = min(_grep(path) for _ in range(3))
        picked = runs[0].format if runs else "-"
        flag = "" if picked == name else f"  (read as {picked}!)"
        print(f"{name:30} {size:7.1f} {t:9.2f} {size / t:9.1f} {size / tg:13.1f} {t / tg:6.1f}x  "
              f"({sum(len(r.train_loss) for r in runs):,} points){flag}")


if __name__ == "__main__":
    main()
