"""``trainguard watch FILE``: follows a growing log through truncation and rotation, ends with the run."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from trainguard.cli import app
from trainguard.live.guard import Guard
from trainguard.live.policy import Policy
from trainguard.live.watch import Follower, watch_file

LOG = Path(__file__).parent / "data" / "hf_overfit_stdout.log"  # genuine HF Trainer stdout, 40 evals
REPLAY = Path(__file__).parent / "scripts" / "replay_log.py"


def _pieces(data: bytes, n: int) -> list[bytes]:
    """``data`` cut into ``n`` parts at line ends, so a truncation never splits a line."""
    cuts = [0]
    for k in range(1, n):
        i = data.index(b"\n", len(data) * k // n) + 1
        cuts.append(i)
    cuts.append(len(data))
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


def test_follower_survives_truncation_and_rotation(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    f = Follower(p)
    assert f.read() == []  # not there yet: wait, no error
    p.write_bytes(b"one\ntwo\n")
    assert b"".join(d for _, d in f.read()) == b"one\ntwo\n"
    with open(p, "ab") as w:
        w.write(b"three\n")
    assert b"".join(d for _, d in f.read()) == b"three\n"
    p.write_bytes(b"new\n")  # truncated and rewritten (logrotate copytruncate, or a restarted job)
    got = f.read()
    assert ("truncated", b"") in got and b"".join(d for _, d in got) == b"new\n"
    with open(p, "ab") as w:
        w.write(b"last of old\n")
    p.rename(tmp_path / "train.log.1")  # rotated: rename, then a new file under the old name
    p.write_bytes(b"first of new\n")
    got = f.read()
    assert b"".join(d for _, d in got) == b"last of old\nfirst of new\n"  # the old file finished first
    assert f.events == ["opened", "truncated", "rotated"]
    f.close()


def test_from_end_skips_what_the_file_already_held(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(b"old\n")
    f = Follower(p, from_start=False)
    assert b"".join(d for _, d in f.read()) == b""
    with open(p, "ab") as w:
        w.write(b"new\n")
    assert b"".join(d for _, d in f.read()) == b"new\n"
    f.close()


def test_watch_follows_a_log_written_by_another_thread_through_truncation_and_rotation(tmp_path: Path) -> None:
    """A writer appends the real HF log in pieces, truncates it once and rotates it once; nothing is lost."""
    p = tmp_path / "train.log"
    a, b, c = _pieces(LOG.read_bytes(), 3)
    read_so_far: list[int] = []

    def wait_until_read(n: int) -> None:
        deadline = time.monotonic() + 30
        while (not read_so_far or read_so_far[-1] < n) and time.monotonic() < deadline:
            time.sleep(0.01)

    def writer() -> None:
        with open(p, "ab") as w:
            for line in a.splitlines(keepends=True):
                w.write(line)
                w.flush()
        wait_until_read(len(a))
        first, *rest = b.splitlines(keepends=True)
        with open(p, "wb") as w:  # truncation: the job reopened its log with "w"
            w.write(first)
            w.flush()
            # Tail-style followers see a truncation as "the file got shorter": wait until it was
            # noticed before the file grows past the old length again.
            wait_until_read(len(a) + len(first))
            for line in rest:
                w.write(line)
                w.flush()
        wait_until_read(len(a) + len(b))
        p.rename(tmp_path / "train.log.1")  # rotation
        with open(p, "ab") as w:
            for line in c.splitlines(keepends=True):
                w.write(line)
                w.flush()

    guard = Guard(Policy(alert_only=True))

    class Counting:
        """An echo target that tells the writer how far the watcher has read."""

        n = 0

        def write(self, data: bytes) -> None:
            Counting.n += len(data)
            read_so_far.append(Counting.n)

        def flush(self) -> None:
            pass

    t = threading.Thread(target=writer)
    t.start()
    r = watch_file(p, guard, poll_s=0.01, idle_timeout_s=60, echo=Counting())  # type: ignore[arg-type]
    t.join()
    assert r.reason == "ended"  # HF's train_runtime summary ends the run
    assert "truncated" in r.events and "rotated" in r.events
    assert r.bytes_read == len(a) + len(b) + len(c)
    ev = guard.run.eval_loss
    assert len(ev) == 40 and list(ev.steps) == list(range(20, 801, 20))  # every eval once, in order
    assert guard.best is not None and guard.best.step == 100


def test_watch_cli_signals_the_trainer_pid_on_stop_and_exits(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_bytes(LOG.read_bytes())
    trainer = subprocess.Popen(["sleep", "60"])  # stands in for a trainer we do not own
    try:
        res = CliRunner().invoke(app, ["watch", str(p), "--exit-on-stop", "--pid", str(trainer.pid), "--poll", "0.01",
                                       "--grace", "0.2"])
        assert res.exit_code == 1, res.output
        assert trainer.wait(timeout=10) == -signal.SIGINT
        assert "stop (overfitting)" in res.output and f"sent SIGINT to pid {trainer.pid}" in res.output
        assert res.output.count("stop (overfitting)") == 1  # announced once, however long the log goes on
        assert "the guard decided to stop" in res.output
        assert not (tmp_path / "train.log.trainguard-stop").exists()  # no request left to stop the next run
    finally:
        if trainer.poll() is None:
            trainer.kill()


def test_watch_cli_exits_on_idle_timeout_and_on_sigint(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    head = LOG.read_bytes()[:3000]
    p.write_bytes(head)
    res = CliRunner().invoke(app, ["watch", str(p), "--idle-timeout", "0.3", "--poll", "0.02"])
    assert res.exit_code == 0, res.output
    assert "no new output for 0.3 s" in res.output

    # SIGINT (Ctrl-C) ends the watch cleanly, with the diagnosis so far.
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    res = CliRunner().invoke(app, ["watch", str(p), "--poll", "0.02"])
    timer.join()
    assert res.exit_code == 0, res.output
    assert "interrupted" in res.output


def test_watch_cli_rejects_a_folder(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["watch", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output


def test_watch_pid_ends_a_job_that_ignores_sigint_and_exits_when_its_log_ends(tmp_path: Path) -> None:
    """No callback answers the stop file, SIGINT is ignored: SIGTERM ends it, and watch ends with it."""
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        job = subprocess.Popen([sys.executable, str(REPLAY), str(LOG), "--delay", "0.0005", "--ignore-sigint",
                                "--hold", "120"], stdout=out, stderr=subprocess.STDOUT)
    try:
        res = CliRunner().invoke(app, ["watch", str(log), "--pid", str(job.pid), "--grace", "0.5", "--poll", "0.02"])
        assert job.wait(timeout=30) == 143  # its SIGTERM handler ran: SIGINT was ignored, SIGTERM was not
        assert res.exit_code == 1, res.output
        assert "sent SIGINT" in res.output and "still running; sent SIGTERM" in res.output
        assert f"process {job.pid} exited" in res.output  # it did not wait for the idle limit
        assert log.read_bytes().endswith(b"got SIGTERM\n")
    finally:
        if job.poll() is None:
            job.kill()


def test_watch_ends_by_itself_on_a_silent_fifo_a_device_a_missing_or_deleted_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    res = CliRunner().invoke(app, ["watch", str(fifo), "--idle-timeout", "0.3", "--poll", "0.02"])
    assert res.exit_code == 0 and "no new output for 0.3 s" in res.output  # nobody writes: it never blocks in open
    res = CliRunner().invoke(app, ["watch", "/dev/zero", "--poll", "0.02"])
    assert res.exit_code == 2 and "not a log file" in res.output
    res = CliRunner().invoke(app, ["watch", str(tmp_path / "never.log"), "--idle-timeout", "0.3", "--poll", "0.02"])
    assert res.exit_code == 2 and "did not appear within 0.3 s" in res.output and "Traceback" not in res.output
    gone = tmp_path / "gone.log"
    gone.write_bytes(LOG.read_bytes()[:3000])
    timer = threading.Timer(0.3, gone.unlink)
    timer.start()
    r = watch_file(gone, Guard(Policy(alert_only=True)), poll_s=0.02, deleted_grace_s=0.3)
    timer.join()
    assert r.reason == "deleted"
    help_text = CliRunner().invoke(app, ["watch", "--help"], terminal_width=200).output
    assert "1800" in help_text and "idle" in help_text  # the default idle limit is stated


def test_a_line_without_end_is_held_only_up_to_the_cap() -> None:
    from trainguard.live.feed import MAX_LINE, LineFeed

    guard = Guard(Policy(alert_only=True))
    feed = LineFeed(guard)
    head = LOG.read_text()[:20000]
    feed.feed(head)
    for _ in range(8):  # 8 MB of NUL bytes with no newline, as from /dev/zero
        feed.feed("\0" * (1 << 20))
    assert feed.skipped_chars >= 8 * (1 << 20) - MAX_LINE
    before = guard.points
    feed.feed("\n{'loss': '2.5', 'grad_norm': '1.0', 'learning_rate': '0.001', 'epoch': '9.0'}\n")
    feed.close()  # the HF reader waits for the next progress-bar redraw to date a dict line: end the stream
    assert guard.points == before + 1  # parsing resumed at the next line


def test_watch_raises_the_stall_alarm_on_a_log_that_went_silent(tmp_path: Path) -> None:
    p = tmp_path / "train.log"
    p.write_text("".join(f"step {i} | loss {3.0 - 0.1 * i:.2f}\n" for i in range(1, 6)))
    res = CliRunner().invoke(app, ["watch", str(p), "--stall-floor", "0.3", "--stall-after", "3",
                                   "--idle-timeout", "2", "--poll", "0.02"])
    assert res.exit_code == 0, res.output
    assert "trainguard: stall: no output and no new step for" in res.output and "after step 5" in res.output
    assert "no new output for 2 s" in res.output  # the idle limit still ends the watch
