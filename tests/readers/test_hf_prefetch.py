"""A big HF log read ahead on another core (``_speedups.HFPrefetch``) gives the Runs a plain read gives.

``trainguard analyze big.log`` starts reading the log on a thread that holds
no GIL while the interpreter is still importing numpy and the diagnosis
(issue 14). The reader then takes what that thread read and goes on from
where it stopped. A user relies on the result being the same, bit for bit,
wherever the thread stopped: after any number of bytes, at a chunk it leaves
to the Python parsers, on a number only Python's parser reads exactly, on a
save line cut by its buffer, and when the file grew after it stopped. Each
test here hands a file to a prefetch that stops at a chosen point, then
reads it with ``read_all`` and compares with reading it without one.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from tests.readers.speedups_support import snapshot
from tests.readers.test_hf_scan_speedups import _bench_module, _dict_logs, _plain_log, _random_log
from trainguard import _compiled, _prefetch
from trainguard.cli import app
from trainguard.readers import hf_stdout
from trainguard.readers.hf_stdout import read_all

sp = _compiled.load()
needs_c = pytest.mark.skipif(sp is None or not hasattr(sp, "HFPrefetch"),
                             reason="trainguard._speedups not built, switched off, or without threads here")


def _outcome(path: Path) -> object:
    try:
        return snapshot(read_all(path))
    except Exception as e:  # the same error either way is the point
        return (type(e).__name__, str(e))


def _prefetched(path: Path, chunk: int, limit: int = -1) -> tuple[object, str]:
    """``read_all(path)`` after a prefetch with ``chunk``-byte reads ran until it stopped by itself; and why it stopped."""
    fd = os.open(path, os.O_RDONLY)
    try:
        h = _Waited(sp.HFPrefetch(fd, chunk, hf_stdout._CONTEXT, _prefetch.SAVE_HEAD, limit=limit))
    finally:
        os.close(fd)
    st = os.stat(path)
    _prefetch._running[(st.st_dev, st.st_ino)] = h
    try:
        out = _outcome(path)
    finally:
        _prefetch._running.clear()
    assert h.why or isinstance(out, tuple), path  # the reader took it (an error may come before)
    return out, h.why


class _Waited:
    """A prefetch whose ``take`` lets the thread run until it stops by itself (at its limit, the end, a chunk it leaves)."""

    def __init__(self, h: object) -> None:
        self.h, self.why = h, ""

    def take(self, *args: object) -> tuple:
        early = self.h.take(*args, wait=True)  # type: ignore[attr-defined]
        self.why = early[-1]
        return early

    def cancel(self) -> None:
        self.h.cancel()  # type: ignore[attr-defined]


class _Grown(_Waited):
    """A prefetch that read a file to its end, after which the file grew by ``more``."""

    def __init__(self, h: object, path: Path, more: bytes) -> None:
        super().__init__(h)
        self.path, self.more = path, more

    def take(self, *args: object) -> tuple:
        self.early = super().take(*args)
        with open(self.path, "ab") as f:
            f.write(self.more)
        return self.early


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("prefetch") / "train.log"
    _bench_module().write_log(p, 1.5, seed=5)
    return p


@needs_c
def test_stopping_anywhere_reads_the_same(bench_log: Path) -> None:
    ref = _outcome(bench_log)
    size = bench_log.stat().st_size
    rng = random.Random(4)
    for chunk, limit in [(4 << 20, -1), (_prefetch.THREAD_CHUNK, -1), (65536, -1), (4096, 0), (4096, 1), (777, 5000)] + [
        (rng.randint(100, 70_000), rng.randint(0, size)) for _ in range(12)
    ]:
        got, why = _prefetched(bench_log, chunk, limit)
        assert got == ref, (chunk, limit, why)
        assert why in ("end of file", "limit"), why


@needs_c
def test_fixture_and_real_logs_read_the_same() -> None:
    logs = _dict_logs()
    assert logs
    rng = random.Random(8)
    for log in logs:
        ref = _outcome(log)
        size = log.stat().st_size
        for chunk, limit in ((4 << 20, -1), (rng.randint(64, 9000), rng.randint(0, size))):
            assert _prefetched(log, chunk, limit)[0] == ref, (log, chunk, limit)


@needs_c
def test_random_logs_read_the_same(tmp_path: Path) -> None:
    """Plain logs (the thread reads them) and logs of every odd piece (it leaves those to Python) alike."""
    rng = random.Random(21)
    whys: set[str] = set()
    p = tmp_path / "x.log"
    for k in range(160):
        data = _plain_log(rng) if k % 2 else _random_log(rng)
        p.write_bytes(data)
        ref = _outcome(p)
        for chunk in (rng.randint(1, 300), rng.randint(300, 6000)):
            got, why = _prefetched(p, chunk, rng.choice((-1, rng.randint(0, len(data) + 1))))
            assert got == ref, (data, chunk)
            whys.add(why)
    assert {"end of file", "limit", "a chunk the Python parsers read"} <= whys, whys


@needs_c
def test_numbers_only_pythons_parser_reads_exactly(tmp_path: Path) -> None:
    """17 significant digits (transformers 4.x prints learning rates so), subnormals, huge and overflowing values."""
    values = ["1.9999999999999998e-05", "2.9999999999999997e-05", "0.30000000000000004", "1e-320", "4.9e-324",
              "123456789012345678901234567890.5", "1.7976931348623157e308", "9.999999999999999e299", "1e999",
              "-0.0", "0.1", "12345678901234567890", "1e23", "8.98846567431158e307"]
    rng = random.Random(2)
    lines = []
    for i in range(1, 400):
        v = rng.choice(values)
        v = f"'{v}'" if rng.random() < 0.5 else v
        lines.append(f"{{'loss': {v}, 'learning_rate': {rng.choice(values)}, 'epoch': {i / 100}}}\n"
                     f"\r {i % 100}%|##| {i}/400 [00:01<00:02]")
    p = tmp_path / "n.log"
    p.write_text("".join(lines))
    ref = _outcome(p)
    assert not isinstance(ref, tuple)
    for chunk in (50, 999, 4 << 20):
        assert _prefetched(p, chunk)[0] == ref, chunk
    # only numbers the thread leaves to Python's parser, each surely finite: it reads every chunk
    deferred = ["1.9999999999999998e-05", "0.30000000000000004", "1e-320", "4.9e-324", "123456789012345678901234567890.5",
                "9.999999999999999e299", "0.1"]
    p.write_text("".join(f"{{'loss': {rng.choice(deferred)}, 'learning_rate': '{rng.choice(deferred)}', 'epoch': {i / 100}}}\n"
                         f"\r {i % 100}%|##| {i}/400 [00:01<00:02]" for i in range(1, 400)))
    ref = _outcome(p)
    for chunk in (50, 4 << 20):
        got, why = _prefetched(p, chunk)
        assert (got, why) == (ref, "end of file"), chunk


@needs_c
def test_save_lines_cut_anywhere(tmp_path: Path) -> None:
    lines = []
    for i in range(1, 41):
        lines.append(f"{{'loss': {2 - i / 40:.4f}, 'epoch': {i / 40:.3f}}}\n\r {i}%|#| {i}/40 [00:01<00:02]\n")
        if i % 10 == 0:
            lines.append(f"{{'eval_loss': {1 + 1 / i:.4f}, 'epoch': {i / 40:.3f}}}\n"
                         f"[INFO|trainer.py:3984] >> Saving model checkpoint to out/run-7/checkpoint-{i * 50}\n")
    p = tmp_path / "s.log"
    p.write_text("".join(lines))
    ref = _outcome(p)
    assert sorted(read_all(p)[0].checkpoints) == [500, 1000, 1500, 2000]
    for chunk in (*range(1, 140, 3), 257, 1000):
        for limit in (-1, chunk * 7 + 3):
            assert _prefetched(p, chunk, limit)[0] == ref, (chunk, limit)
    # the last line unfinished, after a bar: the thread has gone past its start, the carry holds only its end
    p.write_text("".join(lines) + "{'loss': 0.5, 'epoch': 1.01}\n\r 9%|#| 41/40 [00:01<00:02]\n"
                 "Saving model checkpoint to out/run-7/checkpoint-2050")
    ref = _outcome(p)
    assert 2050 in read_all(p)[0].checkpoints
    for chunk in (1000, 4 << 20):
        assert _prefetched(p, chunk)[0] == ref, chunk


@needs_c
def test_a_file_that_grew_after_the_thread_stopped(tmp_path: Path, bench_log: Path) -> None:
    """A live log: what was appended after the thread read to its end is read by the parser."""
    data = bench_log.read_bytes()
    whole = tmp_path / "whole.log"
    whole.write_bytes(data)
    ref = _outcome(whole)
    p = tmp_path / "grows.log"
    half = len(data) // 2
    p.write_bytes(data[:half])
    fd = os.open(p, os.O_RDONLY)
    h = _Grown(sp.HFPrefetch(fd, 8192, hf_stdout._CONTEXT, _prefetch.SAVE_HEAD), p, data[half:])
    os.close(fd)
    st = os.stat(p)
    _prefetch._running[(st.st_dev, st.st_ino)] = h
    try:
        got = snapshot(read_all(p))
    finally:
        _prefetch._running.clear()
    assert h.early[-1] == "end of file" and h.early[6] == half
    for a, b in zip(got, ref, strict=True):  # the name and source are the file's
        assert {k: v for k, v in a.items() if k not in ("name", "sources")} == {k: v for k, v in b.items() if k not in ("name", "sources")}


@needs_c
def test_start_takes_only_big_trainer_logs(tmp_path: Path, bench_log: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("step,loss\n" + "".join(f"{i},{1 / i}\n" for i in range(1, 3000)))
    gz = tmp_path / "t.log.gz"
    gz.write_bytes(gzip.compress(bench_log.read_bytes()))
    try:
        assert _prefetch.start([str(csv), str(gz), str(tmp_path / "missing.log"), str(tmp_path), "-"], min_bytes=0) == 0
        assert _prefetch.start([str(bench_log)]) == 0  # under MIN_BYTES
        assert _prefetch.start([str(bench_log), str(bench_log)], min_bytes=0) == 1
        copies = [tmp_path / f"copy{i}.log" for i in range(3)]
        for c in copies:
            c.write_bytes(bench_log.read_bytes())
        assert _prefetch.start([str(c) for c in copies], min_bytes=0) == 1  # compare's many logs: two at once, not one each
        assert len(_prefetch._running) == _prefetch.MAX_RUNNING == 2
        with open(gz, "rb") as f:
            assert _prefetch.claim(f) is None  # another file
        with gzip.open(gz, "rb") as f:
            assert _prefetch.claim(f) is None
        with open(bench_log, "rb") as f:
            f.read(1)
            assert _prefetch.claim(f) is None  # not from its start
            f.seek(0)
            assert _prefetch.claim(f) is not None
            assert _prefetch.claim(f) is None  # claimed once
    finally:
        _prefetch.cancel()
    assert not _prefetch._running


@needs_c
def test_a_prefetch_nobody_takes_is_stopped_and_freed(bench_log: Path) -> None:
    for wait in (False, True):
        fd = os.open(bench_log, os.O_RDONLY)
        h = sp.HFPrefetch(fd, 1024, 16, _prefetch.SAVE_HEAD)
        os.close(fd)  # the thread reads its own duplicate
        if wait:
            h.cancel()
            assert h.take(lambda k: (0, 0, False), b"\x00\x01", 1) is None
        del h  # joins a running thread: no crash, no leaked descriptor
    with pytest.raises(ValueError):
        sp.HFPrefetch(0, 0, 16, _prefetch.SAVE_HEAD)
    with pytest.raises(OSError):
        sp.HFPrefetch(10_000, 1024, 16, _prefetch.SAVE_HEAD)


def test_without_the_extension_or_when_switched_off_nothing_starts(bench_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINGUARD_NO_PREFETCH", "1")
    assert _prefetch.start([str(bench_log)], min_bytes=0) == 0
    monkeypatch.delenv("TRAINGUARD_NO_PREFETCH")
    monkeypatch.setattr(_compiled, "speedups", None)
    assert _prefetch.start([str(bench_log)], min_bytes=0) == 0


@needs_c
def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until someone writes: ``analyze`` would hang before saying anything."""
    import threading

    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(_prefetch.start([str(fifo)], min_bytes=0)), daemon=True)
    t.start()
    t.join(10)
    assert got == [0]


