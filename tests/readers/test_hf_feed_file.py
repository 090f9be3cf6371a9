"""Reading an HF stdout file through one reused buffer gives what feeding it piece by piece gives.

``read_all`` reads the file straight into one bytearray (``StreamParser.feed_file``)
instead of making a new 4 MB bytes object per read and prepending the carry
to it (issue 14: those copies cost more than the scan on a 200 MB log). The
live guard still feeds text as it arrives (``feed``/``feed_bytes``). A user
relies on both giving the same Runs whatever the chunk size, including when
a dict line is cut at a chunk's end and carried over, when the carry is
longer than the buffer's slack, on gzip files (whose reads may come back
short) and on streams without ``readinto``. Each test runs with the C
extension and without it (``both_paths``).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REALRUNS
from tests.readers.speedups_support import both_paths, snapshot
from trainguard.readers import hf_stdout
from trainguard.readers.hf_stdout import StreamParser, read_all

__all__ = ["both_paths"]  # the autouse fixture: every test here runs with and without the extension

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _dict_logs() -> list[Path]:
    """Every fixture and real run that holds HF Trainer dict lines."""
    files = [p for p in sorted(DATA.rglob("*")) if p.is_file() and b"{'loss'" in p.read_bytes()]
    if REALRUNS.is_dir():
        files += [p for p in sorted(REALRUNS.rglob("*")) if p.is_file() and b"{'loss'" in p.read_bytes()]
    return files


def _fed(data: bytes, path: Path, sizes: random.Random) -> list:
    """The Runs of ``data`` fed to a parser by ``feed_bytes`` in random-sized pieces (the live path)."""
    p = StreamParser()
    i = 0
    while i < len(data):
        k = sizes.randint(1, 3000) if sizes.random() < 0.5 else sizes.randint(3000, 200_000)
        p.feed_bytes(data[i : i + k])
        i += k
    return snapshot(p.runs(name=hf_stdout._run_name(path), source=str(path)))


def _points(run: dict, name: str) -> int:
    """Points of series ``name`` in a snapshot (its steps are a dtype byte and int64s)."""
    return (len(run["history"][name][0]) - 1) // 8


def _outcome(path: Path) -> object:
    try:
        return snapshot(read_all(path))
    except Exception as e:  # the same error either way is the point
        return (type(e).__name__, str(e))


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tqdm-heavy log from bench/parse_speed.py, a little over one 4 MB read."""
    spec = importlib.util.spec_from_file_location("_tg_bench_parse_speed_feed", ROOT / "bench" / "parse_speed.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    p = tmp_path_factory.mktemp("feed") / "train.log"
    mod.write_log(p, 4.3, seed=11)
    return p


def test_file_reads_equal_piecewise_feeding(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    logs = _dict_logs()
    assert logs
    for chunk in (777, 65536, hf_stdout.CHUNK):
        monkeypatch.setattr(hf_stdout, "CHUNK", chunk)
        for log in logs:
            got = _outcome(log)
            assert not isinstance(got, tuple), (log, got)
            assert got == _fed(log.read_bytes(), log, rng), (log, chunk)


def test_a_bench_log_over_several_reads(bench_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _outcome(bench_log)
    assert not isinstance(whole, tuple) and _points(whole[0], "train_loss") > 1000
    assert whole == _fed(bench_log.read_bytes(), bench_log, random.Random(4))
    monkeypatch.setattr(hf_stdout, "CHUNK", 100_003)  # dozens of reads, dicts cut at their ends
    assert _outcome(bench_log) == whole


def _trainer_log(every_tenth: Callable[[int], str]) -> bytes:
    """A 40-step HF Trainer stdout log: a train dict and a tqdm redraw per step, ``every_tenth(step)`` after steps 10, 20, 30, 40."""
    lines = []
    for i in range(1, 41):
        lines.append(f"{{'loss': {2.0 / i:.4f}, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': {i / 40:.3f}}}\n")
        if i % 10 == 0:
            lines.append(every_tenth(i))
        lines.append(f"\r {i * 2}%|##| {i}/40 [00:0{i % 10}<00:10,  2.00it/s]")
    return "".join(lines).encode()


def test_a_carry_longer_than_the_slack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dict line cut at a read's end, longer than the room kept for it: the buffer grows, nothing is lost."""
    long_key = "eval_" + "x" * 300
    p = tmp_path / "train.log"
    p.write_bytes(_trainer_log(lambda i: f"{{'eval_loss': {1.0 + 1 / i:.4f}, '{long_key}': 1.0, 'epoch': {i / 40:.3f}}}\n"))
    ref = _outcome(p)
    assert not isinstance(ref, tuple) and _points(ref[0], "eval_loss") == 4
    monkeypatch.setattr(hf_stdout, "_SLACK", 8)
    for chunk in (50, 97, 256):
        monkeypatch.setattr(hf_stdout, "CHUNK", chunk)
        assert _outcome(p) == ref, chunk


def test_gzip_and_streams_without_readinto(bench_log: Path, tmp_path: Path) -> None:
    data = bench_log.read_bytes()
    ref = _outcome(bench_log)
    gz = tmp_path / "train.log.gz"
    gz.write_bytes(gzip.compress(data, compresslevel=1))
    got = snapshot(read_all(gz))
    for run in got:  # the same points; only the source path differs
        run["sources"] = ref[0]["sources"]
    assert got == ref

    class ReadOnly(io.RawIOBase):  # a stream with read() and short reads, but no readinto
        def __init__(self, b: bytes) -> None:
            self._b, self._i = b, 0

        def read(self, n: int = -1) -> bytes:
            k = min(n if n >= 0 else len(self._b), 1 + self._i % 70_001)
            out = self._b[self._i : self._i + k]
            self._i += len(out)
            return out

    stream = ReadOnly(data)
    stream.readinto = None  # type: ignore[method-assign,assignment]
    parser = StreamParser()
    parser.feed_file(stream)  # type: ignore[arg-type]
    assert snapshot(parser.runs(name="train", source=str(bench_log))) == ref


def _save_log() -> bytes:
    return _trainer_log(lambda i: f"{{'eval_loss': {1.0 + 1 / i:.4f}, 'epoch': {i / 40:.3f}}}\n"
                                  f"[INFO|trainer.py:3984] >> Saving model checkpoint to out/run-7/checkpoint-{i * 50}\n")


def test_a_save_line_cut_by_a_chunk_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut inside 'checkpoint-2000', a save line once gave a checkpoint-200 that never existed; now every cut reads it whole."""
    data = _save_log()

    def saves(chunk: int) -> dict:
        p = StreamParser()
        for i in range(0, len(data), chunk):
            p.feed_bytes(data[i : i + chunk])
        p.feed_bytes(b"", final=True)
        return dict(p._saves)

    whole = saves(len(data) + 1)
    assert sorted(whole) == [500, 1000, 1500, 2000]
    for chunk in (1, 2, 3, *range(5, 130, 3), 257, 1000, 4095):  # a line spans up to 90 chunks; each is cut everywhere
        assert saves(chunk) == whole, chunk  # steps, byte offsets and paths
    p = tmp_path / "train.log"
    p.write_bytes(data)
    ref = read_all(p)[0].checkpoints
    assert sorted(ref) == [500, 1000, 1500, 2000]
    for chunk in (61, 97, 1000):  # the file path: reads into a reused buffer
        monkeypatch.setattr(hf_stdout, "CHUNK", chunk)
        assert read_all(p)[0].checkpoints == ref, chunk
