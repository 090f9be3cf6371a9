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

The grid is held as numpy columns (one entry per cell, NaN where a cell has no
value) and labelled with array operations, never a Python loop over cells: a
run evaluated every 100 steps for a million steps has 10,000 cells, and a
per-cell loop was most of the time ``analyze`` spent judging it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import median, row_ranks, unique
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

# Labels and flags as small integer codes (the grid's label and flag columns index these tuples).
_LABELS = ("warmup", "learning", "plateau", "stalled", "turning", "overfitting", "memorization", "dead", "unstable")
_FLAGS = ("green", "yellow", "orange", "red", "black")
_L = {name: i for i, name in enumerate(_LABELS)}
_F = {name: i for i, name in enumerate(_FLAGS)}
_RANK_OF = np.array([_RANK.get(name, 0) for name in _LABELS], dtype=np.int8)
_FLAG_OF = np.array([_F[_FLAG.get(name, "orange")] for name in _LABELS], dtype=np.int8)  # "unstable" sets its own
_BY_RANK_OF = np.array([_L["learning"]] + [_L[_BY_RANK[r]] for r in range(1, 5)], dtype=np.int8)  # index 0 unused
_MILD = np.array([_L[name] for name in ("warmup", "learning", "plateau", "stalled", "turning")], dtype=np.int8)
_UNSTABLE_CODES = ("nan_loss", "divergence", "instability", "grad_norm_explosion", "loss_spike")


@dataclass
class _Grid:
    """The grid as columns, one entry per cell: the state observed over (previous step, step].

    ``eval``, ``train``, ``grad`` and ``lr`` are NaN where the cell has no
    value (every series is finite, so NaN never means anything else);
    ``label`` and ``flag`` are codes into :data:`_LABELS` and :data:`_FLAGS`.
    """

    step: np.ndarray
    eval: np.ndarray
    train: np.ndarray
    grad: np.ndarray
    lr: np.ndarray
    label: np.ndarray
    flag: np.ndarray


def split_phases(run: Run, findings: list[Finding], best: Best | None, lr: LRSchedule | None = None) -> list[Phase]:
    """The run's phases in step order; empty when the run has no train or eval points.

    Consecutive grid cells with the same label and flag form one phase; a
    phase starts at the step where the previous one ended (a change is seen at
    an eval, and describes the interval leading to it), as in the seed's
    "Epochs 1-15, 15-25 ...".
    """
    train = run.history.get_series(TRAIN_LOSS).finite().sorted()
    grad = run.history.get_series(GRAD_NORM).finite().sorted()
    lrs = run.history.get_series(LEARNING_RATE).finite().sorted()
    ev = _eval_series(run, best)
    facts = facts_of(run)
    curve = facts.eval
    if curve is not None and curve.metric == ev_name(run, best) and len(curve) and not curve.higher:
        ev = Series(curve.steps, curve.values, curve.epochs)  # without the re-evaluations the facts dropped
    g = _grid(train, ev, grad, lrs)
    if g is None:
        return []
    first_step = min(
        [int(s.steps[0]) for s in (train, ev) if len(s)] or [int(g.step[0])]
    )
    _label(g, run, findings, best, train, ev, grad, lrs, lr)
    return _merge(g, first_step, train, ev)


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


