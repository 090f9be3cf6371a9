"""Plateau (no meaningful improvement over the last half of the run) and no_learning (no improvement at all).

"Meaningful" is judged twice, and both must fail for a plateau: statistically
(the drop between the window's first and last fifth must exceed 2 standard
errors of those medians, from the curve's point-to-point noise) and
practically (at least 2 % of the level). Statistics alone would call the tiny
LR-1e-7 run "improving" (its eval falls 5.936 -> 5.933 without noise); the
practical floor alone would miss a steady slow descent hidden in noise.

- ``no_learning`` (error): the loss never meaningfully decreases over the
  whole run: realrun 025 (first point is the lowest), the tiny LR-1e-7 run.
- ``plateau``: flat over the last half. Warning when the run barely learned
  at all (< 20 % below its start: realrun 012, 1.29 -> 1.16; seed 002, 6.67
  -> 6.52 with val flat); info when it learned first and then converged
  (a reason to stop, not a fault).
"""

from __future__ import annotations

import math

import numpy as np

from .._arrays import median
from ..facts._smoothing import block_reduce, rolling_median
from ..facts._view import clamp01, eval_metric, fmt, run_xy, train_xy
from ..facts.noise import diff_noise, eval_noise
from ..findings import Finding, Severity
from ..run import Run


