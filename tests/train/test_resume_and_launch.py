"""Through the CLI in subprocesses: SIGKILL mid-run then --resume last; and --gpus 2 --cpu through accelerate (gloo)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.train.conftest import subprocess_env

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "trainguard.cli", "train"]


def _config(tmp_path: Path, tiny_model: Path, qa_file: Path, **kw) -> Path:
    body = dict(model=str(tiny_model), data=str(qa_file), output_dir=str(tmp_path / "out"), method="lora",
                max_steps=40, eval_steps=5, logging_steps=5, block_size=128, per_device_train_batch_size=4,
                gradient_accumulation_steps=1, learning_rate=1e-3, use_cpu=True, progress=False,
                guard=False, early_stopping_patience=None, generate_report=False, save_total_limit=50)
    body.update(kw)
    p = tmp_path / "train.yaml"
    p.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in body.items()))
    return p


def test_sigkill_then_resume_is_continuous(tmp_path, tiny_model, qa_file):
    cfg = _config(tmp_path, tiny_model, qa_file)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, str(cfg)], env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not (out / "checkpoint-15" / "trainer_state.json").is_file():
            time.sleep(0.05)
        assert (out / "checkpoint-15").is_dir(), "run never reached its third checkpoint"
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to clean up, as in a preempted job
        proc.wait(timeout=30)
    assert not (out / "trainer_state.json").exists()  # it really died mid-run
    killed_at = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert killed_at < 40

    r = subprocess.run([*CLI, str(cfg), "--resume", "last", "--json"], env=subprocess_env(), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    assert info["global_step"] == 40 and any(n.startswith("resumed from checkpoint-") for n in info["notes"])
    state = json.loads((out / "trainer_state.json").read_text())
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # one log per step, none lost, none repeated
    assert [s for s in steps if s % 5 == 0] == list(range(5, 41, 5))
    assert not list(out.glob("incomplete-checkpoint-*"))
    from trainguard.train.runner import checkpoint_complete

    assert all(checkpoint_complete(p) for p in out.glob("checkpoint-*"))


def test_two_processes_on_cpu_through_accelerate(tmp_path, tiny_model, qa_file):
    cfg = _config(tmp_path, tiny_model, qa_file, max_steps=6, eval_steps=3)
    r = subprocess.run([*CLI, str(cfg), "--gpus", "2", "--cpu"], env=subprocess_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((tmp_path / "out" / "trainguard_run.json").read_text())
    assert run["world_size"] == 2 and run["global_step"] == 6
    assert run["effective_batch"] == 8  # 4 per device x 1 accumulation x 2 processes
