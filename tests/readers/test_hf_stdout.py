"""HF Trainer stdout: step recovery proven against trainer_state, real logs pinned, every bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import realrun
from trainguard.errors import InputError, NoMetricsError
from trainguard.readers import hf_stdout, read_file, read_runs

DATA = Path(__file__).resolve().parents[1] / "data" / "hf_stdout"


def _pairs(history: list[dict], key: str) -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e[key])) for e in history if key in e and "step" in e]


def test_tiny_stdout_steps_match_trainer_state(tiny_runs, tmp_path: Path) -> None:
    """The step-alignment proof: stdout (no steps) gives exactly trainer_state's (step, value) pairs."""
    tiny = tiny_runs("overfit")
    log = tmp_path / "train.log"
    log.write_text(tiny.stdout)
    run = hf_stdout.read(log)
    for key, name in (("loss", "train_loss"), ("eval_loss", "eval_loss")):
        want = _pairs(tiny.log_history, key)
        s = run.history[name]
        assert s.steps.tolist() == [st for st, _ in want]
        # transformers 5 prints 4 significant digits
        np.testing.assert_allclose(s.values, [v for _, v in want], rtol=1e-3)
    assert run.planned_steps == 800
    assert run.finished is True and run.train_runtime and run.train_runtime > 0
    assert "train_loss" not in {n for n in run.history if len(run.history[n]) == 1}  # summary mean is not a point


def test_stream_parser_in_small_pieces_equals_read(tiny_runs) -> None:
    text = tiny_runs("overfit").stdout
    parser = hf_stdout.StreamParser()
    pts = []
    for i in range(0, len(text), 777):
        pts.extend(parser.feed(text[i : i + 777]))
    pts.extend(parser.close())
    got = [(p.step, p.value) for p in pts if p.name == "eval_loss"]
    want = _pairs(tiny_runs("overfit").log_history, "eval_loss")
    assert [s for s, _ in got] == [s for s, _ in want]


def test_realrun_015_no_tqdm_steps_from_runtime_and_epochs() -> None:
    """Ideographic-space indented dict lines, no tqdm: 94 steps/epoch, logging every 10 (not log index)."""
    run = hf_stdout.read(realrun("015_"))
    tl, ev = run.history["train_loss"], run.history["eval_loss"]
    assert len(tl) == 282 and len(ev) == 30
    assert (tl.steps[0], tl.values[0]) == (10, 4.1437)
    assert (tl.steps[-1], tl.values[-1]) == (2820, 0.6449)
    assert run.steps_per_epoch == 94
    assert ev.steps[:3].tolist() == [94, 188, 282]  # eval per epoch, between two train logs
    best = int(np.argmin(ev.values))
    assert ev.steps[best] == 7 * 94 and round(float(ev.values[best]), 4) == 1.7825
    assert run.train_runtime == pytest.approx(22095.3115)
    assert any("steps recovered" in n for n in run.notes)


def test_realrun_019_two_runs_in_one_file() -> None:
    runs = hf_stdout.read_all(realrun("019_"))
    assert len(runs) == 2
    a, b = runs
    assert a.history["train_loss"].steps.tolist() == list(range(500, 7000, 500))
    assert a.history["train_loss"].values[0] == 1.6282 and a.history["train_loss"].values[-1] == 0.0014
    assert a.history["eval_loss"].steps.tolist() == [2319, 4638, 6957]
    assert a.planned_steps == 6957
    assert b.history["train_loss"].steps.tolist() == [500, 1000, 1500, 2000]
    assert b.history["eval_loss"].steps.tolist() == list(range(226, 2261, 226))
    assert round(float(b.history["eval_loss"].values.min()), 5) == 0.03127
    assert len(b.history["eval_f1"]) == 10
    assert len(read_runs(realrun("019_"))) == 2  # the registry reports each run
    first = hf_stdout.read(realrun("019_"))
    assert any("later run" in n for n in first.notes)


