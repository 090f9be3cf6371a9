"""Recovering optimizer steps for HF stdout dict lines, which carry none.

A peer tool numbers the k-th log line k and so reports overfitting "since
step 14" of a 5000-step run. The step of a log is recovered, best first, from:

1. the tqdm counter redrawn right after the dict (exact: ``tqdm.write`` redraws
   the bar with ``n == global_step``), kept only when its total is the run's
   planned steps (the eval bar has another total) and it never goes backwards;
2. ``epoch x steps_per_epoch``, with steps_per_epoch from an exact anchor, from
   the planned total / epochs, or from the summary line (runtime x steps/s)
   refined by the epoch increment per log (epochs are printed rounded, so the
   result is snapped to the logging grid);
3. ``k x logging_steps`` (the configured value, else the one implied above,
   else HF's default of 500, said in the notes).

An eval line belongs to the step of the train log just before it (HF evaluates
right after logging at that step) unless its epoch puts it clearly later
(``eval_strategy="epoch"`` with a logging grid that does not divide the epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._arrays import median
from ._hf_scan import KIND_EVAL, KIND_OTHER, KIND_SUMMARY, KIND_TRAIN

HF_DEFAULT_LOGGING_STEPS = 500


@dataclass
class Hints:
    """What is known of the run apart from its dict lines."""

    logging_steps: int | None = None
    num_train_epochs: float | None = None
    max_steps: int | None = None  # "Total optimization steps" banner or a config
    runtime: float | None = None  # from the summary line
    steps_per_second: float | None = None
    final_epoch: float | None = None


@dataclass
class Resolution:
    steps: np.ndarray
    planned_steps: int | None = None
    steps_per_epoch: float | None = None
    logging_steps: int | None = None
    notes: list[str] = field(default_factory=list)


def segments(kind: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """Segment (run) id of each record: a new run after a summary line, or when the epoch restarts near 0.

    A resume from a checkpoint rewinds the epoch only a little and stays in the
    same run; a fresh run in the same file starts again below half the epoch
    reached (and after a summary line, always). Eval lines right after a
    summary at its final epoch are ``trainer.evaluate()`` called after
    ``trainer.train()``: they stay in the run (at its last step), and a new run
    starts only with the first record after them.
    """
    n = len(kind)
    start = np.zeros(n, bool)
    metric = np.flatnonzero(kind != KIND_SUMMARY)
    summ = np.flatnonzero(kind == KIND_SUMMARY)
    if len(summ) and len(metric):
        nxt = np.searchsorted(metric, summ, side="right")
        keep = nxt < len(metric)
        for si, j in zip(summ[keep].tolist(), nxt[keep].tolist(), strict=True):
            final = epoch[si]
            while j < len(metric) and kind[metric[j]] == KIND_EVAL and _at_or_after(epoch[metric[j]], final):
                j += 1
            if j < len(metric):
                start[metric[j]] = True
    tr = np.flatnonzero((kind == KIND_TRAIN) & np.isfinite(epoch))
    if len(tr) > 1:
        e = epoch[tr]
        prev = e[:-1]
        reset = (e[1:] < 0.5 * prev) & (prev - e[1:] > 0.05)
        start[tr[1:][reset]] = True
    start[0:1] = False
    return np.cumsum(start)


def _at_or_after(e: float, final: float) -> bool:
    """An eval epoch at (or past) the summary's final epoch, or either unknown."""
    return bool(e != e or final != final or e >= final - 1e-6)


