"""What ``trainguard run`` and ``trainguard watch`` share: building the Guard and notifier, reporting at the end.

Everything here prints to stderr: under ``trainguard run`` stdout carries the
training command's own output, byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import err_console


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


def action_printer(guard: Any, notifier: Any, say: Any) -> Any:
    """The ``on_action`` hook: one stderr line per alert (stops are announced by the sink) and a notification."""

    def on_action(action: Any) -> None:
        if action.alert and not action.stop:
            say(f"trainguard: {action.reason}")
        if notifier is not None:
            notifier.notify_action(action, run_name=guard.run.name, step=action.step, best=guard.best, run=guard.run)

    return on_action


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def finish(guard: Any, *, report: str | None, headline: str) -> Any:
    """Print ``headline`` and the diagnosis to stderr, write ``report``; returns the Diagnosis (None without data)."""
    say(headline)
    if guard.points == 0:
        say("trainguard: no metrics were recognised in the output; nothing to diagnose")
        return None
    try:
        diagnosis = guard.diagnose()
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
