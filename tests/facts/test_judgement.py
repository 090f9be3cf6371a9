"""The one judgement core on real runs and tiny real CPU trainings: floors, short curves, log quirks, train-only runs.

Real runs come from ../shared/realruns (skipped with the reason when absent); tiny
runs are trained here on the CPU (a few seconds each, cached per session).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import realrun
from trainguard.configs import attach
from trainguard.diagnosis import diagnose
from trainguard.facts import facts_of
from trainguard.facts.overfit import LATE_TURN, NOT_LEARNING, OVERFITTING, RISE_FLOOR, STOPPED
from trainguard.facts.train import MIN_LOGS
from trainguard.findings import Severity
from trainguard.readers import read_run, read_runs
from trainguard.run import Run


def _real(prefix: str) -> Run:
    path = realrun(prefix)
    run = max(read_runs(path), key=lambda r: len(r.eval_loss))
    attach(run, path)
    return run


def _overfitting(run: Run):
    return next((f for f in diagnose(run).findings if f.code == "overfitting"), None)


# -- the practical floor ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "evals_after"), [("010_", 2), ("035_", 6), ("067_", 4), ("021_", 4)])
def test_a_rise_under_the_floor_is_a_note_with_its_size(prefix: str, evals_after: int) -> None:
    """Real runs whose eval rose 0.2-1.7 % after the best: every one was a false alarm before; now an info line."""
    run = _real(prefix)
    v = facts_of(run).overfit
    assert v is not None and v.state == STOPPED and v.rise < RISE_FLOOR
    f = _overfitting(run)
    assert f is not None and f.severity is Severity.INFO
    assert f"{evals_after} evals" in f.message and "%" in f.message and "stopped improving" in f.message
    assert diagnose(run).status in ("healthy", "warning")


@pytest.mark.parametrize("prefix", ["015_", "022_", "026_", "031_", "032_", "046_", "054_"])
def test_a_material_persistent_rise_is_an_error(prefix: str) -> None:
    """Labelled-overfit real runs (final eval 11-173 % above the best, best before the last fifth)."""
    run = _real(prefix)
    f = _overfitting(run)
    assert f is not None and f.severity is Severity.ERROR and f.evidence["state"] == OVERFITTING
    assert f"{f.evidence['evals_after_best']} evals since" in f.message


def test_a_late_turn_is_reported_but_not_called_overfitting() -> None:
    """059: 800 evals, best at eval 786, then +14 % over the last 13 evals: a turn at the very end of the run."""
    run = _real("059_")
    v = facts_of(run).overfit
    assert v.state == LATE_TURN and v.late and v.rise > RISE_FLOOR
    d = diagnose(run)
    f = next(x for x in d.findings if x.code == "overfitting")
    assert f.severity is Severity.INFO and "late" in f.message and "13 evals" in f.message
    assert d.exit_code == 0


def test_memorization_agrees_with_the_verdict() -> None:
    """043: train -> 0.014 while eval ends 14 % above a best at 80 % of the run: never "eval gets worse" as an error."""
    run = _real("043_")
    v = facts_of(run).overfit
    d = diagnose(run)
    mem = next((x for x in d.findings if x.code == "memorization"), None)
    assert not v.is_overfitting
    assert mem is None or (mem.severity <= Severity.WARNING and mem.evidence["eval_trend"] == "flat")


def test_tiny_overfit_training_is_an_error_and_phases_agree(tiny_runs) -> None:
    run = read_run(tiny_runs("overfit").output_dir)
    d = diagnose(run)
    f = next(x for x in d.findings if x.code == "overfitting")
    assert f.severity is Severity.ERROR and f.evidence["train_last"] < f.evidence["train_at_best"]
    names = [p.name for p in d.phases]
    assert "overfitting" in names or "memorization" in names
    assert all(p.start_step >= f.start_step for p in d.phases if p.name in ("overfitting", "memorization"))


# -- short curves ----------------------------------------------------------------------------------------


def test_three_evals_with_a_12_percent_rise_is_not_no_sign() -> None:
    """052's first evals after its best: best, +12 %, +13 % (3 evals); the old noise estimate called it noise."""
    src = _real("052_")
    ev = src.eval_loss.sorted()
    b = int(ev.values.argmin())
    run = Run(name="short", format="test")
    for s, v in zip(src.train_loss.steps, src.train_loss.values, strict=True):
        if s <= ev.steps[b + 2]:
            run.history.add("train_loss", int(s), float(v))
    for i in range(b, b + 3):
        run.history.add("eval_loss", int(ev.steps[i]), float(ev.values[i]))
    v = facts_of(run).overfit
    assert v.evals == 3 and v.evals_after == 2 and v.rise > 0.1
    f = _overfitting(run)
    assert f is not None and f.severity in (Severity.WARNING, Severity.ERROR)
    assert "no sign" not in f.message and "2 evals" in f.message


