"""Split a run into contiguous phases (learning, overfitting, memorization, dead ...), each with a flag.

The flags follow seed 003's "Signs Visible During Training": **yellow** when
eval stops decreasing, **orange** when eval rises, **red** when eval has
doubled from its optimum or train loss is near zero, **black** when train loss
is zero and gradients have vanished (the job is burning GPUs for nothing).

A run is read through its facts (:mod:`trainguard.facts`): the eval curve
cleaned of re-evaluations, its one noise estimate, and the overfitting
verdict. Eval worse than its best is "overfitting" (orange) only where that
verdict says the run overfits; a rise the verdict calls noise, too small or
too late is "turning" (yellow): eval stopped improving, the best point is
behind. A run with a ``no_learning`` finding never shows a green "learning"
phase: its learning stretches are "stalled".

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

from ._arrays import median, unique
from .diagnosis import Best, LRSchedule, Phase
from .facts import facts_of
from .facts.noise import EVAL_NOISE_FLOOR
from .findings import Finding, Severity
from .run import EVAL_LOSS, GRAD_NORM, LEARNING_RATE, TRAIN_LOSS, Run, Series

# Thresholds, each with its reason.
_DOUBLED = 2.0  # seed 003's red flag: "eval loss doubled from optimal"
_NEAR_ZERO = 0.10  # train below 10% of its value at the best point: the model is memorising
_ZERO_REL = 0.01  # train below 1% of its start: zero for practical purposes
_ZERO_ABS = 5e-5  # prints as 0.0000 at the 4 decimals HF logs: "literally zero"
_GRAD_DEAD = 1 / 50  # grad norm under 2% of its early median: seed 003's "x1000" collapse starts here
_LR_DEAD = 0.01  # LR under 1% of its peak: updates are negligible
_TRAIN_BINS = 60

# Rank of a label after the best point (the ratchet) and its default flag.
_RANK = {"warmup": 0, "learning": 0, "plateau": 0, "stalled": 0, "turning": 1, "overfitting": 2, "memorization": 3, "dead": 4}
_FLAG = {
    "warmup": "green",
    "learning": "green",
    "plateau": "yellow",
    "stalled": "orange",
    "turning": "yellow",
    "overfitting": "orange",
    "memorization": "red",
    "dead": "black",
}
_BY_RANK = {1: "turning", 2: "overfitting", 3: "memorization", 4: "dead"}
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
    facts = facts_of(run)
    curve = facts.eval
    if curve is not None and curve.metric == ev_name(run, best) and len(curve) and not curve.higher:
        ev = Series(curve.steps, curve.values, curve.epochs)  # without the re-evaluations the facts dropped
    cells = _grid(run, train, ev)
    if not cells:
        return []
    first_step = min(
        [int(s.steps[0]) for s in (train, ev) if len(s)] or [cells[0].step]
    )
    _label(cells, run, findings, best, train, ev, lr)
    return _merge(cells, first_step, run, train, ev)


# -- the grid -------------------------------------------------------------------


def ev_name(run: Run, best: Best | None) -> str:
    """The eval metric the phases are drawn on: the best point's, when it is lower-is-better (a loss or a perplexity)."""
    name = EVAL_LOSS
    if best is not None and best.metric.startswith("eval_"):
        name = best.metric
    if not any(k in name for k in ("loss", "ppl", "perplexity")):
        name = EVAL_LOSS
    return name


def _eval_series(run: Run, best: Best | None) -> Series:
    """The eval curve the best point was taken on, when it is lower-is-better (a loss or a perplexity)."""
    return run.history.get_series(ev_name(run, best)).finite().sorted()


def _window_medians(s: Series, edges: np.ndarray) -> list[float | None]:
    """Median of the points in each grid interval (edges[i-1], edges[i]]; the nearest point when one is empty.

    One sort for the whole series instead of a median per interval: a run with
    thousands of evals has thousands of intervals.
    """
    out: list[float | None] = [None] * len(edges)
    if not len(s) or not len(edges):
        return out
    st, v = s.steps, s.values
    g = np.searchsorted(edges, st, side="left")  # the interval each point falls in
    m = g < len(edges)
    gg, vv = g[m], v[m]
    counts = np.bincount(gg, minlength=len(edges))
    order = np.lexsort((vv, gg))
    sv = vv[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    med = np.where(has, (sv[np.minimum(lo, len(sv) - 1)] + sv[np.minimum(hi, len(sv) - 1)]) / 2 if len(sv) else 0.0, np.nan)
    med_l, has_l = med.tolist(), has.tolist()  # Python floats once: per-item numpy indexing costs ~1 us a cell
    for i in range(len(edges)):
        if has_l[i]:
            out[i] = med_l[i]
        else:
            k = s.nearest(int(edges[i]))
            out[i] = None if k is None else float(v[k])
    return out


def _grid(run: Run, train: Series, ev: Series) -> list[_Cell]:
    grad = run.history.get_series(GRAD_NORM).finite().sorted()
    lr = run.history.get_series(LEARNING_RATE).finite().sorted()
    if len(ev) >= 2:
        steps = unique(ev.steps).tolist()
    elif len(train) >= 2:
        n = min(_TRAIN_BINS, len(train))
        idx = unique(np.linspace(0, len(train) - 1, n + 1).round().astype(int)[1:])
        steps = train.steps[idx].tolist()
    else:
        return []
    edges = np.asarray(steps, dtype=np.int64)
    tr, gr, lrs = _window_medians(train, edges), _window_medians(grad, edges), _window_medians(lr, edges)
    evs: list[float | None] = [None] * len(steps)
    if len(ev) >= 2:
        idx = np.clip(np.searchsorted(ev.steps, edges), 0, len(ev) - 1)
        ev_v, ev_s = ev.values[idx].tolist(), ev.steps[idx].tolist()
        evs = [val if at == st else None for val, at, st in zip(ev_v, ev_s, steps, strict=True)]
    return [_Cell(step=st, eval=evs[i], train=tr[i], grad=gr[i], lr=lrs[i]) for i, st in enumerate(steps)]


# -- labels ---------------------------------------------------------------------


def _reference(values: np.ndarray, frac: float = 0.25) -> float | None:
    """Median of the first ``frac`` of a curve (at least 3 points): its healthy early level."""
    if not len(values):
        return None
    k = max(3, int(len(values) * frac))
    return float(median(values[:k]))


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
    verdict = facts_of(run).overfit
    tol = verdict.noise if verdict is not None else EVAL_NOISE_FLOOR
    calm = verdict is None or not verdict.is_overfitting  # the one verdict: not overfitting, so "turning"
    stalled = any(f.code == "no_learning" and f.severity >= Severity.WARNING for f in findings)
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
                label = "turning"
            elif train_near_zero(c):
                label = "memorization"
            else:
                label = "overfitting"
        elif not has_eval and train_near_zero(c) and _has(findings, "memorization", "suspicious_fast_drop"):
            label = "memorization"
        else:
            label = "stalled" if stalled else "learning"
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
                if c.label in ("warmup", "learning", "plateau", "stalled", "turning") or (
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
