"""Real public runs (../shared/realruns): what each detector must say, checked by hand against the numbers.

Formats without a reader yet (jsonl, csv, md, stdout) skip until their reader lands.
"""

from __future__ import annotations

import pytest

from tests.detectors._build import findings, loud, read_real
from trainguard.facts import facts_of
from trainguard.findings import Severity


def test_001_zero_loss_zero_grad_is_broken_not_learning() -> None:
    run = read_real("001")
    f = findings(run)
    g = f["grad_norm_collapse"]
    assert g.severity is Severity.ERROR
    assert g.evidence["all_zero"] is True and g.evidence["zero_loss"] is True
    assert "memorization" not in f and "suspicious_fast_drop" not in f
    assert "no_learning" not in f and "plateau" not in f  # "LR too low" would be the wrong advice
    assert facts_of(run).schedule.inferred["decay"] == "linear"


def test_002_constant_lr_and_one_eval_point() -> None:
    run = read_real("002")
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "constant" and inf["peak"] == pytest.approx(2e-4)
    f = findings(run)
    assert f["no_eval_data"].evidence["eval_points"] == 1
    assert loud(run) == {}


def test_003_linear_decay_no_eval() -> None:
    run = read_real("003")
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "linear" and inf["warmup_steps"] == 0
    assert set(loud(run)) == {"no_eval_data"}


def test_004_early_checkpoint_slow_eval_is_not_alarming() -> None:
    run = read_real("004")
    assert loud(run) == {}
    best = facts_of(run).best
    assert best is not None and best.step == 500 and best.checkpoint_saved is True


def test_007_memorization_without_eval() -> None:
    run = read_real("007")
    f = loud(run)
    m = f["memorization"]
    assert m.severity is Severity.WARNING and m.evidence["eval_trend"] == "none"
    assert m.evidence["train_last"] < 0.005 and m.evidence["train_first"] == pytest.approx(4.26, rel=0.01)
    assert "suspicious_fast_drop" not in f  # 4.26 -> 0.1 took 10 epochs
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "linear" and inf["final"] == 0.0


def test_008_healthy_run_is_quiet() -> None:
    run = read_real("008")
    assert loud(run) == {}
    best = facts_of(run).best
    assert best is not None and best.step == 120 and best.value == pytest.approx(0.049446, rel=1e-4)
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "warmup+cosine" and inf["warmup_steps"] == 10
    # the 33 grad norm at step 5 is the first log: at most info, and said to be early
    g = findings(run).get("grad_norm_explosion")
    assert g is None or g.severity is Severity.INFO


def test_009_converged_eval_plateau_is_info() -> None:
    run = read_real("009")
    assert loud(run) == {}
    assert facts_of(run).best.step == 3765
    p = findings(run)["plateau"]
    assert p.severity is Severity.INFO and p.evidence["metric"] == "eval_loss"
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "warmup+linear" and 100 <= inf["warmup_steps"] <= 150


def test_010_tiny_late_rise_is_a_note() -> None:
    run = read_real("010")
    f = findings(run)
    o = f["overfitting"]
    # the level of the two evals after the best is +0.1% (the last alone +0.2%): a note with its size
    assert o.severity is Severity.INFO and "+0.1%" in o.message and "2 evals" in o.message
    assert o.evidence["best_step"] == 200 and o.evidence["best_value"] == pytest.approx(0.6275, abs=1e-4)
    assert o.evidence["final_worse_pct"] == pytest.approx(0.19, abs=0.02)
    assert f["wasted_compute"].severity is Severity.INFO  # after a best that is not a real turn: a note
    assert f["wasted_compute"].evidence["fraction"] == pytest.approx(1 / 3, abs=0.01)
    assert facts_of(run).schedule.inferred["shape"] == "warmup+linear"


def test_011_dpo_cosine_from_peak() -> None:
    run = read_real("011")
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "cosine" and inf["peak"] == pytest.approx(1e-6)
    assert "grad_norm_explosion" not in loud(run)


def test_012_flat_from_the_start_is_a_plateau_warning() -> None:
    run = read_real("012")
    p = findings(run)["plateau"]
    assert p.severity is Severity.WARNING and p.evidence["kind"] == "from_start"
    assert p.evidence["total_relative"] < 0.1
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "warmup+cosine" and inf["warmup_steps"] == 100


def test_013_warmup_grad_spikes_are_info_and_best_is_saved() -> None:
    run = read_real("013")
    f = findings(run)
    g = f["grad_norm_explosion"]
    assert g.severity is Severity.INFO and g.evidence["kind"] == "warmup_spikes"
    assert all(s["step"] <= 40 for s in g.evidence["warmup_spikes"])
    assert "warm-up" in g.message
    best = facts_of(run).best
    assert best.step == 1944 and best.checkpoint_saved is True
    assert "overfitting" not in loud(run)
    assert facts_of(run).schedule.inferred["warmup_steps"] == 500


def test_021_slow_small_rise_is_a_note_with_its_size() -> None:
    """Eval +1.3% over the 4 evals after epoch 6: real but below the 3% that matters (it was a false alarm)."""
    run = read_real("021")
    f = findings(run)
    o = f["overfitting"]
    assert o.severity is Severity.INFO and o.evidence["state"] == "stopped_improving"
    assert o.evidence["best_step"] == 3294 and o.evidence["best_epoch"] == pytest.approx(6)
    assert o.evidence["still_rising"] is True and "4 evals" in o.message
    assert f["wasted_compute"].evidence["fraction"] == pytest.approx(0.4, abs=0.01)
    # rouge is not the deciding metric while eval_loss exists
    assert facts_of(run).best.metric == "eval_loss"


def test_022_best_at_200_then_clear_overfitting() -> None:
    run = read_real("022")
    f = findings(run)
    o = f["overfitting"]
    assert o.severity is Severity.ERROR and o.evidence["best_step"] == 200
    # the last eval is +10.9%; the level of the last three +2.6%, which undoes more than all the improvement made
    assert o.evidence["final_worse_pct"] == pytest.approx(10.9, abs=0.3) and o.evidence["undone"] > 1
    assert f["wasted_compute"].severity is Severity.ERROR
    assert facts_of(run).best.checkpoint_saved is True
    assert "best_checkpoint_not_saved" not in f


def test_023_long_warmup() -> None:
    run = read_real("023")
    inf = facts_of(run).schedule.inferred
    assert inf["shape"] == "warmup+linear" and 150 <= inf["warmup_steps"] <= 190


def test_024_dense_eval_flattening_and_warmup_spikes() -> None:
    run = read_real("024")
    assert "overfitting" not in loud(run)
    g = findings(run)["grad_norm_explosion"]
    assert g.severity is Severity.INFO
    assert facts_of(run).schedule.inferred["shape"] == "warmup+cosine"


# ---- formats whose readers other engineers are writing: these switch on when the reader lands


def test_005_loss_exactly_zero_after_one_log() -> None:
    run = read_real("005")
    f = findings(run)
    d = f["suspicious_fast_drop"]
    assert d.severity is Severity.ERROR and d.evidence["zero_loss"] is True
    assert "masked" in d.message
    assert "no_learning" not in f and "memorization" not in f


def test_014_from_scratch_memorization_and_grad_collapse() -> None:
    run = read_real("014")
    f = findings(run)
    assert f["grad_norm_collapse"].severity >= Severity.WARNING
    assert f["grad_norm_collapse"].evidence["early_median"] > 20 * f["grad_norm_collapse"].evidence["late_median"]
    assert f["memorization"].severity is Severity.WARNING


def test_015_overfits_from_epoch_7() -> None:
    run = read_real("015")
    f = findings(run)
    o = f["overfitting"]
    assert o.severity is Severity.ERROR
    assert o.evidence["best_value"] == pytest.approx(1.7825, abs=1e-3)
    assert o.evidence["best_epoch"] == pytest.approx(7, abs=0.1)
    assert o.evidence["last_value"] == pytest.approx(2.13, abs=0.01)
    assert f["grad_norm_explosion"].evidence["kind"] == "growth"


def test_018_one_eval_after_the_best_is_too_few_to_judge() -> None:
    run = read_real("018")
    o = findings(run)["overfitting"]
    assert o.severity is Severity.INFO and o.evidence["state"] == "too_few" and "too few evals" in o.message
    assert o.evidence["best_value"] == pytest.approx(1.4799)


def test_019_leak_collapse_within_first_epoch() -> None:
    run = read_real("019")
    d = findings(run)["suspicious_fast_drop"]
    assert d.severity >= Severity.WARNING
    assert d.evidence["fraction_of_epoch"] is not None and d.evidence["fraction_of_epoch"] < 1
    assert "leak" in d.message


def test_025_no_learning() -> None:
    run = read_real("025")
    f = findings(run)
    assert f["no_learning"].severity is Severity.ERROR
