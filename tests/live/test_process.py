"""``trainguard run -- CMD``: stops real training cleanly, tees output unchanged, leaves no process behind."""

from __future__ import annotations

import io
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


@pytest.mark.slow
def test_stops_an_unmodified_hf_trainer_script_and_leaves_no_process(tmp_path: Path) -> None:
    """The real HF Trainer overfits; trainguard stops it a few evals after the minimum (step 100)."""
    p = _cli("run", "--grace", "10", "--report", str(tmp_path / "r.json"), "--",
             PY, str(OVERFIT), str(tmp_path / "out"), timeout=240)
    out, err = p.stdout, p.stderr.decode()
    assert "stop (overfitting)" in err, err[-2000:]
    assert b"TRAINING FINISHED" not in out  # it did not train to the end
    assert p.returncode == 130  # KeyboardInterrupt from our SIGINT: 128 + 2
    _assert_group_gone(_pid(out))
    # The trainer's own output went through, dict lines and tqdm redraws alike.
    assert b"{'eval_loss': " in out and b"/800 [" in out
    m = re.search(r"stopped the command at step (\d+) \(SIGINT\); best eval_loss ([\d.]+) at step (\d+)", err)
    assert m, err[-2000:]
    stop_step, best, best_step = int(m.group(1)), float(m.group(2)), int(m.group(3))
    assert best_step == 100 and best == pytest.approx(2.842, rel=0.01)
    assert best_step < stop_step <= best_step + 5 * 20  # within a few evals (eval every 20 steps)
    assert (tmp_path / "r.json").read_text().startswith("{")


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
    assert 100 < r.stop.step <= 200
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
