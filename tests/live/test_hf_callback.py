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
    stop = trainer.state.global_step
    assert cb.stop_action is not None and "overfitting" in cb.stop_action.reason
    assert min_step < stop < KINDS["overfit"]["steps"]  # after the minimum, before the end (the policy sets when)

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


def test_the_callback_ends_with_the_best_model_loaded_two_folders_and_a_phone_readable_stop(
        tmp_path: Path, json_hook: tuple[str, list[dict]]) -> None:
    """No save_strategy: every folder is the guard's. It keeps best + last, loads the best, notifies with the path."""
    from trainguard.live.hf_callback import TrainguardCallback
    from trainguard.live.notify import Notifier, host

    url, received = json_hook
    notifier = Notifier([url])
    cb = TrainguardCallback(notifier=notifier)
    trainer = build_trainer(tmp_path, callbacks=[cb], disable_tqdm=True, **KINDS["overfit"])
    trainer.train()
    notifier.close(timeout=15)
    assert cb.stop_action is not None
    best = cb.guard.best
    assert best is not None
    evals = _evals(trainer.state.log_history)
    assert best.value == min(v for _, v in evals)  # the guard's best is the run's best eval
    folders = sorted(p.name for p in tmp_path.glob("checkpoint-*"))
    assert folders == sorted({f"checkpoint-{best.step}", f"checkpoint-{trainer.state.global_step}"})
    assert cb.loaded_best and cb.best_checkpoint == str(tmp_path / f"checkpoint-{best.step}")
    # the model in memory now is the best one, not the last
    assert trainer.evaluate()["eval_loss"] == pytest.approx(best.value, rel=1e-4)
    # the stop notification's first line: run, host, the action taken, the best checkpoint's path
    bodies = [r.get("message", r.get("body", "")) for r in received]
    stop = next(b for b in bodies if "stopping at step" in b)
    first = stop.splitlines()[0]
    assert host() in first and f"stopping at step {cb.stop_action.step}" in first
    assert f"best checkpoint: {tmp_path / f'checkpoint-{best.step}'}" in first
    # and the run-finished summary says where the best model and the report are
    summary = next(b for b in bodies if b.startswith(f"{cb.guard.run.name} on {host()}: stopped at step"))
    assert f"best checkpoint: {tmp_path / f'checkpoint-{best.step}'}" in summary and "report:" in summary
