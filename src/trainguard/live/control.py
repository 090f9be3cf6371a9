"""The channel between a guarding parent (``trainguard run`` / ``watch``) and the callback inside the trainer.

Signals are a blunt way to stop a trainer: SIGINT makes the HF Trainer raise
``KeyboardInterrupt`` mid-step, so nothing is saved and the user sees a
traceback. A callback inside the trainer can instead set
``should_save`` and ``should_training_stop`` and let the framework save,
write its state and return normally. This module is how the parent asks, and
how the callback answers, with plain files only (no sockets: it works across
torchrun/deepspeed ranks on one host, in containers, and over NFS):

- **the stop file** (``TRAINGUARD_STOP_FILE``, or ``<log>.trainguard-stop``
  beside the log that ``trainguard watch`` follows): its existence is the
  request; it holds one JSON line with the reason. The callback checks it
  after every optimizer step (one ``stat``) and, when it acts, writes
  ``<stop file>.ack`` so the parent knows the request was taken and need not
  escalate to signals. A file older than the training start is stale (a past
  run's) and is ignored.
- **the events file** (``TRAINGUARD_EVENTS``, set by ``trainguard run`` only):
  JSON lines appended by rank 0 (attached, every logged point with the
  trainer's own step, checkpoints, stopping, end). ``run`` reads them instead
  of parsing stdout, so its steps are the trainer's own and its final line
  can name the checkpoint that really exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ENV_STOP_FILE = "TRAINGUARD_STOP_FILE"
ENV_EVENTS = "TRAINGUARD_EVENTS"
ENV_POLICY = "TRAINGUARD_POLICY"  # JSON {"stop_on": "overfitting,...", "alert_only": false}
ENV_RUN_NAME = "TRAINGUARD_RUN_NAME"
ENV_PARENT = "TRAINGUARD_PARENT"  # "run": the parent notifies, the callback must not (no double alerts)
ENV_INSTRUMENT = "TRAINGUARD_INSTRUMENT"  # "0" turns the bootstrap off in a child
ENV_HOME = "TRAINGUARD_HOME"  # the folder holding the trainguard package, for a child on another interpreter
ENV_LOAD_BEST = "TRAINGUARD_LOAD_BEST"  # "0": leave the last model loaded at the end
STOP_SUFFIX = ".trainguard-stop"


def stop_file_beside(log: str | Path) -> Path:
    """The stop file ``trainguard watch`` writes for the log it follows: ``train.log`` → ``train.log.trainguard-stop``."""
    p = Path(log)
    return p.with_name(p.name + STOP_SUFFIX)


def request_stop(path: str | Path, reason: str, *, by: str) -> bool:
    """Write the stop request (atomically: a reader never sees half a file); False when it cannot be written."""
    p = Path(path)
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"reason": reason, "by": by, "time": time.time()}) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False


def ack_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".ack")


def acknowledged(path: str | Path) -> dict[str, Any] | None:
    """The callback's answer to a stop request (``{"step": N}``), or None while none was written."""
    try:
        text = ack_path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        d = json.loads(text)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def clear(path: str | Path) -> None:
    """Remove a stop file and its ack (a finished run leaves nothing to stop the next one)."""
    for p in (Path(path), ack_path(path)):
        with contextlib.suppress(OSError):
            p.unlink()


