"""The run/watch ↔ callback channel: stop requests (never a stale one), events, and the bootstrap's start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from trainguard.live import control
from trainguard.live.checkpoints import CheckpointKeeper
from trainguard.live.process import BOOTSTRAP


def test_a_stop_request_is_seen_acknowledged_and_a_stale_one_ignored(tmp_path: Path) -> None:
    stop = tmp_path / "train.log.trainguard-stop"
    assert control.stop_file_beside(tmp_path / "train.log") == stop
    assert control.request_stop(stop, "overfitting at step 160", by="trainguard watch")
    old = time.time() - 3600
    os.utime(stop, (old, old))  # a request left by a run an hour ago
    w = control.StopWatch([stop])  # this training started now
    assert not w.requested()
    control.request_stop(stop, "overfitting at step 160", by="trainguard watch")
    assert w.requested() and w.request == {"reason": "overfitting at step 160", "by": "trainguard watch",
                                           "time": w.request["time"]}
    assert control.acknowledged(stop) is None
    w.acknowledge(160)
    assert control.acknowledged(stop) == {"step": 160, "time": control.acknowledged(stop)["time"]}
    control.clear(stop)
    assert not stop.exists() and control.acknowledged(stop) is None


def test_events_arrive_as_whole_lines_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    w, r = control.EventWriter(path), control.EventReader(path)
    assert r.read() == []
    w.emit("attached", framework="hf", planned_steps=800)
    w.emit("log", step=10, metrics={"train_loss": 2.5, "epoch": 0.25})
    with open(path, "ab") as f:
        f.write(b'{"event": "log", "step": 2')  # a line still being written is not read yet
    got = r.read()
    assert [e["event"] for e in got] == ["attached", "log"] and got[1]["metrics"]["train_loss"] == 2.5
    with open(path, "ab") as f:
        f.write(b'0, "metrics": {}}\n')
    assert r.read() == [{"event": "log", "step": 20, "metrics": {}}]
    assert not control.EventWriter(None).active  # outside trainguard run: a no-op


def test_the_bootstrap_runs_the_sitecustomize_it_shadows_and_costs_no_import(tmp_path: Path) -> None:
    """The user's own sitecustomize still runs; nothing of trainguard is imported until a Trainer is."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("print('THEIR SITECUSTOMIZE RAN')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BOOTSTRAP), str(theirs)])}
    code = "import sys; print(sorted(m for m in sys.modules if m.startswith(('trainguard', 'torch'))))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["THEIR SITECUSTOMIZE RAN", "[]"]
    assert p.stderr == ""


def test_only_the_folders_the_guard_forced_are_pruned_to_best_and_last(tmp_path: Path) -> None:
    keep = CheckpointKeeper()
    folders = {s: tmp_path / f"checkpoint-{s}" for s in (20, 40, 60, 80)}
    for p in folders.values():
        p.mkdir()
    keep.force(20)
    keep.on_save(20, folders[20], best=folders[20], delete=True)
    keep.force(40)
    keep.on_save(40, folders[40], best=folders[40], delete=True)  # a new best: the old best goes
    keep.on_save(60, folders[60], best=folders[40], delete=True)  # the user's save_steps folder: never ours
    keep.force(80)
    keep.on_save(80, folders[80], best=folders[40], delete=True)  # the stop: last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-40", "checkpoint-60", "checkpoint-80"]
    assert keep.deleted == [folders[20]]


def test_a_trainer_whose_stdout_is_a_log_honours_the_stop_file_watch_writes_beside_it(tmp_path: Path) -> None:
    """``python train.py > train.log`` + ``trainguard watch train.log``: the callback finds watch's request."""
    log = tmp_path / "train.log"
    code = ("import time; from trainguard.live.control import StopWatch; w = StopWatch.from_env(time.time() - 5); "
            "print([str(p) for p in w.paths], w.requested())")
    control.request_stop(control.stop_file_beside(log), "stall", by="trainguard watch")
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if k != control.ENV_STOP_FILE})
    assert log.read_text().strip() == f"[{str(log) + '.trainguard-stop'!r}] True"
