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

A blow-up is only called when it holds: most of the tail stays there, the
move is more than twice the point-to-point noise of the curve (a per-step loss
that swings between 0.01 and 0.6 has no "best level" of 0.01), and at least
:data:`MIN_LOGS` train logs exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._arrays import median
from ._smoothing import block_reduce, head_level
from .noise import diff_noise

ABOVE_START = 1.3
BLOWUP = 2.0
MIN_SHARE = 0.05
REGRESS_SHARE = 0.5
MIN_LOGS = 8  # train logs before a blow-up can be called: the start and the tail need a few points each
# nats per token above which a loss is absurd for a token cross-entropy: worse than guessing uniformly over any
# real vocabulary (ln 256k = 12.5)
ABSURD_CE = 20.0
LEARN_Z = 2.0  # the best level below the start by more than this many times the point noise: the model learned

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
    logs: int = 0  # train logs behind the levels (block medians past 2048)

    @property
    def blew_up(self) -> bool:
        return self.kind in (ABOVE, DIVERGED) and self.held

    @property
    def learned(self) -> bool | None:
        """Did the train loss ever improve beyond its own noise? None with too few logs to say.

        Why: overfitting is a model fitting its training data better while eval
        gets worse. A train loss whose best level never got more than
        :data:`LEARN_Z` times its point-to-point noise below its start has not
        fitted anything (a run at LR 1.0 that bounces between 100 and 250 from
        the first step), so what its eval does is not overfitting. The point
        noise is larger than the noise of a level, so this only says "not
        learned" of a curve that is flat or worse within its own scatter.
        """
        if self.logs < MIN_LOGS:
            return None
        return self.start - self.best > LEARN_Z * self.noise


def assess_train(steps: np.ndarray, values: np.ndarray) -> TrainVerdict | None:
    """The train-loss verdict over a whole curve (step order, finite); None with fewer than 3 points.

    Block medians (at most 2048) and a rolling median keep single spikes from
    counting; the end level is the median of the last 10 % (at least 5 logs),
    so a loss that blew up and recovered is not called diverged.
    """
    if len(values) < 3:
        return None
    st, v = block_reduce(np.asarray(steps), np.asarray(values, dtype=np.float64), 2048)
    n = len(v)
    start = max(head_level(v, 0.05, 2), float(v[0]))
    # the end level: the median of the last 10 % of the logs, at least five (one or two bad batches never move
    # a median of five), at most half the curve
    k = max(2, min(max(5, n // 10), n // 2))
    tail = v[-k:]
    end = float(median(tail))
    # the best level over windows of the same size, full windows only: like is compared with like, and an edge
    # padded by reflection never makes a "best" out of two lucky batches
    meds = median(sliding_window_view(v, k), axis=1)
    j = int(np.argmin(meds))
    best = float(meds[j])
    bi = j + k // 2
    kind = judge_train(start, best, end)
    noise = diff_noise(v)
    # held: the tail stays there, the move is beyond the point-to-point noise (a per-step loss that swings
    # between 0.01 and 0.6 has no "best level" of 0.01), and there are enough logs to know what the start was
    if kind == ABOVE:
        held = float(np.mean(tail > start)) >= 0.8 and end - start > 2 * noise
    else:
        held = float(np.mean(tail > BLOWUP * best)) >= 0.6 and end - best > 2 * noise
    held = held and n >= MIN_LOGS
    return TrainVerdict(kind, held, start, best, int(st[bi]), end, k, noise, int(st[-1]), n)


__all__ = ["ABOVE", "ABOVE_START", "ABSURD_CE", "BLOWUP", "DIVERGED", "LEARN_Z", "MIN_SHARE", "REGRESSED", "TrainVerdict", "assess_train",
           "judge_train"]
