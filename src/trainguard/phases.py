"""Split a run into contiguous phases (learning, overfitting, memorization, dead ...), each with a flag.

The flags follow seed 003's "Signs Visible During Training": **yellow** when
eval stops decreasing, **orange** when eval rises, **red** when eval has
doubled from its optimum or train loss is near zero, **black** when train loss
is zero and gradients have vanished (the job is burning GPUs for nothing).

The run is read on a grid: the eval points when there is an eval loss (each
eval describes the interval since the previous one), otherwise up to
``_TRAIN_BINS`` bins of train points, each summarised by its median so that one
noisy point never opens a phase. After the best eval point a *ratchet* keeps
the label from going back down (overfitting never reverts to "divergence"
because one eval was a little lower): the best point is the global minimum, so
nothing after it is an improvement anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .diagnosis import Best, LRSchedule, Phase
from .findings import Finding, Severity
from .run import EVAL_LOSS, GRAD_NORM, LEARNING_RATE, TRAIN_LOSS, Run, Series

# Thresholds, each with its reason.
_NOISE_FLOOR = 0.01  # eval within 1% of its best is "not improving", not "rising": evals jitter by ~1%
_DOUBLED = 2.0  # seed 003's red flag: "eval loss doubled from optimal"
_NEAR_ZERO = 0.10  # train below 10% of its value at the best point: the model is memorising
_ZERO_REL = 0.01  # train below 1% of its start: zero for practical purposes
_ZERO_ABS = 5e-5  # prints as 0.0000 at the 4 decimals HF logs: "literally zero"
_GRAD_DEAD = 1 / 50  # grad norm under 2% of its early median: seed 003's "x1000" collapse starts here
_LR_DEAD = 0.01  # LR under 1% of its peak: updates are negligible
_TRAIN_BINS = 60

# Rank of a label after the best point (the ratchet) and its default flag.
_RANK = {"warmup": 0, "learning": 0, "plateau": 0, "divergence": 1, "overfitting": 2, "memorization": 3, "dead": 4}
_FLAG = {
    "warmup": "green",
    "learning": "green",
    "plateau": "yellow",
    "divergence": "yellow",
    "overfitting": "orange",
    "memorization": "red",
    "dead": "black",
}
_BY_RANK = {1: "divergence", 2: "overfitting", 3: "memorization", 4: "dead"}
_UNSTABLE_CODES = ("nan_loss", "divergence", "instability", "grad_norm_explosion", "loss_spike")


@dataclass
class _Cell:
    """One grid point: the state observed over (previous step, step]."""

    step: int
    eval: float | None
    train: float | None
    grad: float | None
    lr: float | None
    label: str = "learning"
    flag: str = "green"


def split_phases(run: Run, findings: list[Finding], best: Best | None, lr: LRSchedule | None = None) -> list[Phase]:
    """The run's phases in step order; empty when the run has no train or eval points.

    Consecutive grid cells with the same label and flag form one phase; a
    phase starts at the step where the previous one ended (a change is seen at
    an eval, and describes the interval leading to it), as in the seed's
    "Epochs 1-15, 15-25 ...".
    """
    train = run.history.get_series(TRAIN_LOSS).finite().sorted()
    ev = _eval_series(run, best)
    cells = _grid(run, train, ev)
    if not cells:
        return []
    first_step = min(
        [int(s.steps[0]) for s in (train, ev) if len(s)] or [cells[0].step]
    )
    _label(cells, run, findings, best, train, ev, lr)
    return _merge(cells, first_step, run, train, ev)


# -- the grid -------------------------------------------------------------------


def _eval_series(run: Run, best: Best | None) -> Series:
    """The eval curve the best point was taken on, when it is lower-is-better (a loss or a perplexity)."""
    name = EVAL_LOSS
    if best is not None and best.metric.startswith("eval_"):
        name = best.metric
    if not any(k in name for k in ("loss", "ppl", "perplexity")):
        name = EVAL_LOSS
    return run.history.get_series(name).finite().sorted()


def _window_median(s: Series, lo: float, hi: float) -> float | None:
    """Median of the points with lo < step <= hi; the nearest point when the window is empty."""
    if not len(s):
        return None
    st = s.steps
    i, j = np.searchsorted(st, lo, side="right"), np.searchsorted(st, hi, side="right")
    if j > i:
        return float(np.median(s.values[i:j]))
    k = s.nearest(int(hi))
    return None if k is None else float(s.values[k])


def _grid(run: Run, train: Series, ev: Series) -> list[_Cell]:
    grad = run.history.get_series(GRAD_NORM).finite().sorted()
    lr = run.history.get_series(LEARNING_RATE).finite().sorted()
    if len(ev) >= 2:
        steps = [int(x) for x in np.unique(ev.steps)]
    elif len(train) >= 2:
        n = min(_TRAIN_BINS, len(train))
        idx = np.unique(np.linspace(0, len(train) - 1, n + 1).round().astype(int)[1:])
        steps = [int(train.steps[i]) for i in idx]
    else:
        return []
    cells: list[_Cell] = []
    prev = -math.inf
    for st in steps:
        cells.append(
            _Cell(
                step=st,
                eval=ev.value_at(st) if len(ev) >= 2 else None,
                train=_window_median(train, prev, st),
                grad=_window_median(grad, prev, st),
                lr=_window_median(lr, prev, st),
            )
        )
        prev = st
    return cells


# -- labels ---------------------------------------------------------------------


def _reference(values: np.ndarray, frac: float = 0.25) -> float | None:
    """Median of the first ``frac`` of a curve (at least 3 points): its healthy early level."""
    if not len(values):
        return None
    k = max(3, int(len(values) * frac))
    return float(np.median(values[:k]))


def _label(
    cells: list[_Cell],
    run: Run,
    findings: list[Finding],
    best: Best | None,
    train: Series,
    ev: Series,
    lr: LRSchedule | None,
) -> None:
    grad = run.history.get_series(GRAD_NORM).finite().sorted()
    lrs = run.history.get_series(LEARNING_RATE).finite().sorted()
    grad_ref = _reference(grad.values)
    lr_peak = float(lrs.values.max()) if len(lrs) else None
    train_start = _reference(train.values, 0.05) if len(train) else None
    collapse_step = _first_step(findings, "grad_norm_collapse")
    has_eval = len(ev) >= 2
    best_step = best.step if (best is not None and has_eval) else None
    best_val = best.value if best_step is not None else None
    if best_step is not None and best_val is not None and ev.value_at(best_step) is None:
        best_step = None  # the best was taken on another metric: judge on the grid's own curve
    if has_eval and best_step is None:
        i = int(np.argmin(ev.values))
        best_step, best_val = int(ev.steps[i]), float(ev.values[i])
    tol = _noise(ev)
    calm = False  # the overfitting detector judged the rise to be within the eval noise
    for f in findings:
        if f.code == "overfitting":
            nz = f.evidence.get("noise")
            bv = f.evidence.get("best_value")
            if isinstance(nz, (int, float)) and isinstance(bv, (int, float)) and bv > 0:
                tol = max(tol, min(0.05, float(nz) / float(bv)))
            calm = calm or f.severity is Severity.INFO
    train_at_best = None
    if best_step is not None and len(train):
        k = train.nearest(best_step)
        train_at_best = None if k is None else float(train.values[k])

    def grad_dead(c: _Cell) -> bool:
        if c.grad is None:
            return False
        if c.grad < 1e-8:
            return True
        if collapse_step is not None and c.step >= collapse_step:
            return True
        return grad_ref is not None and grad_ref > 0 and c.grad <= grad_ref * _GRAD_DEAD

    def lr_dead(c: _Cell) -> bool:
        return c.lr is not None and lr_peak is not None and lr_peak > 0 and c.lr <= lr_peak * _LR_DEAD

    def train_zero(c: _Cell) -> bool:
        if c.train is None:
            return False
        if c.train <= _ZERO_ABS:
            return True
        return train_start is not None and train_start > 0 and c.train <= train_start * _ZERO_REL

    def train_near_zero(c: _Cell) -> bool:
        if c.train is None:
            return False
        ref = train_at_best if train_at_best else train_start
        return train_zero(c) or (ref is not None and ref > 0 and c.train <= ref * _NEAR_ZERO)

    def dead(c: _Cell) -> bool:
        # seed 003's black flag: train loss zero AND gradients vanishing (or the LR gone).
        if c.train is not None and c.train <= _ZERO_ABS:
            return True  # a loss of exactly zero has no gradient to follow
        return train_zero(c) and (grad_dead(c) or lr_dead(c))

    rank = 0
    for c in cells:
        after_best = best_step is not None and c.step > best_step
        if dead(c):
            label = "dead"
        elif after_best:
            assert best_val is not None
            r = (c.eval / best_val) if (c.eval is not None and best_val > 0) else 1.0
            if r <= 1 + tol or (calm and not train_near_zero(c)):
                label = "divergence"
            elif train_near_zero(c):
                label = "memorization"
            else:
                label = "overfitting"
        elif not has_eval and train_near_zero(c) and _has(findings, "memorization", "suspicious_fast_drop"):
            label = "memorization"
        else:
            label = "learning"
        # the ratchet: a zero loss does not come back to life, and nothing after the best is an improvement
        if _RANK[label] < rank:
            label = _BY_RANK[rank]
        rank = max(rank, _RANK[label])
        c.label = label
        c.flag = _FLAG[label]
        if label == "overfitting" and c.eval is not None and best_val and c.eval >= _DOUBLED * best_val:
            c.flag = "red"  # eval doubled from its optimum, while train is not yet near zero
    _overlay_warmup(cells, lrs, lr)
    _overlay_findings(cells, findings)


def _noise(ev: Series) -> float:
    """Relative eval jitter tolerated before "rising" is called: at least 1%, at most 5%.

    Measured on second differences, which cancel a steady trend: a curve that
    climbs fast is not "noisy", and must not widen its own tolerance.
    """
    v = ev.values
    if len(v) < 6:
        return _NOISE_FLOOR
    d2 = np.abs(np.diff(v, 2))
    rel = float(np.median(d2)) / (2.0 * max(float(np.median(np.abs(v))), 1e-12))
    return float(min(0.05, max(_NOISE_FLOOR, rel)))


def _overlay_warmup(cells: list[_Cell], lrs: Series, lr: LRSchedule | None) -> None:
    """Label the LR ramp at the start as warmup (green), when the LR rises to its peak."""
    end: float | None = None
    inferred = (lr.inferred if lr is not None else None) or {}
    ws = inferred.get("warmup_steps")
    if isinstance(ws, (int, float)) and ws > 0:
        end = float(ws)
    elif len(lrs) >= 3:
        i = int(np.argmax(lrs.values))
        peak = float(lrs.values[i])
        ramp = lrs.values[: i + 1]
        # a ramp: at least 2 rises, starting below 90% of the peak, ending in the first half of the run
        rising = i >= 2 and bool(np.all(np.diff(ramp) >= -1e-12 * peak)) and float(ramp[0]) < 0.9 * peak
        if rising and i < 0.5 * len(lrs):
            end = float(lrs.steps[i])
    if end is None:
        return
    prev = float(lrs.steps[0]) if len(lrs) else 0.0
    for c in cells:
        # a cell is warmup when at least half of its interval lies inside the ramp
        if c.label == "learning" and (end - prev) >= (c.step - prev) / 2:
            c.label = "warmup"
        prev = float(c.step)


def _overlay_findings(cells: list[_Cell], findings: list[Finding]) -> None:
    """Plateaus (yellow) over learning stretches; instability (orange, red at error) over anything milder."""
    prev = -math.inf
    for c in cells:
        lo, hi = prev, c.step
        prev = c.step
        for f in findings:
            if f.start_step is None:
                continue
            fs, fe = f.start_step, f.end_step if f.end_step is not None else f.start_step
            if not (fs <= hi and fe > lo):
                continue
            if f.code == "plateau" and c.label == "learning":
                c.label, c.flag = "plateau", "yellow"
            elif f.code in _UNSTABLE_CODES:
                if f.severity is Severity.INFO or (f.code == "loss_spike" and f.severity < Severity.ERROR):
                    continue  # one warning-level spike is a point, not a phase
                flag = "red" if f.severity >= Severity.ERROR else "orange"
                if c.label in ("warmup", "learning", "plateau", "divergence") or (
                    c.label == "overfitting" and flag == "red" and c.flag != "red"
                ):
                    c.label, c.flag = "unstable", flag


def _has(findings: list[Finding], *codes: str) -> bool:
    return any(f.code in codes for f in findings)


def _first_step(findings: list[Finding], code: str) -> int | None:
    steps = [f.start_step for f in findings if f.code == code and f.start_step is not None]
    return min(steps) if steps else None


# -- merging --------------------------------------------------------------------


def _merge(cells: list[_Cell], first_step: int, run: Run, train: Series, ev: Series) -> list[Phase]:
    groups: list[tuple[str, str, int, int]] = []  # label, flag, start, end
    start = first_step
    for c in cells:
        if groups and groups[-1][0] == c.label and groups[-1][1] == c.flag:
            lab, fl, s, _ = groups[-1]
            groups[-1] = (lab, fl, s, c.step)
        else:
            groups.append((c.label, c.flag, start, c.step))
        start = c.step
    return [Phase(name=lab, start_step=s, end_step=e, flag=fl, summary=_summary(train, ev, s, e)) for lab, fl, s, e in groups]


def _summary(train: Series, ev: Series, s: int, e: int) -> str:
    parts = []
    for name, ser in (("train", train), ("eval", ev)):
        if not len(ser):
            continue
        a, b = ser.nearest(s), ser.nearest(e)
        if a is None or b is None:
            continue
        parts.append(f"{name} {_fmt(float(ser.values[a]))} → {_fmt(float(ser.values[b]))}")
    return ", ".join(parts)


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


__all__ = ["split_phases"]
