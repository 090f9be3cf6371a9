"""One small real-shaped fixture per log format added for issue 11, read with no flags.

Each fixture in tests/data/<format>/ is shaped like the real thing (the
spacing, ANSI codes, ``\\r`` redraws and band columns those tools print);
the test pins the reader chosen and the points a user would plot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REALRUNS
from trainguard.readers import read_runs

DATA = Path(__file__).resolve().parents[1] / "data"


def _pts(run, name: str) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    s = run.history[name]
    return list(zip(s.steps.tolist(), s.values.tolist(), strict=True))


def test_multiline_records_with_restarting_epoch_counter() -> None:
    """``epoch N`` / ``loss: x`` / ``test accuracy: y`` on separate lines; the second ``epoch 0`` starts a new run."""
    first, second = read_runs(DATA / "multiline" / "epochs_restart.txt")
    assert first.format == second.format == "multiline"
    assert _pts(first, "train_loss") == [(0, 0.6931), (1, 0.512), (2, 0.4411)]
    assert _pts(second, "eval_accuracy") == [(0, 0.498), (1, 0.722), (2, 0.781), (3, 0.779)]
    assert any("restarted" in n for n in second.notes)


def test_multiline_real_epoch_log_keeps_validation_metrics() -> None:
    hits = sorted(REALRUNS.glob("074_*")) if REALRUNS.is_dir() else []
    if not hits:
        pytest.skip(f"real run 074 not found under {REALRUNS}")
    (run,) = read_runs(hits[0])
    assert run.format == "multiline"
    assert len(run.eval_loss) == 15 and {"eval_f1", "eval_precision", "eval_recall"} <= set(run.history)
    best = int(run.eval_loss.steps[run.eval_loss.values.argmin()])
    assert best == 7


def test_keras3_fit_stdout_keeps_final_progress_line_per_epoch() -> None:
    """Only the last redraw of each epoch (the one with val_*) is a point; the step is the printed epoch."""
    (run,) = read_runs(DATA / "keras_stdout" / "fit_keras3.txt")
    assert run.format == "keras_stdout"
    assert _pts(run, "train_loss") == [(1, 1.1012), (2, 0.8104), (3, 0.623)]
    assert _pts(run, "eval_loss") == [(1, 0.9811), (2, 0.842), (3, 0.8617)]
    assert run.config.get("num_train_epochs") == 3


def test_keras2_real_fit_stdout() -> None:
    hits = sorted(REALRUNS.glob("066_*")) if REALRUNS.is_dir() else []
    if not hits:
        pytest.skip(f"real run 066 not found under {REALRUNS}")
    (run,) = read_runs(hits[0])
    assert run.format == "keras_stdout" and len(run.train_loss) == len(run.eval_loss) == 1000
    assert (int(run.eval_loss.steps[0]), float(run.eval_loss.values[0])) == (1, 1.03)


def test_wandb_panel_exports_of_one_run_are_one_run() -> None:
    """``batch/loss`` and ``epoch/val_loss`` charts exported separately: one run, bands left out."""
    runs = read_runs(DATA / "wandb_export" / "sentence-run")
    assert len(runs) == 1 and runs.skipped == []
    (run,) = runs
    assert run.format == "wandb_export" and run.name == "fluent-oath-59"
    assert _pts(run, "eval_loss")[:2] == [(100, 1.2008085250854492), (200, 1.1202354431152344)]
    assert len(run.train_loss) == 6 and float(run.train_loss.values[2]) == 1.2011  # the value, not __MIN 1.1011


def test_train_and_validation_csv_pair_is_one_run() -> None:
    (run,) = read_runs(DATA / "csv_pair" / "maskrcnn")
    assert run.format == "csv_pair" and run.name == "maskrcnn"
    assert _pts(run, "train_loss")[0] == (0, 0.4592)  # total_loss of the train table
    assert _pts(run, "eval_loss") == [(0, 0.3755), (1, 0.352), (2, 0.3496), (3, 0.3601)]
    assert "eval_loss_mask" in run.history and "" not in run.history  # the unnamed index column is not a metric


def test_json_document_with_metric_list_under_any_key() -> None:
    (run,) = read_runs(DATA / "json_metrics" / "run.json")
    assert run.format == "json_metrics" and run.name == "gpt2-lora-r8"
    assert _pts(run, "eval_loss") == [(100, 2.4), (200, 2.22), (300, 2.25), (400, 2.31)]
    assert run.config.get("learning_rate") == 0.0002 and run.config.source("learning_rate") == "run.json"


def test_megatron_iteration_lines_and_validation_blocks() -> None:
    (run,) = read_runs(DATA / "megatron" / "pretrain_gpt.log")
    assert run.format == "megatron" and run.planned_steps == 500
    assert _pts(run, "train_loss")[0] == (10, pytest.approx(10.45123))
    assert _pts(run, "eval_loss") == [(20, pytest.approx(8.701234)), (40, pytest.approx(6.912345))]
    assert _pts(run, "step_time")[0] == (10, pytest.approx(0.8124))  # ms -> s


def test_nemo2_iteration_lines() -> None:
    (run,) = read_runs(DATA / "megatron" / "nemo2.log")
    assert run.format == "megatron"
    assert _pts(run, "train_loss") == [(0, 11.03), (1, 11.01), (2, 10.95), (3, 10.91)]
    assert _pts(run, "eval_loss") == [(3, 10.87)]
    assert "global_step" not in run.history


def test_coqui_trainer_log_train_and_eval_blocks() -> None:
    (run,) = read_runs(DATA / "coqui" / "trainer_0_log.txt")
    assert run.format == "coqui"
    assert _pts(run, "train_loss") == [(0, 3.91027), (25, 3.51012), (50, 3.20012)]  # current value, not the (average)
    assert _pts(run, "eval_loss") == [(25, 3.30123), (50, 3.10123)]  # avg_loss of the eval after each step
    assert _pts(run, "learning_rate")[-1] == (50, 5e-07)


def test_llamafactory_train_only_log() -> None:
    (run,) = read_runs(DATA / "llamafactory" / "trainer_log.jsonl")
    assert len(run.train_loss) == 4 and len(run.eval_loss) == 0
    assert run.planned_steps == 40


def test_wandb_output_log_from_resnet_loop() -> None:
    (run,) = read_runs(DATA / "wandb_output" / "output.log")
    assert _pts(run, "eval_loss") == [(1, 1.5123), (2, 1.2011), (3, 1.0502), (4, 1.0811)]
    assert _pts(run, "eval_accuracy")[2] == (3, pytest.approx(0.631))


def test_jsonl_with_nested_records() -> None:
    """``{"step": 100, "train": {"loss": ...}, "val": {"loss": ...}}`` lines: nested keys are flattened first."""
    (run,) = read_runs(DATA / "jsonl" / "nested.jsonl")
    assert _pts(run, "train_loss") == [(50, 2.31), (100, 2.02), (150, 1.88), (200, 1.71)]
    assert _pts(run, "eval_loss") == [(100, 2.11), (200, 2.05)]
    assert _pts(run, "learning_rate")[-1] == (200, 0.0002)


def test_multiline_record_with_several_pairs_on_a_line() -> None:
    """``Epoch 1/3`` alone, then ``train_loss: 0.9 | val_loss: 1.0 | val_acc: 0.5``: one record per epoch."""
    (run,) = read_runs(DATA / "multiline" / "epoch_header_pairs.txt")
    assert run.format == "multiline"
    assert _pts(run, "eval_loss") == [(1, 1.0), (2, 0.8), (3, 0.85)]
    assert _pts(run, "eval_accuracy")[-1] == (3, 0.65)
    assert run.config.get("num_train_epochs") == 3
