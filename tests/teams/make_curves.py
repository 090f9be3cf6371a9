"""Record the curves the teams tests log into MLflow and W&B: three tiny CPU trainings, kept as JSON.

Run from the repository root (about 30 s on a CPU)::

    .venv/bin/python -m tests.teams.make_curves [KIND ...]   (default: all three; others are kept)

It trains the ``overfit``, ``healthy`` and ``diverge`` kinds of
``tests/tiny_training.py`` (a 2-layer GPT-2, the HF Trainer, reproducible
losses for a seed) and writes each run's ``log_history`` (train loss, eval
loss, learning rate, grad norm, epoch, with the real steps) and its main
TrainingArguments to ``tests/data/teams/curves.json``. The tests log these
points through the trackers' own clients, so they exercise real curves
without paying for three trainings on every run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "teams" / "curves.json"
KINDS = ("overfit", "healthy", "diverge")
# The diverging run warms up to LR 1.0 over 100 steps, so its first logs are a normal descent and
# the blow-up happens on the record (with LR 1.0 from step 0 the loss is ~100 before the first log,
# and a curve that starts broken shows no divergence, only a loss of unknown type that stays high).
OVERRIDES = {"diverge": {"warmup": 100, "steps": 300, "sched": "constant_with_warmup"}}
_KEEP = ("loss", "eval_loss", "learning_rate", "grad_norm", "epoch")


def main() -> None:
    import torch

    torch.set_num_threads(1)  # a 134k-parameter model gains nothing from threads on a shared CPU
    import sys

    from tests.tiny_training import KINDS as SPECS
    from tests.tiny_training import train_kind

    kinds = sys.argv[1:] or list(KINDS)
    curves = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            run = train_kind(kind, Path(tmp) / kind, **OVERRIDES.get(kind, {}))
            points = []
            for row in run.log_history:
                vals = {k: float(row[k]) for k in _KEEP if isinstance(row.get(k), (int, float))}
                if "loss" in vals or "eval_loss" in vals:
                    points.append({"step": int(row["step"]), **vals})
            spec = {**SPECS[kind], **OVERRIDES.get(kind, {})}
            curves[kind] = {
                "params": {"learning_rate": spec["lr"], "lr_scheduler_type": spec["sched"], "max_steps": spec["steps"],
                           "eval_steps": spec["eval_steps"], "warmup_steps": spec["warmup"],
                           "per_device_train_batch_size": 8, "logging_steps": 10},
                "points": points,
            }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(curves, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: " + ", ".join(f"{k} {len(v['points'])} points" for k, v in curves.items()))


if __name__ == "__main__":
    main()