def test_deepspeed_8gpu_log() -> None:
    run = read_runs(DATA / "deepspeed_8gpu.log")[0]
    assert run.format == "hf_stdout"
    assert run.num_gpus == 8 and run.config.world_size == 8
    assert run.train_runtime == 4321.0 and run.finished
    assert run.planned_steps == 20
    assert run.config.get("launch_command") == "deepspeed Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100"
    assert run.history["train_loss"].steps.tolist() == list(range(2, 21, 2))
    assert run.history["eval_loss"].steps.tolist() == [10, 20]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


LINE = b"{'loss': '%s', 'learning_rate': '0.001', 'epoch': '%s'}\n"


def test_truncated_last_line_is_a_counted_skip(tmp_path: Path) -> None:
    data = b"".join(LINE % (str(3 - i * 0.1).encode(), str(i + 1).encode()) for i in range(5)) + b"{'loss': '2.1', 'learn"
    run = hf_stdout.read(_write(tmp_path, "t.log", data))
    assert len(run.history["train_loss"]) == 5 and run.skipped_lines == 1


def test_crlf_non_utf8_and_nan(tmp_path: Path) -> None:
    data = (b"caf\xe9 \xff\xfe log\r\n" + (LINE % (b"2.5", b"1")).replace(b"\n", b"\r\n")
            + b"{'loss': nan, 'learning_rate': 0.001, 'epoch': 2}\r\n" + (LINE % (b"inf", b"3")) + (LINE % (b"nan", b"4")))
    run = hf_stdout.read(_write(tmp_path, "c.log", data))
    v = run.history["train_loss"].values
    assert v[0] == 2.5 and math.isnan(v[1]) and math.isinf(v[2]) and math.isnan(v[3])


def test_empty_binary_giant_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_file(_write(tmp_path, "e.log", b""))
    with pytest.raises(InputError, match="binary"):
        read_file(_write(tmp_path, "b.log", bytes(range(256)) * 100))
    giant = _write(tmp_path, "g.log", b"x" * (100 << 20))
    with pytest.raises(NoMetricsError):
        hf_stdout.read(giant)
    # a giant line holding an unterminated dict and then a real one
    g2 = _write(tmp_path, "g2.log", b"{'loss': '1" + b"y" * (20 << 20) + b"\n" + LINE % (b"1.5", b"1"))
    run = hf_stdout.read(g2)
    assert run.history["train_loss"].values.tolist() == [1.5] and run.skipped_lines == 1


def test_echoes_and_foreign_dicts_are_not_points(tmp_path: Path) -> None:
    data = (b"Special tokens: {'eos_token': '<|endoftext|>'}\n" + LINE % (b"2.0", b"1") + LINE % (b"1.0", b"2")
            + b"{'train_runtime': 10.0, 'train_steps_per_second': 0.2, 'train_loss': 1.5, 'epoch': 2.0}\n"
            + b"eval_results= {'eval_loss': 0.5, 'epoch': 2.0}\n"
            + b"TrainOutput(global_step=2, metrics={'train_runtime': 10.0, 'epoch': 2.0})\n")
    runs = hf_stdout.read_all(_write(tmp_path, "x.log", data))
    assert len(runs) == 1 and "eval_loss" not in runs[0].history
    assert runs[0].history["train_loss"].values.tolist() == [2.0, 1.0]


def test_epoch_restart_without_summary_splits(tmp_path: Path) -> None:
    data = b"".join(LINE % (b"2", str(e).encode()) for e in (0.5, 1.0, 1.5, 2.0)) + b"".join(
        LINE % (b"3", str(e).encode()) for e in (0.5, 1.0))
    assert len(hf_stdout.read_all(_write(tmp_path, "r.log", data))) == 2


def test_sniff() -> None:
    assert hf_stdout.sniff(b"{'loss': 1.0, 'epoch': 0.1}\n{'loss': 0.9, 'epoch': 0.2}\n") >= 0.9
    assert hf_stdout.sniff(b'{"log_history": []}') == 0.0
