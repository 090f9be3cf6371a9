"""ResourceMonitor: step time, throughput, GPU memory and ETA, fed to the Guard's run for the detectors."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from trainguard.live.guard import Guard
from trainguard.live.resources import ResourceMonitor


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_step_time_is_the_median_so_an_eval_pause_is_not_a_slowdown() -> None:
    guard, clock = Guard(), _Clock()
    mon = ResourceMonitor(guard, min_interval_s=2.0, clock=clock)
    for step in range(1, 101):
        clock.t += 0.1
        if step == 50:
            clock.t += 5.0  # an evaluation ran between steps 49 and 50
        mon.on_step(step)
    st = guard.run.history["step_time"]
    assert len(st) >= 4
    assert st.values == pytest.approx([0.1] * len(st))
    assert guard.run.history["throughput"].values == pytest.approx([10.0] * len(st))  # steps/s without sizes
    assert mon.last is not None and mon.last.unit == "steps/s"


def test_tokens_per_second_and_eta() -> None:
    clock = _Clock()
    mon = ResourceMonitor(planned_steps=1000, min_interval_s=1.0, clock=clock)
    mon.on_step(0)
    for step in range(1, 101):
        clock.t += 0.25
        mon.on_step(step, tokens=4096)
    s = mon.last
    assert s is not None and s.unit == "tokens/s"
    assert s.throughput == pytest.approx(4096 / 0.25)
    assert s.eta_s == pytest.approx((1000 - s.step) * 0.25)
    assert mon.summary()["step_time_s"] == pytest.approx(0.25)


def test_a_step_that_goes_back_resets_instead_of_a_negative_time() -> None:
    clock = _Clock()
    run_guard = Guard()
    mon = ResourceMonitor(run_guard, min_interval_s=0.0, clock=clock)
    for step in (10, 11, 12):
        clock.t += 1.0
        mon.on_step(step)
    clock.t += 1.0
    assert mon.on_step(5) is None  # resumed from an earlier checkpoint
    clock.t += 2.0
    s = mon.on_step(6)
    assert s is not None and s.step_time == pytest.approx(2.0)
    assert (run_guard.run.history["step_time"].values > 0).all()


def test_a_steady_slowdown_reaches_the_guard_as_an_alert() -> None:
    """Step time doubles over the run; the Guard's detector pass reports ``slowdown``."""
    guard, clock = Guard(detect_min_gap=20), _Clock()  # 60 logs: a real run logs thousands
    mon = ResourceMonitor(guard, min_interval_s=1.0, clock=clock)
    codes: set[str] = set()
    for step in range(1, 601):
        clock.t += 0.1 * (1 + step / 600)
        mon.on_step(step)
        if step % 10 == 0:
            a = guard.log(step, train_loss=2.0 - step / 1000)
            codes |= {f.code for f in a.findings}
    assert "slowdown" in codes  # an alert during the run, not only in the final diagnosis


def test_gpu_memory_is_read_from_torch_cuda_when_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CUDA in use, ``max_memory_allocated`` becomes the ``gpu_mem`` series (GiB); a leak is a finding.

    The CPU machines have no GPU, so torch.cuda is replaced by a stand-in with the same three calls.
    """
    allocated = [2.0 * 2**30]
    cuda = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                                 max_memory_allocated=lambda: allocated[0])
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    guard, clock = Guard(), _Clock()
    mon = ResourceMonitor(guard, min_interval_s=1.0, clock=clock)
    for step in range(1, 401):
        clock.t += 0.1
        allocated[0] += 0.01 * 2**30  # 10 MiB leaked per step
        mon.on_step(step)
    mem = guard.run.history["gpu_mem"]
    assert len(mem) >= 30 and mem.values == pytest.approx(2.0 + 0.01 * mem.steps)  # GiB at each emitted step
    assert "memory_climb" in {f.code for f in guard.findings()}


def test_no_cuda_no_gpu_series_and_torch_never_imported() -> None:
    code = (
        "import sys\n"
        "from trainguard.live.resources import ResourceMonitor\n"
        "from trainguard.run import Run\n"
        "r = Run('x', 'live'); m = ResourceMonitor(r, min_interval_s=0)\n"
        "[m.on_step(i) for i in range(5)]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'gpu_mem' not in r.history and len(r.history['step_time']) == 4\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