@needs_c
@pytest.mark.parametrize("command", ["analyze", "compare"])
def test_the_commands_read_big_logs_ahead_and_report_the_same(command: str, bench_log: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(bench_log)]
    if command == "compare":
        paths.append(str(tmp_path / "other.log"))
        _bench_module().write_log(Path(paths[1]), 0.6, seed=9)

    def run() -> dict:
        with pytest.raises(SystemExit):
            app([command, "--json", *paths])
        return json.loads(capsys.readouterr().out)

    claimed: list[object] = []
    real_claim = _prefetch.claim
    monkeypatch.setattr(_prefetch, "claim", lambda f: claimed.append(r := real_claim(f)) or r)
    monkeypatch.setattr(_prefetch, "MIN_BYTES", 0)
    ahead = run()
    assert sum(c is not None for c in claimed) == len(paths) and not _prefetch._running  # each read ahead, none left running
    claimed.clear()
    monkeypatch.setattr(_prefetch, "MIN_BYTES", 1 << 60)
    assert run() == ahead
    assert claimed and not any(claimed)


@needs_c
def test_a_file_cut_short_after_the_thread_read_it(tmp_path: Path, bench_log: Path) -> None:
    """A log rewritten in place: what the thread read is gone, so the reader reads the file as it now is."""
    data = bench_log.read_bytes()
    p = tmp_path / "cut.log"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    h = sp.HFPrefetch(fd, 8192, hf_stdout._CONTEXT, _prefetch.SAVE_HEAD)
    os.close(fd)

    class Cut(_Waited):
        def take(self, *args: object) -> tuple:
            early = super().take(*args)
            with open(p, "r+b") as f:
                f.truncate(len(data) // 3)
            return early

    ref_file = tmp_path / "ref.log"
    ref_file.write_bytes(data[: len(data) // 3])
    ref = _outcome(ref_file)
    st = os.stat(p)
    _prefetch._running[(st.st_dev, st.st_ino)] = Cut(h)
    try:
        got = _outcome(p)
    finally:
        _prefetch._running.clear()
    assert [{k: v for k, v in r.items() if k not in ("name", "sources")} for r in got] == \
        [{k: v for k, v in r.items() if k not in ("name", "sources")} for r in ref]


@needs_c
def test_the_head_is_read_where_the_system_has_no_preadv(bench_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner facts (GPUs, launcher) come from the first 8 MB, read back by ``os.preadv``, or ``os.pread`` without it."""
    ref, _ = _prefetched(bench_log, 4096)
    monkeypatch.delattr(os, "preadv", raising=False)
    assert _prefetched(bench_log, 4096)[0] == ref
