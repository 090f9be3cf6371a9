"""The Diagnosis: findings joined with the RunConfig into phases, causes and config changes.

Reporters (terminal, markdown, json, html) render a :class:`Diagnosis` and
compute nothing themselves. ``Diagnosis.to_dict()`` *is* the JSON contract of
``trainguard analyze --json``: keep its names, add fields freely.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .findings import Finding, Severity, worst
from .run import Run

FLAGS = ("green", "yellow", "orange", "red", "black")


@dataclass(frozen=True)
class Best:
    """The best eval point (or best train point when there is no eval)."""

    metric: str
    step: int
    value: float
    epoch: float | None = None
    checkpoint_saved: bool | None = None  # None: unknown (no checkpoint info)
    checkpoint_path: str | None = None


@dataclass(frozen=True)
class Waste:
    """Compute spent after the best point."""

    steps: int = 0
    fraction: float = 0.0
    hours: float | None = None
    gpu_hours: float | None = None
    gpus: int | None = None
    gpus_assumed: bool = False  # True when the GPU count was not found and 1 was assumed
    deletable_checkpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LRSchedule:
    """The LR schedule actually followed against the configured one."""

    inferred: dict[str, Any] | None = None  # {"shape": "linear", "peak": 2e-4, "warmup_steps": 0, ...}
    configured: dict[str, Any] | None = None  # {"type": "constant", "source": "training_args.json"}
    cause: str | None = None  # why they differ, when known
    matches: bool | None = None  # None: nothing to compare


@dataclass(frozen=True)
class Phase:
    name: str  # learning | divergence | overfitting | memorization | dead | plateau | unstable | warmup
    start_step: int
    end_step: int
    flag: str  # one of FLAGS
    summary: str = ""


@dataclass(frozen=True)
class Cause:
    """A root cause tied to the config value(s) that explain it."""

    title: str
    explanation: str
    config_keys: list[str] = field(default_factory=list)
    config_values: dict[str, Any] = field(default_factory=dict)
    finding_codes: list[str] = field(default_factory=list)
    confidence: str = "likely"  # likely | possible | unknown


@dataclass(frozen=True)
class Recommendation:
    """A concrete config change in the user's own framework, with the reason."""

    key: str
    current: Any
    suggested: Any
    reason: str
    framework: str  # TrainingArguments | LoraConfig | deepspeed | trainguard | EarlyStoppingCallback | custom


@dataclass
class Diagnosis:
    run: Run
    findings: list[Finding]
    best: Best | None = None
    lr_schedule: LRSchedule = field(default_factory=LRSchedule)
    waste: Waste | None = None
    phases: list[Phase] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)

    @property
    def severity(self) -> Severity | None:
        return worst(self.findings)

    @property
    def status(self) -> str:
        """healthy | warning | error | critical."""
        s = self.severity
        if s is None or s is Severity.INFO:
            return "healthy"
        return s.value

    @property
    def exit_code(self) -> int:
        """0 healthy or warnings only, 1 error-level findings or worse."""
        s = self.severity
        return 1 if s is not None and s >= Severity.ERROR else 0

    def verdict(self) -> str:
        """One line: the worst finding's message, or that the run looks healthy."""
        if not self.findings:
            return "No problems found."
        if self.status == "healthy":
            n = len(self.findings)
            return f"No problems found ({n} note{'s' if n != 1 else ''} below)."
        top = sorted(self.findings, key=lambda f: (-f.severity.rank, f.start_step or 0))[0]
        return top.message

    def metrics_summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, s in self.run.history.items():
            if not len(s):
                continue
            out[name] = {
                "points": len(s),
                "first_step": int(s.steps[0]),
                "last_step": int(s.steps[-1]),
                "first": _num(s.values[0]),
                "last": _num(s.values[-1]),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "schema": "trainguard.analyze/1",
            "run": run.name,
            "format": run.format,
            "sources": list(run.sources),
            "status": self.status,
            "verdict": self.verdict(),
            "best": None if self.best is None else _clean(asdict(self.best)),
            "findings": [_clean(f.to_dict()) for f in self.findings],
            "lr_schedule": _clean(asdict(self.lr_schedule)),
            "waste": None if self.waste is None else _clean(asdict(self.waste)),
            "phases": [_clean(asdict(p)) for p in self.phases],
            "causes": [_clean(asdict(c)) for c in self.causes],
            "recommendations": [_clean(asdict(r)) for r in self.recommendations],
            "unknowns": list(self.unknowns),
            "metrics": self.metrics_summary(),
            "config": _clean(run.config.to_dict()),
            "run_info": _clean(
                {
                    "gpus": run.num_gpus,
                    "train_runtime_s": run.train_runtime,
                    "planned_steps": run.planned_steps,
                    "last_step": run.last_step,
                    "steps_per_epoch": run.steps_per_epoch,
                    "finished": run.finished,
                    "checkpoints": sorted(run.checkpoints),
                    "notes": list(run.notes),
                    "skipped_lines": run.skipped_lines,
                }
            ),
        }


