"""Returns the train config: a pydantic schema whose defaults carry the seeds' lessons.

Every default below is commented with the run that taught it. The seeds' "V1"
runs overfitted for the same few reasons: a constant LR with no warmup, LoRA
dropout 0, weight decay 0 or 0.01, 100 epochs, no early stopping, eval too
rarely and checkpoints out of step with evals (seed 003 evaluated every 10
steps but saved every 100, so its best point was never on disk).

Sources, lowest to highest priority: the defaults, the YAML file, the
environment (``TRAINGUARD_<KEY>``, upper-cased field name), then ``--set
key=value`` on the command line. Values from the environment and ``--set``
are parsed as YAML scalars (``2e-5``, ``true``, ``[c_attn, c_proj]``), then
validated by the same schema. ``extra="forbid"`` turns a typo into an error
naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError

ENV_PREFIX = "TRAINGUARD_"
# Steps, batch sizes, block sizes: a billion is past any real run; 1e30 is a typo (and overflows int64 downstream).
_MAX_COUNT = 10**9
# TRAINGUARD_* names that are not config keys (the CLI's and the live guard's own switches).
_OTHER_ENV = {"debug", "realruns", "stdin_max_mb", "cache_dir", "events", "home", "instrument", "launched", "notify",
              "notify_file", "parent", "policy", "load_best", "stop_file", "screenshot_dir", "rank", "keys"}


class TrainConfig(BaseModel):
    """Everything ``trainguard train`` needs; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- what to train ---------------------------------------------------------
    model: str = Field(description="HF causal LM: a hub name or a local folder with config.json")
    data: str = Field(description="training data: .md Q&A pairs, .jsonl (prompt/completion, messages, text) or .txt")
    eval_data: str | None = None  # a held-out file; else eval_fraction of `data` is held out
    output_dir: str = "trainguard-out"
    method: Literal["lora", "full", "qlora"] = "lora"  # LoRA: the seeds' choice, and it fits one GPU

    # -- held-out split ----------------------------------------------------------
    # 10%: enough evals to see a trend on a few hundred pairs; dedup keeps seed 000's
    # leakage (3.64 -> 0.005 in 4% of an epoch) from hiding behind a "healthy" eval curve.
    eval_fraction: float = Field(0.1, gt=0.0, lt=0.5, allow_inf_nan=False)
    dedup: bool = True  # drop exact and normalised duplicates across the split, and report them

    # -- sequence --------------------------------------------------------------------
    block_size: int = Field(512, ge=8, le=_MAX_COUNT)  # checked against the model's max positions before loading
    # Packing short Q&A into full blocks: TRL's best-fit-decreasing with position ids
    # restarting per document, so attention never crosses documents (see docs).
    packing: bool = True
    completion_only_loss: bool = True  # loss on the answer only; the question is context, not target

    # -- optimisation ------------------------------------------------------------------
    learning_rate: float = Field(2e-4, gt=0.0, allow_inf_nan=False)  # a LoRA rate; use ~2e-5 or lower for full fine-tuning
    lr_scheduler_type: str = "cosine"  # seed 002: constant LR with no decay plateaued; 003's was not what it said
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, allow_inf_nan=False)  # seed 002/004: warmup stopped the early spikes
    weight_decay: float = Field(0.1, ge=0.0, allow_inf_nan=False)  # seed V2 (000/001): 0.0 -> 0.1; seed 003 says 0.01 is too weak
    max_grad_norm: float = Field(1.0, ge=0.0, allow_inf_nan=False)  # seed 004: clipping at 1.0 stabilised the run
    num_train_epochs: float = Field(3.0, gt=0.0, allow_inf_nan=False)
    max_steps: int = Field(-1, le=_MAX_COUNT)  # > 0 overrides epochs (the HF rule)
    # seed 003 ran 100 epochs and peaked at 15. Past this cap you must say so explicitly.
    epoch_cap: float = Field(20.0, gt=0.0, allow_inf_nan=False)
    per_device_train_batch_size: int = Field(8, ge=1, le=_MAX_COUNT)
    per_device_eval_batch_size: int = Field(8, ge=1, le=_MAX_COUNT)
    gradient_accumulation_steps: int = Field(2, ge=1, le=_MAX_COUNT)  # seed 004: effective batch 4 -> 16 calmed the noise
    optim: str = "adamw_torch"
    seed: int = 42

    # -- regularisation -------------------------------------------------------------------
    dropout: float | None = Field(0.1, ge=0.0, lt=1.0, allow_inf_nan=False)  # seed 004: dropout 0.1 + attn 0.1; None keeps the model's
    lora_r: int = Field(16, ge=1)  # seed V2 and 002: r 8 -> 16
    lora_alpha: int = Field(32, ge=1)  # alpha = 2r, seed 002
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, allow_inf_nan=False)  # seed 003: lora_dropout 0 was its first root cause
    lora_target_modules: list[str] | str = "all-linear"  # peft's own resolution of the attention/MLP layers

    # -- evaluation, checkpoints, the guard -------------------------------------------------
    eval_steps: int = Field(50, ge=1, le=_MAX_COUNT)  # seed V2: eval often enough to see the turn (500 at their scale)
    # save_steps is not a key: it always equals eval_steps, so the best eval is always a checkpoint on disk.
    logging_steps: int = Field(10, ge=1, le=_MAX_COUNT)
    save_total_limit: int = Field(3, ge=2)  # >= 2: HF keeps the best checkpoint besides the newest
    guard: bool = True  # attach trainguard's callback: saves on a new best, stops on overfitting
    early_stopping_patience: int | None = Field(3, ge=1)  # seed V2: patience 3, a backstop behind the guard
    load_best_model_at_end: bool = True  # the output is the best eval, never the last step

    # -- hardware -------------------------------------------------------------------------
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 where the GPU has it, fp16 else, fp32 on CPU
    gradient_checkpointing: bool = False  # trades ~30% speed for memory; turn on for big models
    use_cpu: bool = False  # force the CPU even where CUDA exists (tests, the demo)
    dataloader_num_workers: int = Field(0, ge=0)
    ddp_backend: str | None = None  # set to gloo by `--gpus N --cpu`

    # -- running --------------------------------------------------------------------------
    resume: str | None = None  # "last", or a checkpoint folder
    merge: bool = False  # with LoRA: save the base model with the adapter merged in
    generate_report: bool = True  # diagnosis report and plots in output_dir/trainguard/
    progress: bool = True  # rich progress bar (off in subprocess tests)
    run_name: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> TrainConfig:
        if self.max_steps <= 0 and self.num_train_epochs > self.epoch_cap:
            raise ValueError(
                f"num_train_epochs={self.num_train_epochs:g} is over epoch_cap={self.epoch_cap:g}; "
                "a 100-epoch LoRA run of ours peaked at epoch 15 and overfitted for the other 85: "
                "raise epoch_cap explicitly if you mean it"
            )
        if self.method == "full" and self.merge:
            raise ValueError("merge applies to LoRA adapters; method is full")
        return self

    # -- derived ------------------------------------------------------------------------
    @property
    def uses_lora(self) -> bool:
        return self.method in ("lora", "qlora")

    def effective_batch(self, world_size: int = 1) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * world_size

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# -- loading ----------------------------------------------------------------------------


