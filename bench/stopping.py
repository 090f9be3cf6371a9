#!/usr/bin/env python3
"""Which stopping rule keeps the best checkpoint and saves the most compute? Replays recorded real curves.

Run: ``.venv/bin/python bench/stopping.py [CORPUS] [--per-curve]`` (well under 2 minutes).

Curves (all recorded, nothing is trained here):

- every run in ``CORPUS`` (default ``../shared/realruns``) with at least 4 eval
  points, read through ``trainguard.readers.read_runs`` as a user's run would be;
- the tiny GPT-2 trainings on the CPU kept as data in ``bench/data/tiny_curves.json``
  (re-record them with ``bench/record_tiny_curves.py``).

Each rule sees the points in step order (train before eval at the same step),
exactly as a live guard would. For each rule and curve:

- the checkpoint kept is the best eval seen up to the stop (the guard saves on
  every new best), so regret = eval at the kept checkpoint / best of the whole
  run - 1;
- saved = (last step - stop step) / last step.

Rules: ours (the public ``Guard.log`` API with the default ``Policy``, told the
planned length where the log gives it), patience-1/3/5 (HF
``EarlyStoppingCallback``), Prechelt's GL/PQ/UP, SageMaker's Overtraining rule,
and the hindsight oracle (stops at the best eval: the most any rule could save).
A run "overfits" by the labelled corpus's reference definition (``label.py``):
its final eval is more than 5 % above its best and the best came before 80 %
of the run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
TINY = ROOT / "bench" / "data" / "tiny_curves.json"

from trainguard.live.guard import Guard  # noqa: E402
from trainguard.live.policy import Policy  # noqa: E402
from trainguard.live.stopping import GL, PQ, UP, Patience, SageMakerOvertraining, StoppingRule  # noqa: E402


@dataclass
class Curve:
    name: str
    source: str  # realrun | tiny
    train: list[tuple[int, float]]
    eval: list[tuple[int, float]]
    planned: int | None = None

    @property
    def last_step(self) -> int:
        return max(s for s, _ in self.train + self.eval)

    @property
    def best(self) -> float:
        return min(v for _, v in self.eval)

    @property
    def best_step(self) -> int:
        return min(self.eval, key=lambda e: e[1])[0]

    @property
    def overfits(self) -> bool:
        """The reference definition: final eval > 1.05 x best, and the best before 80 % of the run."""
        return self.eval[-1][1] > 1.05 * self.best and self.best_step < 0.8 * self.last_step

    def events(self) -> list[tuple[int, int, float]]:
        """(step, 0=train / 1=eval, value) in step order, train before eval at equal steps."""
        ev = [(s, 0, v) for s, v in self.train] + [(s, 1, v) for s, v in self.eval]
        return sorted(ev, key=lambda e: (e[0], e[1]))


def real_curves(corpus: Path) -> tuple[list[Curve], list[str]]:
    from trainguard.readers import read_runs

    out: list[Curve] = []
    skipped: list[str] = []
    runs_dir = corpus / "runs"
    if not runs_dir.is_dir():
        return out, [f"{runs_dir} (missing)"]
    for p in sorted(runs_dir.iterdir()):
        try:
            runs = read_runs(p)
        except Exception as e:  # an unreadable run is listed, never fatal
            skipped.append(f"{p.name} ({type(e).__name__})")
            continue
        for i, run in enumerate(runs):
            ev = run.eval_loss.finite().sorted()
            if len(ev) < 4:
                continue
            tr = run.train_loss.finite().sorted()
            name = p.name if len(runs) == 1 else f"{p.name}#{i}"
            out.append(Curve(name, "realrun", _pairs(tr.steps, tr.values), _pairs(ev.steps, ev.values), run.planned_steps))
    return out, skipped


def tiny_curves() -> list[Curve]:
    if not TINY.is_file():
        return []
    data = json.loads(TINY.read_text())
    return [Curve(c["name"], "tiny", [tuple(x) for x in c["train"]], [tuple(x) for x in c["eval"]],  # type: ignore[misc]
                  c.get("planned_steps")) for c in data["curves"]]


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
    seen = [v for s, v in c.eval if s <= end]
    regret = min(seen) / c.best - 1.0 if seen else math.inf  # stopped before any eval: no checkpoint to keep
    return Outcome(stop_step, regret, (c.last_step - end) / c.last_step if c.last_step else 0.0)


def replay_rule(c: Curve, rule: StoppingRule) -> Outcome:
    for step, is_eval, v in c.events():
        if not is_eval:
            rule.observe_train(step, v)
        elif rule.observe_eval(step, v).stop:
            return _outcome(c, step)
    return _outcome(c, None)


def replay_guard(c: Curve, policy: Policy) -> Outcome:
    """Replays through the public Guard.log API: the bench measures exactly what users run."""
    g = Guard(policy, detect_min_gap=10**9)  # the periodic detector pass only alerts; keep the replay lean
    g.set_plan(c.planned)
    for step, is_eval, v in c.events():
        a = g.log(step, eval_loss=v) if is_eval else g.log(step, train_loss=v)
        if a.stop:
            return _outcome(c, step)
    return _outcome(c, None)


def oracle(c: Curve) -> Outcome:
    return _outcome(c, c.best_step)


Runner = Callable[[Curve], Outcome]


def runners(policy: Policy) -> list[tuple[str, Runner]]:
    makers: list[tuple[str, Callable[[], StoppingRule]]] = [
        ("patience-1", lambda: Patience(1)),
        ("patience-3", lambda: Patience(3)),
        ("patience-5", lambda: Patience(5)),
        ("Prechelt GL(2)", lambda: GL(2.0)),
        ("Prechelt PQ(0.75)", lambda: PQ(0.75)),
        ("Prechelt UP(3)", lambda: UP(3)),
        ("SageMaker overtrain", SageMakerOvertraining),
    ]
    rows: list[tuple[str, Runner]] = [("trainguard (ours)", lambda c: replay_guard(c, policy))]
    rows += [(name, lambda c, mk=mk: replay_rule(c, mk())) for name, mk in makers]
    rows.append(("oracle (hindsight)", oracle))
    return rows


def stats(outs: list[Outcome]) -> dict[str, float]:
    if not outs:
        return {k: math.nan for k in ("max", "p90", "median", "saved")}
    r = np.array([o.regret for o in outs])
    s = np.array([o.saved for o in outs])
    return {"max": float(r.max()), "p90": float(np.percentile(r, 90)), "median": float(np.median(r)),
            "saved": float(np.median(s))}


def table(curves: list[Curve], rows: list[tuple[str, Runner]]) -> dict[str, dict[str, dict[str, float]]]:
    over = [c for c in curves if c.overfits]
    fine = [c for c in curves if not c.overfits]
    print(f"\n{len(curves)} curves: {len(over)} overfit (reference definition), {len(fine)} do not\n")
    hdr = (f"{'rule':<20}| {'overfit: regret max':>19} {'p90':>6} {'med':>6} {'saved med':>9} "
           f"| {'no overfit: regret max':>22} {'p90':>6} {'med':>6} {'saved med':>9}")
    print(hdr)
    print("-" * len(hdr))
    res: dict[str, dict[str, dict[str, float]]] = {}
    for name, run in rows:
        a, b = stats([run(c) for c in over]), stats([run(c) for c in fine])
        res[name] = {"overfit": a, "no_overfit": b}
        print(f"{name:<20}| {100 * a['max']:>18.2f}% {100 * a['p90']:>5.2f}% {100 * a['median']:>5.2f}% {100 * a['saved']:>8.1f}% "
              f"| {100 * b['max']:>21.2f}% {100 * b['p90']:>5.2f}% {100 * b['median']:>5.2f}% {100 * b['saved']:>8.1f}%")
    return res


def worst(curves: list[Curve], run: Runner) -> None:
    outs = [(c, run(c)) for c in curves]
    c, o = max(outs, key=lambda x: x[1].regret)
    print(f"\nour worst regret: {100 * o.regret:.2f}% on {c.name} (stopped at {o.stop_step}, best at {c.best_step})")


def per_curve(curves: list[Curve], rows: list[tuple[str, Runner]]) -> None:
    names = [n for n, _ in rows]
    print("\nper curve: stop step (regret %) for each rule; '-' = never stopped")
    print(f"{'curve':<40}{'evals':>6}{'last':>7}{'ovf':>4}  " + "  ".join(f"{n[:14]:>16}" for n in names))
    for c in curves:
        cells = []
        for _, run in rows:
            o = run(c)
            cells.append(f"{'-' if o.stop_step is None else o.stop_step:>8} ({100 * o.regret:4.1f})")
        print(f"{c.name[:39]:<40}{len(c.eval):>6}{c.last_step:>7}{'y' if c.overfits else 'n':>4}  " + "  ".join(f"{x:>16}" for x in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=ROOT.parent / "shared" / "realruns")
    ap.add_argument("--per-curve", action="store_true", help="print every curve's stop step and regret per rule")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    real, skipped = real_curves(args.corpus)
    curves = [*real, *tiny_curves()]
    if skipped:
        print("skipped: " + ", ".join(skipped))
    print(f"{len(real)} real runs with >= 4 evals, {len(curves) - len(real)} recorded tiny CPU trainings")
    rows = runners(Policy())
    table(curves, rows)
    worst(curves, rows[0][1])
    if args.per_curve:
        per_curve(curves, rows)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
