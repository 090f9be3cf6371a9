"""Supplementary synthetic curves: shapes the real logs lack (NaN, step LR, memory leaks), and the numeric helpers.

Primary evidence is the real and tiny runs; these pin edge cases and invariants.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.detectors._build import findings, loud
from trainguard.detectors import run_all
from trainguard.facts import _smoothing as sm
from trainguard.facts import facts_of
from trainguard.facts.noise import diff_noise
from trainguard.findings import CODES, Severity
from trainguard.run import History, Run, Series


def make_run(series: dict[str, tuple[list[int] | np.ndarray, list[float] | np.ndarray]], **kw) -> Run:
    h = History({k: Series(np.asarray(s), np.asarray(v, dtype=float)) for k, (s, v) in series.items()})
    return Run(name="synthetic", format="custom", history=h, **kw)


def test_seed000_shape_fast_collapse_names_leakage() -> None:
    steps = list(range(25, 401, 25))
    loss = [math.exp(math.log(3.64) + (s - 25) / 200 * (math.log(0.005) - math.log(3.64))) if s <= 225 else 0.004 for s in steps]
    run = make_run({"train_loss": (steps, loss)}, steps_per_epoch=5064)
    f = findings(run)
    d = f["suspicious_fast_drop"]
    assert d.severity is Severity.ERROR
    ev = d.evidence
    assert ev["from_value"] == pytest.approx(3.64, rel=0.01) and ev["to_value"] < 0.01
    assert ev["end_step"] == 225 and ev["fraction_of_epoch"] == pytest.approx(225 / 5064, abs=1e-3)
    assert ev["kind"] == "leakage_or_duplicates"
    assert "leakage" in d.message and "duplicated" in d.message
    assert "memorization" not in f
    assert f["no_eval_data"].severity is Severity.WARNING


def test_seed002_shape_eval_bounce_is_instability_and_plateau() -> None:
    rng = np.random.default_rng(2)
    steps = np.arange(1010, 2501, 10)
    base = 6.70 - 0.05 * (steps - 1000) / 2000 + np.where((steps >= 1900) & (steps <= 2100), 0.08, 0)
    run = make_run({"train_loss": (steps, base + rng.normal(0, 0.04, len(steps))), "eval_loss": ([1500, 2000, 2500], [6.71, 6.93, 6.72])})
    f = findings(run)
    i = f["instability"]
    assert i.severity is Severity.WARNING and i.evidence["step"] == 2000
    assert i.evidence["before"] == 6.71 and i.evidence["value"] == 6.93
    assert f["plateau"].severity is Severity.WARNING and f["plateau"].evidence["kind"] == "from_start"


def test_a_wobble_on_an_overfitting_climb_is_not_instability() -> None:
    """Seed 003's eval goes 0.4417 -> 0.4581 -> 0.4376 at 3x its best: that is overfitting, not instability."""
    from tests.seedlogs import SEED003_TABLE

    ev = [(int(e * 2), v) for e, _, v, _, _ in SEED003_TABLE if v is not None]
    steps = [s for s, _ in ev]
    run = make_run({"eval_loss": (steps, [v for _, v in ev]), "train_loss": (steps, [0.1] * len(steps))})
    f = findings(run)
    assert "overfitting" in f
    assert f.get("instability") is None or f["instability"].evidence.get("kind") != "eval_jump"


def test_seed004_shape_perplexity_explosion() -> None:
    steps = list(range(1000, 10001, 1000))
    ppl = [2.55e19 * math.exp(0.0002 * (s - 1000)) if s < 8800 else 2.55e19 * math.exp(1.56 + (s - 8800) * 0.0198) for s in steps]
    ppl[-1] = 4.98e30
    run = make_run({"eval_paloma_perplexity": (steps, ppl), "train_loss": (steps, [6.0 - 0.1 * k for k in range(10)])})
    e = findings(run)["eval_metric_explosion"]
    assert e.severity is Severity.ERROR
    assert e.evidence["min_value"] == pytest.approx(2.55e19) and e.evidence["last_value"] == pytest.approx(4.98e30)
    assert e.evidence["log10_factor"] > 10


def test_nan_loss_is_critical_with_first_step() -> None:
    steps = list(range(10, 210, 10))
    loss = [3.0 - 0.05 * k for k in range(20)]
    loss[12] = float("nan")
    loss[15] = float("inf")
    run = make_run({"train_loss": (steps, loss)})
    n = findings(run)["nan_loss"]
    assert n.severity is Severity.CRITICAL and n.start_step == 130 and n.evidence["count"] == 2
    json.dumps(n.to_dict(), allow_nan=False)


