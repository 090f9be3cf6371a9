"""Start-up stays light: what a command imports is what it needs, checked in a fresh interpreter.

Why a subprocess: ``sys.modules`` of the test process already holds numpy and
everything else. Timings are printed by ``bench/startup.py``, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_HISTORY = {"log_history": [{"loss": 2.0 - i / 10, "step": 10 * i, "epoch": i / 10} for i in range(1, 6)]}

_PROBE = """
import os, sys
from trainguard.cli import main
if os.environ.get("TG_PROBE_BIG"):  # every file counts as big: analyze asks whether stderr can show a spinner
    import trainguard.commands.analyze as a
    a._BIG_FILE = 0
sys.argv = ["trainguard", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
watch = ("numpy", "matplotlib", "torch", "transformers", "peft", "pydantic", "trainguard.run", "trainguard.commands.train",
         "rich.console")
task = "/proc/self/task"
import gc
print(f"\\nFROZEN {gc.get_freeze_count() > 0}", file=sys.stderr)
print(f"\\nTHREADS {len(os.listdir(task)) if os.path.isdir(task) else -1} OPENBLAS {os.environ.get('OPENBLAS_NUM_THREADS')}", file=sys.stderr)
print("\\nIMPORTS " + " ".join(m for m in watch if m in sys.modules) + f" EXIT {code}", file=sys.stderr)
"""


_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
_TTY_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JPY_PARENT_PID", "VSCODE_PID")


def _probe(*args: str, big: bool = False, env_extra: dict[str, str] | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in _TTY_ENV and k not in _BLAS_ENV}
    if big:
        env["TG_PROBE_BIG"] = "1"
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                         env=env)
    return out.stderr.splitlines()


def _imports(*args: str, big: bool = False) -> tuple[set[str], str]:
    line = next(ln for ln in _probe(*args, big=big) if ln.startswith("IMPORTS"))
    words = line.split()
    return set(words[1 : words.index("EXIT")]), words[-1]


def test_help_imports_no_numpy_and_no_command() -> None:
    mods, code = _imports("--help")
    assert code == "0"
    assert mods == set(), mods


def test_help_lists_every_command() -> None:
    from trainguard import cli

    out = subprocess.run([sys.executable, "-m", "trainguard.cli", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0
    for name in cli._COMMANDS:
        assert f"  {name} " in out.stdout, name


def test_each_command_loads_its_own_help() -> None:
    """A command's --help imports that command's module; every listed module registers a command of its name."""
    from typer.testing import CliRunner

    from trainguard.cli import _COMMANDS, app

    for name in _COMMANDS:
        r = CliRunner().invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert f"trainguard {name}" in r.output


def test_analyze_small_state_imports_no_heavy_library(tmp_path: Path) -> None:
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(LOG_HISTORY))
    mods, code = _imports("analyze", str(state), "--json")
    assert code in ("0", "1")
    assert not mods & {"matplotlib", "torch", "transformers", "peft", "trainguard.commands.train"}, mods


def test_analyze_json_into_a_pipe_never_loads_rich(tmp_path: Path) -> None:
    """stderr is a pipe: no spinner for a big log, so rich (~30 ms a start) stays unloaded; a terminal still gets one."""
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(LOG_HISTORY))
    for big in (False, True):
        mods, code = _imports("analyze", str(state), "--json", big=big)
        assert code in ("0", "1")
        assert "rich.console" not in mods, (big, mods)


def test_lint_imports_no_numpy(tmp_path: Path) -> None:
    cfg = tmp_path / "training_args.json"
    cfg.write_text(json.dumps({"learning_rate": 2e-4, "num_train_epochs": 3}))
    mods, _code = _imports("lint", str(cfg))
    assert "numpy" not in mods


def _threads(lines: list[str]) -> tuple[int, str]:
    words = next(ln for ln in lines if ln.startswith("THREADS")).split()
    return int(words[1]), words[3]


def test_analyze_starts_no_blas_thread_pool(tmp_path: Path) -> None:
    """OpenBLAS's pool (a thread per core, 15-70 ms of start-up) is not started for an analysis; the user's setting wins."""
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(LOG_HISTORY))
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_ENV}
    task = "import os, numpy; print(len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else -1)"
    plain = int(subprocess.run([sys.executable, "-c", task], capture_output=True, text=True, env=env, check=True).stdout)
    threads, left = _threads(_probe("analyze", str(state), "--json"))
    assert left == "None"  # the environment is put back: child processes see what the user set
    if plain > 1:  # a BLAS that starts a pool at import (OpenBLAS on Linux)
        assert threads < plain, (threads, plain)
        assert _threads(_probe("analyze", str(state), "--json", env_extra={"OPENBLAS_NUM_THREADS": str(plain)}))[0] == plain


def test_quick_commands_end_without_collecting_and_train_does_not(tmp_path: Path) -> None:
    """analyze/lint/--help skip the exit-time collection (~30 ms); train, run and watch keep it for their libraries."""
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps(LOG_HISTORY))
    out = tmp_path / "report.json"

    def frozen(*args: str) -> bool:
        return next(ln for ln in _probe(*args) if ln.startswith("FROZEN")).split()[1] == "True"

    assert frozen("analyze", str(state), "--json", "-o", str(out))
    assert json.loads(out.read_text())["run"] == tmp_path.name  # the report is whole: written and closed before
    assert frozen("--help")
    assert not frozen("train", "--help")
    assert not frozen("watch", "--help")
