"""--pattern REGEX: named groups step/epoch plus metrics; bad regexes are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainguard.errors import InputError, NoMetricsError
from trainguard.readers import pattern, read_runs


def test_named_groups_map_to_canonical_metrics(tmp_path: Path) -> None:
    f = tmp_path / "odd.log"
    f.write_text("@@ 100 >> 2.5 ~ 2.9\r\n@@ 200 >> 2.1 ~ 2.7\nnoise\n")
    [run] = read_runs(f, pattern=r"@@ (?P<step>\d+) >> (?P<loss>[\d.]+) ~ (?P<val_loss>[\d.]+)")
    assert run.train_loss.steps.tolist() == [100, 200] and run.train_loss.values.tolist() == [2.5, 2.1]
    assert run.eval_loss.values.tolist() == [2.9, 2.7]


def test_stream_parser_matches_read(tmp_path: Path) -> None:
    sp = pattern.StreamParser(r"it=(?P<step>\d+) l=(?P<loss>[\d.]+)")
    pts = sp.feed("it=1 l=2.0\nit=2 l=") + sp.feed("1.5\n") + sp.close()
    assert [(p.name, p.step, p.value) for p in pts] == [("train_loss", 1, 2.0), ("train_loss", 2, 1.5)]


def test_bad_regex_and_no_match(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("step 1 loss 2\n")
    with pytest.raises(InputError) as e:
        read_runs(f, pattern=r"(?P<step>\d+")
    assert "bad --pattern" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="no named metric group"):
        pattern.read(f, pattern=r"(?P<step>\d+)")
    with pytest.raises(NoMetricsError, match="matched no line"):
        pattern.read(f, pattern=r"zzz (?P<loss>\d+)")


def test_epoch_only_pattern(tmp_path: Path) -> None:
    f = tmp_path / "e.log"
    f.write_text("E1 0.9\nE2 0.8\n")
    run = pattern.read(f, pattern=r"E(?P<epoch>\d+) (?P<loss>[\d.]+)")
    assert run.train_loss.steps.tolist() == [1, 2] and any("epoch is the step" in n for n in run.notes)
