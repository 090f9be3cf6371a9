"""Which stopping rule keeps the best checkpoint and saves the most compute? Replays real eval curves.

Run: ``.venv/bin/python bench/stopping.py`` (``--sweep`` also prints the
tuning grid for our rule; ``--rebuild`` retrains the tiny curves).

Curves:
- every run in ``../shared/realruns/runs/`` with at least 4 eval points, read
  through ``trainguard.readers.read_runs`` (files whose reader does not exist
  yet are skipped and listed);
- the seed-003 run (its epoch table: eval every 10 steps);
- tiny GPT-2 runs trained on the CPU with ``tests/tiny_training.py`` (seeds,
  dataset sizes and LRs varied), cached in ``bench/.cache/tiny_curves.json``.

Each rule sees the points in step order (train before eval at the same step),
exactly as a live guard would. For each rule and curve:

- the checkpoint kept is the best eval seen up to the stop (the guard saves on
  every new best), so regret = kept / best of the whole run − 1;
- saved = fraction of the run's steps not run = (last step − stop step) / last step.

A run "overfits" when its final eval is at least 1% above its minimum.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
REALRUNS = ROOT.parent / "shared" / "realruns" / "runs"
CACHE = ROOT / "bench" / ".cache" / "tiny_curves.json"

from trainguard.live.guard import Guard  # noqa: E402
from trainguard.live.policy import Policy  # noqa: E402
from trainguard.live.stopping import StoppingRule, baselines  # noqa: E402

SEED003 = [0.1551, 0.1447, 0.1376, 0.1387, 0.1429, 0.1544, 0.2098, 0.2641, 0.3354, 0.3899, 0.4417, 0.4581,
           0.4376, 0.4563, 0.4700, 0.4825, 0.4875, 0.4911, 0.4902, 0.4918]
SEED003_TRAIN = [0.1695, 0.1130, 0.1282, 0.1224, 0.1202, 0.0781, 0.0288, 0.0081, 0.0044, 0.0035, 0.0007, 0.0001,
                 0.0001, 0.0001, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]

# The tiny runs: (kind, overrides). Varied so that some overfit hard, some mildly, some not at all.
TINY: list[tuple[str, dict[str, Any]]] = [
    ("overfit", {}),
    ("overfit", {"seed": 1}),
    ("overfit", {"seed": 2, "steps": 500}),
    ("overfit", {"n_train": 64, "steps": 500}),
    ("overfit", {"n_train": 128, "steps": 500}),
    ("overfit", {"lr": 3e-4, "steps": 600}),
    ("overfit", {"lr": 3e-3, "steps": 400}),
    ("overfit", {"n_train": 256, "lr": 2e-3, "steps": 400, "sched": "cosine"}),
    ("healthy", {}),
    ("healthy", {"seed": 1}),
    ("healthy", {"n_train": 600, "steps": 400}),
    ("healthy", {"lr": 1e-3, "sched": "linear"}),
]


@dataclass
class Curve:
    name: str
    source: str  # realrun | seed | tiny
    train: list[tuple[int, float]]
    eval: list[tuple[int, float]]

    @property
    def last_step(self) -> int:
        return max(s for s, _ in self.train + self.eval)

    @property
    def best(self) -> float:
        return min(v for _, v in self.eval)

    @property
    def overfits(self) -> bool:
        return self.eval[-1][1] >= 1.01 * self.best

    def events(self) -> list[tuple[int, int, float]]:
        """(step, 0=train / 1=eval, value) in step order, train before eval at equal steps."""
        ev = [(s, 0, v) for s, v in self.train] + [(s, 1, v) for s, v in self.eval]
        return sorted(ev, key=lambda e: (e[0], e[1]))


# -- curves -------------------------------------------------------------------
def real_curves() -> tuple[list[Curve], list[str]]:
    from trainguard.errors import TrainguardError
    from trainguard.readers import read_runs

    out: list[Curve] = []
    skipped: list[str] = []
    if not REALRUNS.is_dir():
        return out, [f"{REALRUNS} (missing)"]
    for p in sorted(REALRUNS.iterdir()):
        try:
            runs = read_runs(p)
        except TrainguardError as e:
            skipped.append(f"{p.name} ({type(e).__name__})")
            continue
        except Exception as e:  # a reader still being written must not stop the bench
            skipped.append(f"{p.name} ({type(e).__name__}: {e})")
            continue
        for i, run in enumerate(runs):
            ev = run.eval_loss.finite().sorted()
            if len(ev) < 4:
                continue
            tr = run.train_loss.finite().sorted()
            name = p.name if len(runs) == 1 else f"{p.name}#{i}"
            out.append(Curve(name, "realrun", _pairs(tr.steps, tr.values), _pairs(ev.steps, ev.values)))
    return out, skipped


def seed_curve() -> Curve:
    steps = [10 * (i + 1) for i in range(len(SEED003))]
    return Curve("seed-003", "seed", list(zip(steps, SEED003_TRAIN, strict=True)), list(zip(steps, SEED003, strict=True)))


def tiny_curves(rebuild: bool = False) -> list[Curve]:
    cached: dict[str, Any] = {}
    if CACHE.exists() and not rebuild:
        cached = json.loads(CACHE.read_text())
    changed = False
    for kind, over in TINY:
        key = kind + json.dumps(over, sort_keys=True)
        if key in cached:
            continue
        from tests.tiny_training import train_kind

        with tempfile.TemporaryDirectory() as d:
            print(f"training tiny {key} ...", file=sys.stderr, flush=True)
            r = train_kind(kind, Path(d) / "run", **over)
        cached[key] = {
            "train": [(e["step"], e["loss"]) for e in r.log_history if "loss" in e],
            "eval": [(e["step"], e["eval_loss"]) for e in r.log_history if "eval_loss" in e],
        }
        changed = True
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        (CACHE.parent / ".gitignore").write_text("*\n")
        CACHE.write_text(json.dumps(cached))
    if changed:
        CACHE.write_text(json.dumps(cached))
    out = []
    for kind, over in TINY:
        c = cached[kind + json.dumps(over, sort_keys=True)]
        label = "tiny-" + kind + ("" if not over else "(" + ",".join(f"{k}={v}" for k, v in over.items()) + ")")
        out.append(Curve(label, "tiny", [tuple(x) for x in c["train"]], [tuple(x) for x in c["eval"]]))  # type: ignore[misc]
    return out


def _pairs(steps: Iterable[Any], values: Iterable[Any]) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in zip(steps, values, strict=True)]


# -- replay -------------------------------------------------------------------
@dataclass
class Outcome:
    stop_step: int | None  # None: never stopped
    regret: float
    saved: float


def _outcome(c: Curve, stop_step: int | None) -> Outcome:
    end = c.last_step if stop_step is None else stop_step
    kept = min(v for s, v in c.eval if s <= end)
    return Outcome(stop_step, kept / c.best - 1.0, (c.last_step - end) / c.last_step if c.last_step else 0.0)


def replay_rule(c: Curve, rule: StoppingRule) -> Outcome:
    for step, is_eval, v in c.events():
        if not is_eval:
            rule.observe_train(step, v)
        elif rule.observe_eval(step, v).stop:
            return _outcome(c, step)
    return _outcome(c, None)


def replay_guard(c: Curve, policy: Policy) -> Outcome:
    """Replays through the public Guard.log API: the bench measures exactly what users run."""
    g = Guard(policy, detect_min_gap=10**9)  # the offline detectors never decide a stop; keep the replay pure
    for step, is_eval, v in c.events():
        a = g.log(step, eval_loss=v) if is_eval else g.log(step, train_loss=v)
        if a.stop:
            return _outcome(c, step)
    return _outcome(c, None)


Runner = Callable[[Curve], Outcome]


def runners(policy: Policy) -> list[tuple[str, Runner]]:
    rows: list[tuple[str, Runner]] = [("trainguard (ours)", lambda c: replay_guard(c, policy))]
    for proto in baselines():
        name = proto.name
        rows.append((name, lambda c, n=name: replay_rule(c, _fresh(n))))
    return rows


def _fresh(name: str) -> StoppingRule:
    return next(r for r in baselines() if r.name == name)


def summarize(outs: list[Outcome]) -> tuple[float, float, float, float, float]:
    """(median regret, p90 regret, median saved, mean saved, mean regret); NaN when empty."""
    if not outs:
        return (float("nan"),) * 5  # type: ignore[return-value]
    r = np.array([o.regret for o in outs])
    s = np.array([o.saved for o in outs])
    return float(np.median(r)), float(np.percentile(r, 90)), float(np.median(s)), float(np.mean(s)), float(np.mean(r))


def table(curves: list[Curve], rows: list[tuple[str, Runner]]) -> dict[str, dict[str, tuple[float, ...]]]:
    over = [c for c in curves if c.overfits]
    fine = [c for c in curves if not c.overfits]
    res: dict[str, dict[str, tuple[float, ...]]] = {}
    print(f"\n{len(curves)} curves: {len(over)} overfit (final eval >= 1% above min), {len(fine)} do not\n")
    hdr = f"{'rule':<24}| {'overfit: regret med':>19} {'p90':>7} {'saved med':>9} {'mean':>6} | {'no overfit: regret med':>22} {'p90':>7} {'saved med':>9} {'mean':>6}"
    print(hdr)
    print("-" * len(hdr))
    for name, run in rows:
        a = summarize([run(c) for c in over])
        b = summarize([run(c) for c in fine])
        res[name] = {"overfit": a, "no_overfit": b}
        print(f"{name:<24}| {100 * a[0]:>18.2f}% {100 * a[1]:>6.2f}% {100 * a[2]:>8.1f}% {100 * a[3]:>5.1f}% | "
              f"{100 * b[0]:>21.2f}% {100 * b[1]:>6.2f}% {100 * b[2]:>8.1f}% {100 * b[3]:>5.1f}%")
    verdict(res)
    return res


def verdict(res: dict[str, dict[str, tuple[float, ...]]]) -> None:
    """Ours against patience-3, group by group, in words: where it wins and where it does not."""
    ours, p3 = res.get("trainguard (ours)"), res.get("patience-3")
    if not ours or not p3:
        return
    print()
    for grp, label in (("overfit", "overfitting runs"), ("no_overfit", "runs that do not overfit")):
        a, b = ours[grp], p3[grp]
        if any(np.isnan(x) for x in (*a, *b)):
            print(f"vs patience-3 on {label}: no curves")
            continue
        ra, rb = (a[0], a[1], a[4]), (b[0], b[1], b[4])
        reg = "equal" if ra == rb else "lower" if all(x <= y for x, y in zip(ra, rb, strict=True)) else "HIGHER"
        sav = "more" if (a[2], a[3]) > (b[2], b[3]) and a[2] >= b[2] else "equal" if (a[2], a[3]) == (b[2], b[3]) else "LESS"
        print(f"vs patience-3 on {label}: regret {reg} (median {100 * a[0]:.2f}% vs {100 * b[0]:.2f}%, "
              f"p90 {100 * a[1]:.2f}% vs {100 * b[1]:.2f}%, mean {100 * a[4]:.2f}% vs {100 * b[4]:.2f}%), compute saved {sav} "
              f"(median {100 * a[2]:.1f}% vs {100 * b[2]:.1f}%, mean {100 * a[3]:.1f}% vs {100 * b[3]:.1f}%)")


def per_curve(curves: list[Curve], rows: list[tuple[str, Runner]]) -> None:
    names = [n for n, _ in rows]
    print("\nper curve: stop step (regret %) for each rule; '-' = never stopped")
    print(f"{'curve':<44}{'evals':>6}{'last':>7}{'ovf':>4}  " + "  ".join(f"{n[:14]:>16}" for n in names))
    for c in curves:
        cells = []
        for _, run in rows:
            o = run(c)
            cells.append(f"{'-' if o.stop_step is None else o.stop_step:>8} ({100 * o.regret:4.1f})")
        print(f"{c.name[:43]:<44}{len(c.eval):>6}{c.last_step:>7}{'y' if c.overfits else 'n':>4}  " + "  ".join(f"{x:>16}" for x in cells))


def sweep(curves: list[Curve]) -> None:
    """Our rule over a small grid: shows how sensitive the choice is (and that the default is not cherry-picked)."""
    over = [c for c in curves if c.overfits]
    fine = [c for c in curves if not c.overfits]
    print("\nsweep of our rule (patience, tolerance, noise_k, min_evals): overfit regret med/p90, saved med | no-overfit regret p90, saved med")
    for pat in (1, 2, 3):
        for tol in (0.0, 0.005, 0.01, 0.02, 0.05):
            for nk in (0.0, 2.0):
                for me in (3,):
                    p = Policy(patience=pat, tolerance=tol, noise_k=nk, min_evals=me)
                    a = summarize([replay_guard(c, p) for c in over])
                    b = summarize([replay_guard(c, p) for c in fine])
                    mark = "  <- default" if (pat, tol, nk, me) == (Policy().patience, Policy().tolerance, Policy().noise_k, Policy().min_evals) else ""
                    print(f"  p={pat} tol={tol:<5} k={nk:<3} me={me}: {100 * a[0]:5.2f}% {100 * a[1]:5.2f}% {100 * a[2]:5.1f}% | "
                          f"{100 * b[1]:5.2f}% {100 * b[2]:5.1f}%{mark}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebuild", action="store_true", help="retrain the tiny curves")
    ap.add_argument("--sweep", action="store_true", help="print the tuning grid for our rule")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny CPU runs")
    args = ap.parse_args(argv)
    real, skipped = real_curves()
    curves = [*real, seed_curve()]
    if not args.no_tiny:
        curves += tiny_curves(args.rebuild)
    if skipped:
        print("skipped (no reader yet or no metrics): " + ", ".join(skipped))
    print("real runs with >= 4 eval points: " + (", ".join(c.name for c in real) or "none"))
    rows = runners(Policy())
    table(curves, rows)
    per_curve(curves, rows)
    if args.sweep:
        sweep(curves)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
