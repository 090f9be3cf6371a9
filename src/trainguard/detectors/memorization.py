"""Memorization (train loss near 0 while eval rises or is absent) and a suspiciously fast loss collapse.

Two different stories, two codes:

- ``memorization``: after many passes the model has stored its training set.
  Near zero is judged *relative to the start* (below 5 % of it) and in absolute
  terms (below 0.03 nats), so a classifier whose loss is legitimately small
  is not flagged. It needs eval evidence: eval rising or flat (error/warning),
  or no eval at all (warning: it cannot be ruled out). A low train loss with
  eval still falling (realrun 008) is a good fit, not memorization.
- ``suspicious_fast_drop``: the loss falls by orders of magnitude within the
  first epoch (seed 000/001: 3.64 -> 0.005 in ~225 of 5064 steps, 4 % of an
  epoch). A model cannot *memorize* examples it has not seen yet, so this
  points at leaked targets in the inputs (labels not masked, future tokens
  visible), duplicated data, or trivially predictable targets. An exact 0.0
  loss (realrun 005) usually means every label is masked.
"""

from __future__ import annotations

import numpy as np

from .._arrays import forward_min, median
from ..facts import facts_of
from ..facts._smoothing import head_level, rolling_median, tail_level
from ..facts._view import clamp01, fmt, steps_per_epoch, train_xy
from ..facts.overfit import IMPROVING, OVERFITTING
from ..facts.train import ABSURD_CE
from ..findings import Finding, Severity
from ..run import Run


def _eval_trend(run: Run) -> str:
    """rising | flat | falling | none: what the one overfitting verdict says the eval did after its best.

    Asked of the facts layer, so this finding can never say "eval gets worse"
    while the overfitting finding on the same run says it did not.
    """
    v = facts_of(run).overfit
    if v is None or v.evals < 2:
        return "none"
    if v.state == OVERFITTING:
        return "rising"
    if v.state == IMPROVING:
        return "falling"
    return "flat"


def detect(
    run: Run,
    *,
    near_zero_abs: float = 0.03,
    near_zero_rel: float = 0.05,
    fast_factor: float = 50.0,
    fast_abs: float = 0.1,
    fast_max_epochs: float = 1.0,
) -> list[Finding]:
    """``memorization`` and ``suspicious_fast_drop`` findings from the train loss (and the eval trend)."""
    st, v = train_xy(run)
    if len(v) < 4:
        return []
    out: list[Finding] = []
    fast = _fast_drop(run, st, v, fast_factor, fast_abs, fast_max_epochs)
    if fast is not None:
        out.append(fast)
        if fast.severity >= Severity.WARNING:
            # the collapse explains the low loss better than memorization would (it came before any repetition)
            return out
    first = head_level(v, 0.05, 3)
    first_raw = float(v[0])
    ref = max(first, first_raw)
    if ref <= 1e-6:
        return out  # zero from the start: nothing was learned (grad-norm and plateau detectors speak)
    last = tail_level(v, 0.05, 3)
    vmin = float(v.min())
    thr = min(near_zero_abs, near_zero_rel * ref)
    if last > thr:
        return out
    trend = _eval_trend(run)
    if trend == "falling":
        return out
    sm = rolling_median(v, 5)
    below = np.nonzero(sm <= thr)[0]
    first_nz = int(st[below[0]]) if len(below) else int(st[-1])
    ratio = last / ref
    if trend == "rising":
        sev, tail = Severity.ERROR, "while eval gets worse: the model is memorizing its training set"
    elif trend == "flat":
        sev, tail = Severity.WARNING, "while eval no longer improves: extra epochs only memorize"
    else:
        sev, tail = Severity.WARNING, "with no eval to show whether it still generalizes: likely memorization"
    msg = (
        f"Train loss fell from {fmt(ref)} to {fmt(last)} ({ratio:.2%} of its start; near zero from step {first_nz}) {tail}."
    )
    ev = {
        "train_first": ref,
        "train_last": last,
        "train_min": vmin,
        "ratio": ratio,
        "threshold": thr,
        "first_near_zero_step": first_nz,
        "eval_trend": trend,
    }
    conf = clamp01(0.6 + (0.3 if trend == "rising" else 0.1) + (0.1 if ratio < 0.01 else 0))
    out.append(Finding("memorization", sev, msg, first_nz, int(st[-1]), ev, conf))
    return out