def test_one_eval_after_the_best_says_too_few_to_judge() -> None:
    run = Run(name="two", format="test")
    for s, e in ((100, 1.0), (200, 1.3)):
        run.history.add("eval_loss", s, e)
    f = _overfitting(run)
    assert f is not None and f.severity is Severity.INFO and "too few evals" in f.message and "+30" in f.message


# -- real-log quirks -------------------------------------------------------------------------------------


def test_final_reevaluation_of_the_loaded_best_model_does_not_hide_overfitting(tiny_runs, tmp_path: Path) -> None:
    """load_best_model_at_end + trainer.evaluate(): one more eval at the last step, equal to the best."""
    tr = tiny_runs("overfit")
    out = tmp_path / "run"
    shutil.copytree(tr.output_dir, out)
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [e for e in state["log_history"] if "eval_loss" in e]
    best = min(evals, key=lambda e: e["eval_loss"])
    state["log_history"].append({**evals[-1], "eval_loss": best["eval_loss"]})
    (out / "trainer_state.json").write_text(json.dumps(state))
    run = read_run(out)
    f = facts_of(run)
    assert f.overfit.state == OVERFITTING and f.overfit.last_value == evals[-1]["eval_loss"]
    assert any("re-evaluation" in n for n in f.eval.notes)
    assert diagnose(run).status == "error"


def test_a_repeated_final_eval_keeps_the_training_eval() -> None:
    run = Run(name="rep", format="test")
    for s, e in ((10, 2.0), (20, 1.5), (30, 1.8), (40, 2.1), (40, 2.1)):
        run.history.add("eval_loss", s, e)
    ev = facts_of(run).eval
    assert list(ev.steps) == [10, 20, 30, 40] and any("twice" in n for n in ev.notes)


def test_a_resumed_run_keeps_the_later_points() -> None:
    run = Run(name="resume", format="test")
    for s, e in ((10, 2.0), (20, 1.6), (30, 1.9), (20, 1.5), (30, 1.4), (40, 1.3)):
        run.history.add("eval_loss", s, e)
    ev = facts_of(run).eval
    assert list(ev.steps) == [10, 20, 30, 40] and list(ev.values) == [2.0, 1.5, 1.4, 1.3]
    assert facts_of(run).overfit.state == "improving"


# -- a model that learned --------------------------------------------------------------------------------


def _with_train(run: Run, values: np.ndarray) -> Run:
    """``run`` with its train loss replaced by ``values`` at the same steps (eval and the rest kept)."""
    out = Run(name=run.name, format=run.format)
    for name, s in run.history.items():
        if name != "train_loss":
            for st, v in zip(s.steps, s.values, strict=True):
                out.history.add(name, int(st), float(v))
    for st, v in zip(run.train_loss.sorted().steps, values, strict=True):
        out.history.add("train_loss", int(st), float(v))
    return out


