"""The Policy and the published stopping rules, on real eval curves (seed 003, public logs) and exact HF semantics."""

from __future__ import annotations

import math

import pytest

from tests.conftest import realrun
from trainguard.errors import GuardError
from trainguard.findings import Severity
from trainguard.live.guard import Guard
from trainguard.live.policy import Policy
from trainguard.live.stopping import GL, PQ, UP, Patience, SageMakerOvertraining

# The seed-003 run: eval every 10 steps; best 0.1376 at step 30, then 77 GPU-hours of overfitting.
SEED003 = [0.1551, 0.1447, 0.1376, 0.1387, 0.1429, 0.1544, 0.2098, 0.2641, 0.3354, 0.3899, 0.4417, 0.4581,
           0.4376, 0.4563, 0.4700, 0.4825, 0.4875, 0.4911, 0.4902, 0.4918]


def replay(guard: Guard, evals: list[float], every: int = 10):
    for i, v in enumerate(evals):
        a = guard.log((i + 1) * every, eval_loss=v)
        if a.stop:
            return a
    return None


def test_seed003_stops_once_the_rise_is_material_and_held_and_says_why() -> None:
    g = Guard()
    a = replay(g, SEED003)
    assert a is not None and a.stop and a.kind == "stop"
    # best 0.1376 at 30; 0.1387 (+0.8%) and 0.1429 (+3.9%) alone do not stop; at 70 the level of the last three
    # evals (median of 0.1429, 0.1544, 0.2098) is +12.2% over 4 evals: error, 13 evals before the run's end
    assert a.step == 70
    assert g.best is not None and (g.best.step, g.best.value) == (30, 0.1376)
    assert "+12.2%" in a.reason and "0.1376" in a.reason and "step 30" in a.reason and "4 evals" in a.reason
    assert a.findings[0].code == "overfitting" and a.findings[0].severity is Severity.ERROR


def test_one_unlucky_eval_never_stops_a_run() -> None:
    """A single eval 117% worse right after the best, then back to normal: the level, not the point, decides."""
    g = Guard()
    curve = [2.0, 1.5, 1.2, 1.1, 2.4, 1.11, 1.12, 1.09, 1.05]
    assert not any(g.log((i + 1) * 100, eval_loss=v).stop for i, v in enumerate(curve))


def test_early_descent_bump_does_not_stop_a_run_of_known_length() -> None:
    """A run planned for 10,000 steps that wobbles at step 300: min_progress (10%) holds the stop."""
    g = Guard()
    g.set_plan(10_000)
    curve = [3.0, 2.0, 2.3, 2.6, 2.9, 3.0]
    assert not any(g.log((i + 1) * 100, eval_loss=v).stop for i, v in enumerate(curve))


def test_memorizing_while_eval_rises_stops_on_a_warning() -> None:
    """Eval +5% (a warning, under the 10% error floor) while train fell by more than half since the best."""
    g = Guard()
    stop = None
    evals = {100: 2.0, 200: 1.6, 300: 1.5, 400: 1.53, 500: 1.56, 600: 1.58, 700: 1.59}
    for step in range(10, 710, 10):
        train = 2.5 * (0.993 ** step)
        a = g.log(step, train_loss=train, eval_loss=evals.get(step))
        if a.stop:
            stop = step
            break
    assert stop is not None and stop >= 450 and g.stopped.findings[0].code == "overfitting"
    assert "memorizing" in g.stopped.reason


def test_every_new_best_asks_for_a_save() -> None:
    g = Guard()
    kinds = [g.log((i + 1) * 10, eval_loss=v).kind for i, v in enumerate(SEED003[:4])]
    assert kinds == ["save", "save", "save", "continue"]


def test_alert_only_never_stops_and_alerts_once_per_episode() -> None:
    g = Guard(Policy.alert_only())
    actions = [g.log((i + 1) * 10, eval_loss=v) for i, v in enumerate(SEED003)]
    assert not any(a.stop for a in actions)
    alerts = [a for a in actions if a.alert]
    assert len(alerts) == 1 and alerts[0].step == 70 and "overfitting" in alerts[0].reason
    assert Policy(alert_only=True).is_alert_only


def test_noisy_plateau_of_a_real_run_is_not_stopped() -> None:
    """Gemma-3 LoRA (009): eval flat at 0.733-0.744 for 1,300 steps with an uptick; its best is the final step."""
    from trainguard.readers import read_run

    run = read_run(realrun("009_"))
    ev = run.eval_loss
    g = Guard()
    for s, v in zip(ev.steps, ev.values, strict=True):
        assert not g.log(int(s), eval_loss=float(v)).stop
    assert g.best is not None and g.best.step == int(ev.steps[int(ev.values.argmin())])


def test_real_overfitting_run_is_stopped_after_its_best_and_keeps_it() -> None:
    """LoRA SFT (022): eval min 1.0518 at step 200 (its best_model_checkpoint), then 1.072-1.081, then 1.167."""
    from trainguard.readers import read_run

    run = read_run(realrun("022_"))
    ev = run.eval_loss
    g = Guard()
    stop = None
    for s, v in zip(ev.steps, ev.values, strict=True):
        if g.log(int(s), eval_loss=float(v)).stop:
            stop = int(s)
            break
    assert stop is not None and 200 < stop < int(ev.steps[-1])
    assert g.best is not None and g.best.step == 200 and math.isclose(g.best.value, float(ev.values.min()))


