#!/usr/bin/env python3
"""How right is the diagnosis on real runs? Per-code precision/recall/F1 against labelled public runs.

Usage::

    python bench/accuracy.py [CORPUS] [--peer VENV] [--all] [--json]

``CORPUS`` is a folder holding ``LABELS.jsonl`` and ``runs/`` (default
``../shared/realruns``, or ``$TRAINGUARD_REALRUNS``'s parent). Every labelled run
is read with no flags (format sniffed, configs found beside it), diagnosed,
and compared with its label:

- **overfitting**: predicted when the diagnosis has an ``overfitting`` finding
  at warning level or worse (what a user sees as an alarm); the label is
  ``overfit`` (final eval > 1.05 x best and the best before 80 % of the run).
- **divergence**: a ``divergence`` or ``nan_loss`` finding at warning or worse,
  against the label ``diverged`` (NaN/inf, or train loss ending above twice its
  minimum).
- **nan**: a ``nan_loss`` finding, against a label whose losses are not finite.
- **best point**: the step (or, for logs without steps, the epoch) and value of
  the eval-loss minimum, against ``best_eval_step`` / ``best_eval_loss``.
- **errors on healthy runs**: error-or-worse findings on runs labelled neither
  overfit nor diverged.

With ``--peer VENV`` the same is done with finetune-doctor installed in that
virtual environment (never our dependency) on the runs it can read, and its
row is printed beside ours on those runs. Every disagreement is listed with
its numbers; ``--all`` lists every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trainguard.findings import Severity  # noqa: E402


def _default_corpus() -> Path:
    env = os.environ.get("TRAINGUARD_REALRUNS")
    if env:
        p = Path(env)
        return p.parent if p.name == "runs" else p
    return ROOT.parent / "shared" / "realruns"


@dataclass
class Outcome:
    """One run: what the label says, what we said, and the numbers behind it."""

    file: str
    label: dict[str, Any]
    read: bool = False
    error: str = ""
    overfit: bool | None = None
    diverged: bool | None = None
    nan: bool | None = None
    best_step: float | None = None
    best_epoch: float | None = None
    best_value: float | None = None
    best_exact: bool | None = None
    errors: list[str] = field(default_factory=list)
    overfit_msg: str = ""
    status: str = ""
    seconds: float = 0.0


def _bad(x: Any) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def nan_label(lab: dict[str, Any]) -> bool:
    """The label's losses include NaN/inf (label.py keeps NaN as the final or min train loss, or drops eval)."""
    if not lab.get("diverged"):
        return False
    if _bad(lab.get("final_train_loss")) or _bad(lab.get("min_train_loss")):
        return True
    if lab.get("n_eval_points") and lab.get("best_eval_loss") is None:
        return True
    return bool(lab.get("n_train_points")) and lab.get("min_train_loss") is None


def healthy_label(lab: dict[str, Any]) -> bool:
    return lab.get("overfit") is False and lab.get("diverged") is False


def ours(path: Path, lab: dict[str, Any]) -> Outcome:
    from trainguard.configs import attach
    from trainguard.diagnosis import diagnose
    from trainguard.readers import read_runs

    out = Outcome(path.name, lab)
    t0 = time.perf_counter()
    try:
        runs = read_runs(path)
    except Exception as e:  # a run we cannot read counts as a miss, with the reason
        out.error = f"{type(e).__name__}: {e}"
        return out
    if not runs:
        out.error = "no run found"
        return out
    run = max(runs, key=lambda r: sum(len(s) for s in r.history.values()))
    try:
        attach(run, path)
    except Exception as e:
        out.error = f"config: {e}"
    d = diagnose(run)
    out.seconds = time.perf_counter() - t0
    out.read = True
    out.status = d.status
    codes = {f.code: f for f in sorted(d.findings, key=lambda f: -f.severity.rank)}
    ov = codes.get("overfitting")
    out.overfit = ov is not None and ov.severity >= Severity.WARNING
    out.overfit_msg = f"[{ov.severity.value}] {ov.message}" if ov is not None else "(no overfitting finding)"
    out.diverged = any(f.code in ("divergence", "nan_loss") and f.severity >= Severity.WARNING for f in d.findings)
    out.nan = "nan_loss" in codes
    out.errors = sorted({f.code for f in d.findings if f.severity >= Severity.ERROR})
    ev = run.history.get_series("eval_loss").finite().sorted()
    if len(ev):
        import numpy as np

        i = int(np.argmin(ev.values))
        out.best_step, out.best_value = float(ev.steps[i]), float(ev.values[i])
        out.best_epoch = ev.epoch_at(i)
        if out.best_epoch is None:
            ep = run.history.get_series("epoch").finite().sorted()
            if len(ep):
                j = ep.nearest(int(ev.steps[i]))
                out.best_epoch = None if j is None else float(ep.values[j])
    out.best_exact = best_matches(out, lab)
    return out


