"""``trainguard run --metrics-port`` and ``watch --metrics-textfile``: the gauges, end to end through the CLI.

``run`` guards a replay of genuine HF Trainer stdout (an overfitting tiny
GPT-2); the test scrapes 127.0.0.1 while the command runs and sees the step
grow and the best eval appear. ``watch`` follows the same log and leaves a
node_exporter textfile behind.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import QUIET_ENV, free_port
from .test_prometheus import _parse

LIVE = Path(__file__).resolve().parents[1] / "live"
LOG = LIVE / "data" / "hf_overfit_stdout.log"
REPLAY = LIVE / "scripts" / "replay_log.py"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainguard.cli", *args]


def test_run_serves_gauges_while_the_command_runs(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    port = free_port()
    env = {**os.environ, **QUIET_ENV}
    proc = subprocess.Popen(_cli("run", "--alert-only", "--metrics-port", str(port), "--", sys.executable, str(REPLAY),
                                 str(LOG), "--delay", "0.004", "--hold", "3"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    seen: list[dict[str, float]] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    seen.append(_parse(r.read().decode()))
            except OSError:
                pass
            time.sleep(0.2)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    def known(name: str) -> list[float]:
        return [s[name] for s in seen if not math.isnan(s.get(name, math.nan))]

    steps = known("trainguard_step")
    assert len(set(steps)) >= 2 and steps == sorted(steps)  # it moved, forward
    assert known("trainguard_best_eval") and min(known("trainguard_best_eval")) > 0
    assert max(known("trainguard_evals_since_best")) >= 1  # the replayed run overfits


def test_watch_writes_a_textfile(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    prom = tmp_path / "trainguard.prom"
    r = subprocess.run(_cli("watch", str(LOG), "--alert-only", "--idle-timeout", "1", "--metrics-textfile", str(prom)),
                       capture_output=True, text=True, env={**os.environ, **QUIET_ENV}, timeout=120, check=False)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    v = _parse(prom.read_text(encoding="utf-8"))
    assert v["trainguard_step"] > 0 and v["trainguard_best_eval"] > 0 and v["trainguard_best_step"] > 0


def test_bad_textfile_name_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    r = subprocess.run(_cli("watch", str(LOG), "--metrics-textfile", str(tmp_path / "m.txt")), capture_output=True,
                       text=True, env={**os.environ, **QUIET_ENV}, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and ".prom" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