def _fast_drop(run: Run, st: np.ndarray, v: np.ndarray, factor: float, floor: float, max_epochs: float) -> Finding | None:
    """The first point where the loss sits ``factor`` below its start and under ``floor``, if within ``max_epochs``."""
    start = float(v[0])
    if start <= floor or start <= 0:
        return None
    target = min(start / factor, floor)
    hit = np.nonzero(v <= target)[0]
    if not len(hit):
        return None
    # sustained: the next points stay low (median of the next 3 at most 2x the target), so one lucky batch does not count
    j = -1
    for i in hit[:50]:
        nxt = v[i : i + 3]
        if float(median(nxt)) <= 2 * target:
            j = int(i)
            break
    if j < 0:
        return None
    start_i = int(np.argmax(v[: j + 1]))  # the drop starts at the highest point before it
    # the drop ends where it bottoms out: the first point after the crossing that no later point within
    # another drop-length undercuts by more than a third (3.64 -> 0.005, not the first value under 0.07)
    spe = steps_per_epoch(run)
    if spe and float(st[j]) / spe > max_epochs:
        return None  # it took more than an epoch to get there: repetition, i.e. memorization, can explain it
    span = max(3, j - start_i)
    lim = len(v) if not spe else int(np.searchsorted(st, max(float(st[j]), max_epochs * spe), side="right"))
    seg = rolling_median(v[j : min(lim, j + 4 * span + 3)], 3)
    low = np.flatnonzero(seg <= 1.5 * forward_min(seg, span + 1))  # each point against the lowest of the next span
    if len(low):
        j += int(low[0])
    s0, s1 = int(st[start_i]), int(st[j])
    steps = s1 - s0
    frac = float(st[j]) / spe if spe else None
    zero = bool(float(median(v[j : j + 3])) == 0.0)
    from_v, to_v = float(v[start_i]), float(v[j])
    orders = float(np.log10(from_v / max(to_v, 1e-12)))
    if frac is None:
        sev = Severity.INFO
        where = f"within {steps} steps (epoch size unknown: over many epochs this would be plain memorization of a small set)"
    else:
        sev = Severity.ERROR if frac <= 0.25 else Severity.WARNING
        seen = "before most examples were even seen" if frac <= 0.5 else "before any example was seen twice"
        where = f"within {steps} steps, by {frac:.1%} of the first epoch, {seen}"
    cause = (
        "an exact 0.0 loss usually means every label is masked (-100) or the loss is not computed; under the HF "
        "Trainer it is also what a window of NaN steps is logged as (logging_nan_inf_filter), so log grad_norm to "
        "tell them apart" + (f" (the loss was at {fmt(from_v)} just before, far above a token cross-entropy's usual "
                             "range: NaN is the likelier cause)" if from_v > ABSURD_CE else "")
        if zero
        else "suspect leakage (targets visible in the inputs, labels not shifted or masked), duplicated examples, or trivially predictable targets — not ordinary overfitting"
    )
    msg = f"Train loss collapsed from {fmt(from_v)} to {fmt(to_v)} ({orders:.1f} orders of magnitude) {where}: {cause}."
    ev = {
        "from_value": from_v,
        "to_value": to_v,
        "start_step": s0,
        "end_step": s1,
        "steps": steps,
        "fraction_of_epoch": None if frac is None else round(frac, 4),
        "steps_per_epoch": spe,
        "orders_of_magnitude": round(orders, 2) if np.isfinite(orders) else None,
        "zero_loss": zero,
        "kind": "leakage_or_duplicates",
    }
    conf = 0.5 if frac is None else clamp01(0.95 - frac * 0.4)
    return Finding("suspicious_fast_drop", sev, msg, s0, s1, ev, conf)


__all__ = ["detect"]
