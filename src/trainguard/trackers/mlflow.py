"""MLflow through its own client: runs on a tracking server as sources, tags and the report written back, live decisions logged.

Reading needs only ``mlflow-skinny`` (the ``trainguard[mlflow]`` extra): the
client, without pandas, pyarrow or Flask. ``get_metric_history`` keeps every
step, so a run is read in full, never from the latest values. Params are a
config source, mapped like TrainingArguments (which the HF MLflow callback
logs as params).

The client retries an unreachable server for minutes by default; a scan sets
``MLFLOW_HTTP_REQUEST_MAX_RETRIES``/``TIMEOUT`` low (unless the user set them)
so a dead server is one error line, not a hang.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

from ..errors import InputError, NoMetricsError
from ..run import Run, Series

log = logging.getLogger("trainguard.trackers")

FORMAT = "mlflow"
SOURCE = "MLflow params"
TAG_PREFIX = "trainguard."
REPORT_ARTIFACT = "trainguard/report.html"
_PAGE = 1000


def client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` with short HTTP retries; InputError naming the extra when mlflow is absent."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise InputError(uri, "reading MLflow needs its client: pip install 'trainguard[mlflow]'") from None
    return MlflowClient(tracking_uri=uri)


def list_runs(uri: str, experiments: list[str]) -> tuple[list[Any], list[Any]]:
    """Scan targets for every run of ``experiments`` (all active ones when empty) on the server at ``uri``."""
    from ..scan.discover import Target, print_of

    c = client(uri)
    try:
        if experiments:
            exps = []
            for name in experiments:
                e = c.get_experiment_by_name(name)
                if e is None:
                    known = sorted(x.name for x in c.search_experiments())
                    raise InputError(uri, f"no experiment named {name!r}; the server has: {', '.join(known) or 'none'}")
                exps.append(e)
        else:
            exps = list(c.search_experiments())
        targets, skips = [], []
        for e in exps:
            token = None
            while True:
                page = c.search_runs([e.experiment_id], max_results=_PAGE, page_token=token)
                for r in page:
                    info, data = r.info, r.data
                    name = info.run_name or info.run_id
                    fp = print_of([info.status, info.end_time, sorted(data.metrics.items())])
                    targets.append(Target("mlflow", uri, f"{uri} experiment {e.name!r} run {name!r} ({info.run_id})",
                                          run_id=info.run_id, fingerprint=fp,
                                          extra={"experiment": e.name, "run_name": name}))
                token = page.token
                if not token:
                    break
        return targets, skips
    except InputError:
        raise
    except Exception as e:  # the client wraps connection errors in its own types
        raise InputError(uri, f"cannot list runs on the MLflow tracking server ({_why(e)})") from None


def read_run(uri: str, run_id: str, *, c: Any = None) -> Run:
    """One run's metric histories (every step, with wall times) and params."""
    from ..configs import config_from_dict
    from ..readers._names import canonical

    c = c or client(uri)
    try:
        r = c.get_run(run_id)
        info, data = r.info, r.data
        run = Run(name=info.run_name or run_id, format=FORMAT, sources=[f"{uri} run {run_id}"])
        for key in sorted(data.metrics):
            hist = c.get_metric_history(run_id, key)
            pts = sorted((int(m.step), float(m.value), m.timestamp / 1000.0) for m in hist)
            if pts:
                steps, values, walls = zip(*pts, strict=True)
                run.history.set(canonical(key), Series(steps, values, None, walls))
    except Exception as e:
        raise InputError(f"{uri} run {run_id}", f"cannot read the run from MLflow ({_why(e)})") from None
    if not any(len(s) for s in run.history.values()):
        raise NoMetricsError(f"{uri} run {run_id}", "the MLflow run has no metric history")
    if data.params:
        run.config.merge(config_from_dict(dict(data.params), SOURCE))
    if info.start_time:
        run.start_time = info.start_time / 1000.0
    if info.end_time:
        run.end_time = info.end_time / 1000.0
    run.finished = info.status == "FINISHED" if info.status in ("FINISHED", "RUNNING") else None
    run.notes.append(f"read through the MLflow client from {uri} (run {run_id})")
    return run


def tags_for(summary: dict[str, Any]) -> dict[str, str]:
    """The tags ``--write-back`` sets: verdict, status, best step and value, waste, top finding."""
    best = summary.get("best") or {}
    waste = summary.get("waste") or {}
    top = summary.get("top_finding") or {}
    tags = {
        "verdict": summary.get("verdict"),
        "status": summary.get("status"),
        "message": summary.get("message"),
        "best_step": best.get("step"),
        "best_value": best.get("value"),
        "best_metric": best.get("metric"),
        "best_checkpoint_saved": best.get("checkpoint_saved"),
        "waste_steps": waste.get("steps"),
        "waste_fraction": None if waste.get("fraction") is None else round(float(waste["fraction"]), 4),
        "waste_hours": waste.get("hours"),
        "waste_gpu_hours": waste.get("gpu_hours"),
        "top_finding": top.get("code"),
    }
    return {TAG_PREFIX + k: str(v)[:5000] for k, v in tags.items() if v is not None}


def write_back(uri: str, run_id: str, summary: dict[str, Any], report_html: str | None, *, c: Any = None) -> None:
    """Set the ``trainguard.*`` tags on the run and log the HTML report as an artifact."""
    c = c or client(uri)
    try:
        for k, v in tags_for(summary).items():
            c.set_tag(run_id, k, v)
        if report_html is not None:
            c.log_text(run_id, report_html, REPORT_ARTIFACT)
    except Exception as e:
        raise InputError(f"{uri} run {run_id}", f"cannot write tags back to MLflow ({_why(e)})") from None


class MlflowSink:
    """Logs the live guard's decisions to the active MLflow run (``mlflow.start_run()`` or the HF MLflow callback).

    Each alert, save or stop becomes a ``trainguard.*`` tag (the latest
    reason) and a ``trainguard_action`` metric at that step (1 alert, 2 save,
    3 stop), so the decision shows on the run's charts. Without an active run
    it does nothing.
    """

    _CODES: ClassVar[dict[str, int]] = {"alert": 1, "save": 2, "stop": 3}

    def __init__(self) -> None:
        self._failed = False

    def on_action(self, action: Any, guard: Any) -> None:
        try:
            import mlflow

            if mlflow.active_run() is None:
                return
            tags = {f"{TAG_PREFIX}last_action": action.kind, f"{TAG_PREFIX}last_reason": (action.reason or "")[:5000]}
            b = getattr(guard, "best", None)
            if b is not None:
                tags[f"{TAG_PREFIX}best_step"] = str(b.step)
                tags[f"{TAG_PREFIX}best_value"] = f"{b.value:.6g}"
            if action.stop:  # the first stop: a loop that keeps logging after it does not move it
                first = getattr(guard, "stopped", None) or action
                tags[f"{TAG_PREFIX}stopped_at"] = str(first.step)
            mlflow.set_tags(tags)
            mlflow.log_metric("trainguard_action", self._CODES.get(action.kind, 0), step=int(action.step))
        except Exception as e:
            if not self._failed:
                self._failed = True
                log.warning("trainguard: logging to MLflow failed (%s); training continues", type(e).__name__)

    def close(self) -> None:
        return None


def _why(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    if len(msg) > 200:
        msg = msg[:197] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


__all__ = ["MlflowSink", "client", "list_runs", "read_run", "tags_for", "write_back"]
