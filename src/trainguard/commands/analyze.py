"""``trainguard analyze PATH...``: a log or output folder becomes a diagnosis.

The report goes to stdout (or ``-o FILE``), everything else (progress, the
one-line errors, "wrote FILE") to stderr, so ``--json`` pipes cleanly.
Exit codes: 0 healthy or warnings only, 1 a finding at error level or worse
in any run, 2 bad input or usage (one ``error: <file>: <problem>`` line).

JSON: one run prints one object; several runs (several paths, or a folder
holding several runs) print an array of objects, in the order given.
"""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path

import typer

from ._common import EXIT_FINDINGS, EXIT_OK, err_console, guarded, load_numpy, sigterm_as_interrupt

_BIG_FILE = 64 * 1024 * 1024  # show a spinner on stderr past this size


class ReportFormat(str, enum.Enum):
    terminal = "terminal"
    md = "md"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        paths: list[str] = typer.Argument(..., help="Log files, output folders, or - for stdin.", show_default=False),
        config: list[str] = typer.Option(
            [], "--config", "-c", help="Config file(s): training_args.json/yaml, adapter_config.json, ds_config.json. Repeatable."
        ),
        fmt: ReportFormat = typer.Option(ReportFormat.terminal, "--format", "-f", help="Report format."),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of stdout."),
        pattern: str | None = typer.Option(None, "--pattern", help="Regex with named groups (step, loss, eval_loss, lr ...) for custom logs."),
        reader: str | None = typer.Option(None, "--reader", help="Force a log reader by name (skips format sniffing)."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
        html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report with plots to FILE."),
        plots: Path | None = typer.Option(None, "--plots", help="Also write the plots as PNGs into DIR, named after the hyper-parameters."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Also say how the log was read: reader, points per metric, notes."),
    ) -> None:
        """Diagnose a run from its log or output folder: findings, best point, waste, causes, config changes."""
        old = os.environ.get("TRAINGUARD_DEBUG")
        if debug:
            os.environ["TRAINGUARD_DEBUG"] = "1"
        try:
            code = _analyze(paths, config, ReportFormat.json if as_json else fmt, output, pattern, reader, html, plots, verbose)
        finally:
            if debug:
                if old is None:
                    os.environ.pop("TRAINGUARD_DEBUG", None)
                else:
                    os.environ["TRAINGUARD_DEBUG"] = old
        raise typer.Exit(code)


@guarded
def _analyze(
    paths: list[str],
    config: list[str],
    fmt: ReportFormat,
    output: Path | None,
    pattern: str | None,
    reader: str | None,
    html: Path | None = None,
    plots: Path | None = None,
    verbose: bool = False,
) -> int:
    with sigterm_as_interrupt():  # SIGTERM unwinds like Ctrl-C: a spooled stdin file is removed
        return _analyze_inner(paths, config, fmt, output, pattern, reader, html, plots, verbose)


def _analyze_inner(
    paths: list[str],
    config: list[str],
    fmt: ReportFormat,
    output: Path | None,
    pattern: str | None,
    reader: str | None,
    html: Path | None,
    plots: Path | None,
    verbose: bool,
) -> int:
    from .. import _prefetch

    with _prefetch.ahead(paths if reader is None and pattern is None else ()):  # a big Trainer log: read during the imports
        return _diagnose_and_report(paths, config, fmt, output, html, plots, verbose, pattern=pattern, reader=reader)


def _diagnose_and_report(paths: list[str], config: list[str], fmt: ReportFormat, output: Path | None, html: Path | None,
                         plots: Path | None, verbose: bool, *, pattern: str | None, reader: str | None) -> int:
    load_numpy()
    from .._validate import require_points
    from ..diagnosis import diagnose
    from ..errors import InputError

    for c in config:  # fail before reading a big log, naming the file
        if not Path(c).is_file():
            raise InputError(c, "no such config file" if not Path(c).exists() else "--config expects a file")
    runs = []
    skipped = []  # files of a folder that were not read, each with its reason (readers._protocol.Skipped)
    for p in paths:
        found = _read(p, config, pattern, reader)
        skipped.extend(getattr(found, "skipped", ()))
        for run in found:  # no usable point: exit 2, never a "healthy" verdict on a broken file
            require_points(run, (run.sources[0] if len(found) > 1 and run.sources else p))
        runs.extend(found)
    diagnoses = [diagnose(r) for r in runs]
    if html is not None or plots is not None:
        from ..report.html import write_outputs

        for f in write_outputs(diagnoses, html_path=html, plots_dir=plots):
            err_console.print(f"wrote {f}", highlight=False, markup=False)
    text = _render(diagnoses, fmt, to_file=output is not None, verbose=verbose)
    if text is not None and skipped and fmt is ReportFormat.json:
        text = _with_skipped(text, skipped)
    if text is not None:
        if output is not None:
            output.write_text(text, encoding="utf-8")
            err_console.print(f"wrote {output}", highlight=False, markup=False)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    return EXIT_FINDINGS if any(d.exit_code for d in diagnoses) else EXIT_OK


def _read(path: str, config: list[str], pattern: str | None, reader: str | None) -> list:
    """Every run at ``path`` with its configs attached (explicit ``--config`` first)."""
    from .._validate import reading
    from ..configs import attach
    from ..readers import read_runs

    big = path != "-" and Path(path).is_file() and Path(path).stat().st_size > _BIG_FILE
    with reading(path):
        if big and err_console.is_terminal:
            with err_console.status(f"reading {path} ({Path(path).stat().st_size / 2**20:.0f} MiB)…"):
                runs = read_runs(path, fmt=reader, pattern=pattern)
        else:
            runs = read_runs(path, fmt=reader, pattern=pattern)
        for run in runs:
            where = path if (len(runs) == 1 or not run.sources) else run.sources[0]
            attach(run, where, extra=config)
    from .._sanitize import clean

    for s in getattr(runs, "skipped", ()):  # folder mode names every file it did not read
        err_console.print(f"skipped {clean(s.path, newlines=False)}: {clean(s.reason, newlines=False)}", highlight=False, markup=False,
                          soft_wrap=True)
    return runs


def _with_skipped(text: str, skipped: list) -> str:
    """The JSON report with ``skipped_files`` ([{path, reason}]) added to each run object."""
    import json

    doc = json.loads(text)
    for item in doc if isinstance(doc, list) else [doc]:
        item["skipped_files"] = [s.to_dict() for s in skipped]
    return json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"


def _render(diagnoses: list, fmt: ReportFormat, *, to_file: bool, verbose: bool = False) -> str | None:
    if fmt is ReportFormat.json:
        from ..report.json import render_json

        return render_json(diagnoses)
    if fmt is ReportFormat.md:
        from ..report.markdown import render_markdown

        return "\n---\n\n".join(render_markdown(d, verbose=verbose) for d in diagnoses)
    from rich.console import Console
    from rich.rule import Rule
    from rich.text import Text

    from .._sanitize import Sanitized, clean
    from ..report.terminal import render

    if to_file:
        import io

        buf = io.StringIO()
        console = Console(file=buf, width=100, color_system=None, highlight=False)
    else:
        # piped or redirected: 100 columns (rich would pick 80) unless COLUMNS says otherwise
        width = None if (sys.stdout.isatty() or "COLUMNS" in os.environ) else 100
        console = Console(file=sys.stdout, highlight=False, width=width)
        buf = None
    for i, d in enumerate(diagnoses):
        if len(diagnoses) > 1:
            if i:
                console.print()
            console.print(Rule(Text(clean(d.run.name or f"run {i + 1}", newlines=False))))
        console.print(Sanitized(render(d, verbose=verbose)))
    return buf.getvalue() if buf is not None else None


__all__ = ["register"]
