"""The plain-loop Guard API: growing Run, resume through state_dict, notifier and detector failures, bounded cost."""

from __future__ import annotations

import itertools
import json
import logging
import types

import pytest

import trainguard
from trainguard.findings import Finding, Severity
from trainguard.live.guard import Guard
from trainguard.live.policy import Policy

from .test_policy import SEED003


def _events(n_evals: int = len(SEED003)):
    """A plain loop's log: train loss every 5 steps, eval every 10 (the seed-003 curve)."""
    for i in range(n_evals):
        step = (i + 1) * 10
        yield step - 5, {"train_loss": 0.2 / (i + 1), "lr": 2e-4, "grad_norm": 0.1}
        yield step, {"train_loss": 0.19 / (i + 1), "lr": 2e-4, "grad_norm": 0.1}
        yield step, {"eval_loss": SEED003[i], "eval_accuracy": 0.5 + i / 100}


def test_guard_is_the_package_front_door_and_grows_a_run() -> None:
    g = trainguard.Guard()
    for step, kw in _events(3):
        g.log(step, **kw)
    h = g.run.history
    assert list(h["eval_loss"].steps) == [10, 20, 30]
    assert len(h["train_loss"]) == 6 and len(h["learning_rate"]) == 6
    assert list(h["eval_accuracy"].values) == pytest.approx([0.5, 0.51, 0.52])
    assert g.best is not None and (g.best.step, g.best.value) == (30, 0.1376)


def test_framework_names_and_string_values_are_accepted() -> None:
    g = Guard()
    g.log_dict(10, {"loss": "2.5", "learning_rate": "0.001", "grad_norm": "1.2", "epoch": "0.5"})
    g.log_dict(10, {"eval_loss": "2.4", "eval_runtime": "0.1"})
    h = g.run.history
    assert h["train_loss"].values[0] == 2.5 and h["learning_rate"].values[0] == 0.001
    assert h["eval_loss"].values[0] == 2.4 and g.best is not None and g.best.value == 2.4


def test_state_dict_round_trip_resumes_to_the_same_decision() -> None:
    events = list(_events())
    straight = Guard()
    stop_straight = next(s for s, kw in events if straight.log(s, **kw).stop)

    first = Guard()
    for s, kw in events[:10]:  # stop mid-run, between evals 3 and 4
        first.log(s, **kw)
    saved = json.loads(json.dumps(first.state_dict()))  # must survive a JSON checkpoint
    resumed = Guard()
    resumed.load_state_dict(saved)
    assert resumed.state_dict() == first.state_dict()
    stop_resumed = next(s for s, kw in events[10:] if resumed.log(s, **kw).stop)
    assert stop_resumed == stop_straight >= 60  # the same decision as an uninterrupted guard
    assert resumed.best == straight.best


def test_an_older_state_dict_loads_with_defaults() -> None:
    g = Guard()
    g.load_state_dict({"version": 0, "tracker": {"best": 1.0, "best_step": 100, "evals": 4}})
    assert g.best is not None and (g.best.step, g.best.value) == (100, 1.0)
    assert g.tracker.since_best == 0 and g.points == 0 and not g.should_stop
    assert g.log(110, eval_loss=1.2).kind == "continue"  # one eval after the best: too few to judge
    a = g.log(120, eval_loss=1.3)
    # judged against the best the old dict proves (1.0 at 100): +25% over 2 evals, but a stop waits for an
    # error held until twice the best step
    assert g.verdict.best_step == 100 and g.verdict.rise == pytest.approx(0.25) and not a.stop


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, title: str, body: str, level: str) -> None:
        self.sent.append((title, body, level))


class _Broken:
    def send(self, title: str, body: str, level: str) -> None:
        raise ConnectionError("server down")


def test_notifier_gets_the_stop_with_the_numbers() -> None:
    rec = _Recorder()
    g = Guard(notifier=rec, run_name="seed003")
    for s, kw in _events():
        if g.log(s, **kw).stop:
            break
    assert len(rec.sent) == 1
    title, body, level = rec.sent[0]
    assert "seed003" in title and str(g.stopped.step) in title and level == "error"
    assert "0.1376" in body and "step 30" in body


def test_a_failing_notifier_warns_once_and_never_breaks_training(caplog: pytest.LogCaptureFixture) -> None:
    g = Guard(Policy.alert_only(), notifier=_Broken())
    with caplog.at_level(logging.WARNING, logger="trainguard.live"):
        actions = [g.log(s, **kw) for s, kw in _events()]
    assert any(a.alert for a in actions)
    assert sum("notification failed" in r.message for r in caplog.records) == 1
    assert "server down" not in caplog.text  # the error text may hold a URL with a secret


def test_a_failing_detector_is_skipped_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    import trainguard.detectors as det

    boom = types.SimpleNamespace(__name__="boom", detect=lambda run: 1 / 0)
    monkeypatch.setattr(det, "modules", lambda: [boom])
    g = Guard(detect_min_gap=2)
    with caplog.at_level(logging.WARNING, logger="trainguard.live"):
        for s, kw in _events():
            g.log(s, **kw)
    assert g.should_stop
    assert sum("detector boom failed" in r.message for r in caplog.records) == 1


def test_detector_warnings_become_one_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    import trainguard.detectors as det

    warn = Finding("lr_schedule_mismatch", Severity.WARNING, "LR is constant; configured cosine.")
    fake = types.SimpleNamespace(__name__="fake", detect=lambda run: [warn])
    monkeypatch.setattr(det, "modules", lambda: [fake])
    g = Guard(detect_min_gap=4)
    alerts = [a for s, kw in _events(3) if (a := g.log(s, **kw)).alert]
    assert len(alerts) == 1 and alerts[0].findings == (warn,) and "lr_schedule_mismatch" in alerts[0].reason


def test_detector_passes_are_amortised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The full detectors run O(log n) times over n points, so their per-point cost stays bounded."""
    g = Guard()
    calls: list[int] = []
    monkeypatch.setattr(g, "_run_detectors", lambda: calls.append(g.points) or [])
    for i in range(20_000):
        g.log(i, train_loss=2.0, eval_loss=2.0 if i % 50 == 0 else None)
    assert 5 <= len(calls) <= 60
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert max(gaps) >= 0.1 * 20_000  # late passes are spaced in proportion to the history


def test_findings_and_diagnose_are_the_offline_pass() -> None:
    g = Guard()
    for s, kw in _events():
        g.log(s, **kw)
    assert isinstance(g.findings(), list)
    d = g.diagnose()
    assert d.run is g.run and len(d.run.eval_loss) == len(SEED003)


def test_a_stop_reaches_the_active_wandb_run_as_an_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script that uses W&B gets the guard's stop as ``wandb.alert``, with no code of its own."""
    import enum
    import sys
    import types

    sent: list[dict] = []
    fake = types.ModuleType("wandb")
    fake.AlertLevel = enum.Enum("AlertLevel", "INFO WARN ERROR")  # type: ignore[attr-defined]
    fake.run = object()  # type: ignore[attr-defined]
    fake.alert = lambda **kw: sent.append(kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    g = Guard(run_name="seed003")
    for s, kw in _events():
        if g.log(s, **kw).stop:
            break
    assert g.stopped is not None
    stops = [a for a in sent if a["level"] is fake.AlertLevel.ERROR]
    assert len(stops) == 1 and "seed003" in stops[0]["title"] and "0.1376" in stops[0]["text"]
