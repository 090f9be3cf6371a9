"""The eval curve a run is judged on, cleaned of the quirks of real logs, and the train loss paired with it.

Real logs carry evals that are not part of the training curve:

- **the final re-evaluation of the loaded best model**: with
  ``load_best_model_at_end=True`` a script that calls ``trainer.evaluate()``
  after ``trainer.train()`` logs one more eval whose value is exactly the best
  one. Kept, it makes the run end at its best, and a run whose eval went from
  1.54 to 2.40 would look healthy;
- **a repeated final eval** at the same step (``evaluate()`` on the last
  weights): the in-training eval is kept;
- **a resumed run** that logs steps again after a rewind: the later points
  replace the earlier ones from the rewind on, as the resumed weights did.

Each dropped point is named in :attr:`EvalCurve.notes` so reports can say it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._arrays import median
from ..run import Run, Series
from ._view import eval_metric, train_xy

TRAIN_PAIR_WINDOW = 5
"""Train losses whose median is paired with each eval: the last five logged at or before the eval step.

A median of five ignores one bad batch, and only uses points logged before the
eval, so the live guard, which sees exactly those, pairs them the same way.
"""


@dataclass(frozen=True)
class EvalCurve:
    """The eval metric that decides the best point, in step order, one point per step, finite only."""

    metric: str
    higher: bool
    steps: np.ndarray
    values: np.ndarray
    epochs: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def oriented(self) -> np.ndarray:
        """Values oriented so that lower is better (accuracy and friends are negated)."""
        return -self.values if self.higher else self.values


def eval_curve(run: Run) -> EvalCurve | None:
    """The run's judged eval curve (see the module docstring for the quirks removed); None without evals."""
    em = eval_metric(run)
    if em is None:
        return None
    name, higher = em
    return clean_curve(name, higher, run.history.get_series(name), last_train_step=_last_train_step(run))


def clean_curve(name: str, higher: bool, series: Series, *, last_train_step: int | None = None) -> EvalCurve:
    """:func:`eval_curve` for one Series in append order (the live guard calls this on its growing series)."""
    st = series.steps.copy()
    v = series.values.copy()
    ep = series.epochs.copy()
    m = np.isfinite(v)
    st, v, ep = st[m], v[m], ep[m]
    notes: list[str] = []
    # the trailing re-evaluations: at most two (evaluate() after train(), maybe twice)
    for _ in range(2):
        if len(v) < 3:
            break
        prev_best = float(np.max(v[:-1]) if higher else np.min(v[:-1]))
        same_step = st[-1] == st[-2]
        after_training = last_train_step is not None and st[-1] >= last_train_step and st[-1] >= st[-2]
        equals_best = math.isclose(float(v[-1]), prev_best, rel_tol=1e-7, abs_tol=0.0)
        equals_prev = math.isclose(float(v[-1]), float(v[-2]), rel_tol=1e-7, abs_tol=0.0)
        if equals_best and (same_step or after_training) and not equals_prev:
            notes.append(f"the last {name} ({v[-1]:.6g} at step {int(st[-1])}) repeats the best value: a re-evaluation "
                         "of the loaded best model, not a training eval; left out of the curve")
        elif same_step:
            notes.append(f"{name} was logged twice at step {int(st[-1])} (a final evaluate() on the last weights); "
                         "the first one is kept")
        else:
            break
        st, v, ep = st[:-1], v[:-1], ep[:-1]
    # a rewind (resume from a checkpoint): the later points replace the earlier ones from the rewound step on
    if len(st) > 1 and np.any(np.diff(st) <= 0):
        suffix_min = np.minimum.accumulate(st[::-1])[::-1]
        keep = np.ones(len(st), bool)
        keep[:-1] = st[:-1] < suffix_min[1:]
        dropped = int((~keep).sum())
        if dropped:
            notes.append(f"{dropped} {name} point(s) were logged again after a restart; the later ones are kept")
        st, v, ep = st[keep], v[keep], ep[keep]
    return EvalCurve(name, higher, st.astype(np.int64), v, ep, tuple(notes))


def _last_train_step(run: Run) -> int | None:
    st, _ = train_xy(run)
    return int(st[-1]) if len(st) else None


def train_at(train_steps: np.ndarray, train_values: np.ndarray, at: np.ndarray, k: int = TRAIN_PAIR_WINDOW) -> np.ndarray:
    """Median of the last ``k`` train losses logged at or before each step in ``at`` (NaN before the first)."""
    at = np.asarray(at)
    out = np.full(len(at), np.nan)
    if not len(train_values) or not len(at):
        return out
    end = np.searchsorted(train_steps, at, side="right")  # train points [.., end) are at or before each step
    padded = np.concatenate([np.full(k - 1, np.nan), np.asarray(train_values, dtype=np.float64)])
    win = sliding_window_view(padded, k)  # win[j] = the k points ending at train index j
    ok = end > 0
    if ok.any():
        rows = win[end[ok] - 1]
        with np.errstate(all="ignore"):
            out[ok] = np.nanmedian(rows, axis=1) if np.isnan(rows).any() else median(rows, axis=1)
    return out


__all__ = ["TRAIN_PAIR_WINDOW", "EvalCurve", "clean_curve", "eval_curve", "train_at"]
