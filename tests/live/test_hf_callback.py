"""TrainguardCallback inside a real HF Trainer on the CPU: tiny GPT-2 runs that overfit, and one that does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tiny_training import KINDS, build_trainer

pytestmark = pytest.mark.slow


def _evals(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]


def test_overfitting_run_stops_near_its_minimum_and_keeps_the_best_checkpoint(tmp_path: Path, tiny_runs) -> None:
    from transformers import GPT2LMHeadModel

    from trainguard.live.hf_callback import TrainguardCallback

    unguarded = _evals(tiny_runs("overfit").log_history)
    assert unguarded[-1][0] == KINDS["overfit"]["steps"]  # without the guard it trains to the end
    min_step, min_loss = min(unguarded, key=lambda e: e[1])

    cb = TrainguardCallback()
    # save_steps would never land on the best eval, and save_total_limit=1 would delete it: the guard must prevent both
    trainer = build_trainer(tmp_path, callbacks=[cb], save_strategy="steps", save_steps=60, save_total_limit=1,
                            disable_tqdm=True, **KINDS["overfit"])
    trainer.train()
    eval_every = KINDS["overfit"]["eval_steps"]
    stop = trainer.state.global_step
    assert cb.stop_action is not None and "overfitting" in cb.stop_action.reason
    assert min_step < stop <= min_step + 3 * eval_every  # within a few evals of the eval minimum
    assert stop < KINDS["overfit"]["steps"] / 2

    best = cb.guard.best
    assert best is not None and best.step == min_step
    ckpt = Path(trainer.state.best_model_checkpoint)
    assert ckpt.name == f"checkpoint-{min_step}" and ckpt.is_dir()
    # the checkpoint on disk really is the best model: reload it and evaluate
    trainer.model = GPT2LMHeadModel.from_pretrained(ckpt)
    reloaded = trainer.evaluate()["eval_loss"]
    assert reloaded == pytest.approx(min_loss, rel=0.01)

    report = tmp_path / "trainguard"
    summary = json.loads((report / "guard.json").read_text())
    assert summary["stopped"] and summary["best_step"] == min_step and summary["stop_step"] == stop
    assert json.loads((report / "diagnosis.json").read_text())
    assert (report / "diagnosis.md").read_text().strip()


def test_healthy_run_is_not_stopped(tmp_path: Path) -> None:
    from trainguard.live.hf_callback import TrainguardCallback

    cb = TrainguardCallback()
    trainer = build_trainer(tmp_path, callbacks=[cb], disable_tqdm=True, **KINDS["healthy"])
    trainer.train()
    assert cb.stop_action is None
    assert trainer.state.global_step == KINDS["healthy"]["steps"]
    evals = _evals(trainer.state.log_history)
    assert cb.guard.best is not None and cb.guard.best.value == min(v for _, v in evals)
    # every new best was saved even though save_strategy is "no"
    assert (tmp_path / f"checkpoint-{cb.guard.best.step}").is_dir()
