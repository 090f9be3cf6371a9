"""Shared fixtures: the real public logs in ../shared/realruns, and tiny real training runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALRUNS = Path(os.environ.get("TRAINGUARD_REALRUNS", ROOT.parent / "shared" / "realruns" / "runs"))
SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def realruns() -> Path:
    """Folder of real public training logs; the test is skipped where it is absent."""
    if not REALRUNS.is_dir():
        pytest.skip(f"real runs not found at {REALRUNS}")
    return REALRUNS


def realrun(name_prefix: str) -> Path:
    """Path of the real run whose file name starts with ``name_prefix`` (skips if absent)."""
    if not REALRUNS.is_dir():
        pytest.skip(f"real runs not found at {REALRUNS}")
    hits = sorted(REALRUNS.glob(name_prefix + "*"))
    if not hits:
        pytest.skip(f"no real run named {name_prefix}*")
    return hits[0]


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory):
    """Factory for tiny GPT-2 runs trained with the HF Trainer on the CPU, cached per session.

    ``tiny_runs("overfit")`` returns a :class:`tests.tiny_training.TinyRun` (output_dir with
    trainer_state.json, and the captured stdout). Kinds: overfit, healthy, diverge, plateau.
    """
    from tests.tiny_training import train_kind

    cache: dict[str, object] = {}
    base = tmp_path_factory.mktemp("tiny_runs")

    def get(kind: str):
        if kind not in cache:
            cache[kind] = train_kind(kind, base / kind)
        return cache[kind]

    return get


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """One line saying why tests were skipped, so ``make test`` on a fresh clone explains its skips.

    Reasons are grouped with their counts: ``skipped 85: real runs not found at
    ../shared/realruns/runs (set TRAINGUARD_REALRUNS) x60; chromium not installed x5``.
    """
    reports = terminalreporter.stats.get("skipped", [])
    if not reports:
        return
    counts: dict[str, int] = {}
    for rep in reports:
        longrepr = getattr(rep, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "skipped")
        reason = " ".join(str(reason).removeprefix("Skipped: ").split())
        if reason.startswith("real runs not found"):
            reason += " (set TRAINGUARD_REALRUNS to a folder of real logs)"
        counts[reason] = counts.get(reason, 0) + 1
    parts = [f"{r} x{n}" if n > 1 else r for r, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    terminalreporter.write_line(f"skipped {len(reports)}: " + "; ".join(parts))
