"""CSV/TSV tables: Lightning metrics.csv (sparse), Keras CSVLogger and history.json, W&B exports, bad rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.readers.speedups_support import both_paths  # noqa: F401 - autouse: every test on both paths
from trainguard.errors import InputError, NoMetricsError
from trainguard.readers import read_runs, table

LIGHTNING = """epoch,step,train_loss_step,val_loss,val_acc,lr-AdamW,train_loss_epoch
0,9,2.5,,,0.001,
0,19,2.1,,,0.001,
0,19,,2.3,0.41,,
0,19,,,,,2.3
1,29,1.9,,,0.0005,
1,39,1.7,,,0.0005,
1,39,,2.0,0.55,,
1,39,,,,,1.8
"""


def test_lightning_sparse_rows_keep_train_and_val_apart(tmp_path: Path) -> None:
    f = tmp_path / "version_0" / "metrics.csv"
    f.parent.mkdir()
    f.write_text(LIGHTNING.replace("\n", "\r\n"))  # CRLF, as on Windows
    [run] = read_runs(f)
    assert run.format == "lightning_csv" and run.name == "version_0"
    assert run.train_loss.steps.tolist() == [9, 19, 29, 39]
    assert run.train_loss.values.tolist() == [2.5, 2.1, 1.9, 1.7]
    assert run.eval_loss.steps.tolist() == [19, 39] and run.eval_loss.values.tolist() == [2.3, 2.0]
    assert run.history["eval_accuracy"].values.tolist() == [0.41, 0.55]
    assert run.history["learning_rate"].values.tolist() == [0.001, 0.001, 0.0005, 0.0005]
    assert run.history["train_loss_epoch"].values.tolist() == [2.3, 1.8]
    assert run.eval_loss.epochs.tolist() == [0.0, 1.0]
    assert run.history["epoch"].steps.tolist() == [9, 19, 29, 39]


def test_keras_csvlogger_epoch_is_the_step(tmp_path: Path) -> None:
    f = tmp_path / "training.log"
    f.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.55,1.1\n1,0.6,0.9,0.6,1.0\n2,0.7,0.7,0.61,1.05\n")
    [run] = read_runs(f)
    assert run.format == "keras_csv"
    assert run.eval_loss.steps.tolist() == [0, 1, 2] and run.eval_loss.values.tolist() == [1.1, 1.0, 1.05]
    assert run.history["eval_accuracy"].values.tolist() == [0.55, 0.6, 0.61]
    assert run.history["train_accuracy"].values.tolist() == [0.5, 0.6, 0.7]
    assert run.steps_per_epoch is None and any("epoch is used as the step" in n for n in run.notes)


def test_keras_history_json(tmp_path: Path) -> None:
    f = tmp_path / "history.json"
    f.write_text(json.dumps({"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.95], "val_accuracy": [0.5, 0.6, 0.62]}))
    [run] = read_runs(f)
    assert run.format == "keras_history"
    assert run.eval_loss.steps.tolist() == [1, 2, 3] and run.eval_loss.values.tolist() == [1.1, 0.9, 0.95]
    assert run.steps_per_epoch is None and any("epoch" in n for n in run.notes)


def test_wandb_export_and_gzip(tmp_path: Path) -> None:
    text = (
        '"Step","run-1 - train/loss","run-1 - train/loss__MIN","run-1 - train/loss__MAX","run-1 - eval/loss"\n'
        '"10","2.0","1.9","2.1",""\n"20","1.5","1.4","1.6","1.7"\n'
    )
    f = tmp_path / "wandb_export.csv.gz"
    f.write_bytes(gzip.compress(text.encode()))
    [run] = read_runs(f)
    assert run.train_loss.values.tolist() == [2.0, 1.5]
    assert run.eval_loss.steps.tolist() == [20] and run.eval_loss.values.tolist() == [1.7]
    assert set(run.history) == {"train_loss", "eval_loss"}


def test_wandb_history_step_column(tmp_path: Path) -> None:
    f = tmp_path / "history.csv"
    f.write_text("_step,_runtime,_timestamp,train/loss,train/learning_rate,eval/loss\n0,1,1700000000,3.0,0.001,\n1,2,1700000001,2.5,0.001,2.7\n")
    [run] = read_runs(f)
    assert run.train_loss.steps.tolist() == [0, 1]
    assert run.train_loss.wall_time.tolist() == [1700000000.0, 1700000001.0]
    assert run.history["learning_rate"].values.tolist() == [0.001, 0.001]


def test_tsv_step_loss(tmp_path: Path) -> None:
    f = tmp_path / "train.log"
    f.write_text("step\tloss\n10\t8.46\n20\t7.69\n")
    [run] = read_runs(f)
    assert run.train_loss.steps.tolist() == [10, 20] and run.train_loss.values.tolist() == [8.46, 7.69]


def test_restart_from_the_start_splits_a_resume_stitches(tmp_path: Path) -> None:
    resumed = tmp_path / "resumed.csv"
    resumed.write_text("step,loss\n10,3\n20,2.8\n30,2.6\n40,2.4\n20,2.7\n30,2.5\n40,2.3\n50,2.2\n")
    [run] = read_runs(resumed)
    assert run.train_loss.steps.tolist() == [10, 20, 30, 40, 50]
    assert run.train_loss.values.tolist() == [3, 2.7, 2.5, 2.3, 2.2]
    assert any("resumed run, stitched" in n and "3 older" in n for n in run.notes)
    two = tmp_path / "two.csv"
    two.write_text("step,loss\n10,3\n20,2.8\n10,4\n20,3.5\n30,3.1\n")
    runs = table.read_all(two)
    assert [len(r.train_loss) for r in runs] == [2, 3]
    assert any("a new run, split" in n for n in runs[1].notes)


@pytest.mark.parametrize("huge", ["1e30", "9223372036854775808", "-1e19"])
def test_a_step_past_a_64_bit_counter_drops_its_row_not_the_run(tmp_path: Path, huge: str) -> None:
    """One corrupt step cell: the row is dropped and said so; the run is neither split in two nor refused."""
    rows = [f"{huge if i == 5 else i * 10},{2.0 - i / 50:.3f}" for i in range(1, 30)]
    f = tmp_path / "m.csv"
    f.write_text("step,loss\n" + "\n".join(rows) + "\n")
    [run] = read_runs(f)
    assert len(run.train_loss) == 28 and run.train_loss.steps.min() == 10
    assert any("past a 64-bit counter" in n and "1 row" in n for n in run.notes)

def test_ragged_csv_is_a_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("step,loss,val_loss\n1,2.0,3.0\n2,1.9\n3,1.8,2.9,7\n4,1.7,2.8\n")
    with pytest.raises(InputError) as e:
        read_runs(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and "ragged rows: line 3" in msg and "\n" not in msg


def test_incomplete_last_row_is_skipped(tmp_path: Path) -> None:
    f = tmp_path / "live.csv"
    f.write_text("step,loss,val_loss\n1,2.0,3.0\n2,1.9,2.9\n3,1.")
    [run] = read_runs(f)
    assert len(run.train_loss) == 2 and any("incomplete" in n for n in run.notes)


def test_non_utf8_bytes_still_read(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_bytes("step,loss,note\n1,2.0,caf\xe9\n2,1.5,ok\n".encode("latin-1"))
    [run] = read_runs(f)
    assert run.train_loss.values.tolist() == [2.0, 1.5]
    assert "note" not in run.history


KERAS = "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.25,0.55,1.1\n1,0.7,0.75,0.6,0.95\n2,0.8,0.5,0.62,0.97\n"


@pytest.mark.parametrize("ending", ["\r\r\n", "\r\n", "\r", "\n\n"])
def test_keras_csvlogger_line_endings_read_the_same(tmp_path: Path, ending: str) -> None:
    """Windows CSVLogger files end lines with ``\\r\\r\\n`` (issue 11): no phantom empty rows, same points."""
    plain, odd = tmp_path / "a.csv", tmp_path / "b.csv"
    plain.write_text(KERAS)
    odd.write_bytes(KERAS.replace("\n", ending).encode())
    want, got = table.read(plain), table.read(odd)
    assert sorted(got.history) == sorted(want.history)
    for name in want.history:
        assert got.history[name].steps.tolist() == want.history[name].steps.tolist()
        assert got.history[name].values.tolist() == want.history[name].values.tolist()
    assert got.history["eval_loss"].values.tolist() == [1.1, 0.95, 0.97]


def test_cells_json_cannot_hold_read_like_float(tmp_path: Path) -> None:
    """``nan``, ``1.`` and ``.5`` are numbers to a log; the table reads them as Python's float() does."""
    f = tmp_path / "m.csv"
    f.write_text("step,loss,lr\n1,nan,1.\n2,.5,1e-3\n3,0.25,2E-4\n")
    run = table.read(f)
    loss = run.history["train_loss"]
    assert loss.steps.tolist() == [1, 2, 3]  # a cell that says nan is a NaN value (a gap is an empty cell)
    assert loss.values[0] != loss.values[0] and loss.values[1:].tolist() == [0.5, 0.25]
    assert run.history["learning_rate"].values.tolist() == [1.0, 1e-3, 2e-4]