def resolve(kind: np.ndarray, epoch: np.ndarray, bar_n: np.ndarray, bar_total: np.ndarray, hints: Hints) -> Resolution:
    """Steps for one run's records (file order); see the module docstring for the order of evidence."""
    n = len(kind)
    res = Resolution(np.zeros(n, np.int64))
    trainlike = (kind == KIND_TRAIN) | (kind == KIND_OTHER)
    has_bar = (bar_total > 0) & (bar_n > 0)  # "0/N" right after a dict is the eval bar starting, never a train step
    total: int | None = None
    if has_bar.any():
        vals, counts = np.unique(bar_total[has_bar], return_counts=True)
        total = int(vals[np.argmax(counts)])
    exact = has_bar & (bar_total == total) & (kind != KIND_SUMMARY)
    if exact.any():  # a counter that goes backwards is a stale redraw (buffered stdout), not a step
        idx = np.flatnonzero(exact)
        b = bar_n[idx]
        exact[idx[b < np.maximum.accumulate(b)]] = False
        del idx, b  # on a long log each per-record temporary is megabytes: none outlives its use
    planned = total or hints.max_steps
    off = _counter_offset(bar_n, epoch, exact, planned / hints.num_train_epochs if planned and hints.num_train_epochs else None)
    if off:
        bar_n = np.where(exact, bar_n - off, bar_n)
        res.notes.append(f"hf_stdout: the tqdm counter after each line runs {off:+d} step(s) from the epoch x steps/epoch; "
                         "the bar was not redrawn after the dict lines (the next refresh was read), so counters were corrected by the epoch")
    approx_total = None
    if hints.runtime and hints.steps_per_second:
        approx_total = hints.runtime * hints.steps_per_second
    res.planned_steps = planned or (round(approx_total) if approx_total else None)

    tr_idx = np.flatnonzero(trainlike & np.isfinite(epoch))
    n_tr = len(tr_idx)
    slope = None  # epoch increment per train log
    if n_tr >= 2:
        e0, e1 = float(epoch[tr_idx[0]]), float(epoch[tr_idx[-1]])
        if e1 > e0:
            slope = (e1 - e0) / (n_tr - 1)
    del tr_idx

    spe: float | None = None
    how = ""
    anchors = np.flatnonzero(exact & np.isfinite(epoch) & (epoch > 0))
    n_anchors = len(anchors)
    a = int(anchors[np.argmax(epoch[anchors])]) if n_anchors else -1
    del anchors
    if n_anchors:
        spe, how = float(bar_n[a]) / float(epoch[a]), "a tqdm counter"
    elif planned and hints.num_train_epochs:
        spe, how = planned / hints.num_train_epochs, "planned steps / epochs"
    else:
        final_e = hints.final_epoch or (float(np.nanmax(epoch)) if np.isfinite(epoch).any() else None)
        tot = planned or approx_total
        if tot and final_e:
            spe, how = tot / final_e, "the summary line (runtime x steps/s)" if not planned else "planned steps / final epoch"
    L = hints.logging_steps
    L_how = "configured"
    ex_tr = np.flatnonzero(exact & trainlike)
    if L is None and len(ex_tr) >= 2:
        # only between train logs that follow each other: two counters with logs between them span several intervals
        order = np.searchsorted(np.flatnonzero(trainlike), ex_tr)
        d = np.diff(bar_n[ex_tr])
        d = d[(d > 0) & (np.diff(order) == 1)]
        if len(d):
            vals, counts = np.unique(d, return_counts=True)
            L, L_how = int(vals[np.argmax(counts)]), "tqdm counters"
        del order, d
    del ex_tr
    exact_total = bool(planned) and how.startswith("planned")
    if spe and slope and not n_anchors:
        # epochs are printed rounded: fix the integer logging grid first
        if L is None:
            span = max(n_tr - 1, 1)
            L = _round_grid(slope * spe, spe * 0.01 / span + 0.5)
            L_how = "epoch increment x steps/epoch"
        if L and not exact_total:
            spe = L / slope  # the summary's runtime x steps/s is only approximate: trust the grid
        if abs(spe - round(spe)) < 0.02 * spe:
            spe = float(round(spe))
    elif spe and slope and L is None and n_tr >= 3:
        # exact anchors fix steps/epoch, but not the grid between them (an eval-only anchor, say)
        L = _round_grid(slope * spe, spe * 0.01 / max(n_tr - 1, 1) + 0.5)
        L_how = "epoch increment x steps/epoch"
    if L and L > 1 and n_anchors and L_how != "tqdm counters":
        # HF logs when global_step % logging_steps == 0: a counter read after a train line that is off that
        # grid is a later refresh (buffered stdout), not the step; with most of them off, none is trusted
        ex_tr_idx = np.flatnonzero(exact & trainlike)
        off_grid = (bar_n[ex_tr_idx] % L != 0) & (bar_n[ex_tr_idx] != (planned or -1))
        if off_grid.any() and 2 * int(off_grid.sum()) >= len(ex_tr_idx):
            exact[:] = False
            final_e = hints.final_epoch or (float(np.nanmax(epoch)) if np.isfinite(epoch).any() else None)
            tot = planned or approx_total
            if tot and final_e:
                spe, how = tot / final_e, "planned steps / final epoch"
                if abs(spe - round(spe)) < 0.02 * spe:
                    spe = float(round(spe))
            res.notes.append(f"hf_stdout: the tqdm counters after dict lines are off the {L}-step logging grid "
                             "(later refreshes of a buffered bar), so steps come from the epochs")
    res.steps_per_epoch = spe
    if spe and not planned and hints.final_epoch:
        res.planned_steps = round(spe * hints.final_epoch)  # refined: runtime x steps/s is rounded
    if L is None:
        L_how = "assumed (HF default)"
    res.logging_steps = L
    step_L = L or HF_DEFAULT_LOGGING_STEPS

    steps = res.steps
    metric = kind != KIND_SUMMARY
    if exact[metric].all():  # the usual tqdm-on case: no per-record work
        steps[:] = np.where(exact, bar_n, 0)
        steps[:] = np.maximum.accumulate(steps)
        res.notes.append(f"hf_stdout: dict lines carry no step; all {int(metric.sum())} steps read from the tqdm counter after each line")
        return res
    prev = 0
    n_exact = n_epoch = n_grid = 0
    bar_l = bar_n.tolist()
    ep_l = epoch.tolist()
    ex_l = exact.tolist()
    kind_l = kind.tolist()
    tl_l = trainlike.tolist()
    out: list[int] = [0] * n
    for i in range(n):
        k = kind_l[i]
        e = ep_l[i]
        if ex_l[i]:
            s = bar_l[i]
            n_exact += 1
        elif k == KIND_SUMMARY:
            s = prev
        elif spe and e == e:
            x = e * spe
            err = spe * max(0.005, 5e-4 * e) + 0.5
            if tl_l[i]:
                cand = prev + step_L
                snap = round(x / step_L) * step_L
                if abs(cand - x) <= err or snap == cand:  # the next grid point, and the nearest one to the epoch
                    s = cand
                else:
                    s = snap if abs(snap - x) <= err else round(x)
            else:
                s = prev if abs(x - prev) <= err else round(x)
            n_epoch += 1
        elif tl_l[i]:
            s = prev + step_L
            n_grid += 1
        else:
            s = prev
        if tl_l[i] or k == KIND_EVAL:
            prev = max(prev, s) if tl_l[i] else prev
        out[i] = s
    steps[:] = out
    parts = []
    if n_exact:
        parts.append(f"{n_exact} from the tqdm counter after each line")
    if n_epoch:
        parts.append(f"{n_epoch} from epoch x {spe:g} steps/epoch (from {how})")
    if n_grid:
        parts.append(f"{n_grid} as log index x logging_steps {step_L} ({L_how})")
    if parts:
        res.notes.append("hf_stdout: dict lines carry no step; steps recovered: " + "; ".join(parts))
    return res


