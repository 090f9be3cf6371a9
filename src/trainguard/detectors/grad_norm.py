"""Gradient health: collapse (learning has stopped), explosion (growth or huge spikes), clipping always active.

Levels are medians of the first and last 20 % of the logged norms: medians,
because warm-up spikes (realrun 013: 87-100 in the first 30 of 194 logs)
must not pass for the early level.

- ``grad_norm_collapse``: early/late >= 10 (warning) or >= 100 (error);
  seed 003: 0.10-0.60 -> 0.0002-0.0009; realrun 014: 6.7 -> 0.03. A norm of
  exactly 0.0 everywhere (realrun 001, with loss 0.0) means no gradient reaches
  the trainable parameters at all: error.
- ``grad_norm_explosion``: late/early >= 3 with a rising middle (warning;
  realrun 015: 2 -> 10 while it overfits), >= 10 (error); or spikes >= 5x the
  rolling median. Spikes during LR warm-up or in the first 5 % of the run are
  info and say so (realruns 013, 024): the optimizer's moment estimates are
  still settling and the norm usually falls back by itself.
- ``clipping_always_active``: ``max_grad_norm`` known and the (pre-clip)
  norm above it in >= 95 % of the logs after warm-up. Info, since with Adam a
  uniformly rescaled gradient changes little; warning when the median norm is
  10x the threshold (clipping then dominates the update direction's weighting).
"""

from __future__ import annotations

import numpy as np

from .._arrays import median
from ..facts import facts_of
from ..facts._smoothing import block_reduce, robust_log_z
from ..facts._view import clamp01, fmt, run_xy, train_xy, warmup_end
from ..facts.overfit import IMPROVING
from ..findings import Finding, Severity
from ..run import GRAD_NORM, Run


