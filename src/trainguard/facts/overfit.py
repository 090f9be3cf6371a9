"""Is this run overfitting? The one judgement, asked by ``analyze``, the phases, the report and the live guard.

An engineer calls a run overfit when eval got materially worse after its best
point, for more than one eval, by more than the curve's own noise, and while
there was still run left to waste. Each part is a stated rule:

- **practical significance**: the eval level after the best (the median of the
  last three evals, so one unlucky eval cannot make or break it) is at least
  :data:`RISE_FLOOR` (3 %) above the best, or it has undone at least
  :data:`UNDONE_FLOOR` (half) of the improvement the run achieved. Every false
  alarm on the real runs we were measured on was a rise under 3 %. On the
  labelled real runs in ``../shared/realruns`` (best before the last fifth, two
  evals after it or more), the runs labelled not overfit end at most 4.1 %
  above their best (a level of at most 5.2 %, on a Keras curve whose own noise
  is 3.8 %), and the runs labelled overfit end at least 6.6 % above it (one has
  a level of 2.6 % but has undone all of its improvement);
- **statistical significance**: at least two evals after the best, the rise at
  least :data:`Z_MIN` (2) times the eval noise (estimated from the points
  before the best, never from the rise under test; see
  :func:`~trainguard.facts.noise.eval_noise`), and at least half of the evals
  after the best above the best by more than the noise;
- **timing**: the best came before the last :data:`LATE_SHARE` (20 %) of the
  run. A turn in the last fifth is reported, as a note: the run ended before it
  could show whether it was a turn or a wobble, and little was spent after it.
  This is the reference definition the labelled corpus uses (``label.py``);
- **a model that learned**: with enough train logs to tell
  (:attr:`~trainguard.facts.train.TrainVerdict.learned`), the train loss's
  best level is below its start by more than twice its point noise. A run
  whose train loss never improved (diverged from the first step, or stuck)
  has fitted nothing to overfit: its eval swings are reported as a note and
  the divergence and learning findings say what went wrong.

Severity follows size and persistence: a warning at the floor; an error at
:data:`ERROR_RISE` (10 %), or with all of the improvement undone (eval back
where it started), held over at least three evals. Below the floor it is an info line with the numbers ("eval
stopped improving, +0.3 % over 2 evals"); with too few evals it says that,
never "no sign of overfitting".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._arrays import median
from ..findings import Severity
from .noise import eval_noise

RISE_FLOOR = 0.03
UNDONE_FLOOR = 0.5
ERROR_RISE = 0.10
Z_MIN = 2.0
PERSISTENCE_MIN = 0.5
ERROR_PERSISTENCE = 0.6
ERROR_EVALS_AFTER = 3
LATE_SHARE = 0.2
LEVEL_EVALS = 3
TRAIN_RISE = 0.10  # train level 10 % above its level at the best: the whole model got worse, not just eval

# states, from good to bad
IMPROVING = "improving"  # the best is the latest eval
TOO_FEW = "too_few"  # fewer than two evals after the best: nothing can be said yet
STOPPED = "stopped_improving"  # worse than the best, but below the floor or within the noise
LATE_TURN = "late_turn"  # a material rise that started in the last fifth of the run
NOT_LEARNING = "train_not_learning"  # a material rise, but the train loss never improved: not overfitting
OVERFITTING = "overfitting"


@dataclass(frozen=True)
class OverfitVerdict:
    """The numbers behind the verdict and the verdict itself (``state`` and ``severity``)."""

    state: str
    severity: Severity | None  # None: nothing to report (improving)
    best_index: int
    best_step: int
    best_value: float  # in the metric's own direction
    last_step: int
    last_value: float
    evals: int
    evals_after: int
    rise: float  # relative worsening of the level after the best (fraction, oriented: > 0 is worse)
    final_rise: float  # relative worsening of the last eval alone
    undone: float | None  # share of the achieved improvement undone (None: the first eval was the best)
    noise: float  # relative eval noise from the points before the best
    z: float  # rise / noise
    persistence: float  # share of evals after the best that are worse than best by more than the noise
    still_rising: bool
    late: bool
    run_last_step: int
    train_at_best: float | None
    train_last: float | None
    train_rising: bool

    @property
    def is_overfitting(self) -> bool:
        return self.state == OVERFITTING


def judge_overfitting(
    steps: np.ndarray,
    values: np.ndarray,
    *,
    higher: bool = False,
    run_last_step: int | None = None,
    train_at_eval: np.ndarray | None = None,
    train_learned: bool | None = None,
) -> OverfitVerdict | None:
    """The overfitting verdict for an eval curve (step order, one point per step, finite); None without evals.

    ``run_last_step`` is the last step of the run (train or eval; the current
    step, live); ``train_at_eval`` the train level paired with each eval
    (:func:`~trainguard.facts.curves.train_at`), used to tell overfitting (train
    still falling) from a model that got worse as a whole (train rising too);
    ``train_learned`` whether the train loss improved beyond its noise at all
    (:attr:`~trainguard.facts.train.TrainVerdict.learned`; None: unknown).
    """
    steps = np.asarray(steps)
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return None
    o = -v if higher else v
    b = int(np.argmin(o))
    best = float(o[b])
    scale = max(abs(best), 1e-12)
    after = n - 1 - b
    post = o[b + 1 :]
    k = min(LEVEL_EVALS, after)
    level = float(median(post[-k:])) if k else best
    rise = (level - best) / scale
    final_rise = (float(o[-1]) - best) / scale
    first = float(o[0])
    undone = (level - best) / (first - best) if first > best else None
    noise = eval_noise(np.abs(v), b)
    z = rise / noise if noise > 0 else math.inf
    persistence = float(np.mean(post > best + noise * scale)) if after else 0.0
    still_rising = after >= 2 and float(o[-1]) >= float(np.max(post[-3:])) and float(o[-1]) > float(o[-2])
    last_run = int(run_last_step) if run_last_step is not None else int(steps[-1])
    last_run = max(last_run, int(steps[-1]))
    late = int(steps[b]) >= (1.0 - LATE_SHARE) * last_run
    tb = tl = None
    train_rising = False
    if train_at_eval is not None and len(train_at_eval) == n:
        a, c = float(train_at_eval[b]), float(train_at_eval[-1])
        if math.isfinite(a) and math.isfinite(c):
            tb, tl = a, c
            train_rising = a > 0 and c > a * (1 + TRAIN_RISE)

    if after == 0:
        state, sev = IMPROVING, None
    elif after < 2:
        state, sev = TOO_FEW, Severity.INFO
    else:
        practical = rise >= RISE_FLOOR or (undone is not None and undone >= UNDONE_FLOOR)
        significant = z >= Z_MIN and persistence >= PERSISTENCE_MIN
        if not (practical and significant):
            state, sev = STOPPED, Severity.INFO
        elif train_learned is False:
            state, sev = NOT_LEARNING, Severity.INFO
        elif late:
            state, sev = LATE_TURN, Severity.INFO
        else:
            state = OVERFITTING
            big = rise >= ERROR_RISE or (undone is not None and undone >= 1.0)
            held = after >= ERROR_EVALS_AFTER and persistence >= ERROR_PERSISTENCE
            sev = Severity.ERROR if big and held else Severity.WARNING
    sign = -1.0 if higher else 1.0
    return OverfitVerdict(
        state=state, severity=sev, best_index=b, best_step=int(steps[b]), best_value=float(v[b]),
        last_step=int(steps[-1]), last_value=float(v[-1]), evals=n, evals_after=after, rise=rise,
        final_rise=final_rise, undone=undone, noise=noise, z=z, persistence=persistence,
        still_rising=still_rising, late=late, run_last_step=last_run, train_at_best=tb, train_last=tl,
        train_rising=train_rising and sign > 0,
    )


__all__ = [
    "ERROR_RISE",
    "IMPROVING",
    "LATE_SHARE",
    "LATE_TURN",
    "NOT_LEARNING",
    "OVERFITTING",
    "RISE_FLOOR",
    "STOPPED",
    "TOO_FEW",
    "UNDONE_FLOOR",
    "Z_MIN",
    "OverfitVerdict",
    "judge_overfitting",
]
