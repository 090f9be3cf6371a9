"""Has the train loss blown up? The one divergence judgement, asked offline by the divergence detector and live by the guard.

Three levels of a training loss are compared: where it started (the highest
of the first few logs: an untrained model's loss is its worst), the best level
it reached (smoothed, so one lucky batch is not a best), and where it is now
(smoothed, so one bad batch is not a blow-up).

- **diverged**: the loss is now at least :data:`ABOVE_START` (1.3x) its start,
  or it has at least :data:`BLOWUP` (2x) its best level again and by a
  material share (:data:`MIN_SHARE`, 5 %) of its start. Twice the best is the
  reference definition of the labelled real runs (``label.py``); the share
  keeps 1e-4 -> 3e-4 rounding noise near zero from counting;
- **regressed**: it climbed back by at least half the progress it had made,
  but not that far: worth a note with its size, not an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._smoothing import block_reduce, head_level, rolling_median, tail_level
from .noise import diff_noise

ABOVE_START = 1.3
BLOWUP = 2.0
MIN_SHARE = 0.05
REGRESS_SHARE = 0.5

DIVERGED = "diverged"
ABOVE = "above_start"
REGRESSED = "regressed"


def judge_train(start: float, best: float, now: float) -> str | None:
    """``above_start`` | ``diverged`` | ``regressed`` | None for a loss's start, best and current levels."""
    if not (start > 0 and best >= 0 and now >= 0):
        return None
    if now >= ABOVE_START * start:
        return ABOVE
    if now >= BLOWUP * best and now - best >= MIN_SHARE * start:
        return DIVERGED
    gain = start - best
    if gain > 0 and now - best >= REGRESS_SHARE * gain and now - best >= MIN_SHARE * start * 0.2:
        return REGRESSED
    return None


@dataclass(frozen=True)
class TrainVerdict:
    """The train loss's levels and what :func:`judge_train` makes of them."""

    kind: str | None  # above_start | diverged | regressed | None
    held: bool  # the tail stays there (not one bad stretch that already recovered)
    start: float
    best: float
    best_step: int
    end: float
    tail_logs: int
    noise: float
    last_step: int

    @property
    def blew_up(self) -> bool:
        return self.kind in (ABOVE, DIVERGED) and self.held


def assess_train(steps: np.ndarray, values: np.ndarray) -> TrainVerdict | None:
    """The train-loss verdict over a whole curve (step order, finite); None with fewer than 3 points.

    Block medians (at most 2048) and a rolling median keep single spikes from
    counting; the end level is the median of the last 10 % (at least 3 logs,
    2 on very short curves), so a loss that blew up and recovered is not
    called diverged.
    """
    if len(values) < 3:
        return None
    st, v = block_reduce(np.asarray(steps), np.asarray(values, dtype=np.float64), 2048)
    n = len(v)
    sm = rolling_median(v, 5 if n >= 10 else 3)
    start = max(head_level(v, 0.05, 2), float(v[0]))
    end = tail_level(v, 0.1, 3 if n >= 6 else 2)
    bi = int(np.argmin(sm))
    best = float(sm[bi])
    k = max(2, min(max(3, n // 10), n - 1))
    tail = v[-k:]
    kind = judge_train(start, best, end)
    held = float(np.mean(tail > start)) >= 0.8 if kind == ABOVE else float(np.mean(tail > BLOWUP * best)) >= 0.6
    return TrainVerdict(kind, held, start, best, int(st[bi]), end, k, diff_noise(v), int(st[-1]))


__all__ = ["ABOVE", "ABOVE_START", "BLOWUP", "DIVERGED", "MIN_SHARE", "REGRESSED", "TrainVerdict", "assess_train",
           "judge_train"]