def test_patience_matches_hf_early_stopping_callback() -> None:
    """Same stop eval as transformers' EarlyStoppingCallback driven the way the Trainer drives it."""
    from types import SimpleNamespace

    from transformers import EarlyStoppingCallback

    curves = [SEED003, [3.0, 2.0, 2.0, 1.9, 1.95, 1.96, 1.97, 1.5, 1.6, 1.7, 1.8], [1.0, 1.0, 0.999, 0.9995, 1.0]]
    for patience, threshold in ((1, 0.0), (3, 0.0), (2, 0.005)):
        for curve in curves:
            hf = EarlyStoppingCallback(early_stopping_patience=patience, early_stopping_threshold=threshold)
            args = SimpleNamespace(greater_is_better=False)
            state = SimpleNamespace(best_metric=None)
            ours = Patience(patience, threshold)
            hf_stop = ours_stop = None
            for i, v in enumerate(curve):
                hf.check_metric_value(args, state, None, v)
                if state.best_metric is None or v < state.best_metric:  # the Trainer's _determine_best_metric
                    state.best_metric = v
                if hf_stop is None and hf.early_stopping_patience_counter >= patience:
                    hf_stop = i
                if ours_stop is None and ours.observe_eval(i, v).stop:
                    ours_stop = i
            assert ours_stop == hf_stop, (patience, threshold, curve)


def test_prechelt_rules_on_seed003() -> None:
    def first_stop(rule, train=None):
        for i, v in enumerate(SEED003):
            if train is not None:
                for t in train(i):
                    rule.observe_train(i, t)
            if rule.observe_eval((i + 1) * 10, v).stop:
                return (i + 1) * 10
        return None

    assert first_stop(GL(2.0)) == 50  # GL = 3.85 > 2 at 0.1429
    assert first_stop(UP(3)) == 60  # rises at 40, 50, 60
    # Training still progressing fast (strips with a 20% spread) keeps PQ waiting longer than GL
    assert first_stop(PQ(0.75), train=lambda i: [1.0, 1.1, 1.2, 1.1, 1.0]) > 50
    assert first_stop(SageMakerOvertraining(), train=lambda i: [1.0 / (i + 1)]) is not None


def test_nan_stops_at_once() -> None:
    g = Guard()
    assert not g.log(1, train_loss=2.0).stop
    a = g.log(2, train_loss=float("nan"))
    assert a.stop and a.findings[0].code == "nan_loss" and a.findings[0].severity is Severity.CRITICAL


def test_divergence_after_learning_stops_but_a_first_step_spike_does_not() -> None:
    g = Guard()
    losses = [14.7, 6.0, 5.0, 4.0, 3.0, 2.5, 2.4, 2.3, 2.2, 2.1, 2.0]  # spike then learning: fine
    assert not any(g.log(i, train_loss=v).stop for i, v in enumerate(losses))
    g = Guard()
    losses = [6.2, 6.0, 5.0, 4.0, 3.5, 3.0, 2.8, 2.6, 40.0, 90.0, 100.0, 110.0, 105.0, 100.0, 120.0, 115.0, 118.0,
              119.0, 121.0, 117.0]
    stops = [i for i, v in enumerate(losses) if g.log(i, train_loss=v).stop]
    # blown up from log 11 (most of the last five above the start); held for five more logs, stopped at 16
    assert stops and 13 <= stops[0] <= 17
    assert g.stopped is not None and g.stopped.findings[0].code == "divergence"


def test_mode_max_monitors_accuracy() -> None:
    g = Guard(Policy(monitor="eval_accuracy", mode="max"))
    accs = [0.50, 0.60, 0.70, 0.69, 0.65, 0.60, 0.55]
    stop = next(((i + 1) * 10 for i, a in enumerate(accs) if g.log((i + 1) * 10, eval_accuracy=a).stop), None)
    # the level of the last three evals falls 7% below the best at 60 (a warning), 14% at 70 (an error)
    assert stop == 70 and g.best is not None and g.best.value == 0.70


def test_policy_refuses_bad_settings_naming_them() -> None:
    with pytest.raises(GuardError, match="patiense"):
        Policy(patiense=3)
    with pytest.raises(GuardError, match="overfit"):
        Policy(stop_on="overfit")
    with pytest.raises(GuardError, match="mode"):
        Policy(mode="up")
    assert Policy(stop_on="divergence,nan_loss").stop_on == frozenset({"divergence", "nan_loss"})


def test_stop_on_subset_turns_overfitting_into_an_alert() -> None:
    g = Guard(Policy(stop_on={"divergence", "nan_loss"}))
    actions = [g.log((i + 1) * 10, eval_loss=v) for i, v in enumerate(SEED003)]
    assert not any(a.stop for a in actions)
    assert any(a.alert and a.findings[0].code == "overfitting" for a in actions)


def test_a_guard_with_no_usable_point_refuses_a_verdict() -> None:
    g = Guard()
    g.log(1, eval_loss="abc", train_loss=None)  # ignored, as documented: never a TypeError
    with pytest.raises(GuardError, match="nothing to diagnose"):
        g.diagnose()
