"""The rolling median by selection network is the sorted windows' middle value, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from trainguard._arrays import selection_network
from trainguard.facts._smoothing import rolling_median


def _by_sort(x: np.ndarray, w: int) -> np.ndarray:
    """The middle of each sorted window (NaN when the window holds one: a sort puts NaN last)."""
    h = w // 2
    padded = np.concatenate([x[h:0:-1], x, x[-2 : -h - 2 : -1]])
    s = np.sort(sliding_window_view(padded, w), axis=1)
    return np.where(np.isnan(s[:, -1]), np.nan, s[:, h])


@pytest.mark.parametrize("w", range(1, 17))
def test_network_leaves_the_middle_values_on_their_wires(w: int) -> None:
    """The 0-1 principle: a comparator network that selects right on every 0/1 input selects right on every input."""
    wanted = tuple(sorted({(w - 1) // 2, w // 2}))
    codes = np.arange(1 << w)
    wires = [((codes >> k) & 1).astype(np.int8) for k in range(w)]
    for i, j, lo, hi in selection_network(w, wanted):
        u, v = wires[i], wires[j]
        if lo:
            wires[i] = np.minimum(u, v)
        if hi:
            wires[j] = np.maximum(u, v)
    ones = sum(((codes >> k) & 1) for k in range(w))
    for k in wanted:  # sorted ascending, position k holds a 1 when fewer than k + 1 zeros
        assert np.array_equal(wires[k], (ones >= w - k).astype(np.int8))


@pytest.mark.parametrize("w", [3, 5, 9, 11, 15, 17])
def test_rolling_median_equals_sorting_each_window(w: int) -> None:
    rng = np.random.default_rng(w)
    for n in (w + 1, 300, 5000):
        samples = [
            rng.random(n),
            rng.integers(0, 4, n).astype(float),  # many ties
            np.round(np.exp(rng.normal(size=n)), 4),
            np.where(rng.random(n) < 0.01, np.inf, rng.random(n)),
        ]
        with_nan = rng.random(n)
        with_nan[n // 2] = np.nan
        signed_zero = np.round(rng.normal(size=n), 0)
        signed_zero[rng.random(n) < 0.3] = -0.0
        for x in [*samples, with_nan, signed_zero]:
            got, want = rolling_median(x, w), _by_sort(x, w)
            assert np.array_equal(got, want, equal_nan=True)
            assert np.array_equal(np.signbit(got), np.signbit(want))
