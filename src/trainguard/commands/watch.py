"""``trainguard watch FILE``: follow a log another process writes, under the guard.

Exit codes: 0 when the run ended (or went idle) healthy, 1 when the guard
decided to stop or the diagnosis has error-level findings, 2 bad input (a
folder, a device, a file that never appeared).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ._common import guarded
from ._live import HEARTBEAT, METRICS_PORT, METRICS_TEXTFILE, STALL_AFTER, STALL_FLOOR

DEFAULT_IDLE_S = 1800.0  # 30 minutes: a live trainer writes at least a progress bar far more often


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def watch(
        file: Path = typer.Argument(..., help="The log file to follow (it may not exist yet)."),
        stop_on: str = typer.Option(None, "--stop-on", help="Finding codes that count as a stop, comma separated."),
        alert_only: bool = typer.Option(False, "--alert-only", help="Only alert, never act on a stop."),
        notify: list[str] = typer.Option(None, "--notify", help="apprise URL to alert (repeatable). Never printed."),
        exit_on_stop: bool = typer.Option(False, "--exit-on-stop", help="Exit as soon as the guard decides to stop."),
        pid: int = typer.Option(None, "--pid", help="The trainer's process: on a stop it gets --grace seconds to "
                                "answer the stop file, then SIGINT, SIGTERM, SIGKILL; watch ends when it exits."),
        grace: float = typer.Option(30.0, "--grace", min=0.0, help="Seconds between the stop request, SIGINT, "
                                    "SIGTERM and SIGKILL (with --pid)."),
        idle_timeout: float = typer.Option(DEFAULT_IDLE_S, "--idle-timeout", min=0.0, help="Exit after this many "
                                           "seconds without new output (also the wait for a file that does not "
                                           "exist yet; 0: wait forever)."),
        from_start: bool = typer.Option(True, "--from-start/--from-end", help="Read what the file already holds "
                                        "(default: yes, so the guard knows the history) or only what is appended."),
        end_marker: str = typer.Option(None, "--end-marker", help="Regex of a line that ends the run "
                                       "(HF's train_runtime summary always does)."),
        echo: bool = typer.Option(False, "--echo", help="Also print the log to stdout, like tail -f."),
        report: str = typer.Option(None, "--report", help="Write the diagnosis here (.md, .json or .html)."),
        name: str = typer.Option(None, "--name", help="Run name for messages (default: the file's name)."),
        fmt: str = typer.Option(None, "--format", help="Force the log reader (hf_stdout, text)."),
        poll: float = typer.Option(0.2, "--poll", min=0.01, help="Seconds between checks of the file."),
        stall_after: float = STALL_AFTER,
        stall_floor: float = STALL_FLOOR,
        heartbeat: float = HEARTBEAT,
        metrics_port: int = METRICS_PORT,
        metrics_textfile: Path = METRICS_TEXTFILE,
    ) -> None:
        """Follow a training log as it grows (surviving truncation and rotation) and guard the run."""
        import re

        from ..errors import ConfigError
        from ..live.heartbeat import LiveView, StallDetector
        from ..live.resources import ResourceMonitor
        from ..live.watch import watch_file
        from ._live import action_printer, build_guard, build_notifier, finish, say

        if file.is_dir():
            from ..errors import InputError

            raise InputError(file, "is a folder; watch follows one log file")
        if end_marker:
            try:
                re.compile(end_marker)
            except re.error as e:
                raise ConfigError(f"--end-marker is not a valid regex ({e})", key="end_marker") from None
        guard = build_guard(stop_on=stop_on, alert_only=alert_only, run_name=name or file.stem)
        notifier = build_notifier(notify)
        monitor = ResourceMonitor(guard)
        live = LiveView(guard, step_fn=lambda: guard.run.last_step, planned_fn=lambda: guard.run.planned_steps,
                        eta_fn=lambda: monitor.last.eta_s if monitor.last is not None else None,
                        stall=StallDetector(k=stall_after, floor_s=stall_floor), heartbeat_s=heartbeat * 60.0)
        codes = [c.strip() for c in (stop_on or "").split(",")]
        from ..trackers.prometheus import chain, sink_from_flags

        metrics = sink_from_flags(guard, metrics_port, metrics_textfile, stall=live.stall)
        stop = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        if not file.exists():
            say(f"trainguard: waiting for {file} to appear")
        try:
            result = watch_file(file, guard, from_start=from_start, idle_timeout_s=idle_timeout,
                                exit_on_stop=exit_on_stop, pid=pid, end_marker=end_marker, fmt=fmt,
                                poll_s=poll, stop_event=stop, monitor=monitor, live=live,
                                stop_on_stall="stall" in codes,
                                on_action=chain(_announce(action_printer(guard, notifier, say, taken=_taken(pid)), pid),
                                                metrics, guard),
                                say=say, echo=sys.stdout.buffer if echo else None, grace_s=grace)
        finally:
            signal.signal(signal.SIGINT, previous)
            if metrics is not None:
                metrics.close()
        why = {"ended": "the run ended", "idle": f"no new output for {idle_timeout:g} s" if idle_timeout else "idle",
               "stopped": "the guard decided to stop", "interrupted": "interrupted",
               "exited": f"process {pid} exited", "deleted": "the log was deleted"}[result.reason]
        head = f"trainguard: stopped watching {file}: {why} ({result.points} points read)"
        if result.signals:
            head += f"; sent {', then '.join(result.signals)} to pid {pid}"
        elif result.acked_step is not None:
            head += f"; the trainer took the stop request at step {result.acked_step}"
        diagnosis = finish(guard, report=report, headline=head)
        if notifier is not None:
            notifier.close(timeout=15.0)
        failed = result.stop is not None or (diagnosis is not None and diagnosis.exit_code == 1)
        raise typer.Exit(1 if failed else 0)


def _announce(inner: Callable[[Any], None], pid: int | None) -> Callable[[Any], None]:
    """Print a stop decision (once: watch_file passes on the first stop only), then pass the action on."""
    from ._live import say

    def on_action(action: Any) -> None:
        if action.stop:
            say(f"trainguard: {action.reason}")
            if pid is None:
                say("trainguard: without --pid, only a trainguard callback in the trainer can act on it "
                    "(through the stop file)")
        inner(action)

    return on_action


def _taken(pid: int | None) -> Callable[[Any], str]:
    def taken(action: Any) -> str:
        if not action.stop:
            return "alert only, the job continues"
        if pid is None:
            return "stop requested through the stop file beside the log"
        return f"stopping pid {pid} (stop file, then signals)"

    return taken
