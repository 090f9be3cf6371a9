"""Seed 003 (70B LoRA, 8 GPUs, DeepSpeed): every fact the user found by hand, found by the detectors alone."""

from __future__ import annotations

import json

import pytest

from tests.detectors._build import findings, seed003_run
from trainguard.facts import facts_of
from trainguard.findings import Severity


@pytest.fixture(scope="module")
def run():
    return seed003_run()


@pytest.fixture(scope="module")
def found(run):
    return findings(run)


def test_best_point_is_epoch_15_and_unsaved(run) -> None:
    best = facts_of(run).best
    assert best is not None
    assert (best.metric, best.step) == ("eval_loss", 30)
    assert best.value == pytest.approx(0.1376)
    assert best.epoch == pytest.approx(15)
    assert best.checkpoint_saved is False


def test_overfitting_error_with_onset_and_size(found) -> None:
    f = found["overfitting"]
    assert f.severity is Severity.ERROR
    ev = f.evidence
    assert ev["best_step"] == 30 and ev["onset_step"] == 30
    assert ev["final_worse_pct"] == pytest.approx(257.4, abs=0.5)
    assert ev["worse_pct"] > 200 and ev["evals_after_best"] == 17
    assert ev["last_value"] == pytest.approx(0.4918)
    assert ev["train_last"] < 0.001 < ev["train_at_best"]
    assert "0.1376" in f.message and "step 30" in f.message


def test_memorization_while_eval_rises(found) -> None:
    f = found["memorization"]
    assert f.severity is Severity.ERROR
    assert f.evidence["eval_trend"] == "rising"
    assert f.evidence["ratio"] < 0.01
    # near zero (< 5 % of the 0.17 start) from the seed's epoch-40 row, step 80, give or take the jitter
    assert 60 <= f.evidence["first_near_zero_step"] <= 110
    assert "suspicious_fast_drop" not in found  # 100 epochs: memorization, not leakage


def test_grad_norm_collapse_x1000(found) -> None:
    f = found["grad_norm_collapse"]
    assert f.severity is Severity.ERROR
    ev = f.evidence
    assert ev["ratio"] >= 100
    assert 0.05 < ev["early_median"] < 0.6
    assert ev["late_median"] < 0.001
    assert "learning has effectively stopped" in f.message


def test_lr_linear_decay_against_constant_names_deepspeed(run, found) -> None:
    sch = facts_of(run).schedule
    inf = sch.inferred
    assert inf is not None
    assert inf["shape"] == "warmup+linear"
    assert inf["peak"] == pytest.approx(2e-4)
    assert 9 <= inf["warmup_steps"] <= 10  # the log warm-up reaches its peak at step 9 or 10
    assert inf["final"] < 2e-6
    assert inf["end_step"] == pytest.approx(200, abs=2)
    assert sch.configured is not None and sch.configured["type"] == "constant"
    assert sch.configured["source"] == "training_args.json"
    assert sch.matches is False
    assert sch.cause is not None and "WarmupDecayLR" in sch.cause and "ds_config.json" in sch.cause
    f = found["lr_schedule_mismatch"]
    assert f.severity is Severity.WARNING
    assert "constant" in f.message and "WarmupDecayLR" in f.message


def test_waste_over_80_percent_in_gpu_hours(run, found) -> None:
    w = facts_of(run).waste
    assert w is not None
    assert w.steps == 170 and w.fraction == pytest.approx(0.85)
    assert w.gpus == 8 and not w.gpus_assumed
    assert w.hours == pytest.approx(11.68 * 0.85, rel=0.02)
    assert 77 <= w.gpu_hours <= 82  # the seed's "~77 GPU-hours" (it counted from epoch 20)
    assert w.deletable_checkpoints == ["output/checkpoint-100"]
    f = found["wasted_compute"]
    assert f.severity is Severity.ERROR
    assert "85%" in f.message and "GPU-hours" in f.message


def test_best_checkpoint_never_saved(found) -> None:
    f = found["best_checkpoint_not_saved"]
    assert f.severity is Severity.ERROR
    ev = f.evidence
    assert ev["best_step"] == 30
    assert ev["saved_steps"] == [100, 200]
    assert ev["nearest_saved"] == 100
    assert ev["nearest_saved_value"] == pytest.approx(0.3899)


def test_no_false_alarms_and_json_safe(found) -> None:
    assert "divergence" not in found and "nan_loss" not in found and "no_learning" not in found
    assert "no_eval_data" not in found and "eval_metric_explosion" not in found
    for f in found.values():
        json.dumps(f.to_dict(), allow_nan=False)
        assert 0.0 <= f.confidence <= 1.0
        assert f.message.endswith(".")
