"""The free-text reader's block path (readers/_text_block.py) gives exactly the Runs of its line-by-line path.

Every text file under tests/data and ../shared/realruns is read both ways
(``text.BLOCKS``) and compared field by field, bit for bit (NaN equal to NaN,
-0.0 not equal to 0.0), notes and names included; so are synthetic logs built
around what the line path does per line (restarts, resumes, eval lines without
a counter, nanoGPT's two train losses, % and ms, -0, numbers JSON refuses,
over-long lines, CRLF, shape changes mid-run).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from tests.readers.speedups_support import both_paths  # noqa: F401 - autouse: every test on both paths
from trainguard.errors import TrainguardError
from trainguard.readers import text
from trainguard.run import Run

ROOT = Path(__file__).resolve().parents[2]
DIRS = [ROOT / "tests" / "data", ROOT.parent / "shared" / "realruns" / "runs"]


def _read(path: Path, blocks: bool, monkeypatch: pytest.MonkeyPatch) -> list[Run] | str:
    monkeypatch.setattr(text, "BLOCKS", blocks)
    try:
        return text.read_all(path)
    except (TrainguardError, ValueError, OverflowError) as e:
        return f"{type(e).__name__}: {e}"


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same(a: list[Run] | str, b: list[Run] | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.name, x.format, x.sources, x.notes) == (y.name, y.format, y.sources, y.notes)
        assert (x.planned_steps, x.steps_per_epoch, x.skipped_lines) == (y.planned_steps, y.steps_per_epoch, y.skipped_lines)
        assert x.config.to_dict() == y.config.to_dict()
        assert list(x.history) == list(y.history)
        for name in x.history:
            sx, sy = x.history[name], y.history[name]
            for attr in ("steps", "values", "epochs", "wall_time"):
                assert _same_bits(np.asarray(getattr(sx, attr)), np.asarray(getattr(sy, attr))), (name, attr)


def _files() -> list[Path]:
    out = []
    for d in DIRS:
        if d.is_dir():
            out += sorted(p for p in d.rglob("*") if p.is_file() and p.stat().st_size < 8_000_000)
    return out


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_fixture_and_real_run_reads_the_same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(_read(path, True, monkeypatch), _read(path, False, monkeypatch))


def _nanogpt(rng: random.Random, n: int, start: int = 0) -> list[str]:
    out = []
    for s in range(start, start + n):
        out.append(f"step {s} | loss: {3 + math.sin(s):.4f} | lr {1e-3:.4e} | norm: {rng.random():.4f} | dt: {rng.uniform(90, 110):.2f}ms | tok/sec: {rng.uniform(1e3, 1e4):.2f}")
        if s % 37 == 36:
            out.append(f"step {s}: train loss {rng.random() + 2:.4f}, val loss {rng.random() + 2:.4f}")
    return out


def _cases() -> dict[str, str]:
    rng = random.Random(7)
    c: dict[str, str] = {}
    c["nanogpt"] = "\n".join(_nanogpt(rng, 400)) + "\n"
    c["restart_and_resume"] = "\n".join(_nanogpt(rng, 120) + _nanogpt(rng, 60) + _nanogpt(rng, 50, 30)) + "\n"
    c["crlf_no_final_newline"] = "\r\n".join(_nanogpt(rng, 100))
    c["percent"] = "".join(f"iter {i}: loss {rng.random():.3f}, acc {rng.uniform(0, 100):.2f}%\n" for i in range(60))
    c["step_total"] = "".join(f"Step {i}/5000; loss: {rng.random():.4f}; lr: 3e-4\n" for i in range(0, 600, 10))
    c["eval_without_counter"] = "".join(
        f"step {i} loss {rng.random():.3f}\n" + "".join(f"Validation perplexity: {rng.uniform(5, 9):.2f}\n" for _ in range(5))
        for i in range(20)
    )
    c["eval_before_any_step"] = "".join(f"Validation loss: {rng.random():.3f}\n" for _ in range(10)) + "".join(
        f"step {i} loss {rng.random():.3f}\n" for i in range(10)
    )
    odd = ["-0", "1.", "+5", "007", "1e999", "nan", "-inf", "0.5", "-0.0", "1e5", "2E-3", "-12", "123456789012345678901234"]
    c["odd_numbers"] = "".join(f"step {i} | loss {rng.choice(odd)} | gnorm {rng.choice(odd)}\n" for i in range(300))
    c["odd_steps"] = "".join(f"step {rng.choice(['1e30', '5', '7.9', '-3', '1e18'])} loss {rng.random():.3f}\n" for _ in range(100))
    c["ansi_and_timestamps"] = "".join(
        f"2024-01-0{1 + i // 100} 12:00:{i % 60:02d},123 - INFO - \x1b[32mstep {i}\x1b[0m loss={rng.random():.4f} lr=1e-4\n"
        for i in range(200)
    )
    long_line = "x" * (text.MAX_LINE + 10)
    c["long_lines"] = "".join(f"step {i} loss {rng.random():.3f}\n" + (long_line + "\n" if i % 9 == 0 else "") for i in range(90))
    c["long_numbers"] = "".join(f"step {i} loss {'1' * (text.MAX_LINE if i == 40 else 3)}\n" for i in range(80))
    c["epoch_batch"] = "".join(f"ep: {e}, batch: {b}, loss: {rng.random():.3f}\n" for e in range(4) for b in range(0, 100, 10))
    c["train_perplexity"] = "".join(f"Step {i}; acc: {rng.uniform(0, 90):.2f}; ppl: {rng.uniform(1, 50):.2f}; xent: -0.5\n" for i in range(50))
    c["mixed_shapes"] = "".join(
        f"step {i} loss {rng.random():.3f}\n" if rng.random() < 0.7 else f"step {i} loss {rng.random():.3f} lr {rng.random():.1e}\n"
        for i in range(500)
    )
    c["sign_shapes"] = "".join(f"step -{i} x 3\nstep {i} x -3\n" for i in range(30)) + "".join(f"step {i} x 3\n" for i in range(30))
    c["hf_dicts_and_noise"] = "".join(
        f"{{'loss': {rng.random():.3f}, 'epoch': 0.{i}}}\nnoise line {i}\nstep {i} loss {rng.random():.3f}\n" for i in range(40)
    )
    c["unicode"] = "".join(f"│ step {i} │ loss {rng.random():.3f} │ ٣ {i}\n" for i in range(40)) + "".join(
        f"шаг step {i} loss {rng.random():.3f}\n" for i in range(40, 80)
    )
    c["glued_literals"] = "".join(f"step {i} loss {rng.random():.3f}e lr 3e-4x val.{i}\n" for i in range(60))
    return c


@pytest.mark.parametrize(("name", "body"), sorted(_cases().items()))
def test_synthetic_logs_read_the_same_both_ways(name: str, body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / f"{name}.log"
    f.write_bytes(body.encode())
    assert_same(_read(f, True, monkeypatch), _read(f, False, monkeypatch))


def test_the_bench_shape_is_read_as_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard against a silent fall-back: the nanoGPT shape must come back as a few Blocks, not 400 Records."""
    monkeypatch.setattr(text, "BLOCKS", True)
    recs, _ = text.records("\n".join(_nanogpt(random.Random(1), 400)) + "\n")
    blocks = [r for r in recs if isinstance(r, text.Block)]
    assert blocks and sum(len(b.steps) for b in blocks) > 300