class StopWatch:
    """The callback's side: is a stop requested (and not stale)? One ``stat`` per call.

    ``paths``: the stop files to honour (``TRAINGUARD_STOP_FILE`` and the one
    beside the process's own stdout log, when stdout is a file); ``since``:
    the training start, as wall time; requests older than that are a past
    run's and are ignored.
    """

    def __init__(self, paths: list[Path], since: float | None = None) -> None:
        self.paths = paths
        self.since = time.time() if since is None else since
        self.request: dict[str, Any] | None = None
        self.path: Path | None = None

    @classmethod
    def from_env(cls, since: float | None = None) -> StopWatch:
        paths: list[Path] = []
        env = os.environ.get(ENV_STOP_FILE)
        if env:
            paths.append(Path(env))
        log = stdout_log()
        if log is not None:
            paths.append(stop_file_beside(log))
        return cls(paths, since)

    def requested(self) -> bool:
        for p in self.paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            if st.st_mtime + 1.0 < self.since:  # a past run's request (1 s of slack for coarse mtimes)
                continue
            try:
                d = json.loads(p.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                d = {}
            self.request = d if isinstance(d, dict) else {}
            self.path = p
            return True
        return False

    def acknowledge(self, step: int) -> None:
        """Tell the requester the stop was taken at ``step`` (rank 0 only)."""
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            ack_path(self.path).write_text(json.dumps({"step": step, "time": time.time()}) + "\n", encoding="utf-8")


def stdout_log() -> Path | None:
    """The regular file our stdout is redirected to (``python train.py > train.log``), else None (Linux /proc)."""
    try:
        target = os.readlink("/proc/self/fd/1")
    except OSError:
        return None
    if not target.startswith("/"):
        return None  # pipe:[…], socket:[…], anon_inode
    p = Path(target)
    try:
        return p if p.is_file() else None
    except OSError:
        return None


class EventWriter:
    """Appends JSON event lines for the parent ``trainguard run`` (rank 0 only; a no-op without the env)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if not path else Path(path)
        self._failed = False

    @classmethod
    def from_env(cls) -> EventWriter:
        return cls(os.environ.get(ENV_EVENTS))

    @property
    def active(self) -> bool:
        return self.path is not None and not self._failed

    def emit(self, event: str, **data: Any) -> None:
        if not self.active:
            return
        assert self.path is not None
        line = json.dumps({"event": event, **data}, default=_plain, allow_nan=True) + "\n"
        try:
            # One write of one line under O_APPEND: whole lines, even with two writers.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            self._failed = True  # the parent is gone or the folder was removed: stay quiet


def _plain(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


class EventReader:
    """The parent's side: the complete event lines appended since the last call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pos = 0
        self._tail = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read(8 << 20)
        except OSError:
            return []
        if not data:
            return []
        self._pos += len(data)
        data = self._tail + data
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        out: list[dict[str, Any]] = []
        for line in data[:cut].splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and isinstance(d.get("event"), str):
                out.append(d)
        return out


def policy_from_env() -> Any:
    """The Policy ``trainguard run`` asked for (``TRAINGUARD_POLICY``), or None for the default."""
    raw = os.environ.get(ENV_POLICY)
    if not raw:
        return None
    try:
        d = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    from .policy import Policy

    codes = d.get("stop_on")
    if isinstance(codes, str):
        codes = [c.strip() for c in codes.split(",") if c.strip() and c.strip() not in SINK_CODES]
    return Policy(stop_on=codes, alert_only=bool(d.get("alert_only", False)))


class RunChannel:
    """``trainguard run``'s side: the stop file and events file for the child's callback, in a private temp folder."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="trainguard-run-"))
        self.stop_file = self.dir / "stop"
        self.events_file = self.dir / "events.jsonl"
        self.events_file.touch()
        self.reader = EventReader(self.events_file)

    def env(self, guard: Any) -> dict[str, str]:
        import trainguard

        policy = getattr(guard, "policy", None)
        stop_on = sorted(getattr(policy, "stop_on", ()) or ())
        return {
            ENV_STOP_FILE: str(self.stop_file),
            ENV_EVENTS: str(self.events_file),
            ENV_POLICY: json.dumps({"stop_on": ",".join(stop_on) if stop_on else None,
                                            "alert_only": bool(getattr(policy, "is_alert_only", False))}),
            ENV_RUN_NAME: str(getattr(getattr(guard, "run", None), "name", "") or ""),
            ENV_PARENT: "run",
            ENV_HOME: str(Path(trainguard.__file__).resolve().parents[1]),
        }

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# Codes the sinks judge themselves (the Policy does not know them): ``--stop-on stall``.
SINK_CODES = ("stall",)


__all__ = [
    "ENV_EVENTS",
    "ENV_STOP_FILE",
    "EventReader",
    "EventWriter",
    "RunChannel",
    "StopWatch",
    "acknowledged",
    "clear",
    "policy_from_env",
    "request_stop",
    "stdout_log",
    "stop_file_beside",
]
