"""``trainguard run -- CMD``: stops real training cleanly, tees output unchanged, leaves no process behind."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainguard.live.guard import Guard
from trainguard.live.policy import Policy
from trainguard.live.process import group_alive, run_command
from trainguard.live.resources import ResourceMonitor

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
LOG = HERE / "data" / "hf_overfit_stdout.log"  # genuine HF Trainer stdout of the tiny overfit run
REPLAY = HERE / "scripts" / "replay_log.py"
OVERFIT = HERE / "scripts" / "overfit_script.py"
PY = sys.executable


def _cli(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PY, "-m", "trainguard.cli", *args], capture_output=True, timeout=timeout, cwd=ROOT, **kw)


def _pid(out: bytes) -> int:
    m = re.search(rb"PID (\d+)", out)
    assert m, out[:200]
    return int(m.group(1))


def _assert_group_gone(pgid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_output_is_teed_byte_for_byte_and_exit_code_propagates() -> None:
    out = io.BytesIO()
    guard = Guard(Policy(alert_only=True))
    r = run_command([PY, str(REPLAY), str(LOG), "--delay", "0", "--exit", "3"], guard, out=out, say=lambda s: None)
    data = out.getvalue()
    assert data == f"PID {_pid(data)}\n".encode() + LOG.read_bytes()  # tqdm \r, ANSI moves, all unchanged
    assert r.exit_code == 3 and r.returncode == 3 and not r.stopped and r.signals == []
    # ...and it was parsed live by the HF reader: 40 evals (every 20 of 800 steps), the minimum at step 100,
    # the planned steps from the tqdm bar.
    assert r.parser == "hf_stdout"
    assert len(guard.run.eval_loss) == 40 and list(guard.run.eval_loss.steps[:3]) == [20, 40, 60]
    assert guard.best is not None and guard.best.step == 100
    assert guard.run.planned_steps == 800


def test_stop_sends_sigint_to_the_group() -> None:
    guard = Guard()
    lines: list[str] = []
    out = io.BytesIO()
    monitor = ResourceMonitor(guard, min_interval_s=0.05)
    r = run_command([PY, str(REPLAY), str(LOG), "--delay", "0.003", "--hold", "30"], guard,
                    out=out, say=lines.append, grace_s=10, monitor=monitor)
    assert r.stopped and r.stop.stop and r.signals == ["SIGINT"]
    assert r.exit_code == 130 and r.returncode == -signal.SIGINT
    assert guard.best is not None and guard.best.step == 100
    assert r.stop.step > guard.best.step  # stopped after the best eval, never before it
    assert any("sending SIGINT" in s for s in lines)
    assert not group_alive(_pid(out.getvalue()))
    # step times came from the wall clock of the tqdm redraws (steps of the training bar, not the eval bar)
    st = guard.run.history.get_series("step_time")
    assert len(st) >= 1 and st.steps.max() <= r.stop.step + 20 and (st.values > 0).all()


def test_a_command_that_ignores_sigint_gets_sigterm_after_the_grace_period() -> None:
    out = io.BytesIO()
    r = run_command([PY, str(REPLAY), str(LOG), "--delay", "0.002", "--ignore-sigint", "--hold", "30"], Guard(),
                    out=out, say=lambda s: None, grace_s=0.5)
    assert r.signals == ["SIGINT", "SIGTERM"]
    assert b"got SIGTERM" in out.getvalue()
    assert r.exit_code == 143
    _assert_group_gone(_pid(out.getvalue()))


def test_leftover_processes_of_the_group_are_ended() -> None:
    """The script exits but leaves a child holding the pipe: trainguard must end it, not hang."""
    out = io.BytesIO()
    r = run_command([PY, str(REPLAY), str(LOG), "--delay", "0", "--spawn-sleeper"], Guard(Policy(alert_only=True)),
                    out=out, say=lambda s: None, grace_s=1)
    assert r.exit_code == 0 and r.leftovers == 1
    _assert_group_gone(_pid(out.getvalue()))


def test_our_sigint_is_forwarded_to_the_command() -> None:
    """Ctrl-C on trainguard reaches the command, which lives in its own session."""
    proc = subprocess.Popen([PY, "-m", "trainguard.cli", "run", "--alert-only", "--", PY, str(REPLAY), str(LOG),
                             "--delay", "0", "--hold", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    head = proc.stdout.read(len("PID 123456"))
    while b"\n" not in head:
        head += proc.stdout.read(1)
    # The PID line proves the child runs, and trainguard installs its handlers before starting it.
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-1000:]
    _assert_group_gone(_pid(head))


def test_exit_codes_for_missing_and_bad_commands(tmp_path: Path) -> None:
    assert _cli("run", "--", "no-such-command-xyz").returncode == 127
    p = _cli("run")
    assert p.returncode == 2
    bad = _cli("run", "--stop-on", "overfiting", "--", PY, "-c", "pass")
    assert bad.returncode == 2 and b"overfiting" in bad.stderr and b"Traceback" not in bad.stderr
    debug = _cli("run", "--stop-on", "overfiting", "--", PY, "-c", "pass", env={**os.environ, "TRAINGUARD_DEBUG": "1"})
    assert debug.returncode == 2 and b"Traceback" in debug.stderr  # debug shows the traceback, still exit 2, not 1
    empty = _cli("run", "--alert-only", "--")
    assert empty.returncode == 2 and b"Traceback" not in empty.stderr and b"internal error" not in empty.stderr
    assert empty.stderr.decode().strip().splitlines() == [
        "error: no command given after --; usage: trainguard run [OPTIONS] -- COMMAND [ARGS]..."]


def test_a_crash_is_reported_as_a_crash_never_healthy(tmp_path: Path) -> None:
    p = _cli("run", "--alert-only", "--report", str(tmp_path / "r.json"), "--", PY, str(REPLAY), str(LOG),
             "--delay", "0", "--exit", "3")
    assert p.returncode == 3
    err = p.stderr.decode()
    assert "trainguard: the command exited with code 3: crashed at step 800" in err
    assert "HEALTHY" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "critical" and report["findings"][0]["code"] == "crashed"
    advice = json.dumps(report.get("recommendations", []))
    assert "TrainguardCallback" not in advice and "trainguard run" not in advice  # it already ran under the guard
    assert "--config" not in json.dumps(report) and "--config" not in err  # run takes no --config


def test_a_daemon_that_left_the_group_is_adopted_and_ended() -> None:
    """A child that calls setsid escapes the group; as subreaper, trainguard adopts it and ends it."""
    out = io.BytesIO()
    r = run_command([PY, str(REPLAY), str(LOG), "--delay", "0", "--spawn-daemon"], Guard(Policy(alert_only=True)),
                    out=out, say=lambda s: None, grace_s=1)
    m = re.search(rb"DAEMON (\d+)", out.getvalue())
    assert m, out.getvalue()[:300]
    assert r.exit_code == 0 and r.adopted == 1
    with pytest.raises(ProcessLookupError):
        os.kill(int(m.group(1)), 0)


def test_a_stall_raises_the_alarm_and_stop_on_stall_ends_the_job(tmp_path: Path) -> None:
    """A job prints a few steps, then hangs: the alarm fires after the floor; with --stop-on stall it is ended."""
    script = tmp_path / "hang.py"
    script.write_text("import time\nfor i in range(1, 6):\n    print(f'step {i} | loss {3.0 - 0.1 * i}', flush=True)\n"
                      "    time.sleep(0.05)\ntime.sleep(float(__import__('sys').argv[1]))\nprint('woke up')\n")
    p = _cli("run", "--alert-only", "--stall-floor", "1", "--stall-after", "5", "--", PY, str(script), "6")
    err = p.stderr.decode()
    assert p.returncode == 0 and "stall: no output and no new step for" in err and "after step 5" in err
    assert b"woke up" in p.stdout  # alert only: the job ran on
    p = _cli("run", "--stop-on", "stall", "--stall-floor", "1", "--stall-after", "5", "--grace", "1", "--", PY,
             str(script), "600", timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 130 and "stall: no output" in err and b"woke up" not in p.stdout
    assert "stopped by trainguard at step 5 with SIGINT" in err
