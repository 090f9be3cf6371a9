"""Every real run in ../shared/realruns (files and folders), read with no flags, has the best eval point of LABELS.jsonl.

``label.py`` computes each label with a parser written for that one file; the
readers know no file. The best eval point is the minimum finite eval loss; its
step must be the label's step, or its epoch where the label counts epochs (logs
without step numbers). A file holding several runs matches when one of its
runs holds the labelled best (the label reads the file as one series).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import REALRUNS
from trainguard.readers import read_runs

LABELS = REALRUNS.parent / "LABELS.jsonl"


def _labels() -> list[dict]:
    if not LABELS.is_file():
        return []
    return [json.loads(ln) for ln in LABELS.read_text().splitlines() if ln.strip()]


def _best(runs: list) -> tuple[float, int, float] | None:  # type: ignore[type-arg]
    """(loss, step, epoch) of the lowest finite eval loss over all runs read from the path."""
    best = None
    for r in runs:
        s = r.eval_loss
        for step, v, e in zip(s.steps.tolist(), s.values.tolist(), s.epochs.tolist(), strict=True):
            if math.isfinite(v) and (best is None or v < best[0]):
                best = (v, step, e)
    return best


@pytest.mark.skipif(not LABELS.is_file(), reason=f"real-run labels not found at {LABELS}")
@pytest.mark.parametrize("label", _labels(), ids=lambda d: d["file"][:3])
def test_best_eval_point_matches_label(label: dict) -> None:
    path = REALRUNS / label["file"]
    runs = read_runs(path)
    assert runs, "no run read"
    best = _best(runs)
    if label["best_eval_step"] is None:
        assert best is None, f"eval points found where the label has none: {best}"
        return
    assert best is not None, "no finite eval loss read"
    loss, step, epoch = best
    assert loss == pytest.approx(label["best_eval_loss"], rel=1e-6)
    want = label["best_eval_step"]
    assert step == want or (epoch == epoch and epoch == pytest.approx(want)), (step, epoch, want)


@pytest.mark.skipif(not LABELS.is_file(), reason=f"real-run labels not found at {LABELS}")
def test_every_labelled_run_exists() -> None:
    """The labels and the runs folder agree, so the test above covers every run there."""
    names = {d["file"] for d in _labels()}
    assert names == {p.name for p in Path(REALRUNS).iterdir() if not p.name.startswith(".")}
