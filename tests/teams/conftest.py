"""Fixtures for the teams tests: recorded tiny-training curves, one real MLflow server per session, a scan runner.

The server is the real ``mlflow server`` (sqlite backend, 127.0.0.1, a free
port, one worker, job execution and telemetry off), started once per session
and always stopped. Tests that need it skip cleanly when full ``mlflow`` is not
installed (``pip install -e '.[dev]'`` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CURVES = Path(__file__).resolve().parents[1] / "data" / "teams" / "curves.json"
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
             "DO_NOT_TRACK": "1"}


@pytest.fixture(autouse=True)
def _quiet_trackers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k, v in QUIET_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path / "scan-cache"))  # never the user's ~/.cache


@pytest.fixture(scope="session")
def curves() -> dict[str, Any]:
    """Curves of three tiny CPU trainings (overfit, healthy, diverge); see ``make_curves.py``."""
    return json.loads(CURVES.read_text(encoding="utf-8"))


def best_eval_step(curve: dict[str, Any]) -> int:
    """The step of the lowest eval loss in a recorded curve (first one on a tie)."""
    evals = [(p["eval_loss"], p["step"]) for p in curve["points"] if "eval_loss" in p]
    return min(evals)[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a real MLflow tracking server, stopped at the end of the session."""
    pytest.importorskip("mlflow.server", reason="the MLflow server tests need the full mlflow package")
    exe = Path(sys.executable).with_name("mlflow")
    if not exe.exists():
        found = shutil.which("mlflow")
        if found is None:
            pytest.skip("no mlflow executable")
        exe = Path(found)
    d = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, **QUIET_ENV}
    log = open(d / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(exe), "server", "--backend-store-uri", f"sqlite:///{d}/m.db", "--default-artifact-root", str(d / "art"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (d / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"mlflow server did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.3)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def log_curve(client: Any, experiment_id: str, name: str, curve: dict[str, Any]) -> str:
    """Log one recorded curve as an MLflow run through the client (metrics with steps, params); returns the run id."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=name)
    rid = run.info.run_id
    t0 = int(time.time() * 1000) - 3_600_000
    metrics = []
    for p in curve["points"]:
        ts = t0 + 1000 * p["step"]  # one second per step: the waste is then known in hours
        for k, v in p.items():
            if k != "step":
                metrics.append(Metric(k, v, ts, p["step"]))
    params = [Param(k, str(v)) for k, v in curve["params"].items()]
    for i in range(0, len(metrics), 900):
        client.log_batch(rid, metrics=metrics[i:i + 900], params=params if i == 0 else [])
    client.set_terminated(rid, "FINISHED")
    return rid


def run_scan(args: list[str], *, subprocess_cli: bool = False) -> tuple[int, str, str]:
    """``trainguard scan ARGS``: exit code, stdout, stderr.

    In this process through typer's CliRunner (its worker pool forks from here,
    and mlflow is imported once), or with ``subprocess_cli`` as a real
    ``python -m trainguard.cli`` process.
    """
    if subprocess_cli:
        env = {**os.environ, **QUIET_ENV}
        r = subprocess.run([sys.executable, "-m", "trainguard.cli", "scan", *args], capture_output=True, text=True,
                           env=env, timeout=240, check=False)
        return r.returncode, r.stdout, r.stderr
    from typer.testing import CliRunner

    from trainguard.cli import app

    res = CliRunner().invoke(app, ["scan", *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr
