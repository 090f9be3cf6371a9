"""The eval bounces found on whole arrays are the ones a loop over the evals finds, with the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from trainguard.detectors.spikes import _bounces


def _loop(o: np.ndarray, sigma: float, min_jump: float) -> list[tuple[int, float, float | None]]:
    """The definition, one eval at a time."""
    events = []
    for i in range(1, len(o) - 1):
        jump = float(o[i] - o[i - 1])
        if jump <= max(3 * sigma, min_jump * max(abs(float(o[i - 1])), 1e-12)):
            continue
        if float(o[i + 1]) > float(o[i]) - 0.5 * jump:
            continue
        best = float(o[:i].min())
        if float(o[i - 1]) - best > max(5 * sigma, 0.1 * abs(best)):
            continue
        progress = float(o[0] - o[:i].min())
        events.append((i, jump, jump / progress if progress > 0.5 * jump else None))
    return events


@pytest.mark.parametrize("seed", range(4))
def test_bounces_equal_the_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (3, 4, 10, 200, 3000):
        t = np.linspace(0, 1, n)
        o = 2.5 * np.exp(-3 * t) + 0.8 + rng.choice([0.0, 1.5]) * np.maximum(0, t - 0.5)
        o = o * (1 + rng.normal(0, 0.03, n)) * (1 + 0.2 * (np.arange(n) % 9 == 4))
        for x in (o, np.round(o, 2), -o):
            for sigma in (0.0, 0.01, 0.2):
                assert _bounces(x, sigma, 0.02) == _loop(x, sigma, 0.02)
