"""The LR schedule a config asks for, rebuilt as a curve, to draw against the LR actually logged.

Two schedules can be in force and only one of them runs: HF's
``lr_scheduler_type`` and, when the DeepSpeed config has a ``scheduler`` block,
DeepSpeed's own (which then wins silently: the Trainer hands the optimizer to
DeepSpeed and drops its own scheduler; see transformers
``integrations/deepspeed.py: deepspeed_optim_sched``). Seed 003 lost hours
wondering why a "constant" LR decayed; drawing both curves over the logged
one answers it at a glance.

The formulas follow ``transformers.optimization`` (v5) and DeepSpeed's
``runtime/lr_schedules.py``. Note ``constant`` ignores warmup in HF
(``get_constant_schedule`` takes no warmup argument).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import median
from ..run import EPOCH, Run, RunConfig


@dataclass(frozen=True)
class Curve:
    label: str
    steps: np.ndarray
    values: np.ndarray


def steps_per_epoch(run: Run) -> float | None:
    """Optimizer steps per epoch: the run's own figure, else the median step/epoch ratio of logged points."""
    if run.steps_per_epoch:
        return float(run.steps_per_epoch)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    ep = run.history.get_series(EPOCH)
    if len(ep):
        pairs.append((ep.steps.astype(float), ep.values))
    pairs += [(s.steps.astype(float), s.epochs) for s in run.history.values() if len(s) and s.has_epochs()]
    ratios: list[float] = []
    for st, e in pairs:
        m = np.isfinite(e) & (e > 0) & (st > 0)
        ratios.extend((st[m] / e[m]).tolist())
        if len(ratios) >= 3:
            break
    return float(median(ratios)) if ratios else None


def total_steps(run: Run) -> int | None:
    """Planned optimizer steps: max_steps, the reader's planned steps, epochs x steps/epoch, else the last step."""
    cfg = run.config
    ms = cfg.num("max_steps")
    if ms and ms > 0:
        return int(ms)
    if run.planned_steps:
        return int(run.planned_steps)
    ep, spe = cfg.num("num_train_epochs"), steps_per_epoch(run)
    if ep and spe:
        return round(ep * spe)
    return run.last_step


def _warmup(cfg: RunConfig, total: int) -> int:
    """Warmup steps; transformers 5 accepts a float < 1 in ``warmup_steps`` as a ratio."""
    w = cfg.num("warmup_steps") or 0.0
    if 0 < w < 1:
        return math.ceil(w * total)
    if w >= 1:
        return int(w)
    r = cfg.num("warmup_ratio") or 0.0
    return math.ceil(r * total) if r > 0 else 0


def hf_curve(cfg: RunConfig, steps: np.ndarray, total: int) -> Curve | None:
    """The HF ``lr_scheduler_type`` curve at ``steps``; None when the type or peak LR is unknown or exotic."""
    peak = cfg.num("learning_rate")
    if not peak:
        return None
    kind = str(cfg.get("lr_scheduler_type") or "linear").lower()  # HF's default is linear
    if kind.startswith("schedulertype."):
        kind = kind.split(".", 1)[1]
    w = _warmup(cfg, total)
    s = steps.astype(float)
    warm = np.where(s < w, s / max(1, w), 1.0)
    progress = np.clip((s - w) / max(1, total - w), 0.0, 1.0)
    if kind == "constant":
        f = np.ones_like(s)
    elif kind == "constant_with_warmup":
        f = warm
    elif kind == "linear":
        f = np.where(s < w, warm, np.maximum(0.0, (total - s) / max(1.0, total - w)))
    elif kind in ("cosine", "cosine_with_restarts", "cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        f = np.where(s < w, warm, np.maximum(0.0, 0.5 * (1.0 + np.cos(math.pi * progress))))
    elif kind == "polynomial":
        end = 1e-7 / peak
        f = np.where(s < w, warm, (1 - end) * (1 - progress) + end)
    elif kind == "inverse_sqrt":
        ts = w or 10_000
        f = np.where(s < w, warm, 1.0 / np.sqrt(np.maximum(s - w + ts, 1.0) / ts))
    else:
        return None
    label = f"configured: {kind}" + (f", warmup {w}" if w and kind != "constant" else "")
    return Curve(label, steps, peak * f)


def _ds_num(params: dict[str, Any], key: str, fallback: float | None) -> float | None:
    """A DeepSpeed param; ``"auto"`` is filled by HF from the TrainingArguments (the fallback)."""
    v = params.get(key, "auto")
    if v == "auto" or v is None:
        return fallback
    try:
        return float(v)
    except (TypeError, ValueError):
        return fallback


def deepspeed_curve(cfg: RunConfig, steps: np.ndarray, total: int) -> Curve | None:
    """The curve of the DeepSpeed ``scheduler`` block, which overrides ``lr_scheduler_type`` when present."""
    ds = cfg.get("deepspeed")
    block = ds.get("scheduler") if isinstance(ds, dict) else None
    kind = (block or {}).get("type") if isinstance(block, dict) else cfg.get("deepspeed_scheduler")
    if not kind:
        return None
    params = ((block or {}).get("params") or {}) if isinstance(block, dict) else {}
    if not params and isinstance(cfg.get("deepspeed_scheduler_params"), dict):
        params = cfg.get("deepspeed_scheduler_params")  # how configs.load_config_file records the block
    peak = _ds_num(params, "warmup_max_lr", cfg.num("learning_rate"))
    if not peak:
        return None
    lo = _ds_num(params, "warmup_min_lr", 0.0) or 0.0
    w = int(_ds_num(params, "warmup_num_steps", float(_warmup(cfg, total))) or 0)
    t = int(_ds_num(params, "total_num_steps", float(total)) or total)
    s = steps.astype(float)
    wtype = str(params.get("warmup_type", "log"))
    if w > 0:
        # DeepSpeed's default warmup is logarithmic: log(step + 1) / log(max(2, warmup)).
        g = s / w if wtype == "linear" else np.log(s + 1) / math.log(max(2, w))
        warm = lo + (peak - lo) * np.clip(g, 0, 1)
    else:
        warm = np.full_like(s, peak)
    name = str(kind)
    if name == "WarmupLR":
        v = np.where(s < w, warm, peak)
    elif name == "WarmupDecayLR":
        v = np.where(s < w, warm, peak * np.maximum(0.0, (t - s) / max(1.0, t - w)))
    elif name == "WarmupCosineLR":
        ratio = _ds_num(params, "cos_min_ratio", 1e-4) or 0.0
        p = np.clip((s - w) / max(1, t - w), 0, 1)
        v = np.where(s < w, warm, peak * (ratio + (1 - ratio) * 0.5 * (1 + np.cos(math.pi * p))))
    else:
        return None
    return Curve(f"DeepSpeed {name} (overrides lr_scheduler_type)", steps, v)


def configured_curves(run: Run, steps: np.ndarray | None = None) -> list[Curve]:
    """Every schedule the config describes (HF, and DeepSpeed's when it has a scheduler block)."""
    total = total_steps(run)
    if not total:
        return []
    if steps is None:
        steps = np.linspace(0, total, min(total + 1, 2000)).round().astype(np.int64)
    out = [c for c in (hf_curve(run.config, steps, total), deepspeed_curve(run.config, steps, total)) if c is not None]
    return out


__all__ = ["Curve", "configured_curves", "deepspeed_curve", "hf_curve", "steps_per_epoch", "total_steps"]
