"""Text shared by the terminal and Markdown reports: numbers, step ranges, evidence lines.

Reporters compose, never compute: everything here only *formats* values that
the Diagnosis already holds, so the two reports always say the same thing.
"""

from __future__ import annotations

import math
from typing import Any

from ..diagnosis import Diagnosis

FLAG_COLOR = {"green": "green", "yellow": "yellow", "orange": "dark_orange", "red": "red", "black": "white on black"}
FLAG_EMOJI = {"green": "🟩", "yellow": "🟨", "orange": "🟧", "red": "🟥", "black": "⬛"}
SEVERITY_COLOR = {"info": "cyan", "warning": "yellow", "error": "red", "critical": "bold red"}
STATUS_COLOR = {"healthy": "bold green", "warning": "bold yellow", "error": "bold red", "critical": "bold white on red"}

# The evidence keys worth a line in the report, per finding code, in order.
# Others stay in the JSON.
KEY_NUMBERS: dict[str, tuple[str, ...]] = {
    "overfitting": ("best_step", "best_value", "best_epoch", "onset_step", "last_value", "worse_pct", "still_rising"),
    "memorization": ("train_last", "train_min", "first_near_zero_step"),
    "suspicious_fast_drop": ("from_value", "to_value", "steps", "fraction_of_epoch", "kind"),
    "grad_norm_collapse": ("early_median", "late_median", "ratio"),
    "lr_schedule_mismatch": ("inferred_shape", "configured"),
    "wasted_compute": ("steps", "fraction", "hours", "gpu_hours", "gpus"),
    "best_checkpoint_not_saved": ("best_step", "saved_steps", "nearest_saved"),
    "plateau": ("window_start", "window_end", "improvement", "noise"),
}


def num(x: Any, digits: int = 4) -> str:
    """A number the way a person reads it: 0.1376, 2e-04, 1.2e+19, 170, 85%."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10000 else str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == 0:
            return "0"
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.{max(digits - 2, 1)}e}"
        return f"{x:.{digits}g}"
    if isinstance(x, (list, tuple)):
        items = [num(v, digits) for v in x[:8]]
        return "[" + ", ".join(items) + (", …" if len(x) > 8 else "") + "]"
    if isinstance(x, dict):
        return ", ".join(f"{k}={num(v, digits)}" for k, v in list(x.items())[:6])
    return str(x)


def plural(n: int | float, noun: str) -> str:
    """``1 step``, ``2 steps``: the count and the noun that agrees with it."""
    return f"{num(n)} {noun}{'' if n == 1 else 's'}"


def gpus(n: int | None) -> str:
    return plural(n or 1, "GPU")


def hours(h: float | None) -> str:
    """Wall time a person reads: ``<1 min``, ``12 min``, ``3.4 h``."""
    if h is None:
        return "—"
    if h < 1 / 60:
        return "<1 min"
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h"


def gpu_hours(x: float | None) -> str:
    """``<0.01 GPU-hours`` rather than ``0 GPU-h``: a tiny run still used some compute."""
    if x is None:
        return "—"
    if x < 0.01:
        return "<0.01 GPU-hours"
    return f"{x:.2f} GPU-hours" if x < 10 else f"{x:,.0f} GPU-hours"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def steps(a: int | None, b: int | None) -> str:
    if a is None and b is None:
        return "—"
    if a is None or b is None or a == b:
        return f"step {a if a is not None else b}"
    return f"steps {a}–{b}"


def evidence_line(code: str, evidence: dict[str, Any]) -> str:
    """The key numbers of a finding, ``k=v`` joined; falls back to the first few evidence items."""
    keys = KEY_NUMBERS.get(code) or tuple(k for k, v in evidence.items() if not isinstance(v, (dict, list)))[:6]
    parts = []
    for k in keys:
        if k in evidence and evidence[k] is not None:
            v = evidence[k]
            if k in ("fraction", "fraction_of_epoch") and isinstance(v, (int, float)):
                parts.append(f"{k}={v:.1%}")
            elif k == "worse_pct" and isinstance(v, (int, float)):
                parts.append(f"worse={v:.0f}%")
            else:
                parts.append(f"{k}={num(v)}")
    return "  ".join(parts)


def best_line(d: Diagnosis) -> str | None:
    b = d.best
    if b is None:
        return None
    ep = f" (epoch {num(b.epoch, 3)})" if b.epoch is not None else ""
    if b.checkpoint_saved is True:
        saved = "checkpoint saved" + (f": {b.checkpoint_path}" if b.checkpoint_path else "")
    elif b.checkpoint_saved is False:
        saved = "checkpoint NOT saved"
    else:
        saved = "checkpoint unknown (no checkpoint folders found)"
    return f"best {b.metric} {num(b.value)} at step {b.step}{ep}; {saved}"


def waste_line(d: Diagnosis) -> str | None:
    w = d.waste
    if w is None or not w.steps:
        return None
    parts = [f"{plural(w.steps, 'step')} ({pct(w.fraction)} of the run) after the best point"]
    if w.hours is not None:
        parts.append(hours(w.hours))
    if w.gpu_hours is not None:
        g = gpus(w.gpus or 1) + (", assumed" if w.gpus_assumed else "")
        parts.append(f"{gpu_hours(w.gpu_hours)} ({g})")
    s = ", ".join(parts)
    if w.deletable_checkpoints:
        s += f"; deletable checkpoints: {', '.join(w.deletable_checkpoints[:6])}"
    return s


def schedule_desc(sched: dict[str, Any] | None) -> str:
    """``linear (peak 2e-04, warmup 10 steps)`` from an inferred/configured schedule dict."""
    if not sched:
        return "unknown"
    name = sched.get("shape") or sched.get("type") or "?"
    extras = []
    for k, label in (("peak", "peak"), ("warmup_steps", "warmup"), ("final", "final"), ("end", "final")):
        v = sched.get(k)
        if v is not None and not (k == "warmup_steps" and v == 0):
            extras.append(f"{label} {num(v)}" + (" steps" if k == "warmup_steps" else ""))
    src = sched.get("source")
    s = str(name) + (f" ({', '.join(extras)})" if extras else "")
    return s + (f" [{src}]" if src else "")


def metrics_lines(d: Diagnosis) -> list[str]:
    out = []
    for name, m in d.metrics_summary().items():
        out.append(f"{name}: {m['points']} points, steps {m['first_step']}–{m['last_step']}, {num(m['first'])} → {num(m['last'])}")
    return out


__all__ = [
    "FLAG_COLOR",
    "FLAG_EMOJI",
    "KEY_NUMBERS",
    "SEVERITY_COLOR",
    "STATUS_COLOR",
    "best_line",
    "evidence_line",
    "gpu_hours",
    "gpus",
    "hours",
    "metrics_lines",
    "num",
    "pct",
    "plural",
    "schedule_desc",
    "steps",
    "waste_line",
]
