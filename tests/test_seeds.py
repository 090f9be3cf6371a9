"""End to end: the runs the user diagnosed by hand (../shared/seeds/) are diagnosed by ``trainguard analyze``.

Each log is built by ``tests/seedlogs.py`` from the seed's own numbers, then
analyzed through the CLI exactly as a user would (``--json``), so these tests
cover reader, config discovery, detectors, diagnosis and the JSON contract at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import seedlogs
from trainguard.cli import app

runner = CliRunner()


def analyze_json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["analyze", *args, "--json"])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def codes(report: dict) -> dict[str, dict]:
    return {f["code"]: f for f in report["findings"]}


@pytest.fixture(scope="module")
def seed003(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = seedlogs.write_seed003(tmp_path_factory.mktemp("seed003") / "output")
    marker = Path("/tmp/trainguard_unpickled_marker")
    marker.unlink(missing_ok=True)
    code, rep = analyze_json(str(folder))
    assert not marker.exists(), "training_args.bin was unpickled"
    rep["_exit"] = code
    return rep


def test_seed003_best_point_and_unsaved_checkpoint(seed003: dict) -> None:
    best = seed003["best"]
    assert best["metric"] == "eval_loss"
    assert best["value"] == pytest.approx(0.1376)
    assert best["epoch"] == pytest.approx(15)
    assert best["step"] == 30
    assert best["checkpoint_saved"] is False
    assert "best_checkpoint_not_saved" in codes(seed003)
    assert seed003["_exit"] == 1


def test_seed003_steps_recovered_on_one_axis(seed003: dict) -> None:
    m = seed003["metrics"]
    assert m["train_loss"]["points"] == 200
    assert m["train_loss"]["last_step"] == 200
    assert m["eval_loss"]["points"] == 20
    assert (m["eval_loss"]["first_step"], m["eval_loss"]["last_step"]) == (10, 200)


def test_seed003_overfitting_memorization_gradnorm(seed003: dict) -> None:
    c = codes(seed003)
    of = c["overfitting"]
    assert of["severity"] in ("error", "critical")
    assert 30 <= of["evidence"]["onset_step"] <= 50
    assert of["evidence"]["worse_pct"] > 200
    assert "memorization" in c
    gn = c["grad_norm_collapse"]
    assert gn["evidence"]["ratio"] >= 100  # the x1000 collapse (medians blunt the extremes)


def test_seed003_lr_schedule_names_deepspeed(seed003: dict) -> None:
    lr = seed003["lr_schedule"]
    assert "linear" in lr["inferred"]["shape"]
    assert lr["configured"]["type"] == "constant"
    assert "WarmupDecayLR" in lr["cause"]
    assert "lr_schedule_mismatch" in codes(seed003)


def test_seed003_waste_and_gpu_hours(seed003: dict) -> None:
    w = seed003["waste"]
    assert w["fraction"] > 0.8
    assert w["steps"] == 170
    assert w["gpus"] == 8
    # ~11.6 h x 85% x 8 GPUs
    assert 70 < w["gpu_hours"] < 85


def test_seed003_recommendations(seed003: dict) -> None:
    rec = {r["key"]: r for r in seed003["recommendations"]}
    keys = " ".join(rec)
    assert "early_stopping_patience" in keys
    assert "lora_dropout" in keys
    assert "num_train_epochs" in keys
    # better than the seed: align saves with evals so the best checkpoint exists
    assert "save_steps" in keys or "load_best_model_at_end" in keys
    assert any("scheduler" in k for k in rec)  # the DeepSpeed block the seed only suspected
    assert all(r["reason"] for r in rec.values())


def test_seed003_phases_reach_black(seed003: dict) -> None:
    flags = [p["flag"] for p in seed003["phases"]]
    assert flags[0] in ("green", "yellow")
    assert "black" in flags or "red" in flags


def test_seed000_leakage_not_just_overfitting(tmp_path: Path) -> None:
    folder = seedlogs.write_seed000(tmp_path / "gptj")
    _, rep = analyze_json(str(folder))
    c = codes(rep)
    assert "suspicious_fast_drop" in c
    msg = c["suspicious_fast_drop"]["message"].lower()
    assert "leak" in msg or "duplicat" in msg
    assert "no_eval_data" in c
    drop = c["suspicious_fast_drop"]["evidence"]
    assert drop["from_value"] == pytest.approx(3.64, rel=0.02)
    assert drop["to_value"] < 0.01
    m = rep["metrics"]["train_loss"]  # logging_steps=25 recovered from tqdm, session killed at 410
    assert (m["points"], m["first_step"], m["last_step"]) == (16, 25, 400)


def test_seed002_plateau_and_instability(tmp_path: Path) -> None:
    path = seedlogs.write_seed002(tmp_path / "gpt2")
    _, rep = analyze_json(str(path))
    c = codes(rep)
    assert "plateau" in c
    assert "instability" in c or "loss_spike" in c
    assert rep["metrics"]["eval_loss"]["points"] == 3


def test_seed004_eval_perplexity_explosion(tmp_path: Path) -> None:
    path = seedlogs.write_seed004(tmp_path / "pico")
    _, rep = analyze_json(str(path))
    c = codes(rep)
    assert "eval_metric_explosion" in c
    assert c["eval_metric_explosion"]["severity"] in ("error", "critical")
