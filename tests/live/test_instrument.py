"""``trainguard run`` on unmodified training scripts: the bootstrap attaches the callback, a stop saves and exits 0.

Each test runs a real tiny training on the CPU (tens of seconds). What a user
relies on: the command exits 0 with no traceback, the final line names the
best checkpoint, that folder reloads, and its eval equals the best eval of
the run; at most the best and the last checkpoints are left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
OVERFIT = HERE / "scripts" / "overfit_script.py"
LIGHTNING = HERE / "scripts" / "lightning_overfit.py"
PY = sys.executable
pytestmark = pytest.mark.slow


def _run(*args: str, timeout: float = 280) -> tuple[int, str, str]:
    """``trainguard run ARGS`` in its own session; a hang is killed with its whole group and fails the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([PY, "-m", "trainguard.cli", "run", "--grace", "20", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=ROOT, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"trainguard run hung: {err.decode()[-2000:]}")
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _stopped_line(err: str) -> tuple[int, Path, float]:
    m = re.search(r"stopped by trainguard at step (\d+), best checkpoint at (\S+) \(best eval_loss ([\d.]+) at step "
                  r"(\d+), loaded\); report at (\S+); exit code 0", err)
    assert m, err[-3000:]
    return int(m.group(1)), Path(m.group(2)), float(m.group(3))


def _eval_of(ckpt: Path, tmp: Path) -> float:
    """Reload the checkpoint into the overfit recipe's Trainer and evaluate it on the same eval set."""
    from transformers import GPT2LMHeadModel

    from tests.tiny_training import KINDS, build_trainer

    trainer = build_trainer(tmp, disable_tqdm=True, **KINDS["overfit"])
    trainer.model = GPT2LMHeadModel.from_pretrained(ckpt)
    return float(trainer.evaluate()["eval_loss"])


def _check_hf(code: int, out: str, err: str, outdir: Path, tmp: Path) -> None:
    assert code == 0, err[-3000:]
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert "attached to the HF Trainer" in err
    stop_step, ckpt, best = _stopped_line(err)
    assert "TRAINING FINISHED" in out  # train() returned normally: the script went on to its end
    folders = sorted(p.name for p in outdir.glob("checkpoint-*"))
    assert ckpt.name in folders and len(folders) <= 2 and f"checkpoint-{stop_step}" in folders  # best + last
    state = json.loads((outdir / f"checkpoint-{stop_step}" / "trainer_state.json").read_text())
    run_best = min(e["eval_loss"] for e in state["log_history"] if "eval_loss" in e)
    assert best == pytest.approx(run_best, rel=1e-5)  # the line names the run's best eval
    assert _eval_of(ckpt, tmp) == pytest.approx(run_best, rel=1e-4)  # and that folder holds that model
    guard = json.loads((outdir / "trainguard" / "guard.json").read_text())
    assert guard["loaded_best"] and guard["stopped"]


def test_an_unmodified_hf_trainer_script_is_stopped_cleanly_with_its_best_checkpoint(tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    code, out, err = _run("--", PY, str(OVERFIT), str(outdir))
    _check_hf(code, out, err, outdir, tmp_path / "eval")


def test_the_same_under_torchrun_with_two_ranks(tmp_path: Path) -> None:
    torchrun = Path(PY).with_name("torchrun")
    if not torchrun.exists():
        if shutil.which("torchrun") is None:
            pytest.skip("torchrun not installed")
        torchrun = Path(shutil.which("torchrun") or "torchrun")
    outdir = tmp_path / "out"
    code, out, err = _run("--", str(torchrun), "--standalone", "--nproc_per_node=2", str(OVERFIT), str(outdir))
    _check_hf(code, out, err, outdir, tmp_path / "eval")
    assert out.count("TRAINING FINISHED") == 2  # both ranks returned from train() together


def test_an_unmodified_lightning_script_is_stopped_cleanly_with_its_best_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    import torch

    sys.path.insert(0, str(LIGHTNING.parent))
    try:
        import lightning_overfit
    finally:
        sys.path.remove(str(LIGHTNING.parent))
    outdir = tmp_path / "out"
    code, out, err = _run("--", PY, str(LIGHTNING), str(outdir))
    assert code == 0, err[-3000:]
    assert "Traceback" not in out + err and "attached to the Lightning Trainer" in err
    m = re.search(r"stopped by trainguard at step (\d+), best checkpoint at (\S+) \(best eval_loss ([\d.]+) at step "
                  r"(\d+), loaded\)", err)
    assert m, err[-3000:]
    best, ckpt = float(m.group(3)), Path(m.group(2))
    assert ckpt.name == "best.ckpt" and int(m.group(4)) < int(m.group(1))
    assert sorted(p.name for p in outdir.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    # reload the best checkpoint (tensors only) and validate it on the same data
    model = lightning_overfit.make_module()
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    _, val = lightning_overfit.data()
    with torch.no_grad():
        xb, yb = next(iter(val))
        val_loss = float(torch.nn.functional.mse_loss(model.net(xb), yb))
    assert val_loss == pytest.approx(best, rel=1e-4)
    guard = json.loads((outdir / "trainguard" / "guard.json").read_text())
    assert guard["best_value"] == pytest.approx(val_loss, rel=1e-4) and guard["loaded_best"]
