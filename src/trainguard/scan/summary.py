"""One run's line in the fleet index, and the fleet's totals.

A summary is a plain JSON-able dict (it crosses process boundaries and lives
in the cache), cut from ``Diagnosis.to_dict()`` so ``scan`` and ``analyze``
never disagree about a run. The verdict is one word a team can sort and count
by; it comes from the worst finding's family, not a second judgement.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "trainguard.scan/1"

# Finding code -> verdict word, checked in this order (the first family present at
# warning or worse wins): a run that diverged is reported as diverged even if it
# overfit first, because its last checkpoints are unusable either way.
_FAMILIES: tuple[tuple[str, frozenset[str]], ...] = (
    ("diverged", frozenset({"divergence", "nan_loss", "eval_metric_explosion"})),
    ("overfit", frozenset({"overfitting", "memorization"})),
    ("not learning", frozenset({"plateau", "no_learning", "grad_norm_collapse"})),
    ("unstable", frozenset({"loss_spike", "instability", "grad_norm_explosion"})),
)
_SERIOUS = ("warning", "error", "critical")


def verdict_word(findings: list[dict[str, Any]]) -> str:
    """``diverged`` | ``overfit`` | ``not learning`` | ``unstable`` | ``issues`` | ``healthy``."""
    codes = {f["code"] for f in findings if f.get("severity") in _SERIOUS}
    for word, family in _FAMILIES:
        if codes & family:
            return word
    if any(f.get("severity") in ("error", "critical") for f in findings):
        return "issues"
    return "healthy"


def summarize(d: dict[str, Any], *, source: str) -> dict[str, Any]:
    """The index line for one diagnosed run (``d`` is ``Diagnosis.to_dict()``)."""
    findings = d.get("findings") or []
    order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    top = sorted(findings, key=lambda f: (order.get(f.get("severity"), 9), f.get("start_step") or 0))
    best = d.get("best")
    waste = d.get("waste")
    return {
        "source": source,
        "run": d.get("run"),
        "format": d.get("format"),
        "status": d.get("status"),
        "verdict": verdict_word(findings),
        "message": d.get("verdict"),
        "best": None if not best else {
            "metric": best.get("metric"), "step": best.get("step"), "value": best.get("value"),
            "checkpoint_saved": best.get("checkpoint_saved"),
        },
        "waste": None if not waste else {
            "steps": waste.get("steps"), "fraction": waste.get("fraction"), "hours": waste.get("hours"),
            "gpu_hours": waste.get("gpu_hours"), "gpus": waste.get("gpus"), "gpus_assumed": waste.get("gpus_assumed"),
        },
        "top_finding": None if not top else {
            "code": top[0]["code"], "severity": top[0]["severity"], "message": top[0].get("message"),
        },
        "findings": sorted({f["code"] for f in findings}),
        "last_step": (d.get("run_info") or {}).get("last_step"),
        "exit_code": 1 if d.get("status") in ("error", "critical") else 0,
    }


def totals(runs: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by verdict, GPU-hours after the best points, best checkpoints never saved."""
    by: dict[str, int] = {}
    for r in runs:
        by[r["verdict"]] = by.get(r["verdict"], 0) + 1
    gpu = [r["waste"]["gpu_hours"] for r in runs if r.get("waste") and isinstance(r["waste"].get("gpu_hours"), (int, float))]
    hours = [r["waste"]["hours"] for r in runs if r.get("waste") and isinstance(r["waste"].get("hours"), (int, float))]
    return {
        "runs": len(runs),
        "skipped": len(skipped),
        "verdicts": dict(sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))),
        "waste_gpu_hours": sum(gpu),
        "waste_hours": sum(hours),
        "runs_with_timing": len(gpu),
        "waste_steps": sum(int(r["waste"]["steps"] or 0) for r in runs if r.get("waste")),
        "best_not_saved": sum(1 for r in runs if r.get("best") and r["best"].get("checkpoint_saved") is False),
    }


def totals_sentence(t: dict[str, Any]) -> str:
    """``120 runs: 34 overfit, 2,310 GPU-hours after their best points, 18 best checkpoints never saved``."""
    n = t["runs"]
    parts = [f"{t['verdicts'].get('overfit', 0):,} overfit"]
    if t["verdicts"].get("diverged"):
        parts.append(f"{t['verdicts']['diverged']:,} diverged")
    if t["runs_with_timing"]:
        gh = t["waste_gpu_hours"]
        val = f"{gh:,.0f}" if gh >= 10 else f"{gh:.2f}" if gh >= 0.01 else "under 0.01"
        timing = "" if t["runs_with_timing"] == n else f" (timing known for {t['runs_with_timing']:,} of them)"
        parts.append(f"{val} GPU-hours after their best points{timing}")
    else:
        parts.append(f"{t['waste_steps']:,} steps after their best points (no timing in the logs)")
    k = t["best_not_saved"]
    parts.append(f"{k:,} best checkpoint{'s' if k != 1 else ''} never saved")
    s = f"{n:,} run{'s' if n != 1 else ''}: " + ", ".join(parts)
    if t["skipped"]:
        s += f"; {t['skipped']:,} skipped (unreadable)"
    return s


__all__ = ["SCHEMA", "summarize", "totals", "totals_sentence", "verdict_word"]
