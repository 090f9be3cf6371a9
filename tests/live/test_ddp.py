"""Two CPU processes under torchrun (gloo): the guard's stop reaches every rank, and nothing hangs."""

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

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "scripts" / "ddp_overfit.py"


@pytest.mark.slow
def test_torchrun_two_ranks_stop_together_even_when_one_rank_decides(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun_cmd = shutil.which("torchrun")
        if torchrun_cmd is None:
            pytest.skip("torchrun not installed")
        torchrun = Path(torchrun_cmd)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", str(SCRIPT), str(tmp_path / "out"),
           "--one-rank-decides"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=150)
    except subprocess.TimeoutExpired:  # the hang this test exists to catch; SIGTERM lets torchrun reap its workers
        os.killpg(p.pid, signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        pytest.fail(f"DDP run hung: {out[-2000:]}{err[-2000:]}")
    # the two ranks share stdout, so a line may be glued to another rank's output
    lines = [json.loads(m) for m in re.findall(r"TRAINGUARD_RANK (\{[^}]*\})", out)]
    assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert sorted(r["rank"] for r in lines) == [0, 1] and all(r["world"] == 2 for r in lines)
    steps = {r["global_step"] for r in lines}
    assert len(steps) == 1 and steps.pop() < 400  # same stop step on both ranks, well before max_steps
    assert all(r["stopped"] for r in lines)  # rank 0 (alert-only) stopped because rank 1 decided
    assert len({r["best_step"] for r in lines}) == 1
