"""TensorBoard: logdirs written by the real torch SummaryWriter round-trip exactly through our decoder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.readers.speedups_support import both_paths  # noqa: F401 - autouse: every test on both paths
from trainguard.errors import InputError, NoMetricsError
from trainguard.readers import read_runs, tensorboard

torch_tb = pytest.importorskip("torch.utils.tensorboard")


def _values(seed: int, n: int) -> np.ndarray:
    # awkward float32 values (tiny, huge, negative, nan, inf) to prove bit equality
    v = np.random.default_rng(seed).standard_normal(n).astype(np.float32) * np.float32(1e3)
    v[3] = np.float32(1e-38)
    v[5] = np.float32(np.nan)
    v[7] = np.float32(np.inf)
    return v


def _same_f32(got: np.ndarray, want: np.ndarray) -> bool:
    return np.array_equal(got.astype(np.float32).view(np.uint32), want.astype(np.float32).view(np.uint32))


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """run_a: 3 tags, a TF2 tensor scalar, histograms; then resumed from step 300 after reaching 490. run_b: one tag."""
    root = tmp_path_factory.mktemp("tb")
    loss, lr = _values(0, 50), _values(1, 50)
    w = torch_tb.SummaryWriter(str(root / "run_a"))
    for i, s in enumerate(range(0, 500, 10)):
        w.add_scalar("train/loss", float(loss[i]), s)
        w.add_scalar("train/learning_rate", float(lr[i]), s)
        if s % 100 == 0:
            w.add_scalar("eval/loss", 6.0 - s / 100, s, new_style=True)  # TF2-style tensor scalar
        w.add_histogram("weights", np.arange(10), s)
    w.close()
    time.sleep(1.05)  # event file names carry the creation second: the resumed file must sort after
    w = torch_tb.SummaryWriter(str(root / "run_a"))
    for s in range(300, 700, 10):
        w.add_scalar("train/loss", 1.0 + s / 1000, s)
        w.add_scalar("train/learning_rate", 1e-4, s)
        if s % 100 == 0:
            w.add_scalar("eval/loss", 7.0 - s / 1000, s, new_style=True, double_precision=True)
    w.close()
    w = torch_tb.SummaryWriter(str(root / "run_b"))
    for s in range(5):
        w.add_scalar("Loss/train", 2.0 - s / 10, s)
    w.close()
    return root


def test_logdir_one_run_per_folder(logdir: Path) -> None:
    runs = {r.name: r for r in tensorboard.read_dir(logdir)}
    assert set(runs) == {"run_a", "run_b"}
    assert runs["run_b"].train_loss.values.tolist() == pytest.approx([2.0, 1.9, 1.8, 1.7, 1.6])


def test_resumed_run_rewinds_and_round_trips_bit_exact(logdir: Path) -> None:
    run = next(r for r in tensorboard.read_dir(logdir) if r.name == "run_a")
    tl = run.train_loss
    # old points at steps 0..290 kept, 300..490 replaced by the resumed file's 300..690
    assert tl.steps.tolist() == list(range(0, 700, 10))
    assert _same_f32(tl.values[:30], _values(0, 50)[:30])
    want_new = np.array([1.0 + s / 1000 for s in range(300, 700, 10)], dtype=np.float32)
    assert _same_f32(tl.values[30:], want_new)
    lr = run.history["learning_rate"]
    assert _same_f32(lr.values[:30], _values(1, 50)[:30])
    ev = run.eval_loss
    assert ev.steps.tolist() == [0, 100, 200, 300, 400, 500, 600]
    assert ev.values[:3].tolist() == pytest.approx([6.0, 5.0, 4.0])
    assert ev.values[3:].tolist() == [7.0 - s / 1000 for s in (300, 400, 500, 600)]  # double_val: exact doubles
    assert any("rewound from 490 to 300" in n and "42 older" in n for n in run.notes), run.notes
    assert any("non-scalar" in n for n in run.notes)
    assert run.start_time is not None and run.end_time is not None and run.end_time >= run.start_time


def test_single_event_file_through_registry(logdir: Path) -> None:
    f = sorted((logdir / "run_b").iterdir())[0]
    assert tensorboard.is_event_file(f.name)
    [run] = read_runs(f)
    assert run.format == "tensorboard"
    assert len(run.train_loss) == 5


def test_tensor_content_scalars_from_tensorboard_writer(tmp_path: Path) -> None:
    summary = pytest.importorskip("tensorboard.summary")
    w = summary.Writer(str(tmp_path))
    vals = _values(3, 20)
    for s, v in enumerate(vals):
        w.add_scalar("val_loss", np.float32(v), s)
        w.add_scalar("lr", np.float64(1e-3 / (s + 1)), s)
    w.close()
    [run] = tensorboard.read_dir(tmp_path)
    assert _same_f32(run.eval_loss.values, vals)
    # tensorboard's Writer stores float32 tensor_content
    assert _same_f32(run.history["learning_rate"].values, np.array([1e-3 / (s + 1) for s in range(20)]))


def test_truncated_event_file_reads_partially(logdir: Path, tmp_path: Path) -> None:
    src = sorted((logdir / "run_b").iterdir())[0]
    data = src.read_bytes()
    cut = tmp_path / src.name
    cut.write_bytes(data[: len(data) - 7])
    run = tensorboard.read(cut)
    assert len(run.train_loss) == 4
    assert any("truncated record" in n for n in run.notes)


def test_unreadable_event_files_are_one_line_errors(tmp_path: Path, logdir: Path) -> None:
    src = sorted((logdir / "run_b").iterdir())[0]
    bad = tmp_path / "events.out.tfevents.1.host"
    bad.write_bytes(src.read_bytes()[:10])
    with pytest.raises(InputError) as e:
        read_runs(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    only_hist = tmp_path / "h"
    w = torch_tb.SummaryWriter(str(only_hist))
    w.add_histogram("w", np.arange(5), 0)
    w.close()
    with pytest.raises(NoMetricsError, match="no scalars"):
        tensorboard.read_dir(only_hist)


def test_verify_checksums_detects_corruption(logdir: Path, tmp_path: Path) -> None:
    src = sorted((logdir / "run_b").iterdir())[0]
    data = bytearray(src.read_bytes())
    data[-6] ^= 0x01  # flip a bit inside the last value
    f = tmp_path / src.name
    f.write_bytes(bytes(data))
    run = tensorboard.read(f)  # default: the kept records are checked in bulk; the flipped one is dropped
    assert len(run.train_loss) == 4 and run.skipped_lines == 1
    assert any("1 corrupt record (checksum mismatch) dropped" in n for n in run.notes)
    run = tensorboard.read(f, verify=True)
    assert len(run.train_loss) == 4
    assert any("checksum" in n for n in run.notes)


def test_keras_train_validation_dirs_are_one_run(tmp_path: Path) -> None:
    for sub, base in (("train", 1.0), ("validation", 2.0)):
        w = torch_tb.SummaryWriter(str(tmp_path / "fit" / sub))
        for e in range(3):
            w.add_scalar("epoch_loss", base - e / 10, e)
        w.close()
    [run] = tensorboard.read_dir(tmp_path)
    assert run.name == "fit"
    assert run.train_loss.values.tolist() == pytest.approx([1.0, 0.9, 0.8])
    assert run.eval_loss.values.tolist() == pytest.approx([2.0, 1.9, 1.8])


def test_bulk_fast_path_agrees_with_general_decoder(logdir: Path) -> None:
    """The bulk fast path (compiled or numpy) and the field-by-field decoder give the same scalars, in the same order."""
    from trainguard.readers import _tb_proto

    for f in sorted((logdir / "run_a").iterdir()):
        buf = f.read_bytes()
        fast, slow = _tb_proto.decode(buf), _tb_proto._decode_general(buf)
        assert [fast.tags[i] for i in fast.tag_ids] == [slow.tags[i] for i in slow.tag_ids]
        assert list(fast.steps) == slow.steps
        assert np.array_equal(np.asarray(fast.values), np.asarray(slow.values), equal_nan=True)
        assert np.array_equal(np.asarray(fast.walls), np.asarray(slow.walls))
        assert fast.skipped_values == slow.skipped_values
