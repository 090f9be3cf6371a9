"""TRL preference and RL runs keep their own metrics (rewards, margins, KL) next to the loss, at the loss's steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REALRUNS
from trainguard.readers import read_runs

DATA = Path(__file__).resolve().parents[1] / "data"


def test_grpo_stdout_keeps_reward_and_kl_series() -> None:
    (run,) = read_runs(DATA / "trl" / "grpo_stdout.log")
    assert run.format == "hf_stdout"
    for name in ("reward", "reward_std", "kl", "rewards/accuracy_reward/mean", "completions/mean_length", "entropy"):
        assert run.history[name].steps.tolist() == list(range(5, 41, 5)), name
    kl = run.history["kl"].values
    assert kl[-1] > kl[0]  # the KL to the reference grows as the policy moves: a user watches it
    assert run.train_runtime == pytest.approx(40.12)


def test_dpo_trainer_state_keeps_rewards_margins_and_logps() -> None:
    hits = sorted(REALRUNS.glob("011_*")) if REALRUNS.is_dir() else []
    if not hits:
        pytest.skip(f"real DPO run 011 not found under {REALRUNS}")
    (run,) = read_runs(hits[0])
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen"} <= set(run.history)
    assert len(run.history["rewards/margins"]) == len(run.train_loss) == 20
