"""``np.median`` and ``np.unique`` without their import of ``numpy.ma``.

Both check their input or result for masked arrays, which imports
``numpy.ma`` (about 20 ms) the first time either is called: on a small run
that is a tenth of ``trainguard analyze``. The judgement takes medians
everywhere (noise, levels, windows) and unique steps in several places, so
they come here. Same results as numpy's: the median is the mean of the two
middle values of the sorted data, NaN when the data holds a NaN, NaN for no
data; ``unique`` is the sorted distinct values.

Medians are also where the judgement of a long log spends its time, so they
take the fastest exact route: a partition instead of a sort for long data,
and a selection network (vectorised min/max over whole columns) for many
short rows. Each gives the sort's numbers bit for bit, and leaves to the sort
the cases where it could not (a NaN, a -0.0 next to a 0.0).
"""

from __future__ import annotations

import functools
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
    if x.dtype.kind == "f" and x.ndim == 2 and axis in (1, -1) and len(x):
        if n >= _SELECT_ROW:
            return _select_row_medians(x)
        if n and n <= NET_MAX_W and len(x) >= _NET_MIN_ROWS and orderable(x):
            lo, hi = row_ranks(x, ((n - 1) // 2, n // 2))
            return lo.copy() if n % 2 else (lo + hi) / 2
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


_SELECT_ROW = 64  # rows at least this long are partitioned; shorter ones sort as fast


def _select_row_medians(x: np.ndarray) -> np.ndarray:
    """The median of each row of the 2-d float array ``x``, by one single-``kth`` partition per row.

    Windowed medians (the best level of a train loss over windows of 200
    block medians, the smoothing of a train regression over 100) sort every
    window: the partition takes half the time. Same numbers as the sort: a
    row with a NaN is NaN, and a row whose median is zero and that holds a
    -0.0 is sorted, as the sort's choice between the two zeros is its own.
    """
    n = x.shape[1]
    k = n // 2
    p = np.partition(x, k, axis=1)
    mid = p[:, k] if n % 2 else (p[:, :k].max(axis=1) + p[:, k]) / 2
    zero = np.flatnonzero(mid == 0)
    if len(zero):
        rows = x[zero]
        signed = (np.signbit(rows) & (rows == 0)).any(axis=1)
        if signed.any():
            s = np.sort(rows[signed], axis=1)
            mid[zero[signed]] = s[:, k] if n % 2 else (s[:, k - 1] + s[:, k]) / 2
    return np.where(np.isnan(x.max(axis=1)), np.nan, mid)


# -- selection networks ------------------------------------------------------------

NET_MAX_W = 16  # widest row given to a network (Batcher's 16-sorter has 63 comparators); wider rows sort
_NET_MIN_ROWS = 1024  # fewer rows sort: ~60 numpy calls cost more than sorting a few short rows


def orderable(x: np.ndarray) -> bool:
    """Whether min/max order ``x`` as a sort does: no NaN (a sort puts it last, min/max spread it) and no -0.0.

    -0.0 equals 0.0, so which of the two a sort or a comparison keeps is
    arbitrary; such data takes the sort, to stay bit-identical to it.
    """
    return not (np.isnan(x).any() or (np.signbit(x) & (x == 0)).any())


@functools.cache
def selection_network(w: int, wanted: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """Comparators ``(i, j, lo, hi)`` that leave the order statistics ``wanted`` of ``w`` inputs on those wires.

    Batcher's odd-even merge sort on the next power of two, without the
    comparators that touch a wire ``>= w`` (those wires would hold +inf, so
    such a comparator changes nothing) and without those no wanted output
    depends on; ``lo``/``hi`` say whether the min (to wire ``i``) and the max
    (to wire ``j``) are needed later at all. A comparator network only moves
    values, so wire ``k`` ends holding exactly the value a sort puts at ``k``.
    """
    p = 1
    while p < w:
        p *= 2
    pairs = []
    size = 1
    while size < p:
        k = size
        while k >= 1:
            for j in range(k % size, p - k, 2 * k):
                for i in range(min(k, p - j - k)):
                    if (i + j) // (2 * size) == (i + j + k) // (2 * size) and i + j + k < w:
                        pairs.append((i + j, i + j + k))
            k //= 2
        size *= 2
    needed = set(wanted)
    kept = []
    for i, j in reversed(pairs):
        lo, hi = i in needed, j in needed
        if lo or hi:
            kept.append((i, j, lo, hi))
            needed |= {i, j}
    return tuple(reversed(kept))


def apply_network(wires: list[np.ndarray], net: tuple[tuple[int, int, bool, bool], ...]) -> list[np.ndarray]:
    """Run the comparator network ``net`` over equal-length arrays, element by element; the wires, changed.

    Every comparator writes new arrays, so the inputs may be views of one
    array (the shifted windows of a series) and are never modified.
    """
    wires = list(wires)
    for i, j, lo, hi in net:
        u, v = wires[i], wires[j]
        if lo:
            wires[i] = np.minimum(u, v)
        if hi:
            wires[j] = np.maximum(u, v)
    return wires


def row_ranks(x: np.ndarray, ks: tuple[int, ...]) -> list[np.ndarray]:
    """Columns ``ks`` of ``np.sort(x, axis=1)`` for a 2-d float ``x``: the order statistics ``ks`` of each row.

    Many short rows (the points between two evals, for a run evaluated
    10,000 times) go through a selection network over the columns: one
    numpy call per comparator for all the rows instead of a sort per row.
    """
    w = x.shape[1]
    if w <= NET_MAX_W and len(x) >= _NET_MIN_ROWS and orderable(x):
        wires = apply_network(list(np.ascontiguousarray(x.T)), selection_network(w, tuple(sorted(set(ks)))))
        return [wires[k] for k in ks]
    s = np.sort(x, axis=1)
    return [s[:, k] for k in ks]


def forward_min(x: np.ndarray, w: int) -> np.ndarray:
    """``out[k] = x[k : k + w].min()`` for every k (the window cut short at the end), in O(n) for any ``w``.

    Why: a ``.min()`` per position is O(n * w), quadratic when the window
    grows with the data (a 1 GB log spent 2 s there). This is van Herk and
    Gil-Werman's method: the array cut in blocks of ``w``, a running minimum
    forward and backward inside each block, and every window is one block's
    suffix and the next block's prefix. A NaN in a window makes its minimum
    NaN, as ``.min()`` does.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0 or w <= 1:
        return x.copy()
    w = min(w, n)
    nb = -(-n // w) + 1  # one block more, so every window's end lies inside the padding
    pad = np.full(nb * w, np.inf)
    pad[:n] = x
    blocks = pad.reshape(nb, w)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[w - 1 : w - 1 + n])


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