def test_tsv_decimal_commas_are_not_split(tmp_path: Path) -> None:
    f = tmp_path / "m.tsv"
    f.write_text("step\tloss\n1\t2,5\n2\t2,25\n")
    with pytest.raises(NoMetricsError, match="no numeric metric columns"):  # never read as 2 and 5
        table.read(f)


def test_a_written_nan_is_a_nan_point_and_an_empty_cell_a_gap(tmp_path: Path) -> None:
    """Keras' and Lightning's CSV loggers write ``nan`` for a diverged loss: that must reach the NaN check, never vanish like a gap."""
    from trainguard.diagnosis import diagnose

    keras = tmp_path / "training.log"
    keras.write_text("epoch,loss,val_loss\n0,2.5,2.4\n1,2.1,2.2\n2,nan,nan\n3,nan,nan\n")
    run = read_runs(keras)[0]
    assert run.train_loss.values[2:].tolist() != run.train_loss.values[2:].tolist()  # NaN kept (NaN != NaN)
    assert len(run.train_loss) == 4 and len(run.eval_loss) == 4
    d = diagnose(run)
    assert str(getattr(d.status, "value", d.status)) == "critical", d.status
    assert any(f.code == "nan_loss" for f in d.findings)

    lightning = tmp_path / "metrics.csv"
    lightning.write_text("epoch,step,train_loss,val_loss\n0,9,2.5,\n0,9,,2.4\n0,19,NaN,\n0,19,,2.3\n")
    run = read_runs(lightning)[0]
    assert len(run.eval_loss) == 2  # empty cells are gaps
    assert len(run.train_loss) == 2 and run.train_loss.values[-1] != run.train_loss.values[-1]
