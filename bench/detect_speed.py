"""Time every detector and the whole diagnosis on synthetic runs, printing tables.

Three shapes of run: a long one with sparse eval (one per 1,000 steps, ~1M
train points by default), an eval-heavy one (an eval every 10 steps, as in
the 200 MB HF log of issue 14), where the per-eval-point work of the phases
and the overfitting facts dominates, and one whose train loss collapses over
a long stretch of its first epoch (leaked targets), where memorization's
search for the bottom of the drop spans a fifth of the run: a ``.min()`` per
point there was quadratic (8.6 s of diagnosis at 800k points, now 0.35 s).
``diagnose`` (detectors + phases + causes) is timed on a fresh Run each time,
so no cached facts carry over.

Run: ``.venv/bin/python bench/detect_speed.py [points] [eval-heavy points] [collapse points]``.
Everything must stay roughly O(n) / O(n log n): doubling the points should
about double the time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from trainguard.detectors import modules, run_all
from trainguard.run import History, Run, Series


def make_run(n: int, seed: int = 0, eval_every: int = 1000) -> Run:
    """A long noisy fine-tune: warm-up + cosine LR, decaying loss with spikes, grad norm, an eval every ``eval_every`` steps."""
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1, dtype=np.int64)
    t = steps / n
    loss = 2.5 * np.exp(-5 * t) + 0.8 + rng.normal(0, 0.05, n)
    loss[rng.integers(0, n, 50)] *= 4  # spikes
    warm = max(1, n // 50)
    lr = np.where(steps < warm, 3e-4 * steps / warm, 3e-4 * 0.5 * (1 + np.cos(np.pi * (steps - warm) / (n - warm))))
    gn = 1.5 * np.exp(-t) + rng.gamma(2, 0.1, n)
    es = steps[eval_every - 1 :: eval_every]
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


def make_collapse_run(n: int, seed: int = 0, eval_every: int = 100) -> Run:
    """:func:`make_run` whose train loss collapses 3.6 -> ~0 over the first 40 % of a run half an epoch long.

    Why this shape: memorization's fast-drop check looks for where such a
    drop bottoms out, over windows as long as the drop itself (a fifth of the
    run here); it is the path that was quadratic before ``_arrays.forward_min``
    and that neither of the other shapes reaches.
    """
    run = make_run(n, seed, eval_every)
    rng = np.random.default_rng(seed + 1)
    t = np.arange(1, n + 1) / n
    loss = 3.6 * np.exp(-20 * np.minimum(t, 0.4)) + np.abs(rng.normal(0, 0.0005, n))
    run.history.set("train_loss", Series(run.history["train_loss"].steps, loss))
    run.steps_per_epoch = 2 * n
    return run


def _time(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _case(title: str, n: int, eval_every: int, make: Callable[..., Run] = make_run) -> None:
    from trainguard.diagnosis import diagnose

    rows = []
    for size in (n // 2, n):
        run = make(size, eval_every=eval_every)
        pts = run.history.total_points()
        per = [(m.__name__.rsplit(".", 1)[-1], _time(m.detect, make(size, eval_every=eval_every))[0]) for m in modules()]
        t_all, found = _time(run_all, make(size, eval_every=eval_every))
        t_diag, _ = _time(diagnose, make(size, eval_every=eval_every))
        rows.append((size, pts, len(run.history["eval_loss"]), t_all, t_diag, per, len(found)))
    print(f"\n{title}")
    print(f"{'train points':>12} {'eval points':>11} {'all points':>11} {'run_all s':>10} {'diagnose s':>11} {'findings':>9}")
    for size, pts, ev, t_all, t_diag, _, nf in rows:
        print(f"{size:>12,} {ev:>11,} {pts:>11,} {t_all:>10.3f} {t_diag:>11.3f} {nf:>9}")
    print(f"per detector at {rows[-1][0]:,} train points (s, each on a fresh run):")
    for name, sec in sorted(rows[-1][5], key=lambda r: -r[1])[:6]:
        print(f"  {name:<16} {sec:8.3f}")
    print(f"scaling x2 points -> run_all x{rows[1][3] / rows[0][3]:.2f}, diagnose x{rows[1][4] / rows[0][4]:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_heavy = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    n_collapse = int(sys.argv[3]) if len(sys.argv) > 3 else 400_000
    _case("sparse eval: one per 1,000 steps", n, 1000)
    _case("eval-heavy: one eval per 10 steps", n_heavy, 10)
    _case("train loss collapsing over a fifth of its first epoch: one eval per 100 steps", n_collapse, 100, make_collapse_run)


if __name__ == "__main__":
    main()