def _num(x: Any) -> Any:
    """JSON-safe number: NaN/inf become strings, numpy scalars become Python ones."""
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, Severity):
        return obj.value
    return _num(obj)


def diagnose(run: Run) -> Diagnosis:
    """Run every detector on ``run`` and join the findings with its config.

    The detectors are pure functions of the Run; this step adds the best point,
    the waste after it, the LR schedule followed, phases with flags, causes
    tied to config values (with their sources) and config changes. Where a
    detector helper is not installed, a minimal evidence-only fallback is used
    so that a report can still be written.
    """
    from .causes import find_causes
    from .detectors import run_all
    from .phases import split_phases
    from .recommendations import recommend

    findings = run_all(run)
    best = _best(run)
    waste = _waste(run, best)
    lr = _lr_schedule(run)
    phases = split_phases(run, findings, best, lr)
    causes, unknowns = find_causes(run, findings, best, waste, lr)
    recs = recommend(run, findings, causes, best, lr, waste)
    return Diagnosis(
        run=run,
        findings=findings,
        best=best,
        lr_schedule=lr,
        waste=waste,
        phases=phases,
        causes=causes,
        recommendations=recs,
        unknowns=unknowns,
    )


def _helper(module: str, name: str) -> Any:
    """``trainguard.detectors.<module>.<name>``, or None while that detector is not installed."""
    import importlib

    try:
        mod = importlib.import_module(f"trainguard.detectors.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"trainguard.detectors.{module}":
            raise  # the module exists but imports something missing: a bug to see
        return None
    return getattr(mod, name, None)


def _best(run: Run) -> Best | None:
    fn = _helper("overfitting", "best_point")
    if fn is not None:
        return fn(run)
    # Fallback: the eval-loss minimum, else the (noisy) train-loss minimum.
    from .run import EVAL_LOSS, TRAIN_LOSS

    for name in (EVAL_LOSS, TRAIN_LOSS):
        s = run.history.get_series(name).finite()
        if len(s):
            i = int(np.argmin(s.values))
            step = int(s.steps[i])
            saved = (step in run.checkpoints) if run.checkpoints else None
            ck = run.checkpoints.get(step)
            return Best(name, step, float(s.values[i]), s.epoch_at(i), saved, ck.path if ck else None)
    return None


def _waste(run: Run, best: Best | None) -> Waste | None:
    fn = _helper("waste", "compute_waste")
    if fn is not None:
        return fn(run, best)
    last = run.last_step
    if best is None or last is None or best.metric != "eval_loss" or last <= best.step:
        return None
    steps = last - best.step
    sps = run.seconds_per_step()
    hours = steps * sps / 3600 if sps else None
    gpus = run.num_gpus or run.config.world_size
    return Waste(
        steps=steps,
        fraction=steps / max(last, 1),
        hours=hours,
        gpu_hours=None if hours is None else hours * (gpus or 1),
        gpus=gpus or 1,
        gpus_assumed=gpus is None,
    )


def _lr_schedule(run: Run) -> LRSchedule:
    fn = _helper("lr_schedule", "infer_schedule")
    if fn is not None:
        return fn(run)
    t = run.config.get("lr_scheduler_type")
    configured = None if t is None else {"type": t, "source": run.config.source("lr_scheduler_type")}
    return LRSchedule(inferred=None, configured=configured, cause=None, matches=None)


__all__ = [
    "FLAGS",
    "Best",
    "Cause",
    "Diagnosis",
    "LRSchedule",
    "Phase",
    "Recommendation",
    "Waste",
    "diagnose",
]
