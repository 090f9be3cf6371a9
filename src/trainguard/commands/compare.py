"""``trainguard compare RUN RUN ...``: a table of runs, which setting separates good from bad, an overlay plot.

Exit codes: 0 compared (whatever the runs' verdicts: comparing is not a gate),
2 bad input (one ``error: FILE: ...`` line) or fewer than two runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ._common import EXIT_BAD_INPUT, EXIT_OK, err_console, guarded, load_numpy, sigterm_as_interrupt


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        paths: list[str] = typer.Argument(..., help="Two or more runs: log files or output folders.", show_default=False),
        name_pattern: str | None = typer.Option(None, "--name-pattern", help="Read settings from the file/folder name, e.g. "
                                                "lr_seqlen_bs_evalbs_accum_wd_epochs (names: lr seqlen bs evalbs accum wd epochs "
                                                "warmup r alpha dropout gpus steps; x skips)."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the overlay plot (PNG) to FILE."),
    ) -> None:
        """Compare runs: settings, best and final eval, wall time, waste, verdict, and what separates good from bad."""
        raise typer.Exit(_compare(paths, name_pattern, as_json, plot))


@guarded
def _compare(paths: list[str], name_pattern: str | None, as_json: bool, plot: Path | None) -> int:
    from .. import _prefetch

    if len(paths) < 2:
        print("error: compare needs at least two runs", file=sys.stderr)
        return EXIT_BAD_INPUT
    with _prefetch.ahead(paths):  # the first big Trainer logs are read on the other core during the imports
        load_numpy()
        from ..compare import compare_runs, overlay_plot

        with sigterm_as_interrupt():
            c, runs = compare_runs(list(paths), name_pattern=name_pattern)
    if plot is not None:
        overlay_plot(c, runs, plot)
        err_console.print(f"wrote {plot}", highlight=False, markup=False)
    if as_json:
        sys.stdout.write(json.dumps(c.to_dict(), indent=2, default=str) + "\n")
    else:
        _print(c)
    return EXIT_OK


class _SafeConsole:
    """A console whose every print is wrapped in Sanitized: run names and values come from input."""

    def __init__(self, console) -> None:
        self.console = console

    def print(self, r) -> None:
        from .._sanitize import Sanitized

        self.console.print(Sanitized(r))


def _hours(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def _print(c) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..report._text import gpu_hours
    from ..report.naming import fmt_value

    out = _SafeConsole(Console(highlight=False))
    sep = {d.key for d in c.separating}
    t = Table(show_header=True, header_style="bold", title="Runs compared", title_justify="left")
    t.add_column("run", overflow="fold")
    t.add_column("group")
    for k in c.differing:
        t.add_column(Text(k, style="bold yellow" if k in sep else "bold"), justify="right")
    for col in ("best eval (where)", "final eval", "wall", "waste", "status"):
        t.add_column(col, justify="right" if col != "status" else "left")
    for r in c.runs:
        where = ""
        if r.best_value is not None:
            where = f"{r.best_value:.4g} (" + (f"ep {r.best_epoch:.3g}" if r.best_epoch is not None else f"step {r.best_step}") + ")"
        final = "—" if r.final_eval is None else f"{r.final_eval:.4g}" + (f" ×{r.worse_at_end:.1f}" if r.worse_at_end and r.worse_at_end >= 1.05 else "")
        waste = "—" if r.waste_fraction is None else f"{r.waste_fraction:.0%}" + (f" ({gpu_hours(r.waste_gpu_hours)})" if r.waste_gpu_hours and r.waste_gpu_hours >= 0.5 else "")
        group_style = "green" if r.group in ("good", "better") else "red" if r.group in ("bad", "worse") else ""
        cells = [Text(r.name), Text(r.group, style=group_style)]
        for k in c.differing:
            v = fmt_value(r.params[k]) if k in r.params else "?"
            cells.append(Text(v, style="bold yellow" if k in sep else ""))
        cells += [Text(where or "—"), Text(final), Text(_hours(r.wall_seconds)), Text(waste), Text(r.status)]
        t.add_row(*cells)
    out.print(t)
    if c.same:
        out.print(Text("Same in all runs: ", style="dim").append(", ".join(f"{k}={fmt_value(v)}" for k, v in c.same.items())))
    unknown = [k for k in c.differing if any(k not in r.params for r in c.runs)]
    if unknown:
        out.print(Text(f"? = unknown (no config found, and no --name-pattern value): {', '.join(unknown)}", style="dim"))
    if c.separating:
        # one differing setting may be named a cause; several only differ (which one mattered is unknown)
        head = "Separates good from bad: " if len(c.differing) == 1 else "Differ between good and bad runs: "
        out.print(Text(head, style="bold").append(", ".join(d.key for d in c.separating), style="bold yellow"))
    if c.suggestion:
        out.print(Text("Suggests: ", style="bold").append(c.suggestion))
