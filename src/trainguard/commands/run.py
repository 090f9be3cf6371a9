"""``trainguard run [OPTIONS] -- CMD ...``: run a training command under the guard.

The command's output is passed through unchanged on stdout; trainguard's
messages and the final diagnosis go to stderr. The exit code is the
command's own (128 + N when a signal N ended it; 127 not found, 126 not
executable), so ``trainguard run`` drops into scripts and schedulers in
place of the bare command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import guarded


def register(app: typer.Typer) -> None:
    @app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        no_args_is_help=True,
    )
    @guarded
    def run(
        ctx: typer.Context,
        stop_on: str = typer.Option(None, "--stop-on", help="Finding codes that stop the run, comma separated "
                                    "(default: overfitting,divergence,nan_loss)."),
        alert_only: bool = typer.Option(False, "--alert-only", help="Never stop the command; only alert."),
        notify: list[str] = typer.Option(None, "--notify", help="apprise URL to alert (repeatable); also "
                                         "TRAINGUARD_NOTIFY and ~/.config/trainguard/notify.yaml. Never printed."),
        grace: float = typer.Option(30.0, "--grace", min=0.0, help="Seconds between SIGINT, SIGTERM and SIGKILL."),
        log: Path = typer.Option(None, "--log", help="Also write the command's raw output to this file."),
        report: str = typer.Option(None, "--report", help="Write the diagnosis here (.md, .json or .html)."),
        name: str = typer.Option(None, "--name", help="Run name for messages (default: the script's name)."),
        fmt: str = typer.Option(None, "--format", help="Force the log reader (hf_stdout, text)."),
    ) -> None:
        """Run a training command, guard it live, stop it cleanly (SIGINT, then SIGTERM) when told."""
        from ..live.process import run_command
        from ..live.resources import ResourceMonitor
        from ._live import action_printer, build_guard, build_notifier, finish, say

        cmd = list(ctx.args)
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        if not cmd:
            raise typer.BadParameter("give the command after --, e.g. trainguard run -- python train.py")
        guard = build_guard(stop_on=stop_on, alert_only=alert_only, run_name=name or _run_name(cmd))
        notifier = build_notifier(notify)
        monitor = ResourceMonitor(guard)
        try:
            log_file = open(log, "wb") if log else None  # noqa: SIM115 - closed below
        except OSError as e:
            from ..errors import ConfigError

            raise ConfigError(f"cannot write the log ({e.strerror})", key="log", path=log) from None
        try:
            result = run_command(cmd, guard, grace_s=grace, log_file=log_file, monitor=monitor, fmt=fmt,
                                 on_action=action_printer(guard, notifier, say), say=say)
        finally:
            if log_file is not None:
                log_file.close()
        if result.stopped and not result.signals:
            head = (f"trainguard: the guard decided to stop at step {result.stop.step}, but the command had "
                    f"already exited (code {result.exit_code})")
        elif result.stopped:
            b = guard.best
            best = f"; best {b.metric} {b.value:.6g} at step {b.step}" if b else ""
            head = (f"trainguard: stopped the command at step {result.stop.step} "
                    f"({', '.join(result.signals)}){best}; exit code {result.exit_code}")
        else:
            head = f"trainguard: the command exited with code {result.exit_code}"
            if notifier is not None and result.exit_code not in (0, 130) and not result.interrupted:
                notifier.send(f"[trainguard] {guard.run.name}: the command failed (exit code {result.exit_code})",
                              f"last step seen: {guard.run.last_step}", "error")
        finish(guard, report=report, headline=head)
        if notifier is not None:
            notifier.close(timeout=15.0)
        raise typer.Exit(result.exit_code)


def _run_name(cmd: list[str]) -> str:
    """The first argument that looks like a script (``train.py``), else the program's name."""
    for a in cmd[1:]:
        if a.endswith((".py", ".sh", ".yaml", ".yml", ".json")):
            return Path(a).stem
    return Path(cmd[0]).name
