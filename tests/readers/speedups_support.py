"""What the tests of the optional C extension share: running on both paths, chunked scanning, Run snapshots.

Every reader with a compiled fast path is tested twice, with the extension
and with the pure-Python path, and the two must give the same Runs bit for
bit; these helpers are how, written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from trainguard import _compiled
from trainguard.readers._hf_scan import Scanned
from trainguard.run import Run


@pytest.fixture(autouse=True, params=["compiled", "python"])
def both_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Import into a test module to run each of its tests with the C extension (when built) and without it."""
    if request.param == "compiled":
        if _compiled.load() is None:
            pytest.skip("trainguard._speedups not built (or TRAINGUARD_NO_SPEEDUPS set)")
        monkeypatch.setattr(_compiled, "speedups", _compiled.load())
    else:
        monkeypatch.setattr(_compiled, "speedups", None)


def feed_in_chunks(fn: Callable[..., int], data: bytes, chunk: int) -> tuple[Scanned, list[int]]:
    """Run an HF stdout scanner over ``data`` in ``chunk``-byte pieces the way StreamParser does."""
    sc, carry, off, ctx, pos, used_all = Scanned(), b"", 0, 0, 0, []
    while True:
        d = data[pos : pos + chunk]
        pos += len(d)
        buf = carry + d if carry else d
        used = fn(buf, off, sc, final=not d, start=ctx)
        used_all.append(used)
        keep = max(0, used - 16)
        carry, ctx, off = buf[keep:], used - keep, off + keep
        if not d:
            return sc, used_all


def snapshot(runs: list[Run]) -> list[dict[str, Any]]:
    """Everything in the Runs, arrays as bytes (NaNs made one NaN, -0.0 kept) so == compares bit for bit."""

    def arr(a: np.ndarray) -> bytes:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = np.where(np.isnan(a), np.nan, a)
        return bytes([a.dtype.num]) + a.tobytes()

    out = []
    for r in runs:
        d = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name not in ("history", "config")}
        d["config"] = (repr(vars(r.config)), r.config.conflicts)
        d["history"] = {k: (arr(s.steps), arr(s.values), arr(s.epochs), arr(s.wall_time)) for k, s in r.history.items()}
        out.append(d)
    return out
