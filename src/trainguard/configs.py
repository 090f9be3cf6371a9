"""Configs found beside a run or given with ``--config``, mapped onto RunConfig keys.

Sources: TrainingArguments as JSON/YAML, peft ``adapter_config.json``, a
DeepSpeed ``ds_config.json``, the launch command line printed in a log, and
``CUDA_VISIBLE_DEVICES`` / world size. ``training_args.bin`` is a pickle and is
never loaded: its JSON siblings are read instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .run import Run, RunConfig


def load_config_file(path: str | Path) -> RunConfig:
    """Parse one config file into a RunConfig (each value sourced to the file name)."""
    raise NotImplementedError


def attach(run: Run, run_path: str | Path, *, extra: Sequence[str | Path] = ()) -> None:
    """Attach explicit configs (``extra``, highest priority) then those found beside ``run_path``."""
    return None
