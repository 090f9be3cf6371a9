"""How noisy a curve is: the one place in trainguard that estimates noise.

Every judgement that asks "is this change more than noise?" (overfitting,
plateau, an eval bounce, the live stop gate, the phases) takes its noise from
here, so ``analyze``, the phases, the report and the guard can never disagree
about how noisy one curve is.

Why robust: training curves are heavy-tailed (a single bad batch makes a spike
ten times the baseline), so a standard deviation would let one spike drag the
baseline and hide the next. The MAD ignores up to half the points being
outliers.
"""

from __future__ import annotations

import math

import numpy as np

from .._arrays import median

MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation

EVAL_NOISE_FLOOR = 0.01
"""Relative eval noise assumed when a curve is too smooth or too short to measure it (1 % of the level).

An eval on a fixed held-out set still moves by about a percent from one eval to
the next as the weights move (measured on the real runs: the median relative
jitter of eval loss before its best point is 0.4-2 %), and HF logs print 4
significant digits. Below this, a "significant" rise would be rounding.
"""

MIN_NOISE_POINTS = 5
"""Points needed (after skipping the steep start) to measure eval noise: three second differences."""


def mad_sigma(x: np.ndarray) -> float:
    """Robust standard deviation: 1.4826 x median absolute deviation (0.0 for fewer than 2 points)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return 0.0
    return float(MAD_TO_SIGMA * median(np.abs(x - median(x))))


def diff_noise(x: np.ndarray) -> float:
    """Point-to-point noise of a long curve (train loss): robust sigma of first differences / sqrt(2).

    Differencing removes a slow trend, so a falling loss curve does not count
    as noise; dividing by sqrt(2) undoes the doubling of variance a difference
    of two independent noisy points has.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3:
        return 0.0
    d = np.diff(x)
    return float(MAD_TO_SIGMA * median(np.abs(d - median(d))) / math.sqrt(2.0))


def eval_noise(values: np.ndarray, upto: int | None = None, *, floor: float = EVAL_NOISE_FLOOR) -> float:
    """Relative noise of an eval curve (a fraction of its level), from the points that are not under test.

    ``values``: the eval curve in step order; ``upto``: the index of the last
    point that may be used (the best point, when the rise after it is what is
    being judged), so a rise never inflates its own noise, which is what made
    a +12 % rise over 3 evals look like noise before. The estimate is the
    robust sigma of second differences of log(value) / sqrt(6): second
    differences cancel a linear trend, logs make it scale-free, and the first
    third is skipped because the steep initial descent is curvature, not
    noise. With fewer than :data:`MIN_NOISE_POINTS` usable points it is
    ``floor``; it is never below ``floor``.
    """
    v = np.asarray(values, dtype=np.float64)
    if upto is not None:
        v = v[: upto + 1]
    v = v[np.isfinite(v)]
    if len(v) < 3:
        return floor
    tail = v[len(v) // 3 :]
    if len(tail) < MIN_NOISE_POINTS:
        tail = v if len(v) >= MIN_NOISE_POINTS else tail
    if len(tail) < MIN_NOISE_POINTS:
        return floor
    if np.all(tail > 0):
        d2 = np.diff(np.log(tail), 2)
    else:  # metrics that cross zero (log-likelihoods, rewards): relative to their typical size
        scale = float(median(np.abs(tail))) or 1.0
        d2 = np.diff(tail, 2) / scale
    est = MAD_TO_SIGMA * float(median(np.abs(d2))) / math.sqrt(6.0)
    return max(est, floor)


__all__ = ["EVAL_NOISE_FLOOR", "MAD_TO_SIGMA", "MIN_NOISE_POINTS", "diff_noise", "eval_noise", "mad_sigma"]
