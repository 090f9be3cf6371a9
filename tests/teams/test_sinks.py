"""Live sinks: the guard's decisions logged to the active MLflow run, and raised as ``wandb.alert``.

The MLflow sink is checked against the session's real tracking server: a
Guard fed the recorded overfit curve inside ``mlflow.start_run()`` leaves its
stop on the run (tags and a ``trainguard_action`` metric at the decision's
step). W&B has no server here and ``wandb.alert`` is a no-op offline, so the
W&B sink is checked against a stand-in module that records the calls.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest


def _feed(guard: Any, curve: dict[str, Any], sink: Any) -> list[Any]:
    actions = []
    for p in curve["points"]:
        a = guard.log(p["step"], train_loss=p.get("loss"), eval_loss=p.get("eval_loss"))
        if a:
            actions.append(a)
            if sink is not None:  # None: the guard hands its actions to the trackers the script imported
                sink.on_action(a, guard)
    return actions


def test_mlflow_sink_logs_the_stop_on_the_active_run(mlflow_server: str, curves: dict[str, Any]) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from trainguard.live.guard import Guard
    from trainguard.trackers.mlflow import MlflowSink

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("live-guard")
    guard = Guard(run_name="live-overfit")
    sink = MlflowSink()
    sink.on_action(types.SimpleNamespace(kind="stop", stop=True, step=1, reason="x"), guard)  # no active run: nothing
    with mlflow.start_run() as run:
        actions = _feed(guard, curves["overfit"], sink)
    stop = next(a for a in actions if a.stop)
    c = MlflowClient(tracking_uri=mlflow_server)
    tags = c.get_run(run.info.run_id).data.tags
    assert tags["trainguard.stopped_at"] == str(stop.step)
    assert tags["trainguard.best_step"] == str(guard.best.step)
    assert tags["trainguard.last_action"] == actions[-1].kind
    hist = {m.step: m.value for m in c.get_metric_history(run.info.run_id, "trainguard_action")}
    assert hist[stop.step] == 3.0  # stop
    saves = [a.step for a in actions if a.kind == "save"]
    assert saves and all(hist[s] == 2.0 for s in saves)


def test_wandb_sink_alerts_only_with_an_active_run(monkeypatch: pytest.MonkeyPatch, curves: dict[str, Any]) -> None:
    from trainguard.live.guard import Guard
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("wandb")
    fake.run = None  # type: ignore[attr-defined]
    fake.AlertLevel = types.SimpleNamespace(WARN="WARN", ERROR="ERROR")  # type: ignore[attr-defined]
    fake.alert = lambda **kw: calls.append(kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    guard = Guard(run_name="wb-live")
    _feed(guard, curves["overfit"], None)
    assert calls == []  # no active run: nothing sent
    fake.run = object()  # type: ignore[attr-defined]
    guard = Guard(run_name="wb-live")
    actions = _feed(guard, curves["overfit"], None)  # the guard finds the imported wandb on its own
    stops = [a for a in actions if a.stop]
    alerts = [a for a in actions if a.alert and not a.stop]
    assert len(calls) == len(stops) + len(alerts) and stops
    last = calls[-1]
    assert last["level"] == "ERROR" and f"at step {stops[-1].step}" in last["title"] and "wb-live" in last["title"]
    assert f"best eval_loss {guard.best.value:.6g} at step {guard.best.step}" in last["text"]
    assert all(c["level"] == "WARN" for c in calls[: len(alerts)] if "alert" in c["title"])
