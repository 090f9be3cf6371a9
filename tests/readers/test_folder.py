"""Folders: an HF output dir (newest trainer_state wins, stdout adds runtime), checkpoints, several runs."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from tests.conftest import realrun
from trainguard.readers import folder, read_runs


def test_tiny_output_dir_state_plus_stdout(tiny_runs, tmp_path: Path) -> None:
    tiny = tiny_runs("overfit")
    out = tmp_path / "overfit"
    shutil.copytree(tiny.output_dir, out)
    assert folder.sniff_dir(out) == 0.9
    (run,) = read_runs(out)
    assert run.format == "hf_output_dir" and run.name == "overfit"
    want = [(e["step"], e["eval_loss"]) for e in tiny.log_history if "eval_loss" in e]
    assert list(zip(run.eval_loss.steps.tolist(), run.eval_loss.values.tolist(), strict=True)) == want
    assert run.train_runtime and run.finished
    assert any(s.endswith("train.log") for s in run.sources)


def test_newest_checkpoint_state_weights_and_pickle_never_loaded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for n in (200, 500):
        (out / f"checkpoint-{n}").mkdir(parents=True)
    shutil.copy(realrun("022_"), out / "checkpoint-500" / "trainer_state.json")
    (out / "checkpoint-200" / "trainer_state.json").write_text('{"log_history": [{"loss": 9.0, "step": 10}]}')
    (out / "checkpoint-200" / "adapter_model.safetensors").write_bytes(b"\0" * 8)

    class Boom:
        def __reduce__(self):  # unpickling this would raise in the test
            return (exec, ("raise SystemExit('unpickled!')",))

    (out / "training_args.bin").write_bytes(pickle.dumps(Boom()))
    (run,) = read_runs(out)
    assert run.history.last_step() == 500  # checkpoint-500's state, not checkpoint-200's
    assert set(run.checkpoints) == {200, 500}
    assert run.checkpoints[200].has_weights and not run.checkpoints[500].has_weights
    assert any("checkpoint-500" in n for n in run.notes)


def test_folder_of_runs_one_per_subfolder(tmp_path: Path) -> None:
    for name, src in (("a", "010_"), ("b", "024_")):
        (tmp_path / name).mkdir()
        shutil.copy(realrun(src), tmp_path / name / "trainer_state.json")
    (tmp_path / "logs").mkdir()
    shutil.copy(realrun("019_"), tmp_path / "logs" / "train_log.txt")
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    runs = read_runs(tmp_path)
    names = sorted(r.name for r in runs)
    assert names[:2] == ["a", "b"]
    assert sum(r.format == "hf_stdout" for r in runs) == 2  # the two runs in one stdout file
    assert len(runs) == 4


def test_empty_folder_is_no_metrics(tmp_path: Path) -> None:
    import pytest

    from trainguard.errors import NoMetricsError

    (tmp_path / "x.bin").write_bytes(b"\x80\x04junk")
    with pytest.raises(NoMetricsError):
        read_runs(tmp_path)


def test_a_bare_tensorboard_logdir_is_found(tmp_path: Path) -> None:
    """A folder holding only event files (no trainer_state, no logs) is a run, not 'nothing recognised'."""
    from torch.utils.tensorboard import SummaryWriter

    from trainguard.readers import read_runs

    w = SummaryWriter(str(tmp_path))
    for i in range(30):
        w.add_scalar("train/loss", 3.0 - 0.01 * i, i)
        w.add_scalar("eval/loss", 3.0 - 0.005 * i, i)
    w.close()
    (run,) = read_runs(tmp_path)
    assert len(run.train_loss) == 30 and len(run.eval_loss) == 30
    assert run.eval_loss.values[-1] == pytest.approx(3.0 - 0.005 * 29, rel=1e-6)
