"""Throughput and memory, where logged: a step-time slowdown and a GPU-memory climb.

Both compare medians of the first and last fifth of the run (after skipping
the first 5 %, where compilation, caching and allocator warm-up make early
steps unrepresentative). Step time comes from a ``step_time`` series, else
from ``throughput`` (inverted), else from the wall clock of the train-loss
logs. A slowdown of >= 30 % or a memory climb of >= 20 % that keeps rising
(late > mid > early) is a warning: dataloader starvation, fragmentation, a
growing cache or a leak (tensors kept alive across steps).
"""

from __future__ import annotations

import numpy as np

from .._arrays import median
from ..facts._smoothing import block_reduce
from ..facts._view import fmt, run_xy
from ..findings import Finding, Severity
from ..run import GPU_MEM, STEP_TIME, THROUGHPUT, TRAIN_LOSS, Run


def _levels(st: np.ndarray, v: np.ndarray) -> tuple[float, float, float, int, int] | None:
    st, v = block_reduce(st, v, 4096)
    skip = len(v) // 20
    st, v = st[skip:], v[skip:]
    if len(v) < 6:
        return None
    k = max(2, len(v) // 5)
    early, late = float(median(v[:k])), float(median(v[-k:]))
    mid = float(median(v[k:-k])) if len(v) > 2 * k else (early + late) / 2
    return early, mid, late, int(st[0]), int(st[-1])


def _step_times(run: Run) -> tuple[np.ndarray, np.ndarray, str] | None:
    st, v = run_xy(run, STEP_TIME)
    if len(v) >= 6:
        return st, v, STEP_TIME
    st, v = run_xy(run, THROUGHPUT)
    if len(v) >= 6 and float(v.min()) > 0:
        return st, 1.0 / v, THROUGHPUT
    s = run.history.get_series(TRAIN_LOSS)
    if s.has_wall_time():
        o = s.sorted()
        m = np.isfinite(o.wall_time)
        ss, w = o.steps[m], o.wall_time[m]
        if len(ss) >= 7:
            ds = np.diff(ss).astype(float)
            ok = ds > 0
            if ok.sum() >= 6:
                return ss[1:][ok], np.diff(w)[ok] / ds[ok], "wall_time"
    return None


def detect(run: Run, *, slowdown: float = 1.3, climb: float = 1.2) -> list[Finding]:
    """``slowdown`` and ``memory_climb`` findings, only where those series exist."""
    out: list[Finding] = []
    got = _step_times(run)
    if got is not None:
        st, v, src = got
        lv = _levels(st, v)
        if lv is not None:
            early, mid, late, s0, s1 = lv
            if early > 0 and late / early >= slowdown and mid <= late * 1.05:
                r = late / early
                what = "throughput fell" if src == THROUGHPUT else "steps got slower"
                msg = (
                    f"Training slowed down: {what} by x{r:.2f} (median {fmt(early)} s/step early, {fmt(late)} late, "
                    f"from {src}): check dataloader workers, memory fragmentation, growing sequence lengths or logging overhead."
                )
                ev = {"source": src, "early_median": early, "mid_median": mid, "late_median": late, "ratio": r}
                out.append(Finding("slowdown", Severity.WARNING, msg, s0, s1, ev, 0.7))
    st, v = run_xy(run, GPU_MEM)
    if len(v) >= 6:
        lv = _levels(st, v)
        if lv is not None:
            early, mid, late, s0, s1 = lv
            if early > 0 and late / early >= climb and early < mid < late:
                r = late / early
                msg = (
                    f"GPU memory keeps climbing: median {fmt(early)} early, {fmt(mid)} mid-run, {fmt(late)} late (x{r:.2f}): "
                    "a leak (tensors or graphs kept across steps, e.g. accumulating un-detached losses) or fragmentation; "
                    "an OOM may follow."
                )
                ev = {"early_median": early, "mid_median": mid, "late_median": late, "ratio": r}
                out.append(Finding("memory_climb", Severity.WARNING, msg, s0, s1, ev, 0.7))
    return out


__all__ = ["detect"]
