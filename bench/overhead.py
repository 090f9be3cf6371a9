"""What does the guard cost? Per logged point, and as a share of a tiny GPT-2's step time.

Run: ``.venv/bin/python bench/overhead.py`` (``--points N``, ``--steps N``).
Targets: under 50 µs per logged point, under 1% of step time. Also prints the
stopping table of ``bench/stopping.py`` (regret / compute saved).

1. Replays N points (train loss, lr, grad norm every step, eval every 50)
   through ``Guard.log`` with the real detectors on their amortised schedule,
   and again with the detectors off: mean µs per point, and the mean over the
   last 10% (to show the cost does not grow with the history).
2. Trains the tiny GPT-2 (HF Trainer, CPU, logging every step, the worst case)
   with and without ``TrainguardCallback`` (alert-only, no extra saves, so
   both run the same steps): the time spent inside the callback's hooks over
   the step time, measured directly (robust on a shared CPU), and the wall
   difference between the two runs (noisy on a shared CPU; printed for honesty).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from trainguard.live.guard import Guard  # noqa: E402
from trainguard.live.policy import Policy  # noqa: E402


def per_point(n: int, detectors: bool) -> tuple[float, float]:
    """(mean µs per point, mean µs per point over the last 10%)."""
    g = Guard(Policy.alert_only(), detect_min_gap=200 if detectors else 10**12)
    times = []
    t_all = time.perf_counter()
    for i in range(1, n + 1):
        loss = 3.0 / (1 + i / 500) + 0.05 * ((i * 7919) % 13) / 13
        t0 = time.perf_counter()
        g.log(i, train_loss=loss, lr=3e-4, grad_norm=1.0)
        if i % 50 == 0:
            g.log(i, eval_loss=loss * 1.1 + (i / n) ** 2)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    pts = g.points
    tail = times[-n // 10:]
    return 1e6 * total / pts, 1e6 * sum(tail) / (len(tail) * (1 + 1 / 50))


def train_time(steps: int, guarded: bool) -> tuple[float, float, int]:
    """(train seconds, seconds inside the callback, steps) for the tiny healthy GPT-2."""
    from tests.tiny_training import KINDS, build_trainer

    from trainguard.live.hf_callback import TrainguardCallback

    class Timed(TrainguardCallback):
        spent = 0.0

        def _timed(self, name: str, *a: Any, **k: Any) -> None:
            t0 = time.perf_counter()
            getattr(super(), name)(*a, **k)
            Timed.spent += time.perf_counter() - t0

        def on_log(self, *a: Any, **k: Any) -> None:
            self._timed("on_log", *a, **k)

        def on_evaluate(self, *a: Any, **k: Any) -> None:
            self._timed("on_evaluate", *a, **k)

    cbs = [Timed(Policy.alert_only(save_best=False), report=False)] if guarded else []
    Timed.spent = 0.0
    spec = {**KINDS["healthy"], "steps": steps}
    with tempfile.TemporaryDirectory() as d:
        tr = build_trainer(Path(d), callbacks=cbs, logging_steps=1, disable_tqdm=True, **spec)
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            tr.train()
            wall = time.perf_counter() - t0
    return wall, Timed.spent, tr.state.global_step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=50_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-stopping-table", action="store_true")
    args = ap.parse_args(argv)

    print(f"Guard.log cost over {args.points} steps (+ an eval every 50):")
    print(f"{'':<28}{'mean µs/point':>14}{'last 10% µs/point':>20}   target < 50 µs")
    for label, det in (("with detectors (amortised)", True), ("policy only", False)):
        mean, tail = per_point(args.points, det)
        print(f"{label:<28}{mean:>14.1f}{tail:>20.1f}   {'OK' if mean < 50 else 'OVER'}")

    if not args.no_train:
        print(f"\ntiny GPT-2, HF Trainer, CPU, {args.steps} steps, logging every step, eval every 20:")
        base, _, n0 = train_time(args.steps, False)
        wall, spent, n1 = train_time(args.steps, True)
        step_ms = 1e3 * wall / n1
        print(f"  without callback: {base:.2f} s ({1e3 * base / n0:.2f} ms/step)")
        print(f"  with callback:    {wall:.2f} s ({step_ms:.2f} ms/step); inside the callback {1e3 * spent:.1f} ms "
              f"= {1e6 * spent / n1:.0f} µs/step = {100 * spent / wall:.2f}% of step time (target < 1%: "
              f"{'OK' if spent / wall < 0.01 else 'OVER'})")
        print(f"  wall difference:  {100 * (wall - base) / base:+.1f}% (shared CPU: noise of several % either way)")

    if not args.no_stopping_table:
        print()
        sys.path.insert(0, str(ROOT / "bench"))
        import stopping

        real, _ = stopping.real_curves()
        curves = [*real, stopping.seed_curve(), *stopping.tiny_curves()]
        stopping.table(curves, stopping.runners(Policy()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
