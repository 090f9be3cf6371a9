"""Hyper-parameter short names, and file names built from them the way users name their plots.

Users name artefacts after the positional arguments of their launch script:
``Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100`` produced
``loss_plot_0.0002_8870_2_2_10_0.01_100.jpg`` (seed 003). ``--plots`` and
``compare --name-pattern`` speak that same language, so a user can put our
PNG next to theirs and see at once which run it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..run import RunConfig

# Short name -> canonical RunConfig key (run.CONFIG_KEYS). The short names are
# the ones ``--name-pattern`` accepts, joined by "_".
SHORT_KEYS: dict[str, str] = {
    "lr": "learning_rate",
    "seqlen": "max_seq_length",
    "bs": "per_device_train_batch_size",
    "evalbs": "per_device_eval_batch_size",
    "accum": "gradient_accumulation_steps",
    "wd": "weight_decay",
    "epochs": "num_train_epochs",
    "warmup": "warmup_steps",
    "r": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "gpus": "world_size",
    "steps": "max_steps",
    "sched": "lr_scheduler_type",
    "samples": "train_samples",
}

# The pattern of seed 003's file names, used for plot names.
DEFAULT_PATTERN = "lr_seqlen_bs_evalbs_accum_wd_epochs"

_NUM = re.compile(r"^[-+]?(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def fmt_value(v: Any) -> str:
    """A value as users write it in names: ``0.0002``, ``1e-05``, ``100`` (not ``100.0``)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        f = float(v)
        if math.isfinite(f) and f == int(f) and abs(f) < 1e15:
            return str(int(f))
        return format(f, "g") if math.isfinite(f) else str(f)
    return str(v)


def short_params(config: RunConfig) -> dict[str, Any]:
    """The known hyper-parameters of ``config`` under their short names (unknown ones left out)."""
    out: dict[str, Any] = {}
    for short, key in SHORT_KEYS.items():
        v = config.get(key)
        if v is not None and v != "":
            out[short] = v
    return out


def hparam_suffix(config: RunConfig, pattern: str = DEFAULT_PATTERN) -> str | None:
    """``0.0002_8870_2_2_10_0.01_100`` for seed 003's config; None when nothing in ``pattern`` is known.

    An unknown position is written ``NA`` rather than dropped: dropping it
    would shift every later value into the wrong slot of the user's pattern.
    """
    params = short_params(config)
    names = [n for n in pattern.split("_") if n]
    if not any(n in params for n in names):
        return None
    params.update(_from_launch(config, names, params))
    return "_".join(_safe(fmt_value(params[n])) if n in params else "NA" for n in names)


def _from_launch(config: RunConfig, names: list[str], known: dict[str, Any]) -> dict[str, Any]:
    """Slots the config lacks, taken from the launch command's positional numbers, when the rest agree.

    ``Finetuning_V5.py 0.0002 8870 2 2 10 0.01 100``: if the command has one
    number per slot and every slot the config *does* know holds the same value,
    the command follows the pattern, so its unknown slots (here the sequence
    length, 8870) can be trusted. Any disagreement and nothing is taken.
    """
    cmd = config.get("launch_command")
    missing = [n for n in names if n not in known]
    if not isinstance(cmd, str) or not missing:
        return {}
    after = re.split(r"\S+\.py\b", cmd, maxsplit=1)
    tokens = [t for t in (after[1] if len(after) == 2 else cmd).split() if not t.startswith("-")]
    nums = [t for t in tokens if _NUM.match(t)]
    if len(nums) != len(names):
        return {}
    for n, t in zip(names, nums, strict=True):
        if n in known:
            try:
                if not math.isclose(float(known[n]), float(t), rel_tol=1e-9):
                    return {}
            except (TypeError, ValueError):
                return {}
    return {n: float(t) if any(c in t for c in ".eE") else int(t) for n, t in zip(names, nums, strict=True) if n in missing}


def safe_stem(text: str, limit: int = 80) -> str:
    """``text`` reduced to characters safe in a file name on every OS."""
    s = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")
    return s[:limit] or "run"


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "-", s)


def parse_name(name: str, pattern: str) -> dict[str, float | str]:
    """Values encoded in a file or folder name, by position: ``pattern`` names each slot.

    ``train_0.0001_2092_1_1_4_0.01_10.out`` with the default pattern gives
    ``{"lr": 0.0001, "seqlen": 2092, ...}``. The values are the *last* run of
    ``len(pattern)`` numeric ``_``-separated tokens of the stem, so a prefix
    such as ``loss_plot_`` or ``run7_`` never shifts them. Unknown short names
    in the pattern are an error a user should see, so they raise ValueError.
    """
    names = [n for n in pattern.split("_") if n]
    bad = [n for n in names if n not in SHORT_KEYS and n not in ("x", "_")]
    if bad:
        raise ValueError(f"unknown name(s) {', '.join(bad)} in pattern; known: {', '.join(SHORT_KEYS)}, x (skip)")
    stem = name
    for suffix in (".gz", ".out", ".log", ".txt", ".json", ".jsonl", ".csv", ".jpg", ".jpeg", ".png", ".err"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    tokens = stem.split("_")
    # The last window of len(names) consecutive numeric tokens.
    for end in range(len(tokens), len(names) - 1, -1):
        window = tokens[end - len(names) : end]
        if all(_NUM.match(t) for t in window):
            out: dict[str, float | str] = {}
            for n, t in zip(names, window, strict=True):
                if n != "x":
                    f = float(t)
                    out[n] = int(f) if f == int(f) and "." not in t and "e" not in t.lower() else f
            return out
    return {}


def to_canonical(params: Mapping[str, Any]) -> dict[str, Any]:
    """Short names -> canonical RunConfig keys (unknown short names dropped)."""
    return {SHORT_KEYS[k]: v for k, v in params.items() if k in SHORT_KEYS}


__all__ = ["DEFAULT_PATTERN", "SHORT_KEYS", "fmt_value", "hparam_suffix", "parse_name", "safe_stem", "short_params", "to_canonical"]
