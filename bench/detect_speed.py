"""Time every detector on a synthetic History of ~1M points (train loss, grad norm, LR, eval), printing a table.

Run: ``.venv/bin/python bench/detect_speed.py [points]``. The detectors must stay
roughly O(n) / O(n log n): doubling the points should about double the time.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from trainguard.detectors import modules, run_all
from trainguard.run import History, Run, Series


def make_run(n: int, seed: int = 0) -> Run:
    """A long noisy fine-tune: warm-up + cosine LR, decaying loss with spikes, grad norm, one eval per 1000 steps."""
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1, dtype=np.int64)
    t = steps / n
    loss = 2.5 * np.exp(-5 * t) + 0.8 + rng.normal(0, 0.05, n)
    loss[rng.integers(0, n, 50)] *= 4  # spikes
    warm = max(1, n // 50)
    lr = np.where(steps < warm, 3e-4 * steps / warm, 3e-4 * 0.5 * (1 + np.cos(np.pi * (steps - warm) / (n - warm))))
    gn = 1.5 * np.exp(-t) + rng.gamma(2, 0.1, n)
    es = steps[::1000]
    ev = 1.2 + 2.0 * np.exp(-5 * es / n) + 0.3 * np.maximum(0, es / n - 0.6) + rng.normal(0, 0.01, len(es))
    h = History({
        "train_loss": Series(steps, loss),
        "learning_rate": Series(steps, lr),
        "grad_norm": Series(steps, gn),
        "eval_loss": Series(es, ev),
        "step_time": Series(steps, 0.5 + rng.normal(0, 0.01, n)),
    })
    run = Run(name="bench", format="synthetic", history=h, planned_steps=n, steps_per_epoch=n / 3)
    run.config.set("lr_scheduler_type", "cosine", "bench")
    return run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = []
    for size in (n // 2, n):
        run = make_run(size)
        pts = run.history.total_points()
        per = []
        for m in modules():
            t0 = time.perf_counter()
            m.detect(run)
            per.append((m.__name__.rsplit(".", 1)[-1], time.perf_counter() - t0))
        t0 = time.perf_counter()
        found = run_all(run)
        total = time.perf_counter() - t0
        rows.append((size, pts, total, per, len(found)))
    print(f"{'train points':>12} {'all points':>11} {'run_all s':>10} {'findings':>9}")
    for size, pts, total, _, nf in rows:
        print(f"{size:>12,} {pts:>11,} {total:>10.3f} {nf:>9}")
    print(f"\nper detector at {rows[-1][0]:,} train points (s):")
    for name, sec in sorted(rows[-1][3], key=lambda r: -r[1]):
        print(f"  {name:<16} {sec:8.3f}")
    print(f"\nscaling x2 points -> x{rows[1][2] / rows[0][2]:.2f} time")


if __name__ == "__main__":
    main()
