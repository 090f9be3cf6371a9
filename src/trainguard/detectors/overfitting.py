"""Overfitting: the verdict of :func:`trainguard.facts.overfit.judge_overfitting`, said in words with its numbers.

The judgement itself (floors, noise, persistence, timing) lives in the facts
layer, so that the phases, the report and the live guard ask the same one;
this module only turns it into a Finding. Every message states how big the
rise is and over how many evals since the best.
"""

from __future__ import annotations

from ..facts import facts_of
from ..facts._view import clamp01, epoch_at, fmt
from ..facts.overfit import (
    ERROR_RISE,
    LATE_SHARE,
    LATE_TURN,
    NOT_LEARNING,
    OVERFITTING,
    RISE_FLOOR,
    STOPPED,
    TOO_FEW,
    OverfitVerdict,
)
from ..findings import Finding, Severity
from ..run import Run


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%" if abs(x) < 10 else f"{100 * x:+.3g}%"


def _evals(n: int) -> str:
    return f"{n} eval{'s' if n != 1 else ''}"


def detect(run: Run) -> list[Finding]:
    """An ``overfitting`` finding whenever eval is worse at the end than at its best (see the facts' verdict)."""
    f = facts_of(run)
    v = f.overfit
    ev = f.eval
    if v is None or ev is None or v.severity is None:
        return []
    metric = ev.metric
    ep = epoch_at(run, v.best_step)
    where = f"step {v.best_step}" + (f" (epoch {fmt(ep)})" if ep is not None else "")
    size = f"{_pct(v.rise)} over the {_evals(v.evals_after)} since"
    if abs(v.final_rise - v.rise) > 0.005:
        size += f"; the last eval alone is {_pct(v.final_rise)}"
    noise = f"eval noise ±{100 * v.noise:.1f}%"
    if v.state == TOO_FEW:
        msg = (f"{metric} was best at {where} with {fmt(v.best_value)}; the one eval since ({v.last_step}) is "
               f"{fmt(v.last_value)} ({_pct(v.final_rise)}): too few evals after the best to judge overfitting.")
    elif v.state == STOPPED:
        why = []
        if v.rise < RISE_FLOOR:
            why.append(f"under the {100 * RISE_FLOOR:g}% that would matter")
        if v.z < 2:
            why.append(f"within 2x the {noise}")
        elif v.persistence < 0.5:
            why.append(f"only {v.persistence:.0%} of the evals since are above the noise")
        msg = (f"{metric} stopped improving: best {fmt(v.best_value)} at {where}, {size} "
               f"({'; '.join(why) or 'not a material rise'}).")
    elif v.state == NOT_LEARNING:
        tv = f.train_verdict
        train = "" if tv is None else (
            f" (started ~{fmt(tv.start)}, best ~{fmt(tv.best)}, point-to-point noise ±{fmt(tv.noise)}, "
            f"over {tv.logs} logs)")
        msg = (f"{metric} rose from its best {fmt(v.best_value)} at {where}, {size}, but the train loss never "
               f"improved beyond its own noise{train}: a model that has not learned cannot overfit, so this is "
               "not called overfitting; the divergence and learning findings say what went wrong.")
    elif v.state == LATE_TURN:
        msg = (f"{metric} turned up late: best {fmt(v.best_value)} at {where}, {size} ({fmt(v.last_value)} at "
               f"step {v.last_step}), in the last {100 * LATE_SHARE:g}% of the run: too late to call the run "
               "overfit, but a longer run would have been.")
    else:
        trend = "and is still rising" if v.still_rising else "and is no longer rising"
        train = ""
        if v.train_at_best is not None and v.train_last is not None:
            verb = "rose too" if v.train_rising else "went"
            train = f" while train loss {verb} {fmt(v.train_at_best)} -> {fmt(v.train_last)}"
        msg = (f"{metric} was best at {where} with {fmt(v.best_value)}; by step {v.last_step} it is "
               f"{fmt(v.last_value)}, {size}, {trend}{train} ({v.z:.1f}x the {noise}).")
        if v.train_rising:
            msg += " Train loss rising too means the model got worse as a whole: see divergence."
    conf = _confidence(v)
    evidence = {
        "metric": metric,
        "higher_is_better": ev.higher,
        "state": v.state,
        "best_step": v.best_step,
        "best_value": v.best_value,
        "best_epoch": ep,
        "onset_step": v.best_step,
        "last_step": v.last_step,
        "last_value": v.last_value,
        "worse_pct": round(100 * v.rise, 3),
        "final_worse_pct": round(100 * v.final_rise, 3),
        "undone": None if v.undone is None else round(v.undone, 3),
        "evals": v.evals,
        "evals_after_best": v.evals_after,
        "noise_pct": round(100 * v.noise, 3),
        "z": round(v.z, 2) if v.z != float("inf") else None,
        "persistence": round(v.persistence, 3),
        "still_rising": v.still_rising,
        "late": v.late,
        "train_at_best": v.train_at_best,
        "train_last": v.train_last,
        "train_rising": v.train_rising,
        "floors": {"warning_pct": 100 * RISE_FLOOR, "error_pct": 100 * ERROR_RISE},
        "dropped": list(ev.notes),
    }
    return [Finding("overfitting", v.severity, msg, v.best_step, v.last_step, evidence, conf)]


def _confidence(v: OverfitVerdict) -> float:
    """How sure: more evals after the best, a rise far above the noise and a persistent one make it surer."""
    if v.state != OVERFITTING:
        return clamp01(0.3 + 0.05 * min(v.evals_after, 4))
    z = min(v.z, 6.0) / 6.0
    return clamp01(0.5 + 0.2 * z + 0.05 * min(v.evals_after, 4) + 0.1 * (v.persistence - 0.5)
                   + (0.05 if v.severity is Severity.ERROR else 0.0))


__all__ = ["detect"]
