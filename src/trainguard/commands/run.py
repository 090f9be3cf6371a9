"""``trainguard run [OPTIONS] -- CMD ...``: run a training command under the guard.

The command's output is passed through unchanged on stdout; trainguard's
messages and the final diagnosis go to stderr. The exit code is the
command's own (0 when trainguard stopped an HF/Lightning trainer: it saved
and exited normally; 128 + N when a signal N ended it; 127 not found, 126 not
executable), so ``trainguard run`` drops into scripts and schedulers in place
of the bare command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ._common import guarded
from ._live import HEARTBEAT, METRICS_PORT, METRICS_TEXTFILE, STALL_AFTER, STALL_FLOOR

USAGE = "usage: trainguard run [OPTIONS] -- COMMAND [ARGS]..."


def register(app: typer.Typer) -> None:
    @app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        no_args_is_help=True,
        options_metavar="[OPTIONS] -- COMMAND [ARGS]...",
    )
    @guarded
    def run(
        ctx: typer.Context,
        stop_on: str = typer.Option(None, "--stop-on", help="Finding codes that stop the run, comma separated "
                                    "(default: overfitting,divergence,nan_loss; add stall to end a hung job)."),
        alert_only: bool = typer.Option(False, "--alert-only", help="Never stop the command; only alert."),
        notify: list[str] = typer.Option(None, "--notify", help="apprise URL to alert (repeatable); also "
                                         "TRAINGUARD_NOTIFY and ~/.config/trainguard/notify.yaml. Never printed."),
        grace: float = typer.Option(30.0, "--grace", min=0.0, help="Seconds a trainer gets to answer a stop "
                                    "request, and between SIGINT, SIGTERM and SIGKILL."),
        log: Path = typer.Option(None, "--log", help="Also write the command's raw output to this file."),
        report: str = typer.Option(None, "--report", help="Write the diagnosis here (.md, .json or .html)."),
        name: str = typer.Option(None, "--name", help="Run name for messages (default: the script's name)."),
        fmt: str = typer.Option(None, "--format", help="Force the log reader (hf_stdout, text)."),
        instrument: bool = typer.Option(True, "--instrument/--no-instrument", help="Attach the guard's callback to "
                                        "every HF/TRL and Lightning Trainer the command creates (no code change); "
                                        "without it, the output is parsed and signals stop the job."),
        stall_after: float = STALL_AFTER,
        stall_floor: float = STALL_FLOOR,
        heartbeat: float = HEARTBEAT,
        metrics_port: int = METRICS_PORT,
        metrics_textfile: Path = METRICS_TEXTFILE,
    ) -> None:
        """Run a training command, guard it live, stop it cleanly (the trainer saves and exits) when told."""
        cmd = list(ctx.args)
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        if not cmd:
            print(f"error: no command given after --; {USAGE}", file=sys.stderr)
            raise typer.Exit(2)
        _run(cmd, stop_on=stop_on, alert_only=alert_only, notify=notify, grace=grace, log=log, report=report,
             name=name, fmt=fmt, instrument=instrument, stall_after=stall_after, stall_floor=stall_floor,
             heartbeat=heartbeat, metrics_port=metrics_port, metrics_textfile=metrics_textfile)


def _run(cmd: list[str], *, stop_on: str | None, alert_only: bool, notify: list[str] | None, grace: float,
         log: Path | None, report: str | None, name: str | None, fmt: str | None, instrument: bool,
         stall_after: float, stall_floor: float, heartbeat: float, metrics_port: int | None = None,
         metrics_textfile: Path | None = None) -> None:
    from ..live.heartbeat import LiveView, StallDetector
    from ..live.process import run_command
    from ..live.resources import ResourceMonitor
    from ._live import (
        action_printer,
        build_guard,
        build_notifier,
        finish,
        outcome,
        say,
        send_finished,
    )

    codes = None if stop_on is None else [c.strip() for c in stop_on.split(",") if c.strip()]
    guard = build_guard(stop_on=stop_on, alert_only=alert_only, run_name=name or _run_name(cmd))
    guard.run.config.set("guarded_by", "trainguard run", "trainguard run")
    notifier = build_notifier(notify)
    monitor = ResourceMonitor(guard)
    try:
        log_file = open(log, "wb") if log else None  # noqa: SIM115 - closed below
    except OSError as e:
        from ..errors import ConfigError

        raise ConfigError(f"cannot write the log ({e.strerror})", key="log", path=log) from None
    printer = action_printer(guard, notifier, say, taken=_taken)
    live = LiveView(guard, step_fn=lambda: guard.run.last_step, planned_fn=lambda: guard.run.planned_steps,
                    eta_fn=lambda: monitor.last.eta_s if monitor.last is not None else None,
                    stall=StallDetector(k=stall_after, floor_s=stall_floor), heartbeat_s=heartbeat * 60.0)
    from ..trackers.prometheus import chain, sink_from_flags

    metrics = sink_from_flags(guard, metrics_port, metrics_textfile, stall=live.stall)
    printer = chain(printer, metrics, guard)
    try:
        result = run_command(cmd, guard, grace_s=grace, log_file=log_file, monitor=monitor, fmt=fmt,
                             on_action=printer, say=say, instrument=instrument, live=live,
                             stop_on_stall=codes is not None and "stall" in codes, on_stall=printer)
    finally:
        if log_file is not None:
            log_file.close()
        if metrics is not None:
            metrics.close()
    head, extra = outcome(result, guard)
    finish(guard, report=report, headline=head, extra_findings=extra)
    if notifier is not None:
        send_finished(notifier, guard, head, failed=bool(extra) and not result.stopped)
        notifier.close(timeout=15.0)
    raise typer.Exit(result.exit_code)


def _taken(action: Any) -> str:
    """What ``run`` does about an action, for the notification's first line."""
    if getattr(action, "stop", False):
        return f"stopping the job at step {action.step} (the trainer saves first when trainguard is attached)"
    return "alert only, the job continues"


def _run_name(cmd: list[str]) -> str:
    """The first argument that looks like a script (``train.py``), else the program's name."""
    for a in cmd[1:]:
        if a.endswith((".py", ".sh", ".yaml", ".yml", ".json")):
            return Path(a).stem
    return Path(cmd[0]).name
