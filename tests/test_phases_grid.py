"""The phases' grid: interval medians and nearest points computed on whole arrays equal the per-cell definitions."""

from __future__ import annotations

import numpy as np
import pytest

from trainguard._arrays import median
from trainguard.phases import _nearest, _window_medians
from trainguard.run import Series


def _per_cell(s: Series, edges: np.ndarray) -> list[float]:
    """The definition: median of the points in (edges[i-1], edges[i]], else the nearest point; NaN without points."""
    out, prev = [], None
    for e in edges.tolist():
        m = (s.steps <= e) if prev is None else ((s.steps > prev) & (s.steps <= e))
        if m.any():
            out.append(float(median(s.values[m])))
        else:
            k = s.nearest(e)
            out.append(np.nan if k is None else float(s.values[k]))
        prev = e
    return out


def _series(rng: np.random.Generator, n: int, kind: int) -> Series:
    if kind == 0:  # a fixed logging interval: every interval holds the same number of points
        steps = np.arange(1, n + 1) * 10
    elif kind == 1:  # irregular, with repeated steps
        steps = np.sort(rng.integers(0, 20 * n, n))
    else:  # all points but a few in one interval: the lexsort path
        steps = np.sort(np.concatenate([rng.integers(0, 50, n), rng.integers(0, 20 * n, 5)]))
    return Series(steps, np.round(rng.normal(size=len(steps)), 2))


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_window_medians_equal_the_per_cell_definition(kind: int) -> None:
    rng = np.random.default_rng(kind)
    for n in (1, 7, 200, 3000):
        s = _series(rng, n, kind)
        last = int(s.steps[-1])
        for edges in (
            np.arange(100, 10 * n + 100, 100),  # regular evals, some past the last point
            np.sort(rng.integers(-5, last + 50, 40)),  # irregular, repeated, empty intervals, before the first point
            np.array([last]),
        ):
            got = _window_medians(s, edges.astype(np.int64))
            assert np.array_equal(got, _per_cell(s, edges), equal_nan=True), (n, edges[:5])
    assert np.isnan(_window_medians(Series(), np.array([5, 10]))).all()


def test_nearest_equals_series_nearest() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 9, 500):
        s = Series(np.sort(rng.integers(0, 3 * n, n)), np.zeros(n))
        targets = np.arange(-3, 3 * n + 4)
        assert _nearest(s.steps, targets).tolist() == [s.nearest(int(t)) for t in targets]
