"""``lr_schedule_mismatch``: the LR schedule the run followed did not match the configured one (or its peak LR).

The inference and the comparison (which family fits, what was configured, and
why they differ: a DeepSpeed ``scheduler`` block overriding
``lr_scheduler_type``, HF's default assumed) are facts of the run, in
:mod:`trainguard.facts.schedule`; this module only says them as findings.
"""

from __future__ import annotations

from typing import Any

from ..facts import facts_of
from ..facts._view import fmt
from ..facts.schedule import ds_scheduler
from ..findings import Finding, Severity
from ..run import Run


def _describe(inf: dict[str, Any]) -> str:
    warm = f"warm-up to {fmt(inf['peak'])} by step {inf['warmup_steps']}, then " if inf["warmup_steps"] else f"from {fmt(inf['peak'])}, "
    decay = {
        "constant": "constant",
        "linear": "linear decay",
        "cosine": "cosine decay",
        "step": "step decay",
        "inverse_sqrt": "inverse-sqrt decay",
        "exponential": "exponential decay",
        "cyclic": "cyclic (restarts)",
    }.get(inf["decay"], inf["decay"])
    return f"{warm}{decay} to {fmt(inf['final'])} at step {inf['final_step']}"


def detect(run: Run) -> list[Finding]:
    """An ``lr_schedule_mismatch`` warning when the LR did not follow the configured schedule (or peak LR)."""
    sch = facts_of(run).schedule
    out: list[Finding] = []
    inf, cfg = sch.inferred, sch.configured
    if inf is None:
        return out
    ev = {"inferred": inf, "configured": cfg, "cause": sch.cause}
    if sch.matches is False and cfg is not None:
        src = f" ({cfg['source']})" if cfg.get("source") else ""
        msg = f"The LR followed {_describe(inf)}, but lr_scheduler_type is {cfg['type']}{src}: {sch.cause}."
        sev = Severity.INFO if cfg.get("source") == "default" else Severity.WARNING
        out.append(Finding("lr_schedule_mismatch", sev, msg, inf["peak_step"], inf["final_step"], {**ev, "kind": "shape"}, 0.85))
    lr = run.config.num("learning_rate")
    ds = ds_scheduler(run)
    if lr and lr > 0 and inf["points"] >= 3:
        ratio = inf["peak"] / lr
        # higher than configured by > 10 %, or under half of it after warm-up (sparse logging misses the exact peak)
        if ratio > 1.1 or (ratio < 0.5 and inf["warmup_steps"] < int(inf["final_step"])):
            why = ""
            if ds and any(k in ds[2] for k in ("warmup_max_lr", "max_lr", "cycle_max_lr")):
                mx = ds[2].get("warmup_max_lr", ds[2].get("max_lr", ds[2].get("cycle_max_lr")))
                why = f"; the DeepSpeed scheduler's max LR ({mx}) in {ds[1]} overrides it"
            msg = (
                f"The LR peaked at {fmt(inf['peak'])} (step {inf['peak_step']}) but learning_rate is {fmt(lr)} "
                f"({run.config.source('learning_rate')}), {ratio:.2g}x{why}."
            )
            out.append(Finding("lr_schedule_mismatch", Severity.WARNING, msg, inf["peak_step"], inf["peak_step"],
                               {**ev, "kind": "peak", "configured_lr": lr, "ratio": ratio}, 0.7))
    return out


__all__ = ["detect"]
