"""JSON lines: LLaMA-Factory trainer_log.jsonl, detectron2 metrics.json, generic step-keyed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import realrun
from trainguard.errors import NoMetricsError
from trainguard.readers import jsonl, read_runs


def _write(path: Path, objs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def test_llamafactory_real_log_end_marker_and_plan() -> None:
    [run] = read_runs(realrun("006_"))
    assert run.format == "llamafactory_jsonl"
    assert run.train_loss.steps.tolist() == list(range(1, 10))
    assert run.history["learning_rate"].values[0] == 0.0
    assert run.planned_steps == 9 and run.finished is True
    assert run.train_runtime == 337.0  # "0:05:37" on the closing line
    assert run.train_loss.wall_time[0] == 39.0


def test_llamafactory_eval_lines(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "trainer_log.jsonl",
        [
            {"current_steps": 10, "total_steps": 30, "loss": 2.0, "learning_rate": 1e-4, "epoch": 0.3},
            {"current_steps": 10, "total_steps": 30, "eval_loss": 2.2, "epoch": 0.3},
            {"current_steps": 20, "total_steps": 30, "loss": 1.5, "learning_rate": 5e-5, "epoch": 0.6},
        ],
    )
    [run] = read_runs(f)
    assert run.eval_loss.steps.tolist() == [10] and run.eval_loss.values.tolist() == [2.2]
    assert run.train_loss.values.tolist() == [2.0, 1.5]
    assert run.history["epoch"].values.tolist() == [0.3, 0.6]
    assert run.finished is None


def test_detectron2_metrics_json(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "metrics.json",
        [
            {"data_time": 0.01, "iteration": 19, "loss_cls": 0.6, "lr": 0.0004, "time": 0.5, "total_loss": 1.9},
            {"data_time": 0.01, "iteration": 39, "loss_cls": 0.4, "lr": 0.0008, "time": 0.5, "total_loss": 1.3},
            {"bbox/AP": 12.5, "bbox/AP50": 30.1, "iteration": 39},
        ],
    )
    [run] = read_runs(f)
    assert run.format == "detectron2_json"
    assert run.train_loss.steps.tolist() == [19, 39] and run.train_loss.values.tolist() == [1.9, 1.3]
    assert run.history["eval_bbox/ap"].values.tolist() == [12.5]
    assert run.history["step_time"].values.tolist() == [0.5, 0.5]


def test_generic_records_with_perplexity_only(tmp_path: Path) -> None:
    f = _write(tmp_path / "log.jsonl", [{"step": 1, "ppl": 100.0}, {"step": 2, "ppl": 50.0, "val_ppl": 60.0}])
    [run] = read_runs(f)
    assert run.train_loss.values.tolist() == pytest.approx([4.605170186, 3.912023005])
    assert run.history["train_perplexity"].values.tolist() == [100.0, 50.0]
    assert run.eval_loss.values.tolist() == pytest.approx([4.094344562])
    assert any("derived from logged perplexity" in n for n in run.notes)


def test_resume_rewind_is_stitched(tmp_path: Path) -> None:
    f = _write(tmp_path / "m.jsonl", [{"step": s, "loss": 10 - s / 10} for s in (10, 20, 30)] + [{"step": 20, "loss": 1.0}, {"step": 30, "loss": 0.5}])
    [run] = read_runs(f)
    assert run.train_loss.steps.tolist() == [10, 20, 30] and run.train_loss.values.tolist() == [9.0, 1.0, 0.5]


def test_no_numbers_is_no_metrics(tmp_path: Path) -> None:
    f = _write(tmp_path / "x.jsonl", [{"step": 1, "msg": "hello"}, {"step": 2, "msg": "bye"}])
    with pytest.raises(NoMetricsError):
        jsonl.read(f)