def test_isolated_spike_listed_with_baseline() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(1, 501)
    loss = 2.0 * np.exp(-steps / 300) + 1.0 + rng.normal(0, 0.01, 500)
    loss[250] = 6.0
    run = make_run({"train_loss": (steps, loss)})
    s = findings(run)["loss_spike"]
    assert s.evidence["count"] == 1
    spike = s.evidence["spikes"][0]
    assert spike["step"] == 251 and spike["value"] == pytest.approx(6.0) and spike["baseline"] == pytest.approx(1.87, abs=0.05)
    assert s.severity is Severity.WARNING  # 3x its baseline


def test_step_schedule_and_clipping_always_active() -> None:
    steps = np.arange(10, 3001, 10)
    lr = np.where(steps < 1000, 1e-3, np.where(steps < 2000, 1e-4, 1e-5))
    gn = np.full(len(steps), 12.0)
    run = make_run({"learning_rate": (steps, lr), "grad_norm": (steps, gn), "train_loss": (steps, 3 - steps / 3000)})
    run.config.set("max_grad_norm", 1.0, "training_args.json")
    run.config.set("lr_scheduler_type", "cosine", "training_args.json")
    sch = facts_of(run).schedule
    assert sch.inferred["decay"] == "step" and sch.matches is False
    f = findings(run)
    c = f["clipping_always_active"]
    assert c.severity is Severity.WARNING and c.evidence["fraction_above"] == 1.0


def test_memory_climb_and_slowdown() -> None:
    steps = np.arange(1, 1001)
    run = make_run({
        "gpu_mem": (steps, 20 + steps * 0.01),
        "step_time": (steps, 1.0 + steps / 1000),
        "train_loss": (steps, 3 - steps / 1000),
    })
    f = loud(run)
    assert f["memory_climb"].evidence["ratio"] > 1.2
    assert f["slowdown"].evidence["ratio"] > 1.3


def test_constant_lr_config_matches_and_default_is_info() -> None:
    steps = np.arange(10, 1001, 10)
    run = make_run({"learning_rate": (steps, np.full(len(steps), 2e-4)), "train_loss": (steps, 3 - steps / 1000)})
    run.config.set("lr_scheduler_type", "constant", "args.json")
    assert facts_of(run).schedule.matches is True
    assert "lr_schedule_mismatch" not in findings(run)


def test_every_code_is_known_and_empty_run_is_quiet() -> None:
    assert run_all(make_run({})) == []
    short = make_run({"train_loss": ([1, 2], [1.0, 0.5]), "eval_loss": ([2], [0.7])})
    for f in run_all(short):
        assert f.code in CODES


# ---- helpers


def test_ema_matches_the_recursion() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    for a in (0.01, 0.3, 0.9):
        y = np.empty_like(x)
        y[0] = x[0]
        for i in range(1, len(x)):
            y[i] = a * x[i] + (1 - a) * y[i - 1]
        assert np.allclose(sm.ema(x, a), y, atol=1e-9)


def test_rolling_and_trailing_medians() -> None:
    x = np.array([1, 1, 9, 1, 1, 1, 1], dtype=float)
    assert sm.rolling_median(x, 3).tolist() == [1.0] * 7  # the spike never becomes its own baseline
    t = sm.trailing_median(np.arange(10, dtype=float), 3)
    assert np.isnan(t[0]) and t[5] == 3.0  # median of 2, 3, 4
    long = np.arange(300_000, dtype=float)
    assert sm.rolling_median(long, 5)[150_000] == 150_000.0


def test_block_reduce_and_noise() -> None:
    _, v = sm.block_reduce(np.arange(10_000), np.ones(10_000), 100)
    assert len(v) <= 101 and np.all(v == 1)
    rng = np.random.default_rng(3)
    noisy = np.linspace(5, 1, 5000) + rng.normal(0, 0.1, 5000)
    assert diff_noise(noisy) == pytest.approx(0.1, rel=0.1)  # the trend is not counted as noise
    slope, inter, r2 = sm.linfit(np.arange(10.0), 2 * np.arange(10.0) + 1)
    assert (slope, inter, r2) == pytest.approx((2.0, 1.0, 1.0))
