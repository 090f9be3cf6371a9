"""What ``trainguard run`` and ``trainguard watch`` share: building the Guard and notifier, reporting at the end.

Everything here prints to stderr: under ``trainguard run`` stdout carries the
training command's own output, byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import ConfigError
from ._common import err_console

# Options ``run`` and ``watch`` share, declared once so their names, defaults and help never drift apart.
STALL_AFTER: Any = typer.Option(10.0, "--stall-after", min=1.0, help="A stall is this many median step intervals "
                                "without new output or a new step.")
STALL_FLOOR: Any = typer.Option(600.0, "--stall-floor", min=0.0, help="Never call a stall before this many seconds "
                                "of silence (tripled before the first step); 0 turns the alarm off.")
HEARTBEAT: Any = typer.Option(10.0, "--heartbeat", min=0.0, help="Minutes between status lines when stderr is a "
                              "log, not a terminal (0: none).")
METRICS_PORT: Any = typer.Option(None, "--metrics-port", min=0, help="Serve Prometheus gauges (best eval, evals "
                                 "since it, distance to the stop gate, step time, stall, stops) on 127.0.0.1:PORT; "
                                 "needs trainguard[prometheus].")
METRICS_TEXTFILE: Any = typer.Option(None, "--metrics-textfile", help="Also write the gauges to FILE.prom for "
                                     "node_exporter's textfile collector.")


def build_guard(*, stop_on: str | None, alert_only: bool, run_name: str) -> Any:
    """A Guard with the policy the flags ask for (unknown codes are a GuardError: exit 2)."""
    from ..live.guard import Guard
    from ..live.policy import Policy

    codes = None if stop_on is None else [c for c in stop_on.split(",") if c.strip()]
    return Guard(Policy(stop_on=codes, alert_only=alert_only), run_name=run_name)


def build_notifier(urls: list[str] | None) -> Any:
    """The Notifier over ``--notify`` URLs, ``TRAINGUARD_NOTIFY`` and the config file; None when none is set."""
    from ..live.notify import Notifier

    return Notifier.from_config(urls or ())


def action_printer(guard: Any, notifier: Any, say: Any, *, taken: Any = None) -> Any:
    """The ``on_action`` hook: one stderr line per alert (stops are announced by the sink) and a notification.

    ``taken(action)`` says what the sink does about it (the first line of
    the notification); the best checkpoint's path is added when the run
    knows the folder of its best step.
    """

    def on_action(action: Any) -> None:
        if action.alert and not action.stop and not _is_stall(action):
            say(f"trainguard: {action.reason}")
        if notifier is not None:
            notifier.notify_action(action, run_name=guard.run.name, step=action.step, best=guard.best, run=guard.run,
                                   taken=None if taken is None else taken(action), checkpoint=best_checkpoint(guard))

    return on_action


def _is_stall(action: Any) -> bool:
    return any(getattr(f, "code", "") == "stall" for f in getattr(action, "findings", ()) or ())


def best_checkpoint(guard: Any) -> str | None:
    """The folder of the best step's checkpoint, when one was saved (the callback reports its saves)."""
    b = guard.best
    if b is None:
        return None
    ck = guard.run.checkpoints.get(b.step)
    return None if ck is None else str(getattr(ck, "path", ck))