def detect(
    run: Run,
    *,
    min_rel: float = 0.02,
    no_learning_rel: float = 0.005,
    low_progress: float = 0.2,
    min_points: int = 6,
) -> list[Finding]:
    """``no_learning`` and ``plateau`` findings on the train loss, or on eval when train is missing or flat too."""
    out: list[Finding] = []
    series: list[tuple[str, np.ndarray, np.ndarray, bool]] = []
    st, v = train_xy(run)
    if len(v) >= min_points:
        series.append(("train_loss", st, v, False))
    em = eval_metric(run)
    if em is not None:
        est, ev = run_xy(run, em[0])
        if len(ev) >= max(4, min_points // 2):
            series.append((em[0], est, ev, em[1]))
    _, g = run_xy(run, "grad_norm")
    grads_zero = bool(len(g)) and float(np.abs(g).max()) == 0.0  # the grad-norm detector says it, with the cause
    if len(v) >= 3 and float(np.ptp(v)) == 0.0 and not grads_zero:
        # exactly the same value at every step: nothing updates, or the logged number is not a loss
        zero = float(v[0]) == 0.0
        what = ("exactly 0 at every one of its {n} logged steps: the loss is not being computed (every label masked "
                "to -100, empty targets, or a loss that is never returned), so nothing is learned" if zero else
                "exactly {x} at every one of its {n} logged steps: the weights are not being updated (LR 0, frozen or "
                "detached parameters) or the logged number is not the loss")
        msg = "train_loss is " + what.format(n=len(v), x=fmt(float(v[0]))) + "."
        out.append(Finding("no_learning", Severity.ERROR, msg, int(st[0]), int(st[-1]),
                           {"metric": "train_loss", "kind": "zero_loss" if zero else "constant_loss", "value": float(v[0]),
                            "points": len(v)}, 0.99))
        return out
    if not series:
        return out
    results = {name: _measure(s, x, hi, min_rel) for name, s, x, hi in series}
    if abs(results[series[0][0]]["start"]) <= 1e-8 and abs(results[series[0][0]]["end"]) <= 1e-8:
        return out  # a loss of exactly 0 throughout: said above
    # no_learning: on train loss when present (the eval of a run that does not learn is flat too)
    name0 = series[0][0]
    r0 = results[name0]
    diverged = r0["end"] > 1.3 * r0["start"] or r0["end"] > 20.0  # blown up, not stuck: divergence's finding
    # learned at some point (the smoothed curve went 5 % below the start), then lost it: instability or
    # divergence tell that story better than "not learning" (realrun 016)
    learned_once = r0["smoothed_min"] < (1 - 10 * no_learning_rel) * r0["start"]
    if not diverged and not learned_once and (r0["total_rel"] < no_learning_rel or (r0["total_rel"] < 5 * no_learning_rel and not r0["total_significant"])):
        msg = (
            f"{name0} never meaningfully decreased: {fmt(r0['start'])} at the start, {fmt(r0['end'])} at the end "
            f"({-r0['total_rel']:+.1%}; noise {fmt(r0['noise'])}): the run is not learning (LR far too low, frozen or "
            f"detached parameters, or labels unrelated to inputs)."
        )
        out.append(
            Finding(
                "no_learning", Severity.ERROR, msg, r0["first_step"], r0["last_step"],
                {"metric": name0, "start": r0["start"], "end": r0["end"], "improvement": r0["start"] - r0["end"],
                 "relative": r0["total_rel"], "noise": r0["noise"]},
                clamp01(0.7 + 0.1 * r0["points"] / 10),
            )
        )
    flat = [n for n, r in results.items() if r["flat"]]
    if out:  # no_learning said it; a plateau adds something only on a clean flat line (the tiny LR-1e-7 run)
        flat = [n for n in flat if results[n]["noise"] <= 0.02 * max(abs(results[n]["w_start"]), 1e-12)]
    if not flat:
        return out
    # report the eval plateau when eval is flat (it is what matters), else the train one
    name = next((n for n in flat if n != "train_loss"), flat[0])
    r = results[name]
    from_start = r["total_rel"] < low_progress
    train_r = results.get("train_loss")
    detail = ""
    if name != "train_loss" and train_r is not None and not train_r["flat"]:
        detail = " while train loss still falls: generalization has stalled"
    early = bool(run.planned_steps and run.last_step and run.last_step < 0.3 * run.planned_steps)
    if from_start and not early:
        sev = Severity.WARNING
        why = f"barely below its start {fmt(r['start'])} ({r['total_rel']:.1%} in all): the run is hardly learning"
    elif from_start:
        sev = Severity.INFO
        why = f"only {r['total_rel']:.1%} below its start {fmt(r['start'])}, but the run is at step {run.last_step} of {run.planned_steps}"
    else:
        sev = Severity.INFO
        why = f"after falling {r['total_rel']:.0%} from {fmt(r['start'])}: it has converged, more steps will not help"
    if any(res["flat"] for n, res in results.items() if n != name) and name != "train_loss":
        detail = " (train loss is flat too)"
    msg = (
        f"{name} is flat from step {r['window_start']} to {r['window_end']}: {fmt(r['w_start'])} -> {fmt(r['w_end'])} "
        f"({-r['w_rel']:+.1%}, noise {fmt(r['noise'])}), {why}{detail}."
    )
    ev = {
        "metric": name,
        "window_start": r["window_start"],
        "window_end": r["window_end"],
        "improvement": r["w_start"] - r["w_end"],
        "relative": r["w_rel"],
        "noise": r["noise"],
        "total_relative": r["total_rel"],
        "kind": "from_start" if from_start else "converged",
        "flat_metrics": flat,
    }
    conf = clamp01(0.55 + 0.1 * min(r["points"], 40) / 10)
    out.append(Finding("plateau", sev, msg, r["window_start"], r["window_end"], ev, conf))
    return out


def _measure(st: np.ndarray, v: np.ndarray, higher: bool, min_rel: float) -> dict:
    """Levels, noise and improvement over the whole series and over its last half (oriented: positive = better)."""
    st, v = block_reduce(st, v, 2048)
    o = -v if higher else v
    n = len(o)
    # point-to-point noise; on short smooth curves the curvature inflates the first-difference estimate,
    # so the smaller of the two estimators is the better one
    noise = min(diff_noise(o), eval_noise(np.abs(o), floor=0.0) * float(median(np.abs(o)))) if n >= 6 else 0.0
    k = max(1, n // 10)
    start = float(median(o[:k])) if k > 1 else float(max(o[0], median(o[:3])))
    end = float(median(o[-max(1, n // 10) :]))
    lvl = max(abs(start), 1e-12)
    total_rel = (start - end) / lvl
    se_total = 1.25 * noise * math.sqrt(1 / k + 1 / max(1, n // 10))
    # last-half window
    h = n // 2
    win = o[h:]
    m = max(1, len(win) // 5)
    w_start = float(median(win[:m]))
    w_end = float(median(win[-m:]))
    w_lvl = max(abs(w_start), 1e-12)
    w_rel = (w_start - w_end) / w_lvl
    se = 1.25 * noise * math.sqrt(2 / m)
    if len(win) < 10:
        se = 0.0  # a handful of points gives no usable standard error: the practical bar alone decides
    # flat: the change either way is below both bars; too noisy (> 10 % of the level) is no verdict at all
    flat = abs(w_start - w_end) < max(2 * se, min_rel * w_lvl) and len(win) >= 3 and noise <= 0.1 * w_lvl
    sign = -1.0 if higher else 1.0
    smin = float(rolling_median(o, 5).min()) if n >= 5 else float(o.min())
    return {
        "smoothed_min": sign * smin,
        "start": sign * start,
        "end": sign * end,
        "total_rel": total_rel,
        "total_significant": (start - end) > 2 * se_total and total_rel >= 0.01,
        "w_start": sign * w_start,
        "w_end": sign * w_end,
        "w_rel": w_rel,
        "noise": noise,
        "flat": bool(flat),
        "window_start": int(st[h]),
        "window_end": int(st[-1]),
        "first_step": int(st[0]),
        "last_step": int(st[-1]),
        "points": n,
    }


__all__ = ["detect"]
