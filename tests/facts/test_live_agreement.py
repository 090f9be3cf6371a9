"""The live guard and ``analyze`` give the same judgement on the same curve.

Real runs are replayed point by point, in step order, through the public
``Guard.log`` API (alert-only, so the replay reaches the end), exactly as a
training loop would feed it. At the end the guard's overfitting verdict must be
the one ``analyze`` gives on the whole run, and its findings must be
``analyze``'s findings; along the way, every verdict the guard saw at an eval
must be the offline verdict of the run cut at that eval.
"""

from __future__ import annotations

import pytest

from tests.conftest import realrun
from trainguard.diagnosis import diagnose
from trainguard.facts import facts_of
from trainguard.live.guard import Guard
from trainguard.live.policy import Policy
from trainguard.readers import read_runs
from trainguard.run import Run

METRICS = ("train_loss", "eval_loss", "learning_rate", "grad_norm")


def _events(run: Run) -> list[tuple[int, dict[str, float]]]:
    by_step: dict[int, dict[str, float]] = {}
    order: list[int] = []
    for name in METRICS:
        s = run.history.get_series(name)
        for st, v in zip(s.steps.tolist(), s.values.tolist(), strict=True):
            if st not in by_step:
                by_step[st] = {}
                order.append(st)
            by_step[st][name] = v
    return [(st, by_step[st]) for st in sorted(order)]


def _prefix(run: Run, upto: int) -> Run:
    cut = Run(name="cut", format="test")
    for name in METRICS:
        s = run.history.get_series(name)
        for st, v in zip(s.steps.tolist(), s.values.tolist(), strict=True):
            if st <= upto:
                cut.history.add(name, st, v)
    return cut


@pytest.mark.parametrize("prefix", ["015_", "022_", "010_", "035_", "026_", "043_", "062_", "009_"])
def test_guard_replay_agrees_with_analyze(prefix: str) -> None:
    src = max(read_runs(realrun(prefix)), key=lambda r: len(r.eval_loss))
    # the same points, as a loop would log them (one entry per step)
    run = Run(name=src.name, format="test")
    for st, vals in _events(src):
        for name, v in vals.items():
            run.history.add(name, st, v)
    g = Guard(Policy(alert_only=True), detect_min_gap=10**9)
    seen: list[tuple[int, str, object]] = []
    for st, vals in _events(src):
        g.log(st, **{("lr" if k == "learning_rate" else k): v for k, v in vals.items()})
        if "eval_loss" in vals and g.verdict is not None:
            seen.append((st, g.verdict.state, g.verdict.severity))
    offline = facts_of(run).overfit
    assert g.verdict is not None and offline is not None
    assert (g.verdict.state, g.verdict.severity, g.verdict.best_step) == (offline.state, offline.severity, offline.best_step)
    assert g.verdict.rise == pytest.approx(offline.rise) and g.verdict.noise == pytest.approx(offline.noise)
    live = [(f.code, f.severity) for f in g.findings()]
    assert live == [(f.code, f.severity) for f in diagnose(run).findings]
    for st, state, sev in seen[:: max(1, len(seen) // 6)]:
        v = facts_of(_prefix(run, st)).overfit
        assert (v.state, v.severity) == (state, sev), f"at step {st}"
