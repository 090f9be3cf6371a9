"""A real HF training that goes NaN: the Trainer's 0.0 placeholders are read as NaN, everywhere the log is read.

The tiny GPT-2 at LR 30 is NaN within its first ten steps. With
``logging_nan_inf_filter`` on (the default) the Trainer then logs
``'loss': 0.0`` beside ``'grad_norm': nan`` for the rest of the run, which read
as numbers is a perfect fit ("memorizing", "converged"). The trainer_state,
the stdout, and the live guard fed the same logs must all see a NaN run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_training import train_kind
from trainguard.diagnosis import diagnose
from trainguard.findings import Severity
from trainguard.live.guard import Guard
from trainguard.readers import read_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory: pytest.TempPathFactory):
    return train_kind("diverge", tmp_path_factory.mktemp("nan") / "out", lr=30.0, steps=60)


def test_the_trainer_logs_zero_beside_a_nan_gradient_norm(nan_run) -> None:
    """The premise, checked on the installed transformers: if this fails, the filter changed and so must we."""
    pairs = [(h["loss"], h["grad_norm"]) for h in nan_run.log_history if "loss" in h and "grad_norm" in h]
    assert any(loss == 0.0 and math.isnan(g) for loss, g in pairs)


@pytest.mark.parametrize("source", ["trainer_state.json", "train.log"])
def test_zero_placeholders_are_read_as_nan(nan_run, source: str) -> None:
    [run] = read_runs(Path(nan_run.output_dir) / source)
    loss = run.train_loss
    grad = run.history["grad_norm"]
    at_nan_grad = np.isin(loss.steps, grad.steps[~np.isfinite(grad.values)])
    assert at_nan_grad.sum() >= 4
    assert not (loss.values[at_nan_grad] == 0.0).any()
    assert any("logging_nan_inf_filter" in n for n in run.notes)
    d = diagnose(run)
    codes = {f.code: f for f in d.findings}
    assert codes["nan_loss"].severity is Severity.CRITICAL
    assert any(f.code == "nan_loss" and f.evidence["metric"] == "train_loss" for f in d.findings)
    for wrong in ("memorization", "suspicious_fast_drop", "plateau"):  # a NaN run is not a perfect fit
        assert wrong not in codes, codes[wrong].message


def test_the_live_guard_sees_the_nan_too(nan_run) -> None:
    guard = Guard()
    stops = []
    for h in nan_run.log_history:
        if "step" in h and ("loss" in h or "eval_loss" in h):
            a = guard.log_dict(int(h["step"]), h)
            if a.stop:
                stops.append((a, h))
    train = guard.run.history["train_loss"]
    assert np.isnan(train.values[1:]).all()  # every 0.0 after the first log was a placeholder
    action, logged = stops[0]
    assert "nan" in action.reason.lower()
    assert action.step == 20 and "loss" in logged  # on the train log's placeholder, before the eval at that step