def best_matches(o: Outcome, lab: dict[str, Any]) -> bool | None:
    """Our eval-loss minimum equals the label's: same value (1e-6 relative) and same step, or same epoch."""
    want_step, want_val = lab.get("best_eval_step"), lab.get("best_eval_loss")
    if want_val is None or not lab.get("n_eval_points"):
        return None
    if o.best_value is None:
        return False
    if not math.isclose(o.best_value, float(want_val), rel_tol=1e-6, abs_tol=1e-9):
        # logs that print perplexity: the label converts it to a loss, as we do
        return False
    if want_step is None:
        return True
    ws = float(want_step)
    if o.best_step is not None and math.isclose(o.best_step, ws, abs_tol=1e-9):
        return True
    return o.best_epoch is not None and math.isclose(o.best_epoch, ws, abs_tol=0.02)


# -- the peer ----------------------------------------------------------------------------------------

def peer(venv: Path, path: Path) -> dict[str, Any] | None:
    """finetune-doctor's verdict on one run, or None where it cannot read it: ``{"overfit": bool, "best_step": int}``."""
    exe = venv / "bin" / "finetune-doctor"
    if not exe.exists():
        raise SystemExit(f"error: {venv}: no finetune-doctor in this virtual environment")
    try:
        p = subprocess.run([str(exe), "diagnose", str(path), "-f", "json"], capture_output=True, text=True, timeout=120,
                           cwd="/tmp")
    except subprocess.TimeoutExpired:
        return None
    try:
        d = json.loads(p.stdout)
    except ValueError:
        return None
    if not isinstance(d, dict) or not isinstance(d.get("findings"), list):
        return None
    over = any(f.get("check") == "overfitting" and str(f.get("severity", "")).upper() in ("WARNING", "CRITICAL")
               for f in d["findings"] if isinstance(f, dict))
    return {"overfit": over, "best_step": (d.get("pick") or {}).get("best_step")}


# -- scoring -------------------------------------------------------------------------------------------


