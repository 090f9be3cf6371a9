"""Compute spent after the best point (steps, hours, GPU-hours) and the checkpoints that can go: a fact of the run."""

from __future__ import annotations

from ..run import Run
from .values import Best, Waste


def compute_waste(run: Run, best: Best | None) -> Waste | None:
    """Steps, fraction, hours and GPU-hours after ``best``, and the checkpoints that can be deleted; None without a best."""
    last = run.last_step
    if best is None or last is None or last <= 0:
        return None
    steps = max(0, int(last) - int(best.step))
    frac = steps / float(last)
    sps = run.seconds_per_step()
    hours = steps * sps / 3600.0 if sps else None
    gpus_known = run.num_gpus or run.config.world_size
    gpus = run.gpus
    gpu_hours = hours * gpus if hours is not None else None
    ck = run.checkpoints
    keep = {int(best.step), max(ck) if ck else -1}
    rec = (run.best_recorded or {}).get("step")
    if isinstance(rec, int):
        keep.add(rec)
    deletable = [ck[s].path for s in sorted(ck) if s not in keep]
    return Waste(
        steps=steps, fraction=frac, hours=hours, gpu_hours=gpu_hours, gpus=gpus,
        gpus_assumed=not gpus_known, deletable_checkpoints=deletable,
    )


__all__ = ["compute_waste"]
