"""What is known of a run's hyper-parameters, each value with where it came from.

Kept apart from ``run.py`` (the metric history, numpy-backed) so that
``trainguard lint``, which reads configs and never a metric, starts without
numpy. ``trainguard.run`` re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sourced:
    """A config value and where it came from (``ds_config.json``, ``command line``, ``trainer_state.json`` ...)."""

    value: Any
    source: str


# Canonical RunConfig keys, with what they mean. Readers and config loaders map
# framework keys onto these; unknown keys are kept under their own names.
CONFIG_KEYS: dict[str, str] = {
    "framework": "hf | deepspeed | lightning | llamafactory | axolotl | nanogpt | custom",
    "model_name": "base model name or path",
    "learning_rate": "peak learning rate",
    "lr_scheduler_type": "HF scheduler name (linear, cosine, constant, constant_with_warmup ...)",
    "warmup_steps": "warmup length in optimizer steps",
    "warmup_ratio": "warmup length as a fraction of the run",
    "num_train_epochs": "planned epochs",
    "max_steps": "planned optimizer steps (overrides epochs when > 0)",
    "per_device_train_batch_size": "micro-batch per device",
    "per_device_eval_batch_size": "eval micro-batch per device",
    "gradient_accumulation_steps": "micro-batches per optimizer step",
    "world_size": "data-parallel processes (GPUs)",
    "weight_decay": "AdamW weight decay",
    "dropout": "model dropout (attention/residual)",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA alpha",
    "lora_dropout": "LoRA dropout",
    "lora_target_modules": "LoRA target modules",
    "load_in_4bit": "4-bit quantized base model (QLoRA)",
    "load_in_8bit": "8-bit quantized base model",
    "bf16": "bfloat16 mixed precision",
    "fp16": "float16 mixed precision",
    "max_seq_length": "sequence / block length in tokens",
    "eval_strategy": "no | steps | epoch",
    "eval_steps": "eval interval in steps",
    "save_strategy": "no | steps | epoch | best",
    "save_steps": "checkpoint interval in steps",
    "save_total_limit": "checkpoints kept on disk",
    "logging_steps": "train-log interval in steps",
    "load_best_model_at_end": "reload the best checkpoint when training ends",
    "metric_for_best_model": "metric that picks the best checkpoint",
    "greater_is_better": "direction of metric_for_best_model",
    "early_stopping_patience": "EarlyStoppingCallback patience (evals)",
    "max_grad_norm": "gradient clipping threshold (0 = off)",
    "optim": "optimizer name",
    "gradient_checkpointing": "activation checkpointing",
    "seed": "random seed",
    "deepspeed": "the DeepSpeed config as a dict (optimizer / scheduler blocks)",
    "deepspeed_scheduler": "DeepSpeed scheduler type (WarmupLR, WarmupDecayLR, WarmupCosineLR ...)",
    "train_samples": "examples in the training set",
    "launch_command": "the command line that started the run",
}


class RunConfig:
    """What is known of a run's hyper-parameters, each value with its source.

    The first source to set a key wins unless ``override=True``: readers add
    the most specific sources first (an explicit ``--config``, then files
    beside the run, then values inferred from the log). A key never seen is
    *unknown*, which the diagnosis says instead of guessing.
    """

    def __init__(self, values: Mapping[str, Sourced] | None = None) -> None:
        self._values: dict[str, Sourced] = dict(values or {})
        self.conflicts: list[tuple[str, Sourced, Sourced]] = []

    def set(self, key: str, value: Any, source: str, *, override: bool = False) -> None:
        """Record ``key = value`` from ``source``; a differing later value is kept as a conflict."""
        if value is None:
            return
        old = self._values.get(key)
        if old is None or override:
            self._values[key] = Sourced(value, source)
        elif old.value != value:
            self.conflicts.append((key, old, Sourced(value, source)))

    def update(self, values: Mapping[str, Any], source: str, *, override: bool = False) -> None:
        for k, v in values.items():
            self.set(k, v, source, override=override)

    def get(self, key: str, default: Any = None) -> Any:
        s = self._values.get(key)
        return default if s is None else s.value

    def source(self, key: str) -> str | None:
        s = self._values.get(key)
        return None if s is None else s.source

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> Iterator[tuple[str, Sourced]]:
        return iter(self._values.items())

    def merge(self, other: RunConfig, *, override: bool = False) -> None:
        for k, s in other.items():
            self.set(k, s.value, s.source, override=override)
        self.conflicts.extend(other.conflicts)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {k: {"value": s.value, "source": s.source} for k, s in self._values.items()}

    # -- derived values ----------------------------------------------------
    def num(self, key: str) -> float | None:
        """``key`` as a float, or None when unknown or not numeric."""
        v = self.get(key)
        if isinstance(v, bool) or v is None:
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    @property
    def world_size(self) -> int | None:
        v = self.num("world_size")
        return int(v) if v else None

    @property
    def effective_batch(self) -> int | None:
        """per-device batch x grad accumulation x world size, when all are known (accumulation defaults to 1)."""
        b = self.num("per_device_train_batch_size")
        if not b:
            return None
        acc = self.num("gradient_accumulation_steps") or 1
        ws = self.num("world_size") or 1
        return int(b * acc * ws)

    @property
    def uses_lora(self) -> bool:
        return "lora_r" in self
