"""The reader contract (``readers/_protocol.py``), checked for every reader on every fixture and real run.

Like scikit-learn's ``check_estimator``: one suite, every implementation.
Each registered module must satisfy the typed protocol; every Run any of
them returns must keep the promises: integer steps that never go back within a
series, canonical metric names, restarts split into marked runs, and no line
dropped without a count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REALRUNS
from trainguard.readers import dir_readers, read_runs, readers
from trainguard.readers._collect import metric_name
from trainguard.readers._protocol import DirReader, Reader

DATA = Path(__file__).resolve().parents[1] / "data"
_FOLDER_FIXTURES = {"csv_pair", "wandb_export"}  # each sub-folder is one fixture


def _fixtures() -> list[Path]:
    out: list[Path] = []
    for d in sorted(DATA.iterdir()):
        if not d.is_dir() or d.name == "configs":
            continue
        out.extend(sorted(d.iterdir()) if d.name in _FOLDER_FIXTURES else sorted(p for p in d.iterdir() if p.is_file()))
    return out


def _real() -> list[Path]:
    return sorted(REALRUNS.iterdir()) if REALRUNS.is_dir() else []


def test_every_registered_module_satisfies_the_protocol() -> None:
    for m in readers():
        assert isinstance(m, Reader), f"{m.__name__} lacks NAME/sniff/read"
        assert m.sniff(b"", None) == 0.0 or m.sniff(b"", None) >= 0.0
    for m in dir_readers():
        assert isinstance(m, DirReader) or (hasattr(m, "sniff_dir") and hasattr(m, "read_dir")), m.__name__


def _check_runs(path: Path) -> set[str]:
    runs = read_runs(path)
    assert runs, path
    for run in runs:
        assert isinstance(run.skipped_lines, int) and run.skipped_lines >= 0
        for name, s in run.history.items():
            assert s.steps.dtype == np.int64, (name, s.steps.dtype)
            assert metric_name(name) == name, f"{path.name}: {name!r} is not canonical ({metric_name(name)!r})"
            if len(s) > 1:
                assert bool(np.all(np.diff(s.steps) >= 0)), f"{path.name}: {name} steps go back within one run"
    if len(runs) > 1 and path.is_file():
        for run in runs:  # a file holding several runs says so on each of them
            assert "#" in run.name or any("run" in n for n in run.notes), (path.name, run.name, run.notes)
    return {r.format for r in runs}


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_keeps_the_reader_promises(path: Path) -> None:
    _check_runs(path)


@pytest.mark.parametrize("path", _real(), ids=lambda p: p.name[:3])
def test_real_run_keeps_the_reader_promises(path: Path) -> None:
    _check_runs(path)


def test_new_formats_each_have_a_fixture() -> None:
    seen: set[str] = set()
    for p in _fixtures():
        seen |= {r.format for r in read_runs(p)}
    assert {"keras_stdout", "multiline", "wandb_export", "csv_pair", "json_metrics", "megatron", "coqui"} <= seen


@pytest.mark.parametrize(
    ("name", "text", "reader"),
    [
        ("multi.txt", "loss: 0.9\nepoch 1\nloss: 0.5\nacc: 0.7\nepoch 2\nloss: 0.4\nacc: 0.8\n", "multiline"),
        ("keras.txt", "1/1 - loss: 0.9\nEpoch 1/2\n1/1 - loss: 0.5 - val_loss: 0.6\nEpoch 2/2\n1/1 - loss: 0.4 - val_loss: 0.5\n", "keras_stdout"),
    ],
)
def test_a_metric_line_outside_any_record_is_counted_not_dropped(tmp_path: Path, name: str, text: str, reader: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    (run,) = read_runs(p)
    assert run.format == reader
    assert run.skipped_lines == 1
