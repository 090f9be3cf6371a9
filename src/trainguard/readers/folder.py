"""Folders: an HF output dir, a folder of several runs, a TensorBoard logdir, Lightning ``version_N/``.

An HF output dir (``trainer_state.json`` at the top or in a ``checkpoint-*/``)
is one run: the newest state (the top one, else the checkpoint with the
highest step) gives the metrics with real steps and wins; stdout logs beside it
add what only they know (GPU count, runtime, launch command) and the points
logged after the last saved checkpoint. Any other folder is walked: each
sub-folder that is an HF output dir is one run, each file that a registered
reader sniffs is read, and TensorBoard event files are grouped per directory
by ``readers/tensorboard.py`` when that module is present.

Never unpickles anything: ``training_args.bin`` and weights are skipped by name.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import InputError, NoMetricsError, TrainguardError
from ..run import Run, Series
from ._protocol import RunList, Skipped
from .split_tables import find_pair, join_exports, read_pair

NAME = "folder"
FORMAT = "hf_output_dir"
MAX_DEPTH = 3
_CKPT = re.compile(r"checkpoint-(\d+)")
_LOG_SUFFIXES = (".log", ".out", ".txt", ".err")
# Never read as metrics: pickles, weights, tokenizer and config files (configs.py reads the configs).
_WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".pkl", ".pickle", ".model", ".h5",
                    ".keras", ".onnx", ".gguf")
_SKIP_SUFFIXES = (*_WEIGHT_SUFFIXES, ".jpg", ".jpeg", ".png", ".gif", ".svg", ".pdf", ".html", ".py", ".sh", ".yaml", ".yml")
_SKIP_NAMES = {"training_args.json", "args.json", "adapter_config.json", "config.json", "generation_config.json",
               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
               "added_tokens.json", "model.safetensors.index.json", "requirements.txt", "README.md"}
_NOT_HISTORY = {
    "wandb-summary.json": "W&B summary: the last value of each metric, not a history",
    "wandb-metadata.json": "W&B run metadata (host, GPU, command), not metrics",
    "all_results.json": "final results of the run (one value per metric), not a history",
    "train_results.json": "final train results (one value per metric), not a history",
    "eval_results.json": "final eval results (one value per metric), not a history",
}
_NEVER_DIRS = {"__pycache__", "node_modules", "site-packages"}  # never runs, not worth a line
_HEAD = 64 * 1024


def sniff_dir(path: Path) -> float:
    """0.9 for an HF output dir, 0.7 for a folder holding anything a reader understands, else 0."""
    p = Path(path)
    if _state_file(p) is not None:
        return 0.9
    if any(True for _ in _discover(p, 0)):
        return 0.7
    try:
        if find_pair([f for f in p.iterdir() if f.is_file()]) is not None:
            return 0.7
    except OSError:
        return 0.0
    tb = _tensorboard()
    return 0.6 if tb is not None and _has_events_outside_hf(p) else 0.0


def read_dir(path: Path | str) -> RunList:
    """One Run per run found under ``path``, and each file left out with why; NoMetricsError when there is no run.

    Files are never dropped silently: each one is read (alone, or with its
    partner when one run is split over several tables, see ``split_tables``)
    or listed in the result's ``skipped`` with the reason.
    """
    root = Path(path)
    if _state_file(root) is not None:
        return RunList([read_output_dir(root)])
    runs: list[Run] = []
    skipped: list[Skipped] = []
    tb = _tensorboard()
    if tb is not None and _has_events_outside_hf(root):
        with contextlib.suppress(NoMetricsError):
            runs.extend(tb.read_dir(root))
    _walk(root, root, 0, tb, runs, skipped)
    runs = join_exports(runs)
    if not runs:
        why = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
        raise NoMetricsError(root, "folder holds no log we recognise (trainer_state.json, checkpoint-*/, event files, metrics.csv, *.log)"
                             + (f"; {why}" if why else ""))
    return RunList(runs, skipped)


def _walk(d: Path, root: Path, depth: int, tb: ModuleType | None, runs: list[Run], skipped: list[Skipped]) -> None:
    """Read every file of ``d`` (pairs first), then its sub-folders, down to MAX_DEPTH."""
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        skipped.append(Skipped(str(d), f"folder not readable ({e.strerror or e})"))
        return
    files = [p for p in entries if p.is_file()]
    pair = find_pair(files)
    if pair is not None:
        try:
            runs.append(read_pair(*pair))
            files = [f for f in files if f not in pair]
        except TrainguardError:
            pass  # read one by one below
    for p in files:
        reason = _skip_reason(p, tb)
        if reason == "":
            continue  # a TensorBoard event file, read with its folder
        if reason is not None:
            skipped.append(Skipped(str(p), reason))
            continue
        got, why = _read_file(p, root)
        if got:
            runs.extend(got)
        else:
            skipped.append(Skipped(str(p), why))
    for p in entries:
        if not p.is_dir() or p.name.startswith(".") or _CKPT.fullmatch(p.name) or p.name in _NEVER_DIRS:
            continue
        if p.is_symlink():  # wandb/latest-run and the like: the folder it points to is read on its own
            skipped.append(Skipped(str(p), "a link to a folder: not followed (the folder it points to is read where it is)"))
            continue
        other = _layout_reader(p)
        if other is not None:  # a W&B or MLflow run folder below: its own reader reads the whole subtree
            try:
                runs.extend(other.read_dir(p))
            except TrainguardError as e:
                skipped.append(Skipped(str(p), getattr(e, "problem", str(e))))
            continue
        if _state_file(p) is not None:
            runs.append(read_output_dir(p))
        elif depth >= MAX_DEPTH:
            skipped.append(Skipped(str(p), f"deeper than {MAX_DEPTH} folders below {root.name or root}: not searched"))
        else:
            _walk(p, root, depth + 1, tb, runs, skipped)


def read_output_dir(d: Path) -> Run:
    """An HF output dir as one Run: the newest trainer_state, its checkpoints, and stdout logs beside it."""
    from . import hf_stdout, trainer_state

    state = _state_file(d)
    if state is None:
        raise NoMetricsError(d, "no trainer_state.json at the top or in checkpoint-*/")
    run = trainer_state.read(state)
    run.name = d.name or run.name
    run.format = FORMAT
    if state.parent != d:
        run.notes.append(f"metrics from {state.parent.name}/trainer_state.json (the newest checkpoint; no final trainer_state.json at the top)")
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.suffix.lower() not in _LOG_SUFFIXES:
            continue
        try:
            if hf_stdout.sniff(_head(f), f) <= 0:
                continue
            logs = hf_stdout.read_all(f)
        except TrainguardError as e:
            run.notes.append(f"log skipped: {e}")
            continue
        _merge_stdout(run, logs[-1], f)
    return run


def _merge_stdout(run: Run, log: Run, f: Path) -> None:
    """trainer_state wins for metrics; the log adds hardware, runtime, launch info, and points after the last checkpoint."""
    run.sources.append(str(f))
    if run.num_gpus is None and log.num_gpus:
        run.num_gpus = log.num_gpus
    if run.train_runtime is None and log.train_runtime is not None:
        run.train_runtime = log.train_runtime
        run.finished = True
    if not run.planned_steps and log.planned_steps:
        run.planned_steps = log.planned_steps
    if run.steps_per_epoch is None and log.steps_per_epoch:
        run.steps_per_epoch = log.steps_per_epoch
    for k, s in log.config.items():
        if k != "logging_steps":
            run.config.set(k, s.value, f.name)
    last = run.history.last_step()
    added = 0
    for name, s in log.history.items():
        cur = run.history.get_series(name)
        cut = int(cur.steps.max()) if len(cur) else (last if last is not None else -1)
        m = s.steps > cut
        if not m.any():
            continue
        added += int(m.sum())
        run.history.set(name, Series(np.concatenate([cur.steps, s.steps[m]]), np.concatenate([cur.values, s.values[m]]),
                                     np.concatenate([cur.epochs, s.epochs[m]])))
    if added:
        run.notes.append(f"{added} points after the last saved trainer_state taken from {f.name} (steps recovered from the log)")
    run.skipped_lines += log.skipped_lines


# -- discovery ----------------------------------------------------------------------

def _state_file(d: Path) -> Path | None:
    """The newest trainer_state.json of an output dir: the top one, else the highest checkpoint-N's."""
    top = d / "trainer_state.json"
    if top.is_file():
        return top
    best: tuple[int, Path] | None = None
    try:
        for c in d.iterdir():
            m = _CKPT.fullmatch(c.name)
            if m and (c / "trainer_state.json").is_file():
                n = int(m.group(1))
                if best is None or n > best[0]:
                    best = (n, c / "trainer_state.json")
    except OSError:
        return None
    return None if best is None else best[1]


def _discover(d: Path, depth: int):
    """Yield ("hf", dir) for output dirs and ("file", path) for readable files, depth-first, bounded."""
    try:
        entries = sorted(d.iterdir())
    except OSError:
        return
    tb = _tensorboard()
    for p in entries:
        if p.is_file() and _readable(p, tb):
            yield "file", p
    if depth >= MAX_DEPTH:
        return
    for p in entries:
        if not p.is_dir() or p.name in _NEVER_DIRS or p.name.startswith(".") or _CKPT.fullmatch(p.name):
            continue
        if _state_file(p) is not None:
            yield "hf", p
        else:
            yield from _discover(p, depth + 1)


def _readable(p: Path, tb: ModuleType | None) -> bool:
    return _skip_reason(p, tb) is None


def _skip_reason(p: Path, tb: ModuleType | None) -> str | None:
    """Why ``p`` is not read as a metrics log (None: read it; "": read elsewhere, not worth a line)."""
    name = p.name
    low = name.lower()
    if (tb is not None and tb.is_event_file(name)) or "events.out.tfevents" in name:
        return ""  # grouped per directory by tensorboard.read_dir
    if name.startswith("."):
        return "hidden file"
    if name in _SKIP_NAMES:
        if low.endswith((".md", ".txt")):
            return "documentation or a requirements list, not a metrics log"
        return "a config or tokenizer file (configs are read as the run's settings, not as metrics)"
    if name in _NOT_HISTORY:
        return _NOT_HISTORY[name]
    if low.endswith(_WEIGHT_SUFFIXES):
        return "model weights or a pickle: never loaded"
    if low.endswith((".yaml", ".yml")):
        return "a YAML config (configs are read as the run's settings, not as metrics)"
    if low.endswith(_SKIP_SUFFIXES):
        return f"not a metrics log ({p.suffix or name})"
    try:
        if p.stat().st_size == 0:
            return "empty file"
        data = _head(p)
    except (OSError, TrainguardError):
        return "not readable"
    from . import readers
    from ._io import looks_binary

    if not data:
        return "not readable"
    if any(float(m.sniff(data, p)) > 0 for m in readers() if m.NAME != "tensorboard"):
        return None
    if looks_binary(data):
        return "binary data, not a text log"
    return "no reader recognised it (no metric lines in its first 64 KiB)"


