#!/usr/bin/env python3
"""Record the tiny CPU training curves that ``bench/stopping.py`` replays, into ``bench/data/tiny_curves.json``.

Usage: ``.venv/bin/python bench/record_tiny_curves.py`` (about 3 minutes on 2 cores).

Each curve is a real training of a 2-layer GPT-2 on the CPU (``tests/tiny_training.py``),
varied in seed, data size, LR and schedule so that some overfit hard, some mildly
and some not at all. The losses are bit-for-bit reproducible for a seed, so the
recorded file is data, not a cache: the stopping bench replays it in seconds
instead of training for half an hour, and anyone can re-record it with this script.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "data" / "tiny_curves.json"

# (kind, overrides): the same recipes as the tests, varied.
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


def main() -> int:
    from tests.tiny_training import KINDS, train_kind

    curves = []
    for kind, over in TINY:
        label = "tiny-" + kind + ("" if not over else "(" + ",".join(f"{k}={v}" for k, v in over.items()) + ")")
        print(f"training {label} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as d:
            r = train_kind(kind, Path(d) / "run", **over)
        spec = {**KINDS[kind], **over}
        curves.append({
            "name": label,
            "planned_steps": spec["steps"],
            "train": [(e["step"], e["loss"]) for e in r.log_history if "loss" in e],
            "eval": [(e["step"], e["eval_loss"]) for e in r.log_history if "eval_loss" in e],
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"recorded_with": "bench/record_tiny_curves.py", "curves": curves}, indent=0) + "\n")
    print(f"wrote {OUT} ({len(curves)} curves)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