def prf(pairs: list[tuple[bool, bool]]) -> tuple[int, int, int, float, float, float]:
    tp = sum(1 for t, p in pairs if t and p)
    fp = sum(1 for t, p in pairs if p and not t)
    fn = sum(1 for t, p in pairs if t and not p)
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return tp, fp, fn, prec, rec, f1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=_default_corpus())
    ap.add_argument("--peer", type=Path, help="virtual environment with finetune-doctor installed")
    ap.add_argument("--all", action="store_true", help="list every run, not only disagreements")
    ap.add_argument("--json", action="store_true", help="print the per-run outcomes as JSON")
    a = ap.parse_args(argv)
    labels_path = a.corpus / "LABELS.jsonl"
    if not labels_path.is_file():
        print(f"error: {labels_path}: no labels here (pass the corpus folder)", file=sys.stderr)
        return 2
    labels = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    outs = [ours(a.corpus / "runs" / lab["file"], lab) for lab in labels]
    wall = time.perf_counter() - t0
    if a.json:
        print(json.dumps([o.__dict__ for o in outs], default=str, indent=1))
        return 0

    read = [o for o in outs if o.read]
    ov = [(bool(o.label["overfit"]), bool(o.overfit)) for o in read if o.label.get("overfit") is not None]
    dv = [(bool(o.label["diverged"]), bool(o.diverged)) for o in read if o.label.get("diverged") is not None]
    nn = [(nan_label(o.label), bool(o.nan)) for o in read if o.label.get("diverged") is not None]
    with_eval = [o for o in outs if o.label.get("n_eval_points") and o.label.get("best_eval_loss") is not None]
    exact = [o for o in with_eval if o.best_exact]
    healthy = [o for o in read if healthy_label(o.label)]
    healthy_err = [o for o in healthy if o.errors]

    print(f"trainguard accuracy on {a.corpus} ({len(labels)} labelled runs, {wall:.1f} s)\n")
    print(f"{'question':<22}{'runs':>6}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F1':>7}")
    for name, pairs in (("overfitting", ov), ("divergence (+NaN)", dv), ("NaN / inf", nn)):
        tp, fp, fn, p, r, f1 = prf(pairs)
        print(f"{name:<22}{len(pairs):>6}{tp:>5}{fp:>5}{fn:>5}{p:>11.2f}{r:>8.2f}{f1:>7.2f}")
    print()
    print(f"runs read with no flags         {len(read)}/{len(outs)}")
    print(f"best eval point exact           {len(exact)}/{len(with_eval)}")
    print(f"healthy runs with error/critical {len(healthy_err)}/{len(healthy)}"
          + (f"  ({', '.join(sorted({c for o in healthy_err for c in o.errors}))})" if healthy_err else ""))

    if a.peer:
        _peer_table(a.peer, a.corpus, outs)

    print("\nDisagreements with the label" + (" (and every run)" if a.all else "") + ":")
    shown = 0
    for o in outs:
        lab = o.label
        why = []
        if not o.read:
            why.append(f"not read: {o.error}")
        else:
            if lab.get("overfit") is not None and bool(lab["overfit"]) != bool(o.overfit):
                why.append(f"overfit label={lab['overfit']} ours={o.overfit}: {_curve(lab)}; {o.overfit_msg}")
            if lab.get("diverged") is not None and bool(lab["diverged"]) != bool(o.diverged):
                why.append(f"diverged label={lab['diverged']} ours={o.diverged} (train min {lab.get('min_train_loss')}, "
                           f"final {lab.get('final_train_loss')})")
            if o.best_exact is False:
                why.append(f"best label step {lab.get('best_eval_step')} = {lab.get('best_eval_loss')}; ours step "
                           f"{o.best_step} (epoch {o.best_epoch}) = {o.best_value}")
            if healthy_label(lab) and o.errors:
                why.append(f"healthy label but error-level findings: {', '.join(o.errors)}")
        if why or a.all:
            shown += 1
            print(f"  {o.file} [{o.status or 'unread'}]")
            for w in why or ["agrees"]:
                print(f"      {w}")
    if not shown:
        print("  none")
    return 0


def _curve(lab: dict[str, Any]) -> str:
    b, f = lab.get("best_eval_loss"), lab.get("final_eval_loss")
    rise = f"{(f / b - 1) * 100:+.1f}%" if isinstance(b, (int, float)) and isinstance(f, (int, float)) and b else "?"
    return (f"best {b} at {lab.get('best_eval_step')}, final {f} ({rise}), last step {lab.get('last_step')}, "
            f"{lab.get('n_eval_points')} evals")


def _peer_table(venv: Path, corpus: Path, outs: list[Outcome]) -> None:
    rows = []
    for o in outs:
        if o.label.get("overfit") is None:
            continue
        pv = peer(venv, corpus / "runs" / o.file)
        if pv is None:
            continue
        rows.append((o, pv))
    print(f"\nAgainst finetune-doctor on the {len(rows)} runs it reads (overfitting, label as truth):")
    print(f"{'tool':<18}{'TP':>5}{'FP':>5}{'FN':>5}{'F1':>7}{'right calls':>13}")
    for name, pairs in (
        ("trainguard", [(bool(o.label["overfit"]), bool(o.overfit)) for o, _ in rows]),
        ("finetune-doctor", [(bool(o.label["overfit"]), bool(pv["overfit"])) for o, pv in rows]),
    ):
        tp, fp, fn, _, _, f1 = prf(pairs)
        right = sum(1 for t, p in pairs if t == p)
        print(f"{name:<18}{tp:>5}{fp:>5}{fn:>5}{f1:>7.2f}{right:>8}/{len(pairs)}")


if __name__ == "__main__":
    raise SystemExit(main())