def _counter_offset(bar_n: np.ndarray, epoch: np.ndarray, exact: np.ndarray, spe: float | None) -> int:
    """Steps by which the tqdm counters read after dict lines are off, settled by the epochs (0: none, or unsure).

    When a script's bar is redrawn *before* each dict line but not after it,
    the counter found after a dict is the next refresh, one or more steps
    later. The epoch printed in the dict is exact up to rounding, so
    ``counter - epoch x steps_per_epoch`` is then the same non-zero integer on
    every line. The steps per epoch are the banner's (planned / epochs), else
    the slope of a straight-line fit; the offset is used only when that
    difference is steady (median absolute deviation under a quarter step), so
    epoch rounding on long epochs never moves a step.
    """
    idx = np.flatnonzero(exact & np.isfinite(epoch) & (epoch > 0))
    if len(idx) < 3:
        return 0
    b = bar_n[idx].astype(float)
    e = epoch[idx]
    if spe is None:
        if float(np.ptp(e)) <= 0:
            return 0
        ec = e - e.mean()  # least-squares slope in closed form: polyfit's lstsq needs ~10 copies of the data
        slope = float(np.dot(ec, b - b.mean()) / np.dot(ec, ec))
        del ec
        d = b - slope * e
    else:
        d = b - spe * e
    del b, e
    med = float(median(d))
    k = round(med)
    if k == 0 or abs(med - k) > 0.25 or float(median(np.abs(d - med))) > 0.25:
        return 0
    return int(k)


def _round_grid(x: float, tol: float) -> int | None:
    """The logging interval near ``x``: the roundest integer within ``tol`` (500 over 499, 10 over 11)."""
    lo, hi = max(1, int(np.floor(x - tol))), int(np.ceil(x + tol))
    if hi < 1:
        return None
    best, score = max(1, round(x)), -1
    for c in range(lo, hi + 1):
        if abs(c - x) > tol:
            continue
        z = next((s for s, m in enumerate((1000, 500, 100, 50, 10, 5)) if c % m == 0), 6)
        sc = (6 - z) * 10 - abs(c - x)
        if sc > score:
            best, score = c, sc
    return best