def detect(
    run: Run,
    *,
    collapse_warn: float = 10.0,
    collapse_error: float = 100.0,
    growth_warn: float = 3.0,
    growth_error: float = 10.0,
    spike_ratio: float = 5.0,
    clip_fraction: float = 0.95,
) -> list[Finding]:
    """``grad_norm_collapse``, ``grad_norm_explosion`` and ``clipping_always_active`` findings."""
    st, v = run_xy(run, GRAD_NORM)
    if len(v) < 6:
        return []
    out: list[Finding] = []
    rst, rv = block_reduce(st, v, 4096)
    k = max(2, len(rv) // 5)
    early = float(median(rv[:k]))
    late = float(median(rv[-k:]))
    mid = float(median(rv[k:-k])) if len(rv) > 2 * k else (early + late) / 2
    base_ev = {"early_median": early, "late_median": late, "early_end_step": int(rst[k - 1]), "late_start_step": int(rst[-k])}
    # --- collapse ---
    if float(np.abs(v).max()) == 0.0:
        _, tv = train_xy(run)
        zero_loss = bool(len(tv)) and float(np.abs(tv).max()) == 0.0
        msg = (
            f"grad_norm is exactly 0 at all {len(v)} logged steps{' and so is the loss' if zero_loss else ''}: "
            "no gradient reaches the trainable parameters (all labels masked, adapters not attached, or parameters frozen)."
        )
        out.append(Finding("grad_norm_collapse", Severity.ERROR, msg, int(st[0]), int(st[-1]),
                           {**base_ev, "ratio": None, "all_zero": True, "zero_loss": zero_loss}, 0.99))
    elif early > 0 and (late == 0 or early / late >= collapse_warn):
        ratio = early / late if late > 0 else None
        sev = Severity.ERROR if ratio is None or ratio >= collapse_error else Severity.WARNING
        _tst, tv = train_xy(run)
        why = ""
        if len(tv) >= 4:
            t0 = float(median(tv[: max(2, len(tv) // 10)]))
            t1 = float(median(tv[-max(2, len(tv) // 10) :]))
            if t0 > 0 and t1 < 0.05 * t0:
                why = f", as train loss reached ~{fmt(t1)}: the training set is fitted and learning has effectively stopped"
        # Gradients shrink as any run converges; the collapse only costs something when eval has stopped
        # gaining from it. The one overfitting verdict says whether it has.
        verdict = facts_of(run).overfit
        if verdict is not None and verdict.evals >= 2:
            if verdict.state == IMPROVING:
                sev = Severity.INFO
                why += "; eval is still improving, so this is convergence, not a stall"
            elif not verdict.is_overfitting:
                sev = min(sev, Severity.WARNING)
        shown = f"x{ratio:.0f}" if ratio is not None else "to 0"
        msg = (
            f"grad_norm collapsed {shown}: median {fmt(early)} over the first fifth of the run, "
            f"{fmt(late)} over the last fifth (from step {int(rst[-k])}){why}."
        )
        conf = clamp01(0.6 + 0.15 * np.log10(max(ratio or 1e4, 1)))
        out.append(Finding("grad_norm_collapse", sev, msg, int(rst[k - 1]), int(st[-1]), {**base_ev, "ratio": ratio, "all_zero": False}, conf))
    # --- sustained growth ---
    growth = late / early if early > 0 else None
    grew = growth is not None and growth >= growth_warn and mid >= early * 1.2 and late >= mid
    # --- spikes relative to the rolling median ---
    spikes = _spikes(run, st, v, spike_ratio)
    if grew or spikes["after"]:
        sev = Severity.INFO
        parts = []
        if grew:
            assert growth is not None
            sev = Severity.ERROR if growth >= growth_error else Severity.WARNING
            parts.append(f"The grad norm grew x{growth:.1f}: median {fmt(early)} early, {fmt(mid)} mid-run, {fmt(late)} late")
        if spikes["after"]:
            n_after = len(spikes["after"])
            worst = max(spikes["after"], key=lambda d: d["ratio"])
            if n_after >= 3 or worst["ratio"] >= 50:
                sev = max(sev, Severity.WARNING)
            parts.append(
                f"{n_after} spike{'s' if n_after > 1 else ''} after warm-up (largest {fmt(worst['value'])} at step "
                f"{worst['step']}, {worst['ratio']:.0f}x the rolling median)"
            )
        if spikes["warmup"]:
            parts.append(f"{len(spikes['warmup'])} more {_early(spikes)}, usually harmless")
        msg = "; ".join(parts) + "."
        msg = msg[0].upper() + msg[1:] if not grew else msg
        ev = {**base_ev, "ratio": growth, "kind": "growth" if grew else "spikes", "spikes": spikes["after"][:20],
              "warmup_spikes": spikes["warmup"][:20], "warmup_end_step": spikes["warmup_end"]}
        out.append(Finding("grad_norm_explosion", sev, msg, int(rst[k - 1]) if grew else spikes["after"][0]["step"], int(st[-1]), ev,
                           clamp01(0.5 + (0.3 if grew else 0) + 0.05 * len(spikes["after"]))))
    elif spikes["warmup"]:
        worst = max(spikes["warmup"], key=lambda d: d["ratio"])
        msg = (
            f"grad_norm spiked {_early(spikes)} only ({len(spikes['warmup'])} point{'s' if len(spikes['warmup']) > 1 else ''}, "
            f"largest {fmt(worst['value'])} at step {worst['step']}, {worst['ratio']:.0f}x the later median) and settled: usually harmless while Adam's moments "
            "warm up; a longer warm-up or a lower peak LR would smooth it."
        )
        ev = {**base_ev, "ratio": growth, "kind": "warmup_spikes", "spikes": [], "warmup_spikes": spikes["warmup"][:20],
              "warmup_end_step": spikes["warmup_end"]}
        out.append(Finding("grad_norm_explosion", Severity.INFO, msg, spikes["warmup"][0]["step"], spikes["warmup"][-1]["step"], ev, 0.6))
    clip = _clipping(run, st, v, clip_fraction, spikes["warmup_end"])
    if clip is not None:
        out.append(clip)
    return out


def _early(spikes: dict) -> str:
    return "during LR warm-up" if spikes["warmup_end"] else "in the first 5 % of the run"


def _spikes(run: Run, st: np.ndarray, v: np.ndarray, ratio: float) -> dict:
    """Grad-norm points >= ``ratio`` x their rolling median (and 6 robust sigmas), split into warm-up and later."""
    pos = v > 0
    we = warmup_end(run)
    early_cut = int(st[0] + 0.05 * (st[-1] - st[0]))
    cut = max(we or 0, early_cut)
    if pos.sum() < 6:
        return {"after": [], "warmup": [], "warmup_end": we}
    sst, sv = st[pos], v[pos]
    z, base, _ = robust_log_z(sv, 9)
    later = median(sv[sst > cut]) if (sst > cut).any() else median(sv)
    # at the very start the rolling median is itself inflated by the warm-up spikes: judge those against the later median
    ref = np.where(sst <= cut, np.minimum(base, later), base)
    hit = np.nonzero((sv >= ratio * ref) & ((z >= 6) | (sst <= cut)))[0]
    after, warm = [], []
    for i in hit[:10000]:
        d = {"step": int(sst[i]), "value": float(sv[i]), "baseline": float(ref[i]), "ratio": round(float(sv[i] / ref[i]), 2)}
        (warm if sst[i] <= cut else after).append(d)
    return {"after": after, "warmup": warm, "warmup_end": we if we is not None else None}


def _clipping(run: Run, st: np.ndarray, v: np.ndarray, fraction: float, we: int | None) -> Finding | None:
    mg = run.config.num("max_grad_norm")
    if not mg or mg <= 0:
        return None
    m = st > (we or st[0] + 0.05 * (st[-1] - st[0]))
    if m.sum() < 5:
        return None
    above = float(np.mean(v[m] > mg))
    if above < fraction:
        return None
    med = float(median(v[m]))
    sev = Severity.WARNING if med >= 10 * mg else Severity.INFO
    msg = (
        f"Gradient clipping at max_grad_norm={fmt(mg)} is active at {above:.0%} of the logged steps after warm-up "
        f"(median norm {fmt(med)}, {med / mg:.1f}x the threshold): every update is rescaled, so the clip value, not the LR, "
        "sets the step size."
    )
    ev = {"max_grad_norm": mg, "fraction_above": round(above, 4), "median": med, "source": run.config.source("max_grad_norm")}
    return Finding("clipping_always_active", sev, msg, int(st[m][0]), int(st[-1]), ev, 0.8)


__all__ = ["detect"]