def outcome(result: Any, guard: Any) -> tuple[str, list[Any]]:
    """The final line of ``trainguard run``, saying what really happened, and the findings that go with it.

    A run that crashed, was killed or was interrupted gets a ``crashed``
    finding (so its report is never HEALTHY); a stall the guard acted on
    keeps its ``stall`` finding.
    """
    from ..findings import Finding, Severity
    from ..run import Checkpoint

    end = result.end or {}
    for step, path in result.checkpoints.items():
        guard.run.checkpoints.setdefault(step, Checkpoint(step, path))
    b = guard.best
    last = guard.run.last_step
    at = f" at step {last}" if last is not None else ""
    ckpt = end.get("best_checkpoint") or best_checkpoint(guard)
    best = ""
    if b is not None:
        best = f"best {b.metric} {b.value:.6g} at step {b.step}"
        best = f"best checkpoint at {ckpt} ({best}{', loaded' if end.get('loaded_best') else ''})" if ckpt else \
            f"{best} (no checkpoint of it on disk that trainguard knows of)"
    report = f"; report at {end['report']}" if end.get("report") else ""
    extra: list[Any] = []
    stop = result.stop
    if stop is not None:
        extra += [f for f in getattr(stop, "findings", ()) or () if getattr(f, "code", "") == "stall"]
    code = result.exit_code
    if stop is not None and (result.signals or result.stop_acked_step is not None or result.attached):
        step = result.stop_acked_step if result.stop_acked_step is not None else stop.step
        how = "" if not result.signals else f" with {', then '.join(result.signals)}"
        head = f"trainguard: stopped by trainguard at step {step}{how}" + (f", {best}" if best else "") + report
        head += f"; exit code {code}"
        if code != 0 and not result.signals:
            extra.append(Finding("crashed", Severity.CRITICAL, f"The command crashed while stopping (exit code {code}).",
                                 start_step=last, end_step=last, evidence={"exit_code": code}))
        elif len(result.signals) > 1:  # it ignored SIGINT: it was killed, not stopped
            extra.append(Finding("crashed", Severity.WARNING, f"The command ignored SIGINT and was ended with "
                                 f"{result.signals[-1]} (exit code {code}): files it was writing may be incomplete.",
                                 start_step=last, end_step=last, evidence={"exit_code": code}))
        return head, extra
    if stop is not None:
        head = (f"trainguard: the guard decided to stop at step {stop.step}, but the command had already exited "
                f"(exit code {code})")
    elif code == 0:
        head = f"trainguard: the command finished{at} (exit code 0)" + (f"; {best}" if best else "") + report
        return head, extra
    else:
        head = ""
    if code == 0:
        return head, extra
    if result.interrupted:
        what, sev = f"was interrupted{at} (exit code {code})", Severity.WARNING
    elif result.returncode is not None and result.returncode < 0:
        import signal

        name = signal.Signals(-result.returncode).name
        what, sev = f"was killed by {name}{at} (exit code {code})", Severity.CRITICAL
    else:
        what, sev = f"exited with code {code}: crashed{at}", Severity.CRITICAL
    extra.append(Finding("crashed", sev, f"The command {what}.", start_step=last, end_step=last,
                         evidence={"exit_code": code}))
    return head or (f"trainguard: the command {what}" + (f"; {best}" if best else "")), extra


def send_finished(notifier: Any, guard: Any, headline: str, *, failed: bool = False) -> None:
    """The run-finished summary: its first line is the run, the host and what happened."""
    from ..live.notify import host

    name = guard.run.name
    what = headline.removeprefix("trainguard: ")
    notifier.notify_text(f"trainguard: {name} on {host()}: {'FAILED' if failed else 'finished'}",
                         f"{name} on {host()}: {what}", level="error" if failed else "info", key=f"{name}:finished")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def finish(guard: Any, *, report: str | None, headline: str, extra_findings: list[Any] | None = None) -> Any:
    """Print ``headline`` and the diagnosis to stderr, write ``report``; returns the Diagnosis (None without data).

    ``extra_findings`` are the sink's own (a crash, a stall): they join the
    diagnosis, so a run that crashed is never reported healthy.
    """
    say(headline)
    if guard.points == 0:
        say("trainguard: no metrics were recognised in the output; nothing to diagnose")
        return None
    try:
        diagnosis = guard.diagnose()
        if extra_findings:
            diagnosis.findings = [*extra_findings, *diagnosis.findings]
        # `run` and `watch` take no --config: say where the settings come from instead
        diagnosis.unknowns = [_no_config_flag(u) for u in diagnosis.unknowns]
    except Exception as e:  # the training already ran: never lose the headline over a reporting bug
        say(f"trainguard: could not diagnose the run ({type(e).__name__}: {e})")
        return None
    try:
        from ..report.terminal import print_report

        print_report(diagnosis, err_console)
    except ImportError:
        say(f"trainguard: {diagnosis.status}: {diagnosis.verdict()}")
    if report:
        write_report(diagnosis, Path(report))
        say(f"trainguard: report written to {report}")
    return diagnosis


def _no_config_flag(text: str) -> str:
    """An unknown's hint rewritten for the live commands, which read the trainer's settings, not ``--config``."""
    if "--config" not in text:
        return text
    head = text.split(":")[0].split("(")[0].strip()
    return (f"{head}: not reported by the job (trainguard run reads the settings of an HF or Lightning Trainer it "
            "attaches to; trainguard analyze on the output folder reads the config files saved there)")


def write_report(diagnosis: Any, path: Path) -> None:
    """The report in the format its suffix names: .json, .html, else Markdown."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            from ..report.json import render_json

            text = render_json(diagnosis)
        elif suffix in (".html", ".htm"):
            from ..report.html import render_html

            text = render_html(diagnosis)
        else:
            from ..report.markdown import render_markdown

            text = render_markdown(diagnosis)
    except ImportError:
        text = json.dumps(diagnosis.to_dict(), indent=2)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the report ({e.strerror})", key="report", path=path) from None
