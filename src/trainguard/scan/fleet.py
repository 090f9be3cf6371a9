"""``trainguard scan``: every run found, analyzed in parallel worker processes, summarised for the fleet index.

The main process discovers targets (cheap: stats and sniffs), serves what the
cache still holds, and hands the rest to a ``ProcessPoolExecutor`` (all cores
by default): reading and diagnosing are CPU-bound Python, so threads would
share one core. A worker returns plain dicts (summaries and skips), never a
Run or a Diagnosis, so nothing large or unpicklable crosses back.

One unreadable run is a named skip with its reason; a worker that dies (out
of memory, a crash in a C extension) costs only the runs it held, which are
skipped with that reason, and the scan goes on.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, TrainguardError
from .cache import ScanCache
from .discover import Skip, Target, find_targets
from .summary import summarize, totals

REPORTS = "runs"  # per-run reports go to <html dir>/runs/


@dataclass
class ScanResult:
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    targets: int = 0
    cached: int = 0
    analyzed: int = 0

    def totals(self) -> dict[str, Any]:
        return totals(self.runs, self.skipped)


def scan(roots: list[str], *, experiments: list[str] | None = None, jobs: int | None = None,
         html_dir: Path | None = None, write_back: bool = False, cache_dir: Path | None = None,
         on_progress: Callable[[int, int], None] | None = None,
         on_targets: Callable[[int], None] | None = None) -> ScanResult:
    """Discover, analyze (cache first, then in parallel) and summarise every run under ``roots``.

    ``cache_dir`` None disables the cache. ``on_targets(n)`` is called once
    discovery is done, ``on_progress(done, total)`` after each target.
    """
    from .. import __version__

    exclude = [p for p in (cache_dir, html_dir) if p is not None]
    targets, skips = find_targets(roots, experiments=experiments, exclude=exclude)
    if write_back and not any(t.kind == "mlflow" for t in targets):
        raise InputError(" ".join(roots), "--write-back needs an MLflow tracking URI (http://..., sqlite:///...) to write to")
    html = str(html_dir.resolve()) if html_dir is not None else None
    cache = ScanCache(cache_dir, salt=f"{__version__}|{html or ''}|{int(write_back)}")
    res = ScanResult(targets=len(targets))
    if on_targets is not None:
        on_targets(len(targets))
    results: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    for i, t in enumerate(targets):
        hit = cache.get(t.key, t.fingerprint)
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    res.cached = len(results)
    done = len(results)

    def finished(i: int, out: dict[str, Any]) -> None:
        nonlocal done
        results[i] = out
        if not out.get("transient"):
            cache.put(targets[i].key, targets[i].fingerprint, out, files=out.get("files"))
        done += 1
        if on_progress is not None:
            on_progress(done, len(targets))

    n_jobs = max(1, jobs or os.cpu_count() or 1)
    if n_jobs == 1 or len(todo) <= 1:
        if on_progress is not None:
            on_progress(done, len(targets))
        for i in todo:
            finished(i, analyze_target(targets[i], html, write_back))
    else:
        _parallel(targets, todo, n_jobs, html, write_back, finished,
                  started=None if on_progress is None else (lambda: on_progress(done, len(targets))))
    res.analyzed = len(todo)
    for i in range(len(targets)):
        out = results.get(i) or {}
        res.runs.extend(out.get("runs", []))
        res.skipped.extend(out.get("skips", []))
    res.skipped = [s.to_dict() for s in skips] + res.skipped
    return res


def _parallel(targets: list[Target], todo: list[int], n_jobs: int, html: str | None, write_back: bool,
              finished: Callable[[int, dict[str, Any]], None], started: Callable[[], None] | None = None) -> None:
    # fork: workers start in milliseconds with trainguard already imported; the pool is
    # created before any progress thread runs, so no lock is copied held.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(todo)), mp_context=ctx) as pool:
        futs = {pool.submit(analyze_target, targets[i], html, write_back): i for i in todo}
        if started is not None:  # the workers exist now: a progress thread may start
            started()
        for fut in as_completed(futs):
            i = futs[fut]
            try:
                out = fut.result()
            except Exception as e:  # BrokenProcessPool: a worker died (OOM, a crash in C code)
                out = {"runs": [], "skips": [Skip(targets[i].label, f"not analyzed: a worker process died ({type(e).__name__})").to_dict()],
                       "transient": True}
            finished(i, out)


# -- the worker ---------------------------------------------------------------------------

def analyze_target(target: Target, html_dir: str | None, write_back: bool) -> dict[str, Any]:
    """Read, diagnose and summarise every run of one target (runs in a worker process)."""
    try:
        runs, client = _read(target)
    except TrainguardError as e:
        return {"runs": [], "skips": [Skip(target.label, _reason(e, target.label)).to_dict()]}
    except Exception as e:  # a reader bug: still one named skip, never a dead scan
        return {"runs": [], "skips": [Skip(target.label, f"internal error ({type(e).__name__}: {e})").to_dict()],
                "transient": True}  # a bug may be fixed by the next version: never cache it
    out: dict[str, Any] = {"runs": [], "skips": [], "files": []}
    for run in runs:
        source = target.label if len(runs) == 1 else f"{target.label} (run {run.name})"
        try:
            out["runs"].append(_one(target, run, source, html_dir, write_back, client, out))
        except TrainguardError as e:
            out["skips"].append(Skip(source, _reason(e, source)).to_dict())
        except Exception as e:
            out["skips"].append(Skip(source, f"internal error ({type(e).__name__}: {e})").to_dict())
            out["transient"] = True
    return out


def _read(target: Target) -> tuple[list[Any], Any]:
    from ..configs import attach

    if target.kind == "mlflow":
        from ..trackers import mlflow as tm

        c = tm.client(target.locator)
        assert target.run_id is not None
        return [tm.read_run(target.locator, target.run_id, c=c)], c
    if target.kind == "tensorboard":
        from ..readers import tensorboard

        runs = tensorboard.read_dir(target.locator)
    elif target.kind == "wandb":
        from ..readers import wandb_run

        runs = wandb_run.read_dir(target.locator)
    elif target.kind == "mlflow_store":
        from ..readers import mlflow_store

        runs = mlflow_store.read_dir(target.locator)
    else:
        from ..readers import read_runs

        runs = read_runs(target.locator)
    for run in runs:
        where = target.locator if (len(runs) == 1 or not run.sources) else run.sources[0]
        try:
            attach(run, where)
        except TrainguardError as e:  # a broken config beside a readable log: analyze the log anyway
            run.notes.append(f"config not read: {e}")
    return runs, None


def _one(target: Target, run: Any, source: str, html_dir: str | None, write_back: bool, client: Any,
         out: dict[str, Any]) -> dict[str, Any]:
    from ..diagnosis import diagnose

    d = diagnose(run)
    s = summarize(d.to_dict(), source=source)
    html_text = None
    if html_dir is not None or (write_back and target.kind == "mlflow"):
        from ..report.html import render_html

        html_text = render_html(d)
    if html_dir is not None and html_text is not None:
        from ..report.naming import safe_stem

        tag = hashlib.sha256(source.encode()).hexdigest()[:8]
        rel = f"{REPORTS}/{safe_stem(str(run.name), 60)}-{tag}.html"
        p = Path(html_dir) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(html_text, encoding="utf-8")
        s["report"] = rel
        out["files"].append(str(p))
    if write_back and target.kind == "mlflow":
        from ..trackers import mlflow as tm

        assert target.run_id is not None
        try:
            tm.write_back(target.locator, target.run_id, s, html_text, c=client)
            s["written_back"] = True
        except TrainguardError as e:
            s["written_back"] = False
            s["write_back_error"] = _reason(e)
            out["transient"] = True  # try again next scan
    return s


def _reason(e: BaseException, source: str | None = None) -> str:
    """The error in plain words, without repeating the path the skip line already names."""
    if isinstance(e, InputError) and source is not None:
        if e.path in source:
            return e.problem
        if e.path.startswith(source.split(" (run ")[0] + os.sep):  # a file inside the run's folder
            return f"{os.path.relpath(e.path, source.split(' (run ')[0])}: {e.problem}"
    return str(e)


__all__ = ["ScanResult", "analyze_target", "scan"]