def _parse_scalar(text: str) -> Any:
    """YAML scalar parsing for env and --set values, so ``true``, ``[a, b]`` and ``null`` mean what they say.

    PyYAML reads ``2e-5`` as a string (YAML 1.1 wants a dot); pydantic then
    converts it, so that case needs no help here.
    """
    from .._yaml import load_yaml
    from ..errors import InputError

    try:
        return load_yaml(text, "value") if text.strip() else text
    except InputError:  # not YAML (or an alias bomb): the schema then judges the raw string
        return text


def _from_validation_error(e: ValidationError, path: str | None) -> ConfigError:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err.get("loc", ())) or None
    if err.get("type") == "extra_forbidden":
        msg = f"unknown key {key!r}; {_did_you_mean(key or '')}"
    elif err.get("type") == "missing":
        msg = f"missing required key {key!r}"
    elif key:
        got = err.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        msg = f"{key}: {err.get('msg', 'invalid')}{shown}"
    else:
        msg = str(err.get("msg", "invalid config")).removeprefix("Value error, ")
    return ConfigError(msg, key=key, path=path)


def load_config(
    path: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The resolved TrainConfig from ``base`` < YAML file < ``TRAINGUARD_*`` env < ``--set`` overrides.

    Raises ConfigError naming the file and key: an unknown key, a wrong type, a
    malformed ``--set``. Paths in the YAML are taken relative to the YAML's folder.
    """
    from .._yaml import load_yaml
    from ..errors import InputError

    values: dict[str, Any] = dict(base or {})
    where = None if path is None else str(path)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", path=p)
        try:
            loaded = load_yaml(p.read_text(encoding="utf-8"), p) or {}
        except InputError as e:  # malformed, an alias bomb, too deep, a 5,000-digit number
            raise ConfigError(e.problem, path=p) from None
        if not isinstance(loaded, dict):
            raise ConfigError("expected a mapping of key: value at the top level", path=p)
        for k in ("data", "eval_data", "model", "output_dir"):
            v = loaded.get(k)
            if isinstance(v, str) and v and not Path(v).is_absolute() and (p.parent / v).exists():
                loaded[k] = str(p.parent / v)
        values.update(loaded)
    fields = TrainConfig.model_fields
    from_cli: dict[str, str] = {}  # key -> where it came from, when not the YAML file
    for name, raw in sorted((env if env is not None else os.environ).items()):
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in fields:
            values[key] = _parse_scalar(raw)
            from_cli[key] = f"environment variable {name}"
        elif key not in _OTHER_ENV and _nearest(key):
            # the prefix is shared with TRAINGUARD_DEBUG and friends: only a near-miss of a key is a typo
            raise ConfigError(f"environment variable {name} is not a config key; did you mean {ENV_PREFIX}{_nearest(key).upper()}?",
                              key=key)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}", key=key or None)
        if key not in fields:
            raise ConfigError(f"--set {key}: unknown key; {_did_you_mean(key)}", key=key)
        values[key] = _parse_scalar(raw)
        from_cli[key] = f"--set {key}"
    try:
        return TrainConfig(**values)
    except ValidationError as e:
        err = _from_validation_error(e, where)
        if err.key in from_cli:  # blame the override, not the YAML file
            raise ConfigError(f"{from_cli[err.key]}: {str(err).removeprefix(f'{where}: ')}", key=err.key) from None
        raise err from None


def _nearest(key: str) -> str | None:
    """The config key closest to ``key`` (a typo such as lerning_rate, or lora_rank for lora_r), if any is close."""
    import difflib

    fields = list(TrainConfig.model_fields)
    found = difflib.get_close_matches(key.lower(), fields, n=1, cutoff=0.75)
    if not found:  # a prefix of a key (lora_rank starts with lora_r), or a key that starts the name
        found = [f for f in fields if key.startswith(f) or f.startswith(key)][:1]
    return found[0] if found else None


def _did_you_mean(key: str) -> str:
    near = _nearest(key)
    return f"did you mean `{near}`?" if near else "trainguard train --help lists the keys"


def check_inputs(cfg: TrainConfig) -> dict[str, Any]:
    """Check files and the block size against the model's config, before any weights load.

    Reads only ``config.json`` (a local folder's, or the hub's through
    AutoConfig, which downloads no weights). Returns what was learned: the
    model type and its max positions.
    """
    for key in ("data", "eval_data"):
        v = getattr(cfg, key)
        if v is not None and not Path(v).is_file():
            raise ConfigError(f"{key}: file not found: {v}", key=key)
    if cfg.method == "qlora":
        import torch

        if cfg.use_cpu or not torch.cuda.is_available():
            raise ConfigError("method: qlora (4-bit) needs a CUDA GPU; use method: lora on the CPU", key="method")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError("method: qlora needs bitsandbytes (pip install bitsandbytes)", key="method") from None
    if cfg.precision in ("bf16", "fp16"):
        import torch

        if cfg.use_cpu or not torch.cuda.is_available():
            raise ConfigError(f"precision: {cfg.precision} needs a CUDA GPU here; use auto or fp32", key="precision")
        if cfg.precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError("precision: this GPU has no bf16; use fp16 or auto", key="precision")
    info: dict[str, Any] = {}
    local = Path(cfg.model)
    raw: dict[str, Any] | None = None
    if local.is_dir():
        cj = local / "config.json"
        if not cj.is_file():
            # A LoRA adapter folder: its base model's config decides.
            ac = local / "adapter_config.json"
            if ac.is_file():
                base = json.loads(ac.read_text()).get("base_model_name_or_path")
                if base and (Path(base) / "config.json").is_file():
                    cj = Path(base) / "config.json"
        if not cj.is_file():
            raise ConfigError(f"model: {cfg.model} has no config.json; not a HF model folder", key="model")
        try:
            raw = json.loads(cj.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"model: {cj} is not valid JSON ({e.msg})", key="model") from None
    else:
        try:
            from transformers import AutoConfig

            raw = AutoConfig.from_pretrained(cfg.model).to_dict()
        except Exception as e:  # offline, a typo, a gated repo: all one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"model: cannot load the config of {cfg.model!r} ({first[:200]})", key="model") from None
    info["model_type"] = raw.get("model_type")
    max_pos = None
    for k in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        if isinstance(raw.get(k), int):
            max_pos = raw[k]
            break
    info["max_positions"] = max_pos
    if max_pos is not None and cfg.block_size > max_pos:
        raise ConfigError(
            f"block_size: {cfg.block_size} is over the model's max positions ({max_pos}); set block_size <= {max_pos}",
            key="block_size",
        )
    return info


__all__ = ["ENV_PREFIX", "TrainConfig", "check_inputs", "load_config"]
