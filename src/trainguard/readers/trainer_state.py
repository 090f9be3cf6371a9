"""HF Trainer ``trainer_state.json``: ``log_history`` with real steps, plus best_metric and checkpoints.

The most trustworthy HF source: every entry carries its ``step``. Entries are
train logs (``loss``), eval logs (``eval_*``), the final summary
(``train_runtime``, ``train_loss`` = the run's *mean* loss, which must not be
taken for a point), and sometimes step-less ``predict_*`` entries (kept by
epoch where possible, else counted as skipped).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._hf_nan import restore_nans
from .._numbers import as_float as _num
from ..errors import InputError
from ..run import EPOCH, Checkpoint, Run
from ._io import read_json
from ._names import canonical

NAME = "hf_trainer_state"

_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}
_EVAL_META = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
_SKIP = {"step", "epoch", "num_input_tokens_seen"}


def sniff(data: bytes, path: Path) -> float:
    """High confidence for a JSON object with a ``log_history`` key."""
    s = data.lstrip()[:1]
    if s != b"{":
        return 0.0
    if b'"log_history"' in data:
        return 0.95
    return 0.0




def read(path: Path) -> Run:
    state = read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise InputError(path, "JSON without a log_history list; not a trainer_state.json")
    run = Run(name=_run_name(path), format=NAME, sources=[str(path)])
    load_state(run, state, source=path.name)
    find_checkpoints(run, path)
    return run


def load_state(run: Run, state: dict[str, Any], *, source: str = "trainer_state.json") -> None:
    """Fill ``run`` from a parsed trainer_state dict (also used by the output-dir reader)."""
    h = run.history
    predict_skipped = 0
    far: list[float] = []  # steps that are NaN, infinite or past int64: a corrupt entry, dropped and said so
    for entry in state.get("log_history", []):
        if not isinstance(entry, dict):
            run.skipped_lines += 1
            continue
        step = entry.get("step")
        epoch = _num(entry.get("epoch"))
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            predict_skipped += 1
            continue
        if not -(2**63) <= step < 2**63:
            far.append(step)
            continue
        step = int(step)
        if "train_runtime" in entry:
            rt = _num(entry.get("train_runtime"))
            if rt is not None:
                run.train_runtime = rt
            run.finished = True
            continue
        is_eval = any(k.startswith("eval_") for k in entry)
        for k, v in entry.items():
            if k in _SKIP or k in _SUMMARY_KEYS or k in _EVAL_META:
                continue
            x = _num(v)
            if x is None:
                continue
            name = canonical(k)
            if is_eval and not k.startswith("eval_"):
                continue  # an eval entry's epoch/step only
            h.add(name, step, x, epoch)
        if epoch is not None and not is_eval:
            h.add(EPOCH, step, epoch, epoch)
    if predict_skipped:
        run.notes.append(f"{predict_skipped} log_history entries without a step (predict_* or summaries) were not plotted")
    if far:
        run.skipped_lines += len(far)
        run.notes.append(f"{len(far)} log_history entr{'ies' if len(far) != 1 else 'y'} whose step is NaN, infinite or "
                         f"past a 64-bit counter (such as {far[0]:g}) {'were' if len(far) != 1 else 'was'} skipped")
    restore_nans(run)
    ms = state.get("max_steps")
    if isinstance(ms, int) and ms > 0:
        run.planned_steps = ms
        run.config.set("max_steps", ms, source)
    ne = _num(state.get("num_train_epochs"))
    if ne:
        run.config.set("num_train_epochs", ne, source)
    if ms and ne:
        run.steps_per_epoch = ms / ne
    for key, ck in (("logging_steps", "logging_steps"), ("eval_steps", "eval_steps"), ("save_steps", "save_steps"), ("train_batch_size", "per_device_train_batch_size")):
        v = state.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            run.config.set(ck, v, source)
    bm = state.get("best_metric")
    bmc = state.get("best_model_checkpoint")
    if bm is not None or bmc:
        step = None
        if isinstance(bmc, str):
            m = re.search(r"checkpoint-(\d+)", bmc)
            step = int(m.group(1)) if m else None
        run.best_recorded = {"metric_value": _num(bm), "checkpoint": bmc, "step": step}
    for cb in (state.get("stateful_callbacks") or {}).values():
        if isinstance(cb, dict) and "early_stopping_patience" in (cb.get("args") or {}):
            run.config.set("early_stopping_patience", cb["args"]["early_stopping_patience"], source)


def _run_name(path: Path) -> str:
    parent = path.parent
    if parent.name.startswith("checkpoint-") and parent.parent.name:
        return parent.parent.name
    if path.name == "trainer_state.json":
        return parent.name or path.stem
    return path.stem


def find_checkpoints(run: Run, path: Path) -> None:
    """Checkpoint folders beside the state file (``out/checkpoint-N``), or the one it sits in."""
    parent = path.parent
    root = parent.parent if parent.name.startswith("checkpoint-") else parent
    try:
        for d in root.iterdir():
            m = re.fullmatch(r"checkpoint-(\d+)", d.name)
            if m and d.is_dir():
                run.checkpoints[int(m.group(1))] = Checkpoint(int(m.group(1)), str(d), _has_weights(d))
    except OSError:
        pass


def _has_weights(d: Path) -> bool:
    names = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin", "model.safetensors.index.json")
    return any((d / n).exists() for n in names) or any(d.glob("global_step*"))