def _nearest(st: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the index :meth:`Series.nearest` gives on the step-sorted ``st`` (not empty).

    ``Series.nearest`` is an argmin over every point (the first of equally
    near ones); on sorted steps the nearest is the last step below the target
    (its first occurrence) or the first step at or above it, the lower one on
    a tie: two binary searches per target instead of a pass over the series.
    """
    n = len(st)
    j = np.searchsorted(st, targets, side="left")  # st[:j] < target <= st[j:]
    jl = np.maximum(j - 1, 0)
    jr = np.minimum(j, n - 1)
    first_l = np.searchsorted(st, st[jl], side="left")
    use_left = (j > 0) & ((j >= n) | (targets - st[jl] <= st[jr] - targets))
    return np.where(use_left, first_l, jr)


def _group_medians(vv: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each group of ``vv``, whose consecutive groups have ``counts`` points; garbage where a count is 0.

    The groups are the points between two evals: usually a handful each, so
    they are laid out as the rows of one matrix and sorted along the rows in
    one call. When every group has the same size (a run that logs at a fixed
    interval) the matrix is ``vv`` itself, and a selection network picks the
    two middle values of all rows at once (:func:`row_ranks`); otherwise
    short rows are padded with +inf, which sorts after every finite value.
    Groups of very unequal size would make that matrix huge; they take one
    lexsort instead.
    """
    ng, n = len(counts), len(vv)
    width = int(counts.max())
    lo = (counts - 1) // 2
    hi = counts // 2
    rows = np.arange(ng)
    if width * ng == n:  # every group the same size: the same two order statistics of every row
        a, b = row_ranks(vv.reshape(ng, width), (int(lo[0]), int(hi[0])))
        return (a + b) / 2
    starts = np.cumsum(counts) - counts
    gg = np.repeat(rows, counts)
    if ng * width <= 4 * n + 4096:
        mat = np.full((ng, width), np.inf)
        mat[gg, np.arange(n) - starts[gg]] = vv
        mat.sort(axis=1)
        return (mat[rows, lo] + mat[rows, hi]) / 2
    sv = vv[np.lexsort((vv, gg))]
    return (sv[np.clip(starts + lo, 0, n - 1)] + sv[np.clip(starts + hi, 0, n - 1)]) / 2


def _window_medians(s: Series, edges: np.ndarray, bounds: dict[tuple, np.ndarray] | None = None) -> np.ndarray:
    """Median of the points of the step-sorted ``s`` in each grid interval (edges[i-1], edges[i]]; the nearest point when one is empty.

    NaN where ``s`` has no points. The points of an interval are a slice of
    ``s`` (its steps are sorted), found by one binary search per edge; then
    one sort of all the slices at once instead of a median per interval: a run
    with thousands of evals has thousands of intervals. ``bounds`` keeps the
    slices of each steps array: the train loss, grad norm and LR of one log
    often share theirs (same memory, so the same steps).
    """
    out = np.full(len(edges), np.nan)
    if not len(s) or not len(edges):
        return out
    st, v = s.steps, s.values
    key = (st.__array_interface__["data"][0], st.shape, st.strides)
    upto = None if bounds is None else bounds.get(key)
    if upto is None:
        upto = np.searchsorted(st, edges, side="right")  # points at or before each edge
        if bounds is not None:
            bounds[key] = upto
    counts = np.diff(upto, prepend=0)
    has = counts > 0
    if upto[-1]:
        out[has] = _group_medians(v[: upto[-1]], counts)[has]
    empty = np.nonzero(~has)[0]
    if len(empty):
        out[empty] = v[_nearest(st, edges[empty])]
    return out


def _grid(train: Series, ev: Series, grad: Series, lrs: Series) -> _Grid | None:
    if len(ev) >= 2:
        edges = unique(ev.steps)
    elif len(train) >= 2:
        n = min(_TRAIN_BINS, len(train))
        idx = unique(np.linspace(0, len(train) - 1, n + 1).round().astype(int)[1:])
        edges = train.steps[idx]
    else:
        return None
    edges = np.asarray(edges, dtype=np.int64)
    evs = np.full(len(edges), np.nan)
    if len(ev) >= 2:
        idx = np.clip(np.searchsorted(ev.steps, edges), 0, len(ev) - 1)
        evs = np.where(ev.steps[idx] == edges, ev.values[idx], np.nan)
    n = len(edges)
    bounds: dict[tuple, np.ndarray] = {}
    return _Grid(
        step=edges,
        eval=evs,
        train=_window_medians(train, edges, bounds),
        grad=_window_medians(grad, edges, bounds),
        lr=_window_medians(lrs, edges, bounds),
        label=np.full(n, _L["learning"], dtype=np.int8),
        flag=np.full(n, _F["green"], dtype=np.int8),
    )


# -- labels ---------------------------------------------------------------------


def _reference(values: np.ndarray, frac: float = 0.25) -> float | None:
    """Median of the first ``frac`` of a curve (at least 3 points): its healthy early level."""
    if not len(values):
        return None
    k = max(3, int(len(values) * frac))
    return float(median(values[:k]))


def _label(
    g: _Grid,
    run: Run,
    findings: list[Finding],
    best: Best | None,
    train: Series,
    ev: Series,
    grad: Series,
    lrs: Series,
    lr: LRSchedule | None,
) -> None:
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
        train_at_best = float(train.values[_nearest(train.steps, np.array([best_step]))[0]])

    # Each predicate is False where its value is missing (NaN compares False).
    tr, gr, step = g.train, g.grad, g.step
    grad_dead = gr < 1e-8
    if collapse_step is not None:
        grad_dead |= ~np.isnan(gr) & (step >= collapse_step)
    if grad_ref is not None and grad_ref > 0:
        grad_dead |= gr <= grad_ref * _GRAD_DEAD
    lr_dead = g.lr <= lr_peak * _LR_DEAD if (lr_peak is not None and lr_peak > 0) else np.zeros(len(step), bool)
    train_zero = tr <= _ZERO_ABS
    if train_start is not None and train_start > 0:
        train_zero |= tr <= train_start * _ZERO_REL
    ref = train_at_best if train_at_best else train_start
    train_near_zero = train_zero | (tr <= ref * _NEAR_ZERO) if (ref is not None and ref > 0) else train_zero
    # seed 003's black flag: train loss zero AND gradients vanishing (or the LR gone); a loss of exactly zero
    # has no gradient to follow
    dead = (tr <= _ZERO_ABS) | (train_zero & (grad_dead | lr_dead))

    base = np.full(len(step), _L["stalled" if stalled else "learning"], dtype=np.int8)
    if not has_eval and _has(findings, "memorization", "suspicious_fast_drop"):
        base[train_near_zero] = _L["memorization"]
    if best_step is not None:
        assert best_val is not None
        if best_val > 0:
            with np.errstate(all="ignore"):  # as Python floats: an overflow is inf, not a warning
                r = np.where(np.isnan(g.eval), 1.0, g.eval / best_val)
        else:
            r = np.ones(len(step))
        turning = (r <= 1 + tol) | (calm & ~train_near_zero)
        after = np.where(turning, _L["turning"], np.where(train_near_zero, _L["memorization"], _L["overfitting"]))
        base = np.where(step > best_step, after, base).astype(np.int8)
    base[dead] = _L["dead"]
    # the ratchet: a zero loss does not come back to life, and nothing after the best is an improvement.
    # The rank so far is the running maximum; above 0 it names the label, as one label has each rank.
    rank = np.maximum.accumulate(_RANK_OF[base])
    g.label = np.where(rank > 0, _BY_RANK_OF[rank], base).astype(np.int8)
    g.flag = _FLAG_OF[g.label]
    if best_val:
        # eval doubled from its optimum, while train is not yet near zero
        g.flag[(g.label == _L["overfitting"]) & (g.eval >= _DOUBLED * best_val)] = _F["red"]
    _overlay_warmup(g, lrs, lr)
    _overlay_findings(g, findings)


def _overlay_warmup(g: _Grid, lrs: Series, lr: LRSchedule | None) -> None:
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
    # a cell is warmup when at least half of its interval (previous step, step] lies inside the ramp
    step = g.step.astype(np.float64)
    prev = np.empty_like(step)
    prev[0] = float(lrs.steps[0]) if len(lrs) else 0.0
    prev[1:] = step[:-1]
    g.label[(g.label == _L["learning"]) & ((end - prev) >= (step - prev) / 2)] = _L["warmup"]


def _overlay_findings(g: _Grid, findings: list[Finding]) -> None:
    """Plateaus (yellow) over learning stretches; instability (orange, red at error) over anything milder.

    One finding at a time over all cells, in the findings' order: what each
    cell sees is the same sequence of overlays as in a loop over cells.
    """
    hi = g.step
    lo = np.empty_like(hi)  # the previous cell's step; the first cell reaches back to -inf
    lo[1:] = hi[:-1]
    label, flag = g.label, g.flag
    for f in findings:
        if f.start_step is None:
            continue
        fs, fe = f.start_step, f.end_step if f.end_step is not None else f.start_step
        hit = (fs <= hi) & (fe > lo)
        hit[0] = fs <= hi[0]
        if not hit.any():
            continue
        if f.code == "plateau":
            m = hit & (label == _L["learning"])
            label[m], flag[m] = _L["plateau"], _F["yellow"]
        elif f.code in _UNSTABLE_CODES:
            if f.severity is Severity.INFO or (f.code == "loss_spike" and f.severity < Severity.ERROR):
                continue  # one warning-level spike is a point, not a phase
            red = f.severity >= Severity.ERROR
            m = np.isin(label, _MILD)
            if red:
                m |= (label == _L["overfitting"]) & (flag != _F["red"])
            m &= hit
            label[m], flag[m] = _L["unstable"], _F["red" if red else "orange"]


def _has(findings: list[Finding], *codes: str) -> bool:
    return any(f.code in codes for f in findings)


def _first_step(findings: list[Finding], code: str) -> int | None:
    steps = [f.start_step for f in findings if f.code == code and f.start_step is not None]
    return min(steps) if steps else None


# -- merging --------------------------------------------------------------------


def _merge(g: _Grid, first_step: int, train: Series, ev: Series) -> list[Phase]:
    """Runs of cells with one label and flag, as phases: each starts where the one before it ended.

    A curve that flips around twice its best after the best point alternates
    red and orange cells, so a long run can have tens of thousands of phases:
    every per-phase quantity (ends, names, summaries) is taken for all phases
    at once, and the loop only assembles the :class:`Phase` objects.
    """
    key = g.label.astype(np.int16) * len(_FLAGS) + g.flag
    firsts = np.concatenate([[0], np.nonzero(key[1:] != key[:-1])[0] + 1])
    lasts = np.append(firsts[1:] - 1, len(key) - 1)
    ends = g.step[lasts]
    starts = np.empty_like(ends)
    starts[0] = first_step  # the first phase reaches back to the run's first point
    starts[1:] = ends[:-1]
    names = [_LABELS[i] for i in g.label[firsts].tolist()]
    flags = [_FLAGS[i] for i in g.flag[firsts].tolist()]
    summaries = _summaries(train, ev, starts, ends)
    # positional: a quarter cheaper than keywords for a frozen dataclass, per phase
    return [
        Phase(lab, s, e, fl, text)
        for lab, s, e, fl, text in zip(names, starts.tolist(), ends.tolist(), flags, summaries, strict=True)
    ]


def _summaries(train: Series, ev: Series, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """Each phase's train and eval values at its ends (their nearest points; both series are step-sorted).

    One vectorised :func:`_nearest` over all starts and all ends per series,
    instead of two binary searches per phase, and each distinct value is
    formatted once (:func:`_fmt_many`): consecutive phases share an end, and a
    flipping eval curve takes the same two values over and over. What is left
    per phase is joining its strings.
    """
    n = len(starts)
    cols: list[tuple[str, list[str], list[str]]] = []
    for name, ser in (("train", train), ("eval", ev)):
        if not len(ser):
            continue
        v = ser.values[_nearest(ser.steps, np.concatenate([starts, ends]))]
        distinct = unique(v)
        text = _fmt_many(distinct)[np.searchsorted(distinct, v)].tolist()
        cols.append((name, text[:n], text[n:]))
    if not cols:
        return [""] * n
    if len(cols) == 1:
        name, sa, sb = cols[0]
        return [f"{name} {x} → {y}" for x, y in zip(sa, sb, strict=True)]
    (n1, a1, b1), (n2, a2, b2) = cols
    return [f"{n1} {w} → {x}, {n2} {y} → {z}" for w, x, y, z in zip(a1, b1, a2, b2, strict=True)]


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


def _fmt_many(x: np.ndarray) -> np.ndarray:
    """:func:`_fmt` of each value of the float array ``x``, as an object array of strings.

    The choice between "0", 3 and 4 significant digits is made with array
    comparisons (the same ones, so the same branch for NaN, inf and -0.0),
    leaving one ``format`` call per non-zero value instead of a Python
    function call with its tests: a run can have tens of thousands of phases.
    """
    out = np.empty(len(x), dtype=object)
    ax = np.abs(x)
    zero = x == 0
    wide = ~zero & ((ax >= 1e5) | (ax < 1e-3))
    mid = ~zero & ~wide
    out[zero] = "0"
    out[wide] = [format(v, ".3g") for v in x[wide].tolist()]
    out[mid] = [format(v, ".4g") for v in x[mid].tolist()]
    return out


__all__ = ["split_phases"]
