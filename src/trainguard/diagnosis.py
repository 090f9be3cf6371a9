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

from .facts.values import Best, LRSchedule, Waste
from .findings import Finding, Severity, worst
from .run import Run

FLAGS = ("green", "yellow", "orange", "red", "black")


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

    def _repr_html_(self) -> str:
        """In a notebook: the HTML report's summary and loss plot (``report/notebook.py``), not a dataclass repr."""
        from .report.notebook import notebook_html

        return notebook_html(self)

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
    """Run every detector on ``run`` once and join the findings with its config.

    The best point, the waste after it and the LR schedule followed are facts
    of the run (:func:`trainguard.facts.facts_of`), computed once and shared
    with the detectors; this step adds phases with flags, causes tied to config
    values (with their sources) and config changes. No detector runs twice.
    """
    from .causes import find_causes
    from .detectors import run_all
    from .facts import facts_of
    from .phases import split_phases
    from .recommendations import recommend

    facts = facts_of(run)
    findings = run_all(run)
    best = facts.best
    waste = facts.waste
    lr = facts.schedule
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
