"""Folder mode reports every file: read as a run, or named with the reason it was skipped (stderr and --json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from trainguard.cli import app
from trainguard.readers import read_runs

DATA = Path(__file__).resolve().parents[1] / "data"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(DATA / "keras_stdout", root / "keras")
    shutil.copytree(DATA / "wandb_export" / "sentence-run", root / "wandb-charts")
    (root / "notes.txt").write_text("remember to try a lower LR\n")
    (root / "model.safetensors").write_bytes(b"\x00" * 16)
    (root / "empty.log").write_text("")
    (root / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    return root


def test_read_runs_lists_each_file_not_read_with_its_reason(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    runs = read_runs(root)
    assert sorted(r.format for r in runs) == ["keras_stdout", "wandb_export"]  # the two chart exports: one run
    why = {Path(s.path).name: s.reason for s in runs.skipped}
    assert set(why) == {"notes.txt", "model.safetensors", "empty.log", "adapter_config.json"}
    assert "never loaded" in why["model.safetensors"]
    assert why["empty.log"] == "empty file"
    assert "no reader recognised" in why["notes.txt"]


def test_analyze_names_skipped_files_on_stderr_and_in_json(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    res = CliRunner().invoke(app, ["analyze", str(root), "--json"])
    assert res.exit_code in (0, 1), res.output
    assert f"skipped {root / 'notes.txt'}: no reader recognised" in res.stderr
    doc = json.loads(res.stdout)
    assert isinstance(doc, list) and len(doc) == 2
    names = {Path(s["path"]).name for s in doc[0]["skipped_files"]}
    assert names == {"notes.txt", "model.safetensors", "empty.log", "adapter_config.json"}


def test_real_runs_folder_reads_every_run(tmp_path: Path) -> None:
    """Every run of ../shared/realruns, as one folder: none dropped, the W&B export one run, nothing skipped."""
    from tests.conftest import REALRUNS

    if not REALRUNS.is_dir():
        import pytest

        pytest.skip(f"real runs not found at {REALRUNS}")
    runs = read_runs(REALRUNS)
    assert runs.skipped == []
    sources = {Path(s).name for r in runs for s in r.sources}
    for p in REALRUNS.iterdir():
        if p.is_file():
            assert p.name in sources, p.name
        else:
            assert {f.name for f in p.iterdir()} <= sources, p.name
    assert sum(r.format == "wandb_export" for r in runs) == 1


def test_run_folders_of_other_layouts_below_are_read_by_their_reader(tmp_path: Path) -> None:
    """An MLflow file store below a folder of logs is read (not dropped); a wandb/ folder without run files is walked."""
    root = tmp_path / "project"
    shutil.copytree(DATA / "keras_stdout", root / "logs")
    run = root / "mlruns" / "0" / "abc123"
    (run / "metrics").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text("run_id: abc123\nrun_name: lr-sweep-1\nstatus: 3\n")
    (run / "metrics" / "val_loss").write_text("".join(f"17000000{i}000 {1.0 + (i - 2) ** 2 / 10} {i * 100}\n" for i in range(5)))
    (run / "params" / "lr").write_text("0.001")
    files = root / "wandb" / "run-20240101_000000-abc123" / "files"
    files.mkdir(parents=True)
    shutil.copy(DATA / "wandb_output" / "output.log", files / "output.log")
    (files / "wandb-summary.json").write_text('{"val_loss": 1.0811, "_step": 4}')
    runs = read_runs(root)
    assert sorted(r.format for r in runs) == ["keras_stdout", "mlflow_file_store", "text"]
    ml = next(r for r in runs if r.format == "mlflow_file_store")
    assert int(ml.eval_loss.steps[ml.eval_loss.values.argmin()]) == 200
    assert [(Path(s.path).name, s.reason) for s in runs.skipped] == [
        ("wandb-summary.json", "W&B summary: the last value of each metric, not a history")]


def test_a_linked_folder_is_named_not_read_twice(tmp_path: Path) -> None:
    """``latest-run -> run-20240101...``: reading through the link would report the same run twice."""
    import os

    shutil.copytree(DATA / "keras_stdout", tmp_path / "run-1")
    os.symlink(tmp_path / "run-1", tmp_path / "latest-run")
    runs = read_runs(tmp_path)
    assert len(runs) == 1
    assert [Path(s.path).name for s in runs.skipped] == ["latest-run"]
