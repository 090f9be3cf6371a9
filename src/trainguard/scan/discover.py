"""Find every run under the roots a user gives ``trainguard scan``: trees, files and MLflow tracking URIs.

A tree is walked once, top-down, and each folder is claimed by the most
specific thing it is, so no run is reported twice:

1. a W&B run folder (``run-<id>.wandb`` inside) is one run;
2. an MLflow file-store run folder (``metrics/`` beside ``meta.yaml``/``params/``) is one run
   (an ``mlruns/`` root is just a tree of these);
3. an HF output dir (``trainer_state.json`` at the top or in ``checkpoint-*/``) is one run;
4. a folder holding TensorBoard event files (or ``train/`` + ``validation/`` sub-folders that do)
   is read as one logdir, sub-folders included;
5. any other file some reader recognises (a stdout log, a CSV, JSON lines ...) is read on its own.

Discovery only sniffs the first bytes; reading and analysis happen in the
worker processes. Each target carries a fingerprint (sizes and mtimes of its
files, or an MLflow run's status, end time and latest metrics) that keys the
incremental cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

MAX_DEPTH = 12
_URI = re.compile(r"^(https?|sqlite|postgresql|mysql|mssql|databricks)(\+\w+)?:", re.I)
_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".ipynb_checkpoints", ".trash", ".venv", "site-packages"}
_CKPT = re.compile(r"checkpoint-\d+")
_EVENTS = "tfevents"
_SPLIT = {"train", "validation", "val", "eval", "valid"}
# Never a run on their own: weights, pickles, images, configs (configs.py finds these beside a run).
_SKIP_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".pkl", ".pickle", ".model",
                  ".jpg", ".jpeg", ".png", ".gif", ".svg", ".pdf", ".html", ".py", ".sh", ".yaml", ".yml",
                  ".wandb", ".db", ".sqlite", ".lock", ".tsv.gz.part")
_SKIP_NAMES = {"training_args.json", "args.json", "adapter_config.json", "config.json", "generation_config.json",
               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
               "added_tokens.json", "model.safetensors.index.json", "requirements.txt", "meta.yaml",
               "wandb-metadata.json", "LICENSE",
               "debug.log", "debug-internal.log", "debug-core.log"}  # W&B's own service logs
_HEAD = 64 * 1024
# A file with one of these suffixes that no reader claims is named as a skip (it looks like a log
# and the user will look for it); any other unclaimed file (a README, a config) is passed over.
_LOGLIKE = (".log", ".txt", ".out", ".err", ".csv", ".tsv", ".jsonl", ".log.gz", ".txt.gz", ".csv.gz")


@dataclass(frozen=True)
class Target:
    """Something that holds one or more runs, and how to read it.

    ``kind``: ``path`` (the readers' registry decides), ``tensorboard`` (a logdir), ``wandb`` (a W&B
    run folder), ``mlflow_store`` (a file-store run folder), ``mlflow`` (a run on a tracking
    server: ``locator`` is the URI, ``run_id`` the run).
    """

    kind: str
    locator: str
    label: str
    run_id: str | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.locator}|{self.run_id or ''}"


@dataclass(frozen=True)
class Skip:
    """A run or file that could not be read, with the reason in plain words."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


def is_uri(root: str) -> bool:
    """True for an MLflow tracking URI (``http://``, ``sqlite:///`` ...); ``file:`` is read as a folder."""
    return bool(_URI.match(root))


def find_targets(roots: list[str], *, experiments: list[str] | None = None,
                 exclude: list[Path] | None = None) -> tuple[list[Target], list[Skip]]:
    """Every target under ``roots``, in a stable order, each once; a missing root is an InputError."""
    targets: list[Target] = []
    skips: list[Skip] = []
    seen: set[str] = set()
    excl = [p.resolve() for p in (exclude or [])]
    for root in roots:
        if is_uri(root):
            from ..trackers.mlflow import list_runs

            found, bad = list_runs(root, experiments or [])
            skips.extend(bad)
        else:
            path = Path(root[len("file:"):] if root.startswith("file:") else root).expanduser()
            if root.startswith("file://"):
                path = Path(root[len("file://"):])
            if not path.exists():
                raise InputError(root, "no such file or folder")
            found = [_file_target(path)] if path.is_file() else list(_walk(path.resolve(), 0, excl))
        skips.extend(t for t in found if isinstance(t, Skip))
        for t in found:
            if isinstance(t, Skip):
                continue
            if t.key not in seen:
                seen.add(t.key)
                targets.append(t)
    return targets, skips


