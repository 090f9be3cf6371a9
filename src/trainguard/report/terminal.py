"""The terminal report: rich renderables built from a Diagnosis, verdict first.

Layout, top to bottom: one coloured verdict line; a compact block per finding
(severity, code, steps, message, the key numbers); the best point and whether
it was saved; the waste; the LR schedule followed against the configured one;
the phases with their flags; causes; recommendations as a table; unknowns; and
a footer saying how the log was read. Everything from a log is passed as
``Text`` (never as markup), so a ``[bold]`` in a metric name prints as itself.
Output is deterministic at a fixed width (tests render at 100 columns).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..diagnosis import Diagnosis
from . import _text as t


def render(d: Diagnosis, *, verbose: bool = False) -> Group:
    """The whole report as one rich renderable; ``verbose`` adds how the log was read.

    Print it wrapped in :class:`trainguard._sanitize.Sanitized` (as
    :func:`print_report` does) so control characters from the log stay inert.
    """
    return Group(*_parts(d, verbose))


def print_report(d: Diagnosis, console: Console, *, verbose: bool = False) -> None:
    from .._sanitize import Sanitized

    console.print(Sanitized(render(d, verbose=verbose)))


def verdict(d: Diagnosis) -> Text:
    """One line: status, run name, the worst finding's message."""
    status = d.status
    line = Text()
    line.append(f" {status.upper()} ", style=t.STATUS_COLOR.get(status, "bold"))
    line.append(" ")
    line.append(d.run.name or "run", style="bold")
    line.append(": ")
    line.append(d.verdict())
    return line


def _parts(d: Diagnosis, verbose: bool = False) -> Iterable[RenderableType]:
    yield verdict(d)
    yield Text(f"{d.run.format} · {', '.join(d.run.sources[:3]) or 'no source'}", style="dim")
    if d.findings:
        yield _section("Findings")
        for f in d.findings:
            head = Text("  ")
            head.append(f"{f.severity.value.upper():8}", style=t.SEVERITY_COLOR.get(f.severity.value, ""))
            head.append(f" {f.code}", style="bold")
            head.append(f"  {t.steps(f.start_step, f.end_step)}", style="dim")
            if f.confidence < 1:
                head.append(f"  confidence {f.confidence:.0%}", style="dim")
            yield head
            yield _indent(Text(f.message))
            ev = t.evidence_line(f.code, f.evidence)
            if ev:
                yield _indent(Text(ev, style="cyan"))
    else:
        yield Text("  No problems found.", style="green")

    facts = [("Best", t.best_line(d)), ("Waste", t.waste_line(d)), ("LR", _lr_line(d))]
    facts = [(k, v) for k, v in facts if v]
    if facts:
        yield _section("Key numbers")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for k, v in facts:
            style = "red" if (k == "Best" and "NOT saved" in v) else ""
            grid.add_row("  " + k, Text(v, style=style))
        yield grid

    if d.phases:
        yield _section("Phases")
        tab = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        tab.add_column("flag", no_wrap=True)
        tab.add_column("phase", no_wrap=True)
        tab.add_column("steps", no_wrap=True, justify="right")
        tab.add_column("what happened")
        for p in d.phases:
            tab.add_row(
                Text(f" {p.flag} ", style=t.FLAG_COLOR.get(p.flag, "")),
                p.name,
                f"{p.start_step}–{p.end_step}",
                Text(p.summary),
            )
        yield tab

    if d.causes:
        yield _section("Causes")
        for c in d.causes:
            line = Text("  • ")
            line.append(c.title, style="bold")
            line.append(f" ({c.confidence})", style="dim")
            yield line
            yield _indent(Text(c.explanation))

    if d.recommendations:
        yield _section("Recommendations")
        tab = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        tab.add_column("change", ratio=2)
        tab.add_column("why", ratio=3)
        for r in d.recommendations:
            change = Text()
            change.append(r.key, style="bold")
            change.append(" = ")
            change.append(t.num(r.suggested), style="green")
            change.append(f"\n{r.framework}, now {t.num(r.current)}", style="dim")
            tab.add_row(change, Text(r.reason))
        yield tab

    if d.unknowns:
        yield _section("Unknown")
        for u in d.unknowns:
            yield _indent(Text("? " + u, style="yellow"), 2)

    yield _footer(d, verbose)


def _lr_line(d: Diagnosis) -> str | None:
    lr = d.lr_schedule
    if lr.inferred is None and lr.configured is None:
        return None
    s = f"followed {t.schedule_desc(lr.inferred)}; configured {t.schedule_desc(lr.configured)}"
    if lr.matches is False:
        s += " — MISMATCH"
    if lr.cause:
        s += f"; cause: {lr.cause}"
    return s


def _indent(r: RenderableType, n: int = 4) -> Padding:
    """Indent every wrapped line, not just the first."""
    return Padding(r, (0, 0, 0, n))


def _section(title: str) -> Text:
    return Text("\n" + title, style="bold underline")


def _footer(d: Diagnosis, verbose: bool) -> Text:
    """Dropped entries and the readers' notes; with ``verbose``, also the reader and the points per metric."""
    run = d.run
    out = Text("\n", style="dim")
    if verbose:
        out.append(f"Read as {run.format}", style="dim")
        if run.num_gpus:
            out.append(f" · {t.gpus(run.num_gpus)}", style="dim")
    if run.skipped_lines:
        n = run.skipped_lines
        out.append(f"{' · ' if verbose else ''}{n} unusable log {'entry' if n == 1 else 'entries'} dropped (no numeric step or value)",
                   style="dim")
    if verbose:
        for line in t.metrics_lines(d):
            out.append("\n  " + line, style="dim")
    for n in run.notes[:8]:
        out.append("\n  note: " + n, style="dim")
    return out


__all__ = ["print_report", "render", "verdict"]
