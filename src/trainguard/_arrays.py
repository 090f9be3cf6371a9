"""``np.median`` and ``np.unique`` without their import of ``numpy.ma``.

Both check their input or result for masked arrays, which imports
``numpy.ma`` (about 20 ms) the first time either is called: on a small run
that is a tenth of ``trainguard analyze``. The judgement takes medians
everywhere (noise, levels, windows) and unique steps in several places, so
they come here. Same results as numpy's: the median is the mean of the two
middle values of the sorted data, NaN when the data holds a NaN, NaN for no
data; ``unique`` is the sorted distinct values.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def median(a: Any, axis: int | None = None) -> Any:
    """The median of ``a`` (all of it, or along ``axis``), as ``np.median`` computes it."""
    x = np.asarray(a)
    if x.dtype.kind not in "fc":
        x = x.astype(np.float64)
    if axis is None:
        x = x.ravel()
        if x.dtype.kind == "f":
            m = _select_median(x)
            if m is not None:
                return m
        axis = 0
    n = x.shape[axis]
    if n == 0:
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        return np.float64(np.nan) if not shape else np.full(shape, np.nan)
    s = np.sort(x, axis=axis)  # NaN sorts last
    lo = np.take(s, (n - 1) // 2, axis=axis)
    mid = lo if n % 2 else (lo + np.take(s, n // 2, axis=axis)) / 2
    last = np.take(s, n - 1, axis=axis)
    return np.where(np.isnan(last), np.nan, mid) if np.ndim(mid) else (np.float64(np.nan) if np.isnan(last) else mid)


_SELECT_MIN = 512  # shorter arrays sort about as fast as they partition
_SAMPLE = 128  # points looked at to tell whether one value dominates
_DOMINANT = 20  # ... and how many of them must be equal to call it so (about 15 %)


def _select_median(x: np.ndarray) -> Any:
    """The median of the 1-d float array ``x`` by selection, not a sort; None when the sort should say it.

    The median is one order statistic (two for an even count): numpy's
    single-``kth`` partition finds it in O(n), 5x faster than sorting random
    data, and the one below it is the maximum of the lower part. The same
    numbers as the sort, except that -0.0 equals 0.0, so which one a sort
    leaves in the middle is its own business: a zero median of an array that
    holds a -0.0 is left to the sort. Partitioning degrades on an array where
    one value fills a large share (a run logging a loss of 0.0000, a residual
    that is mostly exactly zero): 10x slower than a sort, which gets faster on
    such data. A sample of the array tells those apart, and they sort.
    """
    n = len(x)
    if n < _SELECT_MIN:
        return None
    sample = np.sort(x[:: n // _SAMPLE][:_SAMPLE])
    cuts = np.flatnonzero(sample[1:] != sample[:-1])
    if int(np.diff(cuts, prepend=-1, append=len(sample) - 1).max()) >= _DOMINANT:
        return None
    if np.isnan(x.max()):
        return np.float64(np.nan)
    k = n // 2
    p = np.partition(x, k)
    mid = p[k] if n % 2 else (p[:k].max() + p[k]) / 2
    if mid == 0 and (np.signbit(x) & (x == 0)).any():
        return None
    return mid


def unique(a: Any) -> np.ndarray:
    """The sorted distinct values of ``a`` (flattened), as ``np.unique(a)`` gives them (NaNs collapse to one)."""
    s = np.sort(np.asarray(a).ravel())
    if s.size < 2:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    if s.dtype.kind in "fc" and np.isnan(s[-1]):  # NaN != NaN: keep the first NaN only
        first = int(np.argmax(np.isnan(s)))
        keep[first + 1 :] = False
    return s[keep]
