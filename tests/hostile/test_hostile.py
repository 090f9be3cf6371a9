"""Hostile inputs through the real CLI: each ends by itself, with one error line or a result, never a verdict on garbage.

Every case runs ``python -m trainguard.cli`` in a subprocess under a timeout
(a hang fails the test instead of stalling the suite), with an address-space
limit where memory was the failure (``/dev/zero``, an alias bomb, a gzip
bomb). A refused input must give exit 2, exactly one stderr line
``error: <file>: <what>`` naming the file, no traceback and no "internal error".
Permission cases drop the two capabilities that let root ignore file modes
(so they also run in a root container).
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_LOG = "".join(f"{{'loss': {2.0 - i * 0.01:.3f}, 'learning_rate': 0.0001, 'epoch': {i / 10:.2f}}}\n" for i in range(1, 30))
MB = 1024 * 1024


def _limits(mem_mb: int | None, drop_dac: bool) -> Callable[[], None] | None:
    if mem_mb is None and not drop_dac:
        return None

    def pre() -> None:
        if mem_mb is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (mem_mb * MB, mem_mb * MB))
        if drop_dac and os.geteuid() == 0:  # root reads mode-000 files unless these capabilities go
            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH; PR_CAPBSET_DROP = 24
                libc.prctl(24, cap, 0, 0, 0)

    return pre


def tg(*args: str, cwd: Path, stdin: object = None, timeout: float = 30, mem_mb: int | None = None,
       env: dict[str, str] | None = None, drop_dac: bool = False) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a subprocess: bytes out, so escape sequences are checked byte for byte."""
    full = {**os.environ, "TRAINGUARD_DEBUG": "", "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-m", "trainguard.cli", *args], cwd=cwd, stdin=stdin or subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=full, preexec_fn=_limits(mem_mb, drop_dac))


