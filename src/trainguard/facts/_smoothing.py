"""Robust, vectorised helpers the facts and detectors share: medians, EMA, robust z-scores, fits.

Noise estimators live in :mod:`.noise`, the one place that says how noisy a curve is.

Every helper is O(n) or O(n·w) with a small fixed window ``w`` and runs in
numpy, never a Python loop over points: the live guard calls the detectors on
every new point and ``analyze`` sees logs of millions of points.

Why robust: training curves are heavy-tailed (a single bad batch makes a
spike ten times the baseline), so a mean or a standard deviation would let one
spike drag the baseline and hide the next. Medians and the MAD ignore up to
half the points being outliers.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._arrays import NET_MAX_W, apply_network, median, orderable, selection_network
from .noise import mad_sigma

_CHUNK = 1 << 14  # rows per chunk in windowed medians: bounds the temporary (rows x w) sorted copy to ~1 MB
_NET_MIN_N = 256  # shorter series sort: ~50 numpy calls cost more than one small sort


def rolling_median(x: np.ndarray, w: int) -> np.ndarray:
    """Centered rolling median over ``w`` points (odd), edges padded by reflection; O(n·w) in numpy."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0 or w <= 1:
        return x.copy()
    w = int(w) | 1
    if n < w:
        return np.full(n, float(median(x)))
    h = w // 2
    padded = np.concatenate([x[h:0:-1], x, x[-2 : -h - 2 : -1]])
    out = np.empty(n)
    if w <= NET_MAX_W and n >= _NET_MIN_N and orderable(x):
        # An 11-point rolling median of a million losses sorts a million short rows, about 0.15 us each,
        # mostly numpy's per-row overhead. Window position k of every point is one shifted view of the
        # series, so a selection network compares whole columns at once: ~50 vectorised min/max calls for
        # all the points, 4x faster, and the same number (see _arrays.selection_network). In chunks, so
        # the w columns being compared stay in the CPU cache.
        net = selection_network(w, (h,))
        for a in range(0, n, _CHUNK):
            m = min(_CHUNK, n - a)
            out[a : a + m] = apply_network([padded[a + k : a + k + m] for k in range(w)], net)[h]
        return out
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        out[a:b] = median(sliding_window_view(padded[a : b + 2 * h], w), axis=1)
    return out


def trailing_median(x: np.ndarray, w: int) -> np.ndarray:
    """Median of the ``w`` points *before* each point (the point itself excluded); NaN for the first point.

    The baseline a live spike is judged against: excluding the point keeps a
    spike from raising its own baseline.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    w = max(1, int(w))
    # the first w points: expanding medians (few, so a short loop is fine)
    for i in range(1, min(n, w + 1)):
        out[i] = float(median(x[:i]))
    if n > w + 1:
        for a in range(w + 1, n, _CHUNK):
            b = min(n, a + _CHUNK)
            win = sliding_window_view(x[a - w : b - 1], w)
            out[a:b] = median(win, axis=1)
    return out


def block_reduce(steps: np.ndarray, values: np.ndarray, max_points: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: the median value (and median step) of consecutive blocks.

    Trend detectors (overfitting, plateau, schedules) look at shapes, not at
    single points; reducing a million-point series to a couple of thousand
    block medians keeps them O(n) and makes them robust to spikes at once.
    """
    n = len(values)
    if n <= max_points:
        return steps, values
    k = math.ceil(n / max_points)
    m = n // k
    head_v = values[: m * k].reshape(m, k)
    head_s = steps[: m * k].reshape(m, k)
    v = median(head_v, axis=1)
    s = head_s[:, k // 2].astype(np.int64)
    if m * k < n:
        v = np.append(v, median(values[m * k :]))
        s = np.append(s, steps[(m * k + n - 1) // 2])
    return s, v


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average ``y[i] = a*x[i] + (1-a)*y[i-1]``, ``y[0] = x[0]``; O(n), vectorised in blocks.

    Within a block the recursion is a weighted cumulative sum; blocks are
    short enough that ``(1-a)**-len`` stays below 1e6, so no precision is lost.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be in (0, 1]")
    if alpha == 1:
        return x.copy()
    q = 1.0 - alpha
    blk = max(1, min(n, int(6 * math.log(10) / -math.log(q))))
    out = np.empty(n)
    prev = x[0]
    j = np.arange(blk, dtype=np.float64)
    pw = q ** (j + 1)  # q^(k+1) for k in block
    inv = q ** -j
    for a in range(0, n, blk):
        b = min(n, a + blk)
        m = b - a
        seg = x[a:b]
        if a == 0:
            # y0 = x0, so treat the element before as x0 itself
            prev = seg[0]
        acc = np.cumsum(seg * inv[:m]) * (q ** j[:m])
        out[a:b] = alpha * acc + prev * pw[:m]
        prev = out[b - 1]
    return out


def robust_log_z(values: np.ndarray, w: int = 11) -> tuple[np.ndarray, np.ndarray, float]:
    """Robust z-score of each point of ``log(values)`` against a centered rolling median.

    Returns ``(z, baseline, scale)``: ``baseline`` in value units, ``scale``
    the robust sigma of the log residuals. Log space makes the score scale-free
    (a jump from 0.01 to 0.02 is as large as one from 2 to 4) and tames the
    heavy right tail of losses. A floor on the scale (0.5 %) keeps a perfectly
    smooth curve from turning rounding noise into huge scores.
    """
    v = np.asarray(values, dtype=np.float64)
    pos = np.where(v > 0, v, np.nan)
    floor = np.nanmin(pos) if np.isfinite(pos).any() else 1.0
    lv = np.log(np.where(v > 0, v, max(floor, 1e-12) * 0.5))
    base = rolling_median(lv, w)
    resid = lv - base
    scale = max(mad_sigma(resid), 0.005)
    return resid / scale, np.exp(base), scale


def linfit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line ``y = slope*x + intercept``; returns ``(slope, intercept, r2)`` (r2 = 0 when y is constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return 0.0, float(y[0]) if len(y) else 0.0, 0.0
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    sxx = float(dx @ dx)
    if sxx == 0:
        return 0.0, float(ym), 0.0
    slope = float(dx @ (y - ym)) / sxx
    inter = float(ym - slope * xm)
    res = y - (slope * x + inter)
    sst = float(((y - ym) ** 2).sum())
    r2 = 1.0 - float(res @ res) / sst if sst > 0 else 0.0
    return slope, inter, r2


def head_level(values: np.ndarray, fraction: float = 0.1, min_points: int = 3) -> float:
    """Median of the first ``fraction`` of the points (at least ``min_points``): a robust starting level."""
    k = max(min_points, int(len(values) * fraction))
    return float(median(values[:k]))


def tail_level(values: np.ndarray, fraction: float = 0.1, min_points: int = 3) -> float:
    """Median of the last ``fraction`` of the points (at least ``min_points``): a robust final level."""
    k = max(min_points, int(len(values) * fraction))
    return float(median(values[-k:]))


__all__ = [
    "block_reduce",
    "ema",
    "head_level",
    "linfit",
    "robust_log_z",
    "rolling_median",
    "tail_level",
    "trailing_median",
]