# -- the tree walk ---------------------------------------------------------------------

def _walk(d: Path, depth: int, exclude: list[Path], *, tb_claimed: bool = False) -> Any:
    if any(d == e or e in d.parents for e in exclude):
        return
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        return
    files = [e for e in entries if _is_file(e)]
    dirs = [e for e in entries if _is_dir(e)]
    names = {e.name for e in entries}
    if any(f.name.startswith("run-") and f.name.endswith(".wandb") for f in files):
        yield _dir_target(d, "wandb")
        return
    if "metrics" in names and ({"meta.yaml", "params", "tags"} & names):
        yield _dir_target(d, "mlflow_store")
        return
    if "trainer_state.json" in names or any(
        _CKPT.fullmatch(x.name) and os.path.isfile(os.path.join(x.path, "trainer_state.json")) for x in dirs
    ):
        yield _dir_target(d, "path")
        return
    if not tb_claimed and (any(_EVENTS in f.name for f in files) or any(
        x.name.lower() in _SPLIT and _has_events(Path(x.path)) for x in dirs
    )):
        yield _dir_target(d, "tensorboard")
        tb_claimed = True
    for f in files:
        if _EVENTS in f.name or f.name in _SKIP_NAMES:
            continue
        p = Path(f.path)
        if _looks_like_log(p):
            yield _file_target(p)
        elif p.name.lower().endswith(_LOGLIKE) and not p.name.startswith("."):
            yield Skip(str(p), "not recognised as a training log: no reader found metrics in its first 64 KiB")
    if depth >= MAX_DEPTH:
        return
    for x in dirs:
        if x.name in _SKIP_DIRS or x.name.startswith(".") or _CKPT.fullmatch(x.name):
            continue
        yield from _walk(Path(x.path), depth + 1, exclude, tb_claimed=tb_claimed)


def _is_file(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_file()
    except OSError:
        return False


def _is_dir(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_dir()
    except OSError:
        return False


def _has_events(d: Path) -> bool:
    try:
        return any(_EVENTS in f.name for f in d.iterdir())
    except OSError:
        return False


def _looks_like_log(p: Path) -> bool:
    """Some registered reader claims the file's first bytes (binary files other than event files never do)."""
    name = p.name
    if name in _SKIP_NAMES or name.startswith(".") or name.lower().endswith(_SKIP_SUFFIXES):
        return False
    try:
        if p.stat().st_size == 0:
            return False
        from ..readers._io import head, looks_binary

        data = head(p, _HEAD)
    except Exception:  # unreadable here: the worker will say why, if it is a log at all
        return False
    from ..readers import readers

    binary = looks_binary(data)
    for m in readers():
        if binary and not getattr(m, "BINARY", False):
            continue
        try:
            if float(m.sniff(data, p)) > 0:
                return True
        except Exception:
            continue
    return False


# -- fingerprints ----------------------------------------------------------------------

def _file_target(p: Path) -> Target:
    p = p.resolve()
    return Target("path", str(p), str(p), fingerprint=_stat_print([p], p.parent))


def _dir_target(d: Path, kind: str) -> Target:
    d = d.resolve()  # reached through a symlink (W&B's latest-run): the same run, deduplicated by path
    files: list[Path] = []
    for root, dnames, fnames in os.walk(d):
        dnames[:] = [n for n in dnames if not n.startswith(".") and n not in _SKIP_DIRS]
        files.extend(Path(root, n) for n in fnames)
        if len(files) > 20_000:
            break
    return Target(kind, str(d), str(d), fingerprint=_stat_print(files, d))


def _stat_print(files: list[Path], base: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        try:
            st = f.stat()
        except OSError:
            continue
        h.update(f"{f.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def print_of(obj: Any) -> str:
    """A fingerprint of any JSON-able value (used for tracking-server runs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


__all__ = ["Skip", "Target", "find_targets", "is_uri", "print_of"]
