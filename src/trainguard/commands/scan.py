"""``trainguard scan ROOT_OR_URI...``: every run under folders and on MLflow servers, analyzed in parallel.

The fleet index goes to stdout (a table, or ``--json``: one summary per run
plus the skips and totals); the progress bar, one ``skipped SOURCE: REASON``
line per unreadable run and "wrote FILE" go to stderr. ``--html DIR`` writes
``DIR/index.html`` and one report per run under ``DIR/runs/``.

Exit codes: 0 every run healthy or warnings only, 1 a run with error-level
findings, 2 bad input (a missing root, an unreachable server, nothing readable).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from ._common import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, err_console, guarded


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        roots: list[str] = typer.Argument(..., help="Folders, log files, mlruns/ stores, W&B folders, or an MLflow "
                                          "tracking URI (http://..., sqlite:///...).", show_default=False,
                                          metavar="ROOT_OR_URI"),
        experiment: list[str] = typer.Option([], "--experiment", "-e", help="MLflow experiment name (repeatable; "
                                             "default: every experiment on the server).", metavar="NAME"),
        jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes (default: all cores).",
                               show_default=False, metavar="N"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary per run (plus skips and totals)."),
        html: Path | None = typer.Option(None, "--html", help="Write a sortable index page and one report per run into DIR.",
                                           metavar="DIR"),
        write_back: bool = typer.Option(False, "--write-back", help="Set trainguard.* tags and log the HTML report "
                                        "as an artifact on each MLflow run."),
        cache: Path | None = typer.Option(None, "--cache", help="Cache folder (default $TRAINGUARD_CACHE_DIR or "
                                          "~/.cache/trainguard/scan); only changed runs are re-analyzed.", metavar="DIR"),
        no_cache: bool = typer.Option(False, "--no-cache", help="Analyze every run again and keep no cache."),
    ) -> None:
        """Find and diagnose every run under folders and on MLflow servers; write a fleet index."""
        raise typer.Exit(_scan(roots, experiment, jobs, as_json, html, write_back, cache, no_cache))


@guarded
def _scan(roots: list[str], experiments: list[str], jobs: int, as_json: bool, html: Path | None,
          write_back: bool, cache: Path | None, no_cache: bool) -> int:
    from ..scan import scan
    from ..scan.cache import default_dir

    cache_dir = None if no_cache else (cache or default_dir()).expanduser().resolve()
    n_jobs = jobs or _cores()
    with _Bar() as bar:
        res = scan(roots, experiments=experiments, jobs=n_jobs, html_dir=html, write_back=write_back,
                   cache_dir=cache_dir, on_progress=bar.update)
    for s in res.skipped:
        _line(f"skipped {s['source']}: {s['reason']}")
    for r in res.runs:
        if r.get("write_back_error"):
            _line(f"write-back failed for {r['source']}: {r['write_back_error']}")
    tot = res.totals()
    if html is not None:
        from ..scan.index import write_index

        p = write_index(res, html, roots=roots)
        err_console.print(f"wrote {p} ({len(res.runs)} run reports in {html / 'runs'})", highlight=False, markup=False)
    if as_json:
        from ..scan.summary import SCHEMA

        doc = {"schema": SCHEMA, "roots": roots, "runs": res.runs, "skipped": res.skipped, "totals": tot,
               "analyzed": res.analyzed, "from_cache": res.cached}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    elif res.runs:
        _print_table(res.runs, tot)
    _line(f"trainguard scan: {res.analyzed} analyzed, {res.cached} from the cache, {len(res.skipped)} skipped")
    if not res.runs:
        _line("error: no readable run found under " + ", ".join(roots))
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if any(r.get("exit_code") for r in res.runs) else EXIT_OK


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _clean(s: Any) -> str:
    try:
        from .._sanitize import clean
    except ImportError:  # pragma: no cover
        import re

        return re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f]", "?", str(s))
    return clean(s, newlines=False)


def _line(text: str) -> None:
    print(" ".join(_clean(text).split()), file=sys.stderr, flush=True)


def _print_table(runs: list[dict[str, Any]], tot: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..scan.summary import totals_sentence

    width = None if (sys.stdout.isatty() or "COLUMNS" in os.environ) else 120
    console = Console(file=sys.stdout, highlight=False, width=width)
    t = Table(show_edge=False, header_style="bold")
    for name, just in (("run", "left"), ("verdict", "left"), ("best step", "right"), ("after best", "right"),
                       ("GPU-hours after", "right"), ("top finding", "left")):
        t.add_column(name, justify=just)  # type: ignore[arg-type]
    for r in runs:
        best = r.get("best") or {}
        w = r.get("waste") or {}
        top = r.get("top_finding") or {}
        frac = w.get("fraction")
        t.add_row(Text(_clean(r.get("run"))), Text(str(r.get("verdict"))),
                  "" if best.get("step") is None else f"{best['step']:,}",
                  "" if frac is None else f"{w.get('steps', 0):,} ({100 * frac:.0f}%)",
                  "" if w.get("gpu_hours") is None else f"{w['gpu_hours']:,.2f}",
                  Text(_clean(top.get("code") or "")))
    console.print(t)
    console.print(Text(totals_sentence(tot) + "."))


class _Bar:
    """A rich progress bar on stderr (only on a terminal: piped stderr stays clean)."""

    def __enter__(self) -> _Bar:
        self._p = None
        if err_console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               console=err_console, transient=True)
        self._task = None
        return self

    def update(self, done: int, total: int) -> None:
        if self._p is None:
            return
        if self._task is None:
            self._p.start()
            self._task = self._p.add_task("scan", total=total)
        self._p.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None and self._task is not None:
            self._p.stop()
