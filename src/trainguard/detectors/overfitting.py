"""Overfitting: the best eval point, the onset, how much worse eval got since, and whether it still rises.

How sure we are is judged against the eval curve's own noise (robust sigma of
its second differences), never a fixed epsilon: the tiny healthy run's eval
wanders +-0.05 around 2.8 after its best, which is noise, while realrun 010's
+0.2 % (0.6275 -> 0.6276 -> 0.6287) is tiny but monotone and realrun 018's
single late rise comes with a train/eval gap that has widened at every eval.

Severity:
- warning: eval is worse at the end than at its best and the rise is beyond
  noise, monotone, or backed by a growing train/eval gap;
- error: clearly (>= 3 sigma and >= 2 %) and persistently (most evals since
  the best are worse by more than the noise) worse, e.g. seed 003
  (0.1376 -> 0.4918, +257 %) or realrun 015 (1.7825 -> 2.13);
- info: the best is not the last point but nothing says it is more than noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..diagnosis import Best
from ..findings import Finding, Severity
from ..run import EVAL_LOSS, Run
from ._smoothing import curve_noise, linfit
from ._view import clamp01, epoch_at, eval_metric, fmt, pct, saved_steps, train_xy, xy


def best_point(run: Run, *, fallback_train: bool = False) -> Best | None:
    """The best eval point: minimum of eval_loss (or the best of the metric that decides), with its epoch and save status.

    ``checkpoint_saved`` is True/False when checkpoints (or trusted save
    settings) are known, None when unknown. With ``fallback_train`` a run
    without eval gets its train-loss minimum instead of None.
    """
    em = eval_metric(run)
    if em is None:
        if not fallback_train:
            return None
        st, v = train_xy(run)
        if not len(v):
            return None
        i = int(np.argmin(v))
        name, step, value = "train_loss", int(st[i]), float(v[i])
    else:
        name, higher = em
        st, v = xy(run.history.get_series(name))
        if not len(v):
            return None
        i = int(np.argmax(v) if higher else np.argmin(v))
        step, value = int(st[i]), float(v[i])
    saved, _ = saved_steps(run)
    rec = run.best_recorded or {}
    path = None
    if rec.get("step") == step:
        is_saved: bool | None = True
        path = rec.get("checkpoint")
    elif saved is None:
        is_saved = None
    else:
        is_saved = step in saved
    if step in run.checkpoints:
        path = run.checkpoints[step].path
    return Best(metric=name, step=step, value=value, epoch=epoch_at(run, step), checkpoint_saved=is_saved, checkpoint_path=path)


@dataclass(frozen=True)
class Analysis:
    """The numbers behind an overfitting verdict (shared with the waste detector)."""

    metric: str
    higher: bool
    steps: np.ndarray
    values: np.ndarray
    best_index: int
    sigma: float
    worse_pct: float
    z: float
    after: int
    persistent: float  # fraction of evals after the best that are worse than best + sigma
    monotone: bool
    still_rising: bool
    gap_growing: bool
    train_at_best: float | None
    train_last: float | None
    gap_at_best: float | None
    gap_last: float | None
    gap_onset_step: int | None


def analyze(run: Run, *, min_points: int = 3) -> Analysis | None:
    """Measure the eval curve around its best point; None with fewer than ``min_points`` evals."""
    em = eval_metric(run)
    if em is None:
        return None
    name, higher = em
    st, v = xy(run.history.get_series(name))
    if len(v) < min_points:
        return None
    # orient so that lower is better
    o = -v if higher else v
    b = int(np.argmin(o))
    best, last = float(o[b]), float(o[-1])
    scale = max(abs(float(v[b])), 1e-12)
    sigma = max(curve_noise(o), 1e-4 * scale)
    post = o[b + 1 :]
    after = len(post)
    worse_pct = (last - best) / scale * 100.0
    z = (last - best) / sigma
    persistent = float(np.mean(post > best + sigma)) if after else 0.0
    monotone = after >= 2 and bool(np.all(np.diff(o[b:]) >= 0))
    tail = o[max(b, len(o) - 5) :]
    ts = st[max(b, len(o) - 5) :]
    still_rising = False
    if after >= 1 and len(tail) >= 2:
        slope, _, _ = linfit(ts.astype(float), tail)
        still_rising = slope > 0 and (slope * float(ts[-1] - ts[0]) > sigma or bool(tail[-1] >= tail.max()))
    # train loss at the eval steps, smoothed (median of the train points nearest each eval)
    tst, tv = train_xy(run)
    train_at_best = train_last = gap_at_best = gap_last = None
    gap_growing = False
    gap_onset = None
    if len(tv) >= 2 and name == EVAL_LOSS:
        tr = _train_at(tst, tv, st)
        gaps = v - tr
        train_at_best, train_last = float(tr[b]), float(tr[-1])
        gap_at_best, gap_last = float(gaps[b]), float(gaps[-1])
        tail_g = gaps[max(b, len(gaps) - 5) :]
        if after >= 1 and len(tail_g) >= 2:
            gslope, _, _ = linfit(st[max(b, len(gaps) - 5) :].astype(float), tail_g)
            gap_growing = gap_last - gap_at_best > 2 * sigma and gslope > 0
        gap_onset = int(st[int(np.argmin(gaps[: b + 1]))]) if b >= 0 else None
    return Analysis(
        metric=name, higher=higher, steps=st, values=v, best_index=b, sigma=sigma, worse_pct=worse_pct, z=z,
        after=after, persistent=persistent, monotone=monotone, still_rising=still_rising, gap_growing=gap_growing,
        train_at_best=train_at_best, train_last=train_last, gap_at_best=gap_at_best, gap_last=gap_last,
        gap_onset_step=gap_onset,
    )


def _train_at(tst: np.ndarray, tv: np.ndarray, at: np.ndarray, k: int = 2) -> np.ndarray:
    """Median of the train points within ``k`` logs either side of each step in ``at`` (noise-robust pairing)."""
    idx = np.clip(np.searchsorted(tst, at), 0, len(tst) - 1)
    out = np.empty(len(at))
    for j, i in enumerate(idx):  # one per eval point: evals are few
        out[j] = float(np.median(tv[max(0, i - k) : i + k + 1]))
    return out


def detect(
    run: Run,
    *,
    min_points: int = 3,
    warn_min_pct: float = 0.1,
    error_min_pct: float = 2.0,
    error_z: float = 3.0,
    error_persistence: float = 0.6,
) -> list[Finding]:
    """An ``overfitting`` finding when eval got worse after its best point (see the module docstring for levels)."""
    a = analyze(run, min_points=min_points)
    if a is None or a.after == 0:
        return []
    if a.worse_pct < warn_min_pct:
        return []
    b = a.best_index
    best_step, last_step = int(a.steps[b]), int(a.steps[-1])
    best_value, last_value = float(a.values[b]), float(a.values[-1])
    clear = a.after >= 2 and a.z >= error_z and a.worse_pct >= error_min_pct and a.persistent >= error_persistence
    supported = a.z >= 2 or a.monotone or a.gap_growing or (a.still_rising and a.after >= 2)
    if clear:
        sev = Severity.ERROR
    elif supported:
        sev = Severity.WARNING
    else:
        sev = Severity.INFO
    conf = clamp01(0.35 + 0.1 * min(a.z, 4) + 0.1 * min(a.after, 3) + (0.1 if a.gap_growing else 0) - (0.2 if a.after == 1 else 0))
    best_epoch = epoch_at(run, best_step)
    ep = f" (epoch {fmt(best_epoch)})" if best_epoch is not None else ""
    trend = "and is still rising" if a.still_rising else "and is no longer rising"
    train = ""
    if a.train_at_best is not None and a.train_last is not None:
        train = f" while train loss went {fmt(a.train_at_best)} -> {fmt(a.train_last)}"
    noise = ""
    if sev is Severity.WARNING:
        why = []
        if a.z >= 2:
            why.append(f"{a.z:.1f}x the eval noise ({fmt(a.sigma)})")
        if a.monotone:
            why.append(f"up at each of the {a.after} evals since")
        if a.gap_growing and a.gap_at_best is not None and a.gap_last is not None:
            why.append(f"the train/eval gap grew {fmt(a.gap_at_best)} -> {fmt(a.gap_last)}")
        noise = f"; small but real: {', '.join(why)}" if why else ""
        if a.worse_pct < error_min_pct and a.z >= error_z:
            noise += f" (under the {error_min_pct:g} % that would make it an error)"
    msg = (
        f"{a.metric} was best at step {best_step}{ep} with {fmt(best_value)}; by step {last_step} it is "
        f"{fmt(last_value)} ({pct(a.worse_pct)} worse) {trend}{train}{noise}."
    )
    if sev is Severity.INFO:
        msg = (
            f"{a.metric} was best at step {best_step}{ep} with {fmt(best_value)} and ends at {fmt(last_value)} "
            f"({pct(a.worse_pct)}), within the eval noise ({fmt(a.sigma)}): no sign of overfitting yet."
        )
    ev = {
        "metric": a.metric,
        "higher_is_better": a.higher,
        "best_step": best_step,
        "best_value": best_value,
        "best_epoch": best_epoch,
        "onset_step": best_step,
        "gap_onset_step": a.gap_onset_step,
        "last_step": last_step,
        "last_value": last_value,
        "worse_pct": round(a.worse_pct, 3),
        "still_rising": a.still_rising,
        "evals_after_best": a.after,
        "persistence": round(a.persistent, 3),
        "noise": a.sigma,
        "z": round(a.z, 2),
        "gap_growing": a.gap_growing,
        "train_at_best": a.train_at_best,
        "train_last": a.train_last,
        "gap_at_best": a.gap_at_best,
        "gap_last": a.gap_last,
    }
    return [Finding("overfitting", sev, msg, best_step, last_step, ev, conf)]


__all__ = ["Analysis", "analyze", "best_point", "detect"]
