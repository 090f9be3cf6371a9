"""Free-text logs: the issue's example lines, live streaming, restarts, and logs with no metrics."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from trainguard.errors import NoMetricsError
from trainguard.readers import read_runs, text


def _read(tmp_path: Path, body: str, name: str = "train.log"):  # type: ignore[no-untyped-def]
    f = tmp_path / name
    f.write_text(body)
    [run] = read_runs(f)
    return run


def test_nanogpt_iter_and_eval_lines(tmp_path: Path) -> None:
    run = _read(
        tmp_path,
        "step 0: train loss 10.9, val loss 10.95\n"
        "iter 0: loss 10.9012, time 1440.31ms, mfu -100.00%\n"
        "iter 10: loss 9.5, time 300.00ms, mfu 3.20%\n"
        "step 20: train loss 8.1, val loss 8.3\n"
        "iter 20: loss nan, time 290.00ms, mfu 3.10%\n",
    )
    assert run.format == "text"
    assert run.train_loss.steps.tolist() == [0, 10, 20]
    assert run.train_loss.values[:2].tolist() == [10.9012, 9.5] and math.isnan(run.train_loss.values[2])
    assert run.eval_loss.values.tolist() == [10.95, 8.3]
    assert run.history["eval_train_loss"].values.tolist() == [10.9, 8.1]  # eval-time estimates kept apart
    assert run.history["step_time"].values.tolist() == pytest.approx([1.44031, 0.3, 0.29])
    assert run.history["mfu"].values[1] == pytest.approx(0.032)


def test_opennmt_perplexity_becomes_loss(tmp_path: Path) -> None:
    run = _read(
        tmp_path,
        "[2019-03-01 10:00:00,000 INFO] Step 50/100000; acc:  12.00; ppl: 26.87; lr: 1.00000; 1234/5678 tok/s;  10 sec\n"
        "[2019-03-01 10:00:05,000 INFO] Validation perplexity: 5.45\n"
        "[2019-03-01 10:00:05,000 INFO] Validation accuracy: 60.1\n",
    )
    assert run.train_loss.steps.tolist() == [50] and run.train_loss.values[0] == pytest.approx(math.log(26.87))
    assert run.history["train_perplexity"].values.tolist() == [26.87]
    assert run.eval_loss.steps.tolist() == [50] and run.eval_loss.values[0] == pytest.approx(math.log(5.45))
    assert run.history["eval_accuracy"].values.tolist() == [60.1]
    assert run.planned_steps == 100000
    assert any("perplexity" in n for n in run.notes)


def test_python_logging_epoch_lines_percent(tmp_path: Path) -> None:
    run = _read(
        tmp_path,
        "2024-01-01 10:00:00 - INFO - Epoch 1/35, Train Loss: 1.6279, Test Acc: 59.86%\n"
        "2024-01-01 10:01:00 - INFO - Epoch 2/35, Train Loss: 1.2001, Test Acc: 64.10%\n",
    )
    assert run.train_loss.steps.tolist() == [1, 2] and run.train_loss.values.tolist() == [1.6279, 1.2001]
    assert run.history["eval_accuracy"].values.tolist() == pytest.approx([0.5986, 0.641])
    assert run.steps_per_epoch is None
    assert run.config.get("num_train_epochs") == 35


def test_fairseq_and_bare_train_val(tmp_path: Path) -> None:
    run = _read(tmp_path, "| epoch 001 | loss 4.2 | ppl 18.4 | num_updates 100\n| epoch 001 | valid on 'valid' subset | loss 3.9 | ppl 15.1 | num_updates 100\n")
    assert run.train_loss.values.tolist() == [4.2] and run.eval_loss.values.tolist() == [3.9]
    assert run.train_loss.steps.tolist() == [100]
    run2 = _read(tmp_path, "Step 1500: train 6.67, val 6.71\nStep 1600: train 6.5, val 6.6\n", "b.log")
    assert run2.train_loss.values.tolist() == [6.67, 6.5] and run2.eval_loss.values.tolist() == [6.71, 6.6]


def test_batch_counter_restarting_each_epoch_is_made_global(tmp_path: Path) -> None:
    lines = [f"ep: {e}, batch: {b}, loss: {10 - e - b / 100:.2f}" for e in range(2) for b in (0, 20, 40)]
    run = _read(tmp_path, "\n".join(lines) + "\n")
    assert run.train_loss.steps.tolist() == [0, 20, 40, 60, 80, 100]
    assert any("restarts every epoch" in n for n in run.notes)


def test_box_drawing_and_crlf_and_gz(tmp_path: Path) -> None:
    body = "│ step 250 | loss: 0.005 | lr 1.0e-03 | norm: 0.03 | dt: 1000.00ms | tok/sec: 6923.59 │\r\n" * 1
    body += "└─ step 260 | loss: 0.004 | lr 9.0e-04 | norm: 0.02 | dt: 1000.00ms | tok/sec: 6900.00\r\n"
    f = tmp_path / "log.txt.gz"
    f.write_bytes(gzip.compress(body.encode("utf-8") + b"\xff\xfe garbage\r\n"))
    [run] = read_runs(f)
    assert run.train_loss.steps.tolist() == [250, 260]
    assert run.history["grad_norm"].values.tolist() == [0.03, 0.02]
    assert run.history["throughput"].values.tolist() == [6923.59, 6900.0]


def test_restart_split_and_resume_stitch(tmp_path: Path) -> None:
    f = tmp_path / "two.log"
    f.write_text("step 0: loss 5\nstep 100: loss 4\nstep 0: loss 6\nstep 100: loss 5\nstep 200: loss 4.5\n")
    runs = text.read_all(f)
    assert [r.train_loss.values.tolist() for r in runs] == [[5, 4], [6, 5, 4.5]]
    assert "2 runs" in runs[1].notes[-1]
    assert len(read_runs(f)) == 2  # the registry reports each run
    assert any("later run" in n for n in text.read(f).notes)
    g = tmp_path / "resumed.log"
    g.write_text("step 0: loss 5\nstep 100: loss 4\nstep 200: loss 3.5\nstep 100: loss 3.9\nstep 200: loss 3.4\n")
    [run] = read_runs(g)
    assert run.train_loss.steps.tolist() == [0, 100, 200] and run.train_loss.values.tolist() == [5, 3.9, 3.4]
    assert any("stitched" in n for n in run.notes)


def test_stream_parser_equals_offline_read(tmp_path: Path) -> None:
    body = "iter 1: loss 3.0\rprogress 10%\riter 2: loss 2.5\nstep 2: train loss 2.6, val loss 2.8\n"
    sp = text.StreamParser()
    pts = []
    for i in range(0, len(body), 7):  # arbitrary chunking, partial lines buffered
        pts += sp.feed(body[i : i + 7])
    pts += sp.close()
    assert [(p.name, p.step, p.value) for p in pts] == [
        ("train_loss", 1, 3.0),
        ("train_loss", 2, 2.5),
        ("eval_loss", 2, 2.8),
        ("eval_train_loss", 2, 2.6),
    ]


def test_hf_dict_lines_are_left_to_hf_reader() -> None:
    data = b"{'loss': 2.0, 'grad_norm': 1.0, 'learning_rate': 0.001, 'epoch': 1.0}\nstep 1: loss 2\nstep 2: loss 1\n"
    assert text.sniff(data) <= 0.1


def test_log_without_metrics_is_a_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "chat.log"
    f.write_text("Loading model from step 500\nhello world 3 times\n" * 50)
    with pytest.raises(NoMetricsError) as e:
        read_runs(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and "no metrics found; try --pattern" in msg and "\n" not in msg


def test_pathological_lines_do_not_hang(tmp_path: Path) -> None:
    """Near-miss lines against cached shapes, long digit runs and whitespace: linear time, no backtracking blow-up."""
    good = "step 1 | loss: 2.5 | lr 1.0e-03 | norm: 0.5 | dt: 100.00ms | tok/sec: 6900.25\n"
    nasty = "step 1 | loss: " + "1" * 5000 + " | lr " + "2" * 5000 + " | norm: 0.5 | dt: 100.00ms | tok/sec: 6900.25 x\n"
    spaces = "step 2" + " " * 20000 + "loss" + " " * 20000 + "\n"
    numbers = "step 3 " + " ".join(str(i) + "." + "9" * 30 for i in range(2000)) + " !\n"
    f = tmp_path / "nasty.log"
    f.write_text(good + nasty * 3 + spaces + numbers + good.replace("step 1", "step 4"))
    [run] = read_runs(f)
    assert run.train_loss.steps.tolist()[0] == 1 and run.train_loss.steps.tolist()[-1] == 4


def test_over_long_line_is_skipped_with_a_note_and_the_rest_read(tmp_path: Path) -> None:
    """Issue 12: one 256 KB line of ``step 1 loss 0.5 ...`` took 50 s; now it is skipped, said, and the log still reads."""
    f = tmp_path / "train.log"
    long_line = "step 1 loss 0.5 " * (256 * 1024 // 16)
    f.write_text(f"step 10 loss 2.0\n{long_line}\nstep 20 loss 1.5\nstep 30 loss 1.25\n")
    run = text.read(f)
    assert run.history["train_loss"].steps.tolist() == [10, 20, 30]
    assert run.history["train_loss"].values.tolist() == [2.0, 1.5, 1.25]
    note = next(n for n in run.notes if "longer than" in n)
    assert "1 line(s) longer than 8 KB skipped" in note and "line 2" in note


def test_long_line_under_the_cap_reads_its_first_pairs(tmp_path: Path) -> None:
    """A line just under the cap is still a record (the shape regex is built in one linear pass)."""
    f = tmp_path / "train.log"
    f.write_text("step 1 loss 0.5 lr 0.001 " * 300 + "\nstep 2 loss 0.25 lr 0.001\n")
    run = text.read(f)
    assert run.history["train_loss"].steps.tolist() == [1, 2]
    assert run.history["train_loss"].values.tolist() == [0.5, 0.25]
    assert not any("longer than" in n for n in run.notes)
