"""The stall alarm and the live status line, on a fake clock."""

from __future__ import annotations

import io

from trainguard.live.guard import Guard
from trainguard.live.heartbeat import LiveView, StallDetector


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_stall_fires_after_k_step_intervals_with_a_floor_and_escalates() -> None:
    clock = _Clock()
    s = StallDetector(k=5, floor_s=2.0, clock=clock)
    for step in range(1, 6):  # a step every second
        clock.t += 1.0
        s.on_step(step)
    assert s.threshold() == 5.0  # 5 x the median interval, above the floor
    clock.t += 4.9
    assert s.check() is None
    clock.t += 0.2
    f = s.check()
    assert f is not None and f.code == "stall" and f.severity.value == "warning" and "after step 5" in f.message
    assert s.check() is None  # once per level...
    clock.t += 5.0
    f2 = s.check()
    assert f2 is not None and f2.severity.value == "error"  # ...then escalated at 2x the limit
    assert f2.evidence["stalled_s"] > f.evidence["stalled_s"]
    assert s.on_output() is not None and s.check() is None  # output resumed: quiet again


def test_before_the_first_step_only_the_tripled_floor_counts() -> None:
    clock = _Clock()
    s = StallDetector(k=5, floor_s=10.0, clock=clock)
    clock.t += 29.0
    assert s.check() is None
    clock.t += 2.0
    assert s.check() is not None
    assert StallDetector(floor_s=0).check() is None  # 0 turns the alarm off


def test_status_line_on_a_tty_heartbeat_in_a_log() -> None:
    clock = _Clock()
    guard = Guard()
    for step, ev in ((20, 3.0), (40, 2.5), (60, 2.6)):
        guard.log(step, train_loss=2.0, eval_loss=ev)
    log = io.StringIO()
    view = LiveView(guard, step_fn=lambda: 60, planned_fn=lambda: 800, eta_fn=lambda: 300.0, heartbeat_s=600,
                    stream=log, tty=False, clock=clock)
    clock.t += 10
    assert view.tick() is None and log.getvalue() == ""
    clock.t += 600
    view.tick()
    line = log.getvalue()
    assert line.startswith("trainguard: step 60/800 (8%)") and line.endswith("\n")
    assert "best eval_loss 2.5 at step 40" in line and "ETA 5 min" in line
    assert "stop rule: eval +4.0% above its best over the 1 evals since" in line  # the distance to the stop
    tty = io.StringIO()
    view = LiveView(guard, step_fn=lambda: 60, planned_fn=lambda: 800, stream=tty, tty=True, clock=clock)
    view.after_output(b"progress 12%\r")  # the job's own bar is on this line: never draw over it
    clock.t += 5
    view.tick()
    assert tty.getvalue() == ""
    view.after_output(b"a line\n")
    clock.t += 5
    view.tick()
    assert tty.getvalue().startswith("\r\x1b[Ktrainguard: step 60/800")
    view.before_output()  # the job writes again: the status line is taken away first
    assert tty.getvalue().endswith("\r\x1b[K")