def test_an_eval_rise_over_a_train_loss_that_never_learned_is_not_overfitting() -> None:
    """015's real eval curve (an overfit by every rule) over a train loss that only scatters around its start."""
    run = _real("015_")
    assert facts_of(run).overfit.state == OVERFITTING and facts_of(run).train_verdict.learned is True
    t = run.train_loss.sorted()
    start = float(t.values[0])
    flat = start * (1 + 0.05 * np.random.default_rng(0).standard_normal(len(t)))
    v = facts_of(_with_train(run, flat)).overfit
    assert v.state == NOT_LEARNING and v.severity is Severity.INFO
    f = _overfitting(_with_train(run, flat))
    assert "never improved beyond its own noise" in f.message and f"over {len(t)} logs" in f.message
    # the same flat train loss, but learning: a descent of 30 % under the same scatter is overfitting again
    falling = flat * np.linspace(1.0, 0.7, len(t))
    assert facts_of(_with_train(run, falling)).overfit.state == OVERFITTING


def test_too_few_train_logs_never_veto_overfitting() -> None:
    """038: 5 train logs (one per 500 steps) that rise, 20 evals up 29 % from the first: labelled overfit, kept."""
    run = _real("038_")
    assert len(run.train_loss) < MIN_LOGS
    assert facts_of(run).train_verdict.learned is None
    assert facts_of(run).overfit.state == OVERFITTING


def test_tiny_diverged_training_is_divergence_not_overfitting(tiny_runs) -> None:
    """The tiny run at LR 1.0: its eval bounces between 115 and 300 while the train loss never learns."""
    run = read_run(tiny_runs("diverge").output_dir)
    f = facts_of(run)
    assert f.train_verdict.learned is False
    assert f.overfit.state != OVERFITTING
    d = diagnose(run)
    assert d.findings[0].code == "divergence" and d.status == "error"
    assert all(x.severity is Severity.INFO for x in d.findings if x.code in ("overfitting", "wasted_compute"))


# -- train-only runs -------------------------------------------------------------------------------------


def test_train_only_divergence_with_a_single_eval_is_an_error(tiny_runs) -> None:
    """The tiny run at LR 1.0: train loss jumps far above its start and stays; keep one eval only."""
    src = read_run(tiny_runs("diverge").output_dir)
    run = Run(name="diverge", format=src.format)
    for name in ("train_loss", "grad_norm", "learning_rate"):
        s = src.history.get_series(name)
        for st, v in zip(s.steps, s.values, strict=True):
            run.history.add(name, int(st), float(v))
    ev = src.eval_loss
    run.history.add("eval_loss", int(ev.steps[0]), float(ev.values[0]))
    d = diagnose(run)
    div = next(x for x in d.findings if x.code == "divergence")
    assert div.severity is Severity.ERROR and d.status == "error"
    assert div.evidence["end_level"] > 20  # nats per token: worse than guessing over any vocabulary


def test_a_loss_of_exactly_zero_at_every_step_is_not_healthy() -> None:
    run = Run(name="zero", format="test")
    for s in range(10, 510, 10):
        run.history.add("train_loss", s, 0.0)
    d = diagnose(run)
    f = next(x for x in d.findings if x.code == "no_learning")
    assert f.severity is Severity.ERROR and "exactly 0" in f.message and "50" in f.message
    assert d.status == "error"


def test_a_loss_stuck_at_a_constant_is_not_healthy() -> None:
    run = Run(name="const", format="test")
    for s in range(1, 6):
        run.history.add("train_loss", s, 2.3026)
    f = next(x for x in diagnose(run).findings if x.code == "no_learning")
    assert f.severity is Severity.ERROR and "2.303" in f.message


def test_nan_in_a_train_only_run_is_critical() -> None:
    run = Run(name="nan", format="test")
    for s, v in ((1, 2.0), (2, 1.5), (3, float("nan")), (4, float("nan"))):
        run.history.add("train_loss", s, v)
    d = diagnose(run)
    assert d.status == "critical" and any(f.code == "nan_loss" for f in d.findings)
