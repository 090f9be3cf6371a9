"""MLflow: a real tracking server holding three runs logged through the client, scanned, tags written back.

The runs carry curves recorded from tiny CPU trainings (``make_curves.py``):
one overfits (eval bottoms out, then climbs while train keeps falling), one is
healthy (cosine, eval still falling) and one diverges (LR 1.0). The expected
best steps are computed from those curves here, never typed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import best_eval_step, log_curve, run_scan

EXPECTED = {"overfit": "overfit", "healthy": "healthy", "diverge": "diverged"}


@pytest.fixture(scope="module")
def experiment(mlflow_server: str, curves: dict[str, Any]) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=mlflow_server)
    eid = c.create_experiment("tiny-gpt2")
    ids = {kind: log_curve(c, eid, f"tiny-{kind}", curves[kind]) for kind in EXPECTED}
    other = c.create_experiment("someone-else")
    log_curve(c, other, "not-in-the-scan", curves["healthy"])
    return {"uri": mlflow_server, "ids": ids, "client": c}


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["run"]: r for r in doc["runs"]}


def test_scan_of_a_tracking_server_gives_verdicts_and_best_steps(experiment: dict[str, Any], curves: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    code, out, err = run_scan([experiment["uri"], "--experiment", "tiny-gpt2", "--json", "--jobs", "2",
                               "--cache", str(tmp_path / "c")])
    assert code in (0, 1), err
    doc = json.loads(out)
    runs = _by_name(doc)
    assert sorted(runs) == sorted(f"tiny-{k}" for k in EXPECTED)  # only the named experiment
    assert doc["skipped"] == []
    for kind, verdict in EXPECTED.items():
        r = runs[f"tiny-{kind}"]
        assert r["verdict"] == verdict, (kind, r["message"])
        assert r["source"].startswith(experiment["uri"]) and experiment["ids"][kind] in r["source"]
        if kind != "diverge":
            assert r["best"]["step"] == best_eval_step(curves[kind]), kind
    # the overfit run spent most of its 800 steps after the best, and the timestamps give hours
    w = runs["tiny-overfit"]["waste"]
    assert w["steps"] == curves["overfit"]["points"][-1]["step"] - best_eval_step(curves["overfit"])
    assert w["hours"] is not None and w["hours"] > 0
    assert doc["totals"]["verdicts"]["overfit"] == 1 and doc["totals"]["runs"] == 3
    assert code == 1  # error-level findings in the fleet: usable as a gate

    # a second scan reads the cache; a run that changed is analyzed again
    _, out2, _ = run_scan([experiment["uri"], "-e", "tiny-gpt2", "--json", "--cache", str(tmp_path / "c")])
    doc2 = json.loads(out2)
    assert (doc2["analyzed"], doc2["from_cache"]) == (0, 3)
    assert _by_name(doc2) == runs
    experiment["client"].log_metric(experiment["ids"]["healthy"], "eval_loss", 9.0, step=301)
    doc3 = json.loads(run_scan([experiment["uri"], "-e", "tiny-gpt2", "--json", "--cache", str(tmp_path / "c")])[1])
    assert (doc3["analyzed"], doc3["from_cache"]) == (1, 2)


def test_write_back_leaves_tags_and_the_report(experiment: dict[str, Any], curves: dict[str, Any], tmp_path: Path) -> None:
    code, _, err = run_scan([experiment["uri"], "--experiment", "tiny-gpt2", "--write-back", "--no-cache"])
    assert code in (0, 1), err
    c = experiment["client"]
    rid = experiment["ids"]["overfit"]
    tags = c.get_run(rid).data.tags
    assert tags["trainguard.verdict"] == "overfit"
    assert int(tags["trainguard.best_step"]) == best_eval_step(curves["overfit"])
    assert float(tags["trainguard.waste_gpu_hours"]) > 0
    assert tags["trainguard.top_finding"]
    arts = [a.path for a in c.list_artifacts(rid, "trainguard")]
    assert arts == ["trainguard/report.html"]
    html = Path(c.download_artifacts(rid, "trainguard/report.html", str(tmp_path))).read_text(encoding="utf-8")
    assert "tiny-overfit" in html and "Content-Security-Policy" in html
    assert c.get_run(experiment["ids"]["diverge"]).data.tags["trainguard.verdict"] == "diverged"


def test_unknown_experiment_and_dead_server_are_one_line(experiment: dict[str, Any]) -> None:
    code, out, err = run_scan([experiment["uri"], "--experiment", "nope", "--no-cache"])
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("error: ") and "no experiment named 'nope'" in err
    assert "tiny-gpt2" in err  # says what the server has
    from .conftest import free_port

    code, _, err = run_scan([f"http://127.0.0.1:{free_port()}", "--no-cache"], subprocess_cli=True)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot list runs" in err
    assert "Traceback" not in err


def test_a_server_run_is_read_in_full_with_params_as_config(experiment: dict[str, Any], curves: dict[str, Any]) -> None:
    from trainguard.trackers.mlflow import read_run

    run = read_run(experiment["uri"], experiment["ids"]["overfit"])
    pts = curves["overfit"]["points"]
    assert run.train_loss.steps.tolist() == [p["step"] for p in pts if "loss" in p]
    assert run.eval_loss.values.tolist() == [p["eval_loss"] for p in pts if "eval_loss" in p]
    assert run.config.get("learning_rate") == curves["overfit"]["params"]["learning_rate"]
    assert run.config.get("lr_scheduler_type") == "constant" and run.config.source("learning_rate") == "MLflow params"
    assert run.seconds_per_step() == pytest.approx(1.0)  # the metric timestamps, one second per step
