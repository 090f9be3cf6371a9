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
