"""Start-up time of the CLI, whole process, min of N: ``--help`` and ``analyze`` on a small trainer_state.json.

Issue 14's targets: ``trainguard --help`` <= 0.15 s and ``analyze`` on a small
``trainer_state.json`` <= 0.3 s. ``python -c pass`` and ``import numpy`` are
printed beside them as the machine's own floor. Each command is timed as
``python -m trainguard.cli`` and, when the venv has it, as the ``trainguard``
console script users type (no runpy). ``--src DIR`` times another
checkout's ``src`` in the same run (before/after). Bytecode caching is on
(``PYTHONDONTWRITEBYTECODE`` is dropped for the children), as for an
installed package.

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --src /tmp/old/src --src src
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TARGETS = {"trainguard --help": 0.15, "trainguard analyze trainer_state.json": 0.3}


def _best(cmd: list[str], n: int, env: dict[str, str]) -> tuple[float, int]:
    best, rc = float("inf"), 0
    for _ in range(n):
        t = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False).returncode
        best = min(best, time.perf_counter() - t)
    return best, rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="runs per row; the fastest is shown")
    ap.add_argument("--src", type=Path, action="append", default=[], help="a src/ folder to time (repeatable)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-startup-") as tmp:
        state = Path(tmp) / "trainer_state.json"
        hist = [{"loss": 2.0 - i / 100, "step": 10 * i, "epoch": i / 50, "learning_rate": 1e-4} for i in range(1, 101)]
        hist += [{"eval_loss": 2.1 - i / 60, "step": 100 * i, "epoch": i / 5} for i in range(1, 11)]
        state.write_text(json.dumps({"log_history": hist, "global_step": 1000, "max_steps": 1000}))
        print(f"{'command':52s} {'src':28s} {'seconds':>8s} {'target':>7s}")
        # Compiled bytecode allowed, as an installed package has it (pip compiles at install): a
        # session with PYTHONDONTWRITEBYTECODE=1 would otherwise time compiling every module from
        # source on every start. The first of the N runs writes __pycache__; the min is warm.
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for name, cmd in (("python -c pass", [PY, "-c", "pass"]), ("python -c 'import numpy'", [PY, "-c", "import numpy"])):
            s, _ = _best(cmd, args.n, base_env)
            print(f"{name:52s} {'-':28s} {s:8.3f} {'':>7s}")
        script = Path(PY).parent / "trainguard"
        launchers = [("python -m", [PY, "-m", "trainguard.cli"])]
        entry = None
        if script.is_file():
            launchers.append(("script", [str(script)]))
            m = re.search(r"^from (\S+) import main", script.read_text(errors="replace"), re.M)
            entry = m.group(1) if m else None
        for src in args.src or [ROOT / "src"]:
            env = dict(base_env, PYTHONPATH=str(src))
            for how, launch in launchers:
                if how == "script" and entry and not (src / (entry.replace(".", "/") + ".py")).is_file():
                    print(f"{'(script)':52s} {str(src)[-28:]:28s}   the installed script enters at {entry}, not in this tree")
                    continue
                for name, rest in (("trainguard --help", ["--help"]),
                                   ("trainguard analyze trainer_state.json", ["analyze", str(state), "--json"])):
                    s, rc = _best([*launch, *rest], args.n, env)
                    flag = "" if rc in (0, 1) else f"  (exit {rc})"
                    print(f"{name + ' (' + how + ')':52s} {str(src)[-28:]:28s} {s:8.3f} {TARGETS[name]:7.2f}{flag}")


if __name__ == "__main__":
    main()
