"""The numpy.ma-free median and unique give numpy's own answers, so swapping them in changed no verdict."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from trainguard._arrays import median, unique


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
