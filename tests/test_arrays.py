"""The numpy.ma-free median and unique give numpy's own answers, so swapping them in changed no verdict."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from trainguard._arrays import forward_min, median, row_ranks, unique


def _samples(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(400):
        n = int(rng.integers(1, 14))
        a = rng.normal(size=n) * 10.0 ** int(rng.integers(-6, 6))
        if rng.random() < 0.15:
            a[rng.integers(0, n)] = np.nan
        if rng.random() < 0.1:
            a[rng.integers(0, n)] = np.inf
        if rng.random() < 0.15:
            a = np.round(np.nan_to_num(a, posinf=7.0)).astype(np.int64)
        out.append(a)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_median_equals_numpy(seed: int) -> None:
    with np.errstate(invalid="ignore"):
        for a in _samples(seed):
            got, want = median(a), np.median(a)
            assert (np.isnan(got) and np.isnan(want)) or got == want, a
            rows = np.vstack([a, a[::-1]]).astype(float)
            assert np.array_equal(median(rows, axis=1), np.median(rows, axis=1), equal_nan=True)
            assert np.array_equal(median(rows, axis=0), np.median(rows, axis=0), equal_nan=True)


def test_median_of_nothing_is_nan() -> None:
    assert np.isnan(median([]))


@pytest.mark.parametrize("seed", [0, 1])
def test_unique_equals_numpy(seed: int) -> None:
    for a in _samples(seed):
        coarse = np.round(a / 3) if a.dtype.kind == "f" else a // 3
        assert np.array_equal(unique(coarse), np.unique(coarse), equal_nan=True), coarse


def test_analyze_never_imports_numpy_ma(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """numpy.ma costs ~20 ms a start; a small run's analysis does not need it."""
    state = tmp_path / "trainer_state.json"
    hist = [{"loss": 2.0 - i / 100, "step": 10 * i} for i in range(1, 40)]
    hist += [{"eval_loss": 2.1 - i / 60, "step": 100 * i} for i in range(1, 4)]
    state.write_text(__import__("json").dumps({"log_history": hist, "global_step": 390, "max_steps": 390}))
    code = (
        "import sys; from trainguard.cli import app\n"
        "sys.argv = ['trainguard', 'analyze', sys.argv[1], '--json']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('numpy.ma' in sys.modules, 'pydantic' in sys.modules, 'rich' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(state)], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "False False False"


def _long_samples(seed: int) -> list[np.ndarray]:
    """Arrays long enough for the median by selection: random, mostly one value, with NaN, with signed zeros."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(60):
        n = int(rng.integers(512, 3000))
        a = rng.normal(size=n)
        kind = i % 6
        if kind == 1:
            a[rng.random(n) < rng.uniform(0.2, 1.0)] = 0.25  # one value dominates: the sort path
        elif kind == 2:
            a[rng.integers(0, n)] = np.nan
        elif kind == 3:
            a = np.round(a, 1)
            a[rng.random(n) < 0.3] = -0.0  # a zero median that a sort picks among 0.0 and -0.0
        elif kind == 4:
            a = np.round(a * 3).astype(np.float32)
        elif kind == 5:
            a[rng.random(n) < 0.05] = np.inf
        out.append(a)
    return out


def _sorted_median(a: np.ndarray) -> np.floating:
    """The median as the sort gives it: the middle value (the mean of the two middle ones), NaN with a NaN."""
    s = np.sort(a)
    n = len(s)
    mid = s[(n - 1) // 2] if n % 2 else (s[(n - 1) // 2] + s[n // 2]) / 2
    return np.float64(np.nan) if np.isnan(s[-1]) else mid


@pytest.mark.parametrize("seed", [0, 1])
def test_median_by_selection_equals_the_sort(seed: int) -> None:
    """The partition path gives the sort's number, bit for bit: its type and the sign of a zero included."""
    for a in _long_samples(seed):
        got, want = median(a), _sorted_median(a)
        assert type(got) is type(want), a.dtype
        assert (np.isnan(got) and np.isnan(want)) or (got == want and np.signbit(got) == np.signbit(want)), a


@pytest.mark.parametrize("width", [1, 2, 3, 7, 10, 16, 17, 70])
def test_row_medians_equal_the_sort(width: int) -> None:
    """Many short rows (a selection network), long rows (a partition) and the rest (a sort) give the sort's numbers."""
    rng = np.random.default_rng(width)
    for rows in (5, 1500):
        for kind in range(4):
            x = rng.normal(size=(rows, width))
            if kind == 1:
                x = np.round(x)  # ties, and zeros
            elif kind == 2:
                x = np.round(x, 1)
                x[rng.random(x.shape) < 0.3] = -0.0
            elif kind == 3:
                x[rng.integers(0, rows), rng.integers(0, width)] = np.nan
            s = np.sort(x, axis=1)
            want = s[:, (width - 1) // 2] if width % 2 else (s[:, width // 2 - 1] + s[:, width // 2]) / 2
            want = np.where(np.isnan(s[:, -1]), np.nan, want)
            got = median(x, axis=1)
            assert got.dtype == want.dtype
            assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
            ks = tuple(int(k) for k in rng.integers(0, width, 2))
            assert all(np.array_equal(a, s[:, k], equal_nan=True) for a, k in zip(row_ranks(x, ks), ks, strict=True))


def test_forward_min_equals_the_window_min() -> None:
    """Each point's minimum over the next w points (cut short at the end), NaN when the window holds one, for any w."""
    rng = np.random.default_rng(7)
    for _ in range(3000):
        n, w = int(rng.integers(0, 60)), int(rng.integers(1, 70))
        x = rng.normal(size=n)
        if n and rng.random() < 0.3:
            x[rng.integers(0, n)] = np.nan
        if n and rng.random() < 0.2:
            x[rng.integers(0, n)] = rng.choice([np.inf, -np.inf])
        want = np.array([x[k : k + w].min() for k in range(n)])
        assert np.array_equal(forward_min(x, w), want, equal_nan=True), (x, w)
