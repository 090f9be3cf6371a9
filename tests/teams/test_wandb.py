"""W&B: offline runs created here with ``wandb.init(mode="offline")`` are read in full from their ``.wandb`` files.

Offline, W&B writes no history or config file: only ``run-<id>.wandb`` holds
them, and ``files/output.log`` has just what the script printed. The test logs
the recorded tiny-training curves the way the HF W&B integration does
(``train/loss``, ``eval/loss``, ``train/global_step``) and checks every point
comes back, with the optimizer steps, and the config as a config source.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import QUIET_ENV, best_eval_step, run_scan

_SCRIPT = r"""
import json, sys, wandb
curves = json.load(open(sys.argv[1]))
for kind in sys.argv[2:]:
    c = curves[kind]
    run = wandb.init(mode="offline", project="teams", name=f"wb-{kind}", config=c["params"])
    for i, p in enumerate(c["points"]):
        row = {"train/global_step": p["step"]}
        if "loss" in p:
            row.update({"train/loss": p["loss"], "train/learning_rate": p.get("learning_rate", 0.0)})
        if "eval_loss" in p:
            row["eval/loss"] = p["eval_loss"]
        run.log(row)  # W&B's own step counter: one per call, not the optimizer step
    run.finish()
"""


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("wandb", reason="the W&B tests need the wandb package")
    from .conftest import CURVES

    d = tmp_path_factory.mktemp("wb")
    env = {**os.environ, **QUIET_ENV, "WANDB_DIR": str(d), "WANDB_CACHE_DIR": str(d / ".cache"),
           "WANDB_CONFIG_DIR": str(d / ".config")}
    r = subprocess.run([sys.executable, "-c", _SCRIPT, str(CURVES), "overfit", "diverge"], cwd=d, env=env,
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return d


def _run_dirs(d: Path) -> list[Path]:
    return sorted(p.parent for p in d.rglob("run-*.wandb"))


def test_offline_runs_are_read_with_full_histories(wandb_dir: Path, curves: dict[str, Any]) -> None:
    from trainguard.readers.wandb_run import read_dir

    dirs = _run_dirs(wandb_dir)
    assert len(dirs) == 2
    runs = {r.name: r for d in dirs for r in read_dir(d)}
    assert sorted(runs) == ["wb-diverge", "wb-overfit"]
    for kind in ("overfit", "diverge"):
        run, pts = runs[f"wb-{kind}"], curves[kind]["points"]
        train = [(p["step"], p["loss"]) for p in pts if "loss" in p]
        evals = [(p["step"], p["eval_loss"]) for p in pts if "eval_loss" in p]
        assert list(zip(run.train_loss.steps.tolist(), run.train_loss.values.tolist(), strict=True)) == train
        assert list(zip(run.eval_loss.steps.tolist(), run.eval_loss.values.tolist(), strict=True)) == evals
        assert run.config.get("learning_rate") == curves[kind]["params"]["learning_rate"]
        assert run.config.source("learning_rate") == "W&B config"


def test_scan_finds_wandb_runs_and_names_a_broken_one(wandb_dir: Path, curves: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(wandb_dir / "wandb", tree / "wandb", symlinks=True)  # latest-run stays a link
    # a run file from an unknown future format version, and one cut mid-record
    good = _run_dirs(tree)[0]
    future = tree / "wandb" / "offline-run-future-x" / "run-x.wandb"
    future.parent.mkdir()
    data = bytearray((good / next(good.glob("run-*.wandb")).name).read_bytes())
    data[4:7] = struct.pack("<HB", 0xBEE1, 7)
    future.write_bytes(bytes(data))
    code, out, err = run_scan([str(tree), "--json", "--jobs", "2", "--no-cache"])
    assert code in (0, 1), err[-2000:]
    doc = json.loads(out)
    runs = {r["run"]: r for r in doc["runs"]}
    assert sorted(runs) == ["wb-diverge", "wb-overfit"]
    assert runs["wb-overfit"]["verdict"] == "overfit"
    assert runs["wb-overfit"]["best"]["step"] == best_eval_step(curves["overfit"])
    assert runs["wb-diverge"]["verdict"] == "diverged"
    [skip] = doc["skipped"]
    assert skip["source"].endswith("offline-run-future-x")
    assert "unknown W&B file format" in skip["reason"] and "version 7" in skip["reason"]
    assert f"skipped {skip['source']}: run-x.wandb: unknown W&B file format" in err


def test_a_run_file_cut_mid_write_keeps_what_was_written(wandb_dir: Path) -> None:
    from trainguard.readers.wandb_run import read

    f = next(wandb_dir.rglob("run-*.wandb"))
    full = read(f)
    cut = f.parent / "cut.wandb"
    cut.write_bytes(f.read_bytes()[: int(f.stat().st_size * 0.6)])
    part = read(cut)
    assert 0 < len(part.train_loss) < len(full.train_loss)
    n = len(part.train_loss)
    assert part.train_loss.values.tolist() == full.train_loss.values[:n].tolist()
