"""The LR schedule actually followed (shape and parameters), against the configured one, with the cause: a fact of the run.

Inference works on the logged ``learning_rate`` series normalised by its
peak: warm-up is the rise to the peak; the decay after the peak is fitted by
each family (constant, linear, cosine with its end step searched, step,
inverse-sqrt, exponential) and the family with the smallest RMS error wins,
simpler families first when errors are close. Fit errors are in units of the
peak LR, so "rmse 0.004" means the fit is within 0.4 % of the peak.

Comparison: the configured family is ``lr_scheduler_type`` (HF's default
``linear`` when the run is known to be HF and the key is absent: source
"default"). A DeepSpeed ``scheduler`` block wins over ``lr_scheduler_type``
(the HF integration builds the DeepSpeed scheduler and ignores the HF one),
which is the cause named in seed 003: configured ``constant``, ds_config
``WarmupDecayLR``, LR 2e-4 -> 1.05e-6 linearly. A mismatch is claimed only
when the configured family fits at least 3x worse than the best one and off
by more than 3 % of the peak, over at least 4 points after the peak.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..run import LEARNING_RATE, Run
from ._smoothing import block_reduce, linfit
from ._view import run_xy
from .values import LRSchedule

# The decay family each configured scheduler produces after its warm-up.
_HF_FAMILY: dict[str, set[str]] = {
    "linear": {"linear"},
    "cosine": {"cosine"},
    "cosine_with_min_lr": {"cosine"},
    "cosine_warmup_with_min_lr": {"cosine"},
    "cosine_with_restarts": {"cosine", "cyclic"},
    "polynomial": {"linear", "exponential", "cosine"},
    "constant": {"constant"},
    "constant_with_warmup": {"constant"},
    "inverse_sqrt": {"inverse_sqrt", "exponential"},
    "reduce_lr_on_plateau": {"constant", "step"},
}
_DS_FAMILY: dict[str, set[str]] = {
    "warmuplr": {"constant"},
    "warmupdecaylr": {"linear"},
    "warmupcosinelr": {"cosine"},
}


def ds_scheduler(run: Run) -> tuple[str, str, dict[str, Any]] | None:
    """``(type, source, params)`` of a DeepSpeed scheduler block, if the config has one."""
    t = run.config.get("deepspeed_scheduler")
    src = run.config.source("deepspeed_scheduler")
    params: dict[str, Any] = {}
    ds = run.config.get("deepspeed")
    if isinstance(ds, dict) and isinstance(ds.get("scheduler"), dict):
        blk = ds["scheduler"]
        params = dict(blk.get("params") or {})
        if not t:
            t = blk.get("type")
            src = run.config.source("deepspeed")
    if isinstance(t, dict):  # a whole block stored under deepspeed_scheduler
        params = dict(t.get("params") or {})
        t = t.get("type")
    if not t or not isinstance(t, str):
        return None
    return t, src or "deepspeed config", params


def _configured(run: Run) -> dict[str, Any] | None:
    t = run.config.get("lr_scheduler_type")
    if isinstance(t, str) and t:
        t = t.split(".")[-1].lower()  # "SchedulerType.COSINE" -> "cosine"
        return {"type": t, "source": run.config.source("lr_scheduler_type")}
    # HF's default applies only when the training arguments were seen (a trainer_state.json records none
    # of them, so its silence says nothing): learning_rate is the one key every TrainingArguments source has
    hf = run.config.get("framework") == "hf" or run.format.startswith("hf")
    if hf and "learning_rate" in run.config:
        return {"type": "linear", "source": "default"}
    return None


def _fits(s: np.ndarray, y: np.ndarray, planned: int | None) -> dict[str, dict[str, Any]]:
    """Each decay family's fit of ``y`` (LR / peak) against step ``s`` after the peak: {family: {rmse, params}}."""
    out: dict[str, dict[str, Any]] = {}
    n = len(y)
    s0 = float(s[0])
    out["constant"] = {"rmse": float(np.sqrt(np.mean((y - 1.0) ** 2))), "params": {}}
    sl, ic, r2 = linfit(s.astype(float), y)
    pred = sl * s + ic
    end = -ic / sl if sl < 0 else None
    out["linear"] = {"rmse": float(np.sqrt(np.mean((y - pred) ** 2))), "params": {"zero_step": None if end is None else round(end), "r2": r2}}
    last = float(s[-1])
    cands = {last * r for r in (1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 2.0, 3.0, 5.0)}
    if planned and planned > s0:
        cands.add(float(planned))
    if end is not None and end > s0:
        cands.add(float(end))
    best: dict[str, Any] | None = None
    for big_s in sorted(cands):
        if big_s <= s0:
            continue
        c = 0.5 * (1 + np.cos(np.pi * np.clip((s - s0) / (big_s - s0), 0, 1)))
        d = 1 - c
        den = float(d @ d)
        f = float(np.clip(((y - c) @ d) / den, 0, 0.99)) if den > 0 else 0.0
        p = f + (1 - f) * c
        e = float(np.sqrt(np.mean((y - p) ** 2)))
        if best is None or e < best["rmse"] - 1e-12:
            best = {"rmse": e, "params": {"end_step": round(big_s), "floor": f}}
    if best is not None:
        out["cosine"] = best
    pos = y > 0
    if pos.sum() >= 3:
        sl2, ic2, _ = linfit(s[pos].astype(float), np.log(y[pos]))
        pe = np.exp(ic2 + sl2 * s)
        out["exponential"] = {"rmse": float(np.sqrt(np.mean((y - pe) ** 2))), "params": {"gamma_per_step": math.exp(sl2)}}
        spos = s > 0
        if spos.sum() >= 3:
            basis = 1 / np.sqrt(s[spos].astype(float))
            a = float(basis @ y[spos]) / float(basis @ basis)
            pi = np.full(n, 1.0)
            pi[spos] = a * basis
            out["inverse_sqrt"] = {"rmse": float(np.sqrt(np.mean((y - pi) ** 2))), "params": {"scale": a}}
    rel = np.abs(np.diff(y)) / np.maximum(y[:-1], 1e-12)
    drops = int(np.sum(np.diff(y) < -0.05 * y[:-1]))
    if n >= 4 and drops >= 1 and float(np.mean(rel < 1e-3)) >= 0.75:
        out["step"] = {"rmse": 0.0, "params": {"drops": drops}}
    return out


