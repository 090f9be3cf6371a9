"""Eval-metric explosion: an eval metric (perplexity, or any lower-is-better ``eval_*``) growing exponentially.

Seed 004: a Paloma perplexity went 2.55e19 -> 4.98e30. The test is a
log-linear fit of the metric against step over its rise (from its minimum to
the end): it must grow by at least an order of magnitude with r2 >= 0.6, so a
noisy eval that ends high by chance is not called exponential. For eval_loss
itself (a log quantity already) the bar is a 5x rise above its minimum;
smaller rises are overfitting's business. Bounded higher-is-better scores
(accuracy, F1) cannot explode and are skipped.
"""

from __future__ import annotations

import math

import numpy as np

from ..facts._smoothing import linfit
from ..facts._view import clamp01, fmt, higher_is_better, judged_metrics, run_xy
from ..findings import Finding, Severity
from ..run import EVAL_LOSS, Run


def detect(run: Run, *, min_factor: float = 10.0, loss_factor: float = 5.0, min_r2: float = 0.6) -> list[Finding]:
    """One ``eval_metric_explosion`` finding per exploding eval metric."""
    out: list[Finding] = []
    for name in judged_metrics(run):
        if higher_is_better(name):
            continue
        st, v = run_xy(run, name)
        if len(v) < 3 or float(v.min()) <= 0:
            continue
        i = int(np.argmin(v))
        if len(v) - i < 3:
            continue
        vmin, last = float(v[i]), float(v[-1])
        factor = last / vmin
        need = loss_factor if name == EVAL_LOSS else min_factor
        if factor < need:
            continue
        rs, rv = st[i:].astype(float), np.log(v[i:])
        slope, _, r2 = linfit(rs, rv)
        if r2 < min_r2 and len(rs) > 5:
            # slow drift then a blow-up (seed 004 after step 8,800): the recent growth is the exponential part
            slope, _, r2 = linfit(rs[-5:], rv[-5:])
        if slope <= 0 or r2 < min_r2:
            continue
        per_1k = math.exp(min(slope * 1000, 700))
        first = float(v[0])
        sev = Severity.ERROR
        msg = (
            f"{name} grew exponentially from {fmt(vmin)} (step {int(st[i])}) to {fmt(last)} (step {int(st[-1])}), "
            f"x{fmt(factor)}: about x{fmt(per_1k)} per 1000 steps (log-linear fit r2={r2:.2f}); the model's predictions "
            "on held-out data are collapsing (divergence or severe overfitting)."
        )
        ev = {
            "metric": name,
            "first_value": first,
            "min_value": vmin,
            "min_step": int(st[i]),
            "last_value": last,
            "last_step": int(st[-1]),
            "factor": factor,
            "log10_factor": round(math.log10(factor), 3),
            "growth_per_1000_steps": per_1k,
            "r2": round(r2, 4),
        }
        out.append(Finding("eval_metric_explosion", sev, msg, int(st[i]), int(st[-1]), ev, clamp01(0.5 + 0.5 * r2)))
    return out


__all__ = ["detect"]