def _read_file(p: Path, root: Path) -> tuple[list[Run], str]:
    """(runs read from ``p``, why none were) for one file of a walked folder."""
    from . import pick_reader

    try:
        mod = pick_reader(p, _head(p))
        reader = getattr(mod, "read_all", None)
        runs = list(reader(p)) if reader else [mod.read(p)]
        from . import with_log_facts

        with_log_facts(mod.NAME, p, runs)
    except TrainguardError as e:
        return [], getattr(e, "problem", str(e))  # not a log after all: the folder is still read
    from .trainer_state import find_checkpoints

    for r in runs:
        if not r.checkpoints:
            find_checkpoints(r, p)  # a log beside checkpoint-*/ folders (no trainer_state.json)
        rel = p.relative_to(root)
        if len(rel.parts) > 1 and r.name in (p.stem, p.name):
            r.name = str(rel.parent / r.name)
    return runs, ""


def _layout_reader(d: Path) -> ModuleType | None:
    """The folder reader (other than this one) that claims ``d``, e.g. a W&B or MLflow run folder."""
    from . import dir_readers

    for m in dir_readers():
        if m.__name__ == __name__:
            continue
        try:
            if float(m.sniff_dir(d)) > 0:
                return m
        except OSError:
            continue
    return None


def _has_events_outside_hf(root: Path) -> bool:
    for p in root.rglob("*events.out.tfevents*"):
        rel = p.relative_to(root).parts
        if not any(_state_file(root.joinpath(*rel[:i])) for i in range(1, len(rel))):
            return True
    return False


def _tensorboard() -> ModuleType | None:
    try:
        return importlib.import_module(f"{__package__}.tensorboard")
    except ImportError:
        return None


def _head(p: Path) -> bytes:
    from ._io import head

    try:
        return head(p, _HEAD)
    except InputError:
        return b""