def infer_schedule(run: Run) -> LRSchedule:
    """The schedule the LR actually followed, the one configured, and why they differ when they do."""
    configured = _configured(run)
    ds = ds_scheduler(run)
    if configured is not None and ds is not None:
        configured = {**configured, "deepspeed_scheduler": ds[0], "deepspeed_source": ds[1]}
    elif ds is not None:
        configured = {"type": ds[0], "source": ds[1], "deepspeed_scheduler": ds[0], "deepspeed_source": ds[1]}
    st, v = run_xy(run, LEARNING_RATE)
    if len(v) < 3 or float(v.max()) <= 0:
        return LRSchedule(inferred=None, configured=configured, cause=None, matches=None)
    st, v = block_reduce(st, v, 4096)
    peak = float(v.max())
    y = v / peak
    pi = int(np.argmax(y >= 0.98))
    warm = pi > 0 and float(y[0]) < 0.9
    ds_, dy = st[pi:], y[pi:]
    cyclic = bool(np.any(np.diff(dy) > 0.2))
    if len(dy) >= 3:
        fits = _fits(ds_, dy, run.planned_steps)
        order = ["constant", "step", "linear", "cosine", "inverse_sqrt", "exponential"]
        best_rmse = min(f["rmse"] for f in fits.values())
        # simplest family whose error is within 25 % (or 0.3 % of the peak) of the best
        decay = next(k for k in order if k in fits and fits[k]["rmse"] <= max(best_rmse * 1.25, best_rmse + 0.003))
        if cyclic:
            decay = "cyclic"
    else:
        fits = {}
        decay = "constant" if len(dy) and float(dy.min()) >= 0.98 else "unknown"
    shape = f"warmup+{decay}" if warm else decay
    f_best = fits.get(decay, {})
    inferred: dict[str, Any] = {
        "shape": shape,
        "decay": decay,
        "peak": peak,
        "peak_step": int(st[pi]),
        "final": float(v[-1]),
        "final_step": int(st[-1]),
        "warmup_steps": int(st[pi]) if warm else 0,
        "decay_to": float(v[-1]) / peak,
        "rmse": f_best.get("rmse"),
        "fit": f_best.get("params", {}),
        "fit_rmse": {k: round(f["rmse"], 5) for k, f in fits.items()},
        "points": len(v),
    }
    if decay == "cosine" and "floor" in inferred["fit"]:
        inferred["decay_to"] = inferred["fit"]["floor"]
        inferred["end_step"] = inferred["fit"].get("end_step")
    if decay == "linear" and inferred["fit"].get("zero_step"):
        inferred["end_step"] = inferred["fit"]["zero_step"]
    matches, cause = _compare(run, configured, ds, inferred, fits, len(dy))
    return LRSchedule(inferred=inferred, configured=configured, cause=cause, matches=matches)