def one_line_error(res: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    err = res.stderr.decode("utf-8", "replace")
    out = res.stdout.decode("utf-8", "replace")
    assert res.returncode == 2, (res.returncode, out[-500:], err[-1500:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-1500:]
    assert "Traceback" not in err + out and "internal error" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def no_crash(res: subprocess.CompletedProcess[bytes]) -> str:
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode in (0, 1), (res.returncode, err[-1500:])
    assert "Traceback" not in err and "internal error" not in err
    return res.stdout.decode("utf-8", "replace")


@pytest.fixture
def d(tmp_path: Path) -> Path:
    (tmp_path / "good.log").write_text(GOOD_LOG)
    return tmp_path


def _state(folder: Path, history: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "trainer_state.json"
    p.write_text(json.dumps({"log_history": history, "global_step": 10, "max_steps": 10}))
    return p


# -- hangs ----------------------------------------------------------------------------------


def test_fifo_nobody_writes_to(d: Path) -> None:
    os.mkfifo(d / "pipe.log")
    one_line_error(tg("analyze", "pipe.log", cwd=d, timeout=20), "pipe.log:", "FIFO")


def test_fifo_fed_once(d: Path) -> None:
    os.mkfifo(d / "pipe.log")
    writer = subprocess.Popen(["sh", "-c", "cat good.log > pipe.log"], cwd=d)
    try:
        one_line_error(tg("analyze", "pipe.log", cwd=d, timeout=20), "pipe.log:", "FIFO")
    finally:
        writer.kill()
        writer.wait()


def test_compare_with_a_silent_fifo(d: Path) -> None:
    os.mkfifo(d / "pipe.log")
    one_line_error(tg("compare", "good.log", "pipe.log", cwd=d, timeout=20), "pipe.log:", "FIFO")


def test_dev_zero_as_stdin_and_as_a_path(d: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        one_line_error(tg("analyze", "-", cwd=d, stdin=zero, timeout=20, mem_mb=1500), "stdin:", "binary")
    one_line_error(tg("analyze", "/dev/zero", cwd=d, timeout=20, mem_mb=1500), "/dev/zero:", "device")


def test_stdin_over_the_cap_is_refused_and_its_spool_file_removed(d: Path) -> None:
    spool = d / "tmp"
    spool.mkdir()
    big = d / "big.log"
    big.write_text(GOOD_LOG * 30_000)  # ~2.5 MB
    with open(big, "rb") as f:
        res = tg("analyze", "-", cwd=d, stdin=f, env={"TRAINGUARD_STDIN_MAX_MB": "1", "TMPDIR": str(spool)})
    one_line_error(res, "stdin:", "more than 1 MiB")
    assert list(spool.iterdir()) == []


def test_sigterm_while_spooling_stdin_removes_the_spool_file(d: Path) -> None:
    spool = d / "tmp"
    spool.mkdir()
    env = {**os.environ, "TMPDIR": str(spool), "TRAINGUARD_DEBUG": ""}
    p = subprocess.Popen([sys.executable, "-m", "trainguard.cli", "analyze", "-"], cwd=d, env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdin is not None
        p.stdin.write(GOOD_LOG.encode())
        p.stdin.flush()
        deadline = time.monotonic() + 20
        while not list(spool.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(spool.iterdir()), "the stdin spool file never appeared"
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 143 and b"Traceback" not in err
    assert list(spool.iterdir()) == []


def test_yaml_billion_laughs(d: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (d / "laughs.yaml").write_text("\n".join(lines) + "\nlearning_rate: 0.0001\n")
    one_line_error(tg("lint", "laughs.yaml", cwd=d, timeout=20, mem_mb=1500), "laughs.yaml:", "alias")
    one_line_error(tg("train", "laughs.yaml", cwd=d, timeout=20, mem_mb=1500), "laughs.yaml:", "alias")


# -- one-line errors, not "internal error" ---------------------------------------------------------


@pytest.mark.parametrize("what", ["file", "folder", "config", "output", "html"])
def test_permission_denied(d: Path, what: str) -> None:
    locked = d / "locked"
    locked.mkdir()
    (locked / "trainer_state.json").write_text("{}")
    secret = d / "secret.log"
    secret.write_text(GOOD_LOG)
    for p in (secret, locked):
        p.chmod(0)
    try:
        args = {"file": ["analyze", "secret.log"], "folder": ["analyze", "locked"],
                "config": ["analyze", "good.log", "--config", "secret.log"],
                "output": ["analyze", "good.log", "-o", "locked/report.md"],
                "html": ["analyze", "good.log", "--html", "locked/report.html"]}[what]
        line = one_line_error(tg(*args, cwd=d, drop_dac=True))
        assert "secret.log:" in line or "locked" in line, line
        assert "permission denied" in line.lower()
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)


def test_lint_config_permission_denied(d: Path) -> None:
    cfg = d / "args.json"
    cfg.write_text("{}")
    cfg.chmod(0)
    one_line_error(tg("lint", "args.json", cwd=d, drop_dac=True), "args.json:", "ermission denied")


def test_nesting_100k_deep(d: Path) -> None:
    _state(d / "deep", [])
    (d / "deep" / "trainer_state.json").write_text('{"log_history": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line_error(tg("analyze", "deep/trainer_state.json", cwd=d), "trainer_state.json:", "too deeply nested")
    (d / "deep.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line_error(tg("lint", "deep.json", cwd=d), "deep.json:", "too deeply nested")
    (d / "deep.yaml").write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(tg("lint", "deep.yaml", cwd=d), "deep.yaml:", "too deeply nested")


def test_absurd_numbers_say_which_value(d: Path) -> None:
    (d / "digits.json").write_text('{"learning_rate": 0.0001, "max_steps": ' + "9" * 5000 + "}")
    one_line_error(tg("lint", "digits.json", cwd=d), "digits.json:", "out of range", "5,000 digits")
    (d / "digits.yaml").write_text("model: tiny\ndata: good.log\nmax_steps: " + "9" * 5000 + "\n")
    one_line_error(tg("train", "digits.yaml", cwd=d), "digits.yaml:", "line 3", "out of range")
    (d / "steps.yaml").write_text("model: tiny\ndata: good.log\nmax_steps: 1.0e+30\n")
    one_line_error(tg("train", "steps.yaml", cwd=d), "steps.yaml:", "max_steps")


# -- invalid input gets no verdict ---------------------------------------------------------------


@pytest.mark.parametrize("history", [[], [{"loss": 1.0, "step": None}] * 3, [{"loss": 1.0, "step": True}] * 3,
                                     [{"loss": 1.0, "step": "ten"}] * 3], ids=["empty", "null", "bool", "string"])
def test_no_usable_points_is_refused(d: Path, history: list[dict]) -> None:
    _state(d / "run", history)
    one_line_error(tg("analyze", "run/trainer_state.json", cwd=d), "trainer_state.json:", "no usable metric points")
    one_line_error(tg("compare", "run/trainer_state.json", "good.log", cwd=d), "no usable metric points")


def test_some_invalid_points_are_dropped_and_counted(d: Path) -> None:
    good = [{"loss": 2.0 - i / 10, "step": i * 10, "epoch": i / 10} for i in range(1, 8)]
    _state(d / "run", [{"loss": 1.0, "step": None}, {"loss": 1.0, "step": "x"}, *good])
    out = no_crash(tg("analyze", "run/trainer_state.json", cwd=d))
    assert "2 log_history entries without a step" in out


def test_a_step_past_a_64_bit_counter_drops_its_entry_not_the_log(d: Path) -> None:
    """One corrupt step (1e30, or a 24-digit counter) in a log of good ones: that entry is dropped and said so."""
    good = [{"loss": 2.0 - i / 50, "step": i * 10, "epoch": i / 10} for i in range(1, 30)]
    bad = [dict(g, step=1e30) if i == 5 else g for i, g in enumerate(good)]
    _state(d / "s30", bad)
    (d / "m.jsonl").write_text("".join(json.dumps(dict(g, step=10**23) if i == 5 else g) + "\n" for i, g in enumerate(good)))
    (d / "t.log").write_text("".join(f"step {10**23 if i == 5 else g['step']} loss {g['loss']:.3f}\n"
                                     for i, g in enumerate(good)))
    (d / "m.csv").write_text("step,loss\n" + "".join(f"{'1e30' if i == 5 else g['step']},{g['loss']}\n"
                                                       for i, g in enumerate(good)))
    for f in ("s30/trainer_state.json", "m.jsonl", "t.log", "m.csv"):
        res = tg("analyze", f, "--json", cwd=d)
        assert res.returncode in (0, 1), (f, res.stderr)
        rep = json.loads(res.stdout)
        assert any("past a 64-bit counter" in n for n in rep["run_info"]["notes"]), (f, rep["run_info"])
        assert rep["metrics"]["train_loss"]["points"] == 28, f


def _tb_event(tag: bytes, step: int, value: float) -> bytes:
    val = b"\x0a" + bytes([len(tag)]) + tag + b"\x15" + struct.pack("<f", value)
    summ = b"\x0a" + bytes([len(val)]) + val
    return b"\x09" + struct.pack("<d", 1.7e9 + step) + b"\x10" + bytes([step]) + b"\x2a" + bytes([len(summ)]) + summ


def test_tensorboard_corrupt_record_is_dropped_not_believed(d: Path) -> None:
    from trainguard.readers._tfrecord import frame

    records = [frame(b"\x09" + struct.pack("<d", 1.7e9) + b"\x1a\x0dbrain.Event:2")]
    records += [frame(_tb_event(b"eval/loss", s, 2.0 - s / 100)) for s in range(1, 40)]
    data = bytearray(b"".join(records))
    data[-6] ^= 0x40  # a bit of the last value: it reads as a tiny "best" loss unless the checksum is checked
    (d / "tb").mkdir()
    (d / "tb" / "events.out.tfevents.1.host").write_bytes(bytes(data))
    out = no_crash(tg("analyze", "tb", "--json", cwd=d))
    doc = json.loads(out)
    assert doc["best"]["value"] > 1.5  # the flipped point is not the best
    assert any("1 corrupt record (checksum mismatch) dropped" in n for n in doc["run"]["notes"]) if isinstance(doc["run"], dict) \
        else "corrupt record" in out
    trunc = d / "trunc"
    trunc.mkdir()
    (trunc / "events.out.tfevents.2.host").write_bytes(bytes(b"".join(records))[:-30])
    no_crash(tg("analyze", "trunc", cwd=d))


def test_train_refuses_inf_lr_and_typos_before_loading(d: Path) -> None:
    (d / "inf.yaml").write_text("model: tiny\ndata: good.log\nlearning_rate: .inf\n")
    one_line_error(tg("train", "inf.yaml", cwd=d), "learning_rate", "finite")
    (d / "ok.yaml").write_text("model: tiny\ndata: good.log\n")
    one_line_error(tg("train", "ok.yaml", cwd=d, env={"TRAINGUARD_LORA_RANK": "8"}), "TRAINGUARD_LORA_RANK", "TRAINGUARD_LORA_R?")
    one_line_error(tg("train", "ok.yaml", "--set", "lora_rank=8", cwd=d), "did you mean `lora_r`?")


# -- escape sequences stay inert -----------------------------------------------------------------------


def test_escape_sequences_never_reach_the_terminal(d: Path) -> None:
    osc_title = "\x1b]0;owned"  # unterminated OSC 0: rewrites the window title
    link = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    evil_dir = d / f"run{osc_title}"
    evil_dir.mkdir()
    lines = [json.dumps({"step": i, f"loss\x1b[31m{link}": 2.0 - i / 100, "eval_loss": 2.1 - i / 200}) for i in range(1, 30)]
    (evil_dir / f"log\x1b[2J{link.replace('/', '')}.jsonl").write_text("\n".join(lines) + "\n")  # no "/" in a name
    for args in (["analyze", str(evil_dir)], ["analyze", str(evil_dir), "--format", "md"],
                 ["analyze", f"missing\x1b]0;x{link.replace('/', '')}.log"], ["compare", str(evil_dir), str(evil_dir)]):
        res = tg(*args, cwd=d)
        assert res.returncode in (0, 1, 2) and b"Traceback" not in res.stderr, res.stderr[-800:]
        out, err = res.stdout.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")
        for stream in (out, err):
            assert not any(c in stream for c in "\x1b\x9b\x9d\x07"), stream[-600:]  # ESC, CSI, OSC, BEL
        # what the sequences said is still there, as text a person can read
        assert "\\x1b]" in (out if res.returncode != 2 else err)


# -- inputs that should be read ---------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_logs_are_read(d: Path, codec: str) -> None:
    (d / "wide.log").write_bytes(GOOD_LOG.encode(codec))
    out = no_crash(tg("analyze", "wide.log", "--json", cwd=d))
    assert json.loads(out)["metrics"]["train_loss"]["points"] == 29


# -- the cases that already passed, kept passing --------------------------------------------------------


def test_empty_truncated_and_binary_files(d: Path) -> None:
    (d / "empty.log").write_text("")
    one_line_error(tg("analyze", "empty.log", cwd=d), "empty.log:", "empty")
    _state(d / "trunc", [{"loss": 1.0, "step": 1}])
    p = d / "trunc" / "trainer_state.json"
    p.write_text(p.read_text()[:-7])
    one_line_error(tg("analyze", "trunc/trainer_state.json", cwd=d), "trainer_state.json:", "JSON")
    (d / "blob.log").write_bytes(os.urandom(4096) + b"\x00" * 64)
    one_line_error(tg("analyze", "blob.log", cwd=d), "blob.log:", "binary")


def test_gzip_bomb(d: Path) -> None:
    with gzip.open(d / "bomb.log.gz", "wb", compresslevel=9) as f:
        for _ in range(200):  # 200 MB of zeros in ~200 KB
            f.write(b"\x00" * MB)
    one_line_error(tg("analyze", "bomb.log.gz", cwd=d, mem_mb=1500, timeout=30), "bomb.log.gz:", "binary")


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_in_a_run_folder_is_never_loaded(d: Path) -> None:
    marker = d / "PWNED"
    run = d / "out"
    _state(run, [{"loss": 2.0 - i / 10, "step": i * 10} for i in range(1, 8)])
    (run / "training_args.bin").write_bytes(pickle.dumps(_Boom(str(marker))))
    no_crash(tg("analyze", "out", cwd=d))
    one_line_error(tg("analyze", "out/training_args.bin", cwd=d), "training_args.bin:", "never loaded")
    assert not marker.exists()


def test_html_injection_from_the_log_stays_text(d: Path) -> None:
    evil = "<script>alert(1)</script>"
    lines = [json.dumps({"step": i, "loss": 2.0 - i / 100, f"eval_{evil}": 1.0 + i / 100}) for i in range(1, 30)]
    (d / "x.jsonl").write_text("\n".join(lines) + "\n")
    no_crash(tg("analyze", "x.jsonl", "--html", "r.html", cwd=d, timeout=60))
    html = (d / "r.html").read_text()
    assert evil not in html and "&lt;script&gt;alert(1)" in html


def test_help_shows_whole_defaults_when_piped(d: Path) -> None:
    for cmd in ("run", "watch", "analyze", "train"):
        res = tg(cmd, "--help", cwd=d, env={"COLUMNS": ""})
        out = res.stdout.decode("utf-8", "replace")
        assert res.returncode == 0 and "Usage" in out
        assert "…" not in out, out  # rich's ellipsis: a default or help text cut at 80 columns
