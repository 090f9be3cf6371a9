"""Detectors: pure functions ``detect(run) -> list[Finding]``, one module each.

The same code runs offline (``trainguard analyze``) and live (the Guard feeds
a growing Run). A module's name says what it finds; its findings' codes are in
:data:`trainguard.findings.CODES`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..findings import Finding
from ..run import Run

# One entry per detector module; order is the report order for equal severity.
MODULES: tuple[str, ...] = ("divergence", "overfitting", "memorization", "eval_explosion", "spikes", "plateau", "grad_norm", "lr_schedule", "waste", "no_eval", "resources")


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m}") for m in MODULES]


def run_all(run: Run) -> list[Finding]:
    """Every detector's findings on ``run``, worst first."""
    out: list[Finding] = []
    for m in modules():
        out.extend(m.detect(run))
    out.sort(key=lambda f: (-f.severity.rank, f.start_step if f.start_step is not None else -1))
    return out


__all__ = ["MODULES", "modules", "run_all"]
