"""trainguard: stop LLM training runs from wasting GPU-days.

The front door is small: read a run, diagnose it, or guard one live.

>>> import trainguard
>>> run = trainguard.read_run("out/")            # doctest: +SKIP
>>> diagnosis = trainguard.analyze(run)          # doctest: +SKIP
>>> guard = trainguard.Guard()                   # doctest: +SKIP
>>> html = trainguard.render_html(diagnosis)     # doctest: +SKIP

Heavy libraries (torch, transformers, matplotlib) are never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError, GuardError, InputError, TrainguardError
from .findings import Finding, Severity

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .diagnosis import Diagnosis
    from .run import History, Run, RunConfig, Series

# Imported on first use: the data model pulls in numpy, which `trainguard --help` and `lint` never need.
_LAZY = {"Guard": "live.guard", "History": "run", "Run": "run", "RunConfig": "run", "Series": "run"}


def read_run(path: Any, **kwargs: Any) -> Run:
    """Read the run at ``path`` (a log file, an output folder, ``-``) with its configs."""
    from .readers import read_run as _read_run

    return _read_run(path, **kwargs)


def read_runs(path: Any, **kwargs: Any) -> list[Run]:
    """Every run at ``path``: a folder of several runs, a log holding several restarts, or one run."""
    from .readers import read_runs as _read_runs

    return _read_runs(path, **kwargs)


def render_html(diagnosis: Diagnosis, *, title: str | None = None) -> str:
    """The self-contained HTML report of ``diagnosis`` as a string (plots inline; matplotlib imported here)."""
    from .report.html import render_html as _render_html

    return _render_html(diagnosis, title=title)


def analyze(run_or_path: Any, **kwargs: Any) -> Diagnosis:
    """Diagnose a Run (or the run at a path): findings, best point, waste, causes, recommendations."""
    from .diagnosis import diagnose
    from .run import Run

    run = run_or_path if isinstance(run_or_path, Run) else read_run(run_or_path, **kwargs)
    return diagnose(run)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = [
    "ConfigError",
    "Finding",
    "Guard",
    "GuardError",
    "History",
    "InputError",
    "Run",
    "RunConfig",
    "Series",
    "Severity",
    "TrainguardError",
    "__version__",
    "analyze",
    "read_run",
    "read_runs",
    "render_html",
]