def _family_ok(fam: set[str], inferred: dict[str, Any], fits: dict[str, dict[str, Any]]) -> bool:
    if inferred["decay"] in fam:
        return True
    if not fits:
        return True
    best = min(f["rmse"] for f in fits.values())
    cfg = min((fits[k]["rmse"] for k in fam if k in fits), default=None)
    return cfg is not None and not (cfg > max(0.03, 3 * best))


def _compare(
    run: Run,
    configured: dict[str, Any] | None,
    ds: tuple[str, str, dict[str, Any]] | None,
    inferred: dict[str, Any],
    fits: dict[str, dict[str, Any]],
    decay_points: int,
) -> tuple[bool | None, str | None]:
    if configured is None or decay_points < 4:
        return None, None
    hf_type = configured["type"]
    hf_fam = _HF_FAMILY.get(hf_type)
    ds_fam = _DS_FAMILY.get(ds[0].lower()) if ds else None
    warm = inferred["warmup_steps"] > 0
    hf_ok = hf_fam is None or _family_ok(hf_fam, inferred, fits)
    if hf_ok and hf_type == "constant" and warm and not ds:
        hf_ok = False  # HF "constant" ignores warmup_steps: a ramp means something else set the LR
    if ds is not None:
        ds_ok = ds_fam is None or _family_ok(ds_fam, inferred, fits)
        if ds_ok and (not hf_ok or (hf_type in {"constant", "constant_with_warmup"} and inferred["decay"] != "constant")):
            return False, (
                f"the DeepSpeed scheduler block ({ds[0]} in {ds[1]}) overrides lr_scheduler_type={hf_type}: "
                f"with a scheduler in the DeepSpeed config the Trainer uses it and ignores its own"
                + (f" ({ds[0]} {'decays linearly to 0 after warm-up' if ds[0].lower() == 'warmupdecaylr' else 'sets the LR'})")
            )
        if not ds_ok:
            return False, f"the LR follows neither lr_scheduler_type={hf_type} nor the DeepSpeed scheduler {ds[0]} ({ds[1]}); cause unknown"
        return True, None
    if hf_ok:
        return True, None
    src = configured.get("source")
    if src == "default":
        return False, (
            "lr_scheduler_type was not found, so HF's default (linear) was assumed; the log suggests another schedule was set "
            "(check the training arguments that were actually used)"
        )
    return False, (
        "unknown: no DeepSpeed scheduler block was found; check for a scheduler passed to Trainer(optimizers=...), "
        "a resumed run that restored another scheduler, or a launcher that overrides the arguments"
    )


__all__ = ["ds_scheduler", "infer_schedule"]
