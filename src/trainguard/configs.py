"""Configs found beside a run or given with ``--config``, mapped onto RunConfig keys.

Sources: TrainingArguments as JSON/YAML (also ``training_args.json`` /
``args.json``), peft ``adapter_config.json``, a DeepSpeed ``ds_config.json``,
a model's ``config.json`` (dropout fields), Axolotl and LLaMA-Factory YAML, W&B's
``config.yaml`` (``key: {value: X}``), the launch command line printed in a log, and ``CUDA_VISIBLE_DEVICES`` / world
size. The flavour of a file is told from its keys, never from its name alone.
Every value is sourced to the file it came from. ``training_args.bin`` is a
pickle and is never loaded: its JSON siblings are read instead.

Priority: explicit ``--config`` files, then files beside the run (and in its
best/last checkpoint), then what the reader found in the log. A later source
that disagrees is kept in ``RunConfig.conflicts``, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InputError
from .run_config import RunConfig, Sourced

if TYPE_CHECKING:  # lint loads configs without the (numpy) metric model
    from .run import Run

# Framework key -> canonical key, for every flavour (HF names are mostly canonical already).
_ALIASES: dict[str, str] = {
    "evaluation_strategy": "eval_strategy",
    "model_name_or_path": "model_name",
    "base_model": "model_name",
    "base_model_name_or_path": "model_name",
    "_name_or_path": "model_name",
    "lr": "learning_rate",
    "lr_scheduler": "lr_scheduler_type",
    "num_epochs": "num_train_epochs",
    "epochs": "num_train_epochs",
    "micro_batch_size": "per_device_train_batch_size",
    "train_batch_size_per_device": "per_device_train_batch_size",
    "eval_batch_size": "per_device_eval_batch_size",
    "batch_size": "per_device_train_batch_size",
    "lora_rank": "lora_r",
    "r": "lora_r",
    "lora_target": "lora_target_modules",
    "target_modules": "lora_target_modules",
    "sequence_len": "max_seq_length",
    "cutoff_len": "max_seq_length",
    "max_length": "max_seq_length",
    "model_max_length": "max_seq_length",
    "block_size": "max_seq_length",
    "seq_len": "max_seq_length",
    "optimizer": "optim",
    "num_gpus": "world_size",
    "nproc_per_node": "world_size",
    "num_processes": "world_size",
    "gradient_clipping": "max_grad_norm",
    "grad_clip": "max_grad_norm",
    "patience": "early_stopping_patience",
    "val_set_size": "val_size",
    "accumulate_grad_batches": "gradient_accumulation_steps",
    "max_epochs": "num_train_epochs",
}
_DROPOUT_KEYS = ("dropout", "attention_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop", "hidden_dropout",
                 "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "summary_first_dropout")
# Short names for positional launch arguments and hyper-parameter-encoded file names.
FIELD_NAMES: dict[str, str] = {
    "lr": "learning_rate", "seqlen": "max_seq_length", "bs": "per_device_train_batch_size",
    "evalbs": "per_device_eval_batch_size", "accum": "gradient_accumulation_steps", "wd": "weight_decay",
    "epochs": "num_train_epochs", "warmup": "warmup_steps", "r": "lora_r", "alpha": "lora_alpha",
    "dropout": "lora_dropout", "gpus": "world_size", "steps": "max_steps",
}
BESIDE = ("training_args.json", "args.json", "adapter_config.json", "config.json")
_BESIDE_GLOBS = ("*args*.json", "*args*.yaml", "*args*.yml", "ds_config*.json", "deepspeed*.json",
                 "*.yaml", "*.yml")


def canonical_key(key: str) -> str:
    k = key.strip().lstrip("-").replace("-", "_")
    return _ALIASES.get(k, k)


def _value(v: Any) -> Any:
    """YAML/JSON/CLI scalars as Python values: '2e-4' -> 0.0002, 'true' -> True; others unchanged."""
    if isinstance(v, str):
        s = v.strip()
        low = s.lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null", ""):
            return None
        try:
            return int(s)
        except ValueError:
            pass
        try:
            return float(s)
        except ValueError:
            return s
    return v


def parse_positional(values: Sequence[str], pattern: str) -> dict[str, Any]:
    """Map positional values onto canonical keys with a pattern such as ``lr_seqlen_bs_evalbs_accum_wd_epochs``.

    ``values`` may also be a hyper-parameter-encoded file name
    (``loss_plot_0.0002_8870_2_2_10_0.01_100.jpg``): its numeric fields are
    taken from the right, as many as the pattern names. Unknown short names are
    kept as given; ``_`` or ``x`` in the pattern skips a value.
    """
    names = [n for n in re.split(r"[_,\s]+", pattern.strip()) if n]
    if isinstance(values, str):
        stem = re.sub(r"\.[A-Za-z]\w{0,4}$", "", Path(values).name)
        nums = [t for t in stem.split("_") if re.fullmatch(r"[-+]?(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+)?", t)]
        vals = nums[-len(names):] if len(nums) >= len(names) else nums
    else:
        vals = list(values)
    if len(vals) < len(names):
        raise ConfigError(f"pattern {pattern!r} names {len(names)} fields but only {len(vals)} values were given: {' '.join(map(str, vals))}",
                          key="name_pattern")
    out: dict[str, Any] = {}
    for n, v in zip(names, vals, strict=False):
        if n in ("_", "x", "skip"):
            continue
        out[FIELD_NAMES.get(n, canonical_key(n))] = _value(v)
    return out


def flags_to_config(args: Sequence[str]) -> dict[str, Any]:
    """``--learning_rate 2e-4 --num_train_epochs=3 --bf16`` -> canonical keys (positional values ignored)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and len(a) > 2:
            if "=" in a:
                k, v = a[2:].split("=", 1)
                i += 1
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                k, v = a[2:], args[i + 1]
                i += 2
            else:
                k, v = a[2:], "true"
                i += 1
            key = canonical_key(k)
            if key in ("local_rank", "world_info", "master_addr", "master_port", "enable_each_rank_log"):
                continue
            out[key] = _value(v)
        else:
            i += 1
    return out


# -- files ------------------------------------------------------------------------

def _load_raw(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ConfigError(f"cannot read ({e.strerror or e})", path=path) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        from ._yaml import load_yaml

        try:  # aliases bounded, nesting limited, absurd numbers named (see _yaml)
            return load_yaml(text, path)
        except InputError as e:
            sep = " at " if e.problem.startswith("line ") else ": "
            raise ConfigError(f"malformed YAML{sep}{e.problem}", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}", path=path) from None
    except (RecursionError, ValueError) as e:  # 100k nested brackets; a 5,000-digit number
        what = "too deeply nested" if isinstance(e, RecursionError) else f"a number out of range ({str(e).split(';')[0]})"
        raise ConfigError(f"malformed JSON: {what}", path=path) from None


def unwrap_wandb(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """A W&B ``config.yaml`` (``key: {desc: null, value: X}``, plus ``_wandb``) as plain ``key: X``; None if it is not one."""
    items = {k: v for k, v in d.items() if k != "wandb_version"}
    if "_wandb" not in items or not all(isinstance(v, dict) and "value" in v for v in items.values()):
        return None
    return {k: v["value"] for k, v in items.items() if k != "_wandb"}


def flavour(d: Mapping[str, Any]) -> str:
    """Which kind of config ``d`` is, from its keys."""
    keys = set(d)
    if "peft_type" in keys or {"r", "target_modules"} <= keys or {"r", "lora_alpha"} <= keys:
        return "peft"
    if keys & {"zero_optimization", "train_micro_batch_size_per_gpu", "zero_allow_untested_optimizer"} or (
            "train_batch_size" in keys and ("optimizer" in keys or "scheduler" in keys) and isinstance(d.get("optimizer", {}), dict)):
        return "deepspeed"
    if "model_type" in keys and keys & {"architectures", "hidden_size", "n_embd", "vocab_size"}:
        return "model"
    if keys & {"finetuning_type", "cutoff_len", "lora_rank", "quantization_bit"} or ("stage" in keys and "template" in keys):
        return "llamafactory"
    if (keys & {"micro_batch_size", "sequence_len", "num_epochs", "base_model", "val_set_size", "lora_r"} and "output_dir" not in keys) \
            or ("adapter" in keys and "base_model" in keys):
        return "axolotl"
    if keys & {"per_device_train_batch_size", "output_dir", "eval_strategy", "evaluation_strategy", "logging_steps"}:
        return "hf"
    return "unknown"


def config_from_dict(d: Mapping[str, Any], source: str, *, base: Path | None = None) -> RunConfig:
    """Map one parsed config dict onto a RunConfig (``base``: folder for relative ``deepspeed`` paths)."""
    cfg = RunConfig()
    wb = unwrap_wandb(d)
    if wb is not None:  # W&B's config.yaml holds what the script passed to wandb.init(config=...) or the HF args
        d = wb
    kind = flavour(d)
    if kind == "deepspeed":
        _deepspeed(cfg, dict(d), source)
        cfg.set("framework", "deepspeed", source)
        return cfg
    if kind == "model":
        drops = {k: d[k] for k in _DROPOUT_KEYS if isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool)}
        for k, v in drops.items():
            cfg.set(f"model_{k}" if k != "dropout" else "model_dropout", v, source)
        if drops:
            cfg.set("dropout", max(drops.values()), source)
        cfg.set("model_type", d.get("model_type"), source)
        cfg.set("model_name", d.get("_name_or_path") or None, source)
        return cfg
    if kind == "peft":
        for k in ("r", "lora_alpha", "lora_dropout", "target_modules", "base_model_name_or_path", "peft_type", "task_type", "use_dora", "use_rslora"):
            if k in d:
                v = d[k]
                cfg.set(canonical_key(k), sorted(v) if isinstance(v, (list, set)) else v, source)
        return cfg
    if kind in ("axolotl", "llamafactory", "hf"):
        cfg.set("framework", kind, source)
    for k, v in d.items():
        if not isinstance(k, str):
            continue
        key = canonical_key(k)
        if kind == "llamafactory" and k == "quantization_bit" and v:
            cfg.set("load_in_4bit" if int(v) == 4 else "load_in_8bit", True, source)
            cfg.set("quantization_bit", v, source)
            continue
        if kind == "axolotl" and k == "adapter" and isinstance(v, str):
            cfg.set("adapter", v, source)
            if v == "qlora":
                cfg.set("load_in_4bit", True, source)
            continue
        if key == "deepspeed" and isinstance(v, str):
            cfg.set("deepspeed_config", v, source)
            p = Path(v) if Path(v).is_absolute() else (base or Path(".")) / v
            if p.is_file():
                _deepspeed(cfg, _load_raw(p), p.name)
            continue
        if key == "deepspeed" and isinstance(v, dict):
            _deepspeed(cfg, v, source)
            continue
        if key == "lora_target_modules" and isinstance(v, str) and "," in v:
            v = [s.strip() for s in v.split(",")]
        cfg.set(key, _value(v) if isinstance(v, str) else v, source)
    if kind == "axolotl" and "evals_per_epoch" in d and "eval_strategy" not in cfg:
        cfg.set("eval_strategy", "steps", source)
    if kind == "llamafactory":
        cfg.set("finetuning_type", d.get("finetuning_type"), source)
    _self_conflicts(cfg, source)
    return cfg


def _deepspeed(cfg: RunConfig, ds: dict[str, Any], source: str) -> None:
    """The DeepSpeed config: the whole dict, its scheduler (which overrides lr_scheduler_type) and optimizer."""
    cfg.set("deepspeed", ds, source)
    sch = ds.get("scheduler")
    if isinstance(sch, dict):
        cfg.set("deepspeed_scheduler", sch.get("type"), source)
        cfg.set("deepspeed_scheduler_params", sch.get("params") or {}, source)
    opt = ds.get("optimizer")
    if isinstance(opt, dict):
        cfg.set("deepspeed_optimizer", opt.get("type"), source)
        params = opt.get("params") or {}
        cfg.set("deepspeed_optimizer_params", params, source)
        for k, ck in (("lr", "learning_rate"), ("weight_decay", "weight_decay")):
            if k in params and params[k] != "auto":
                cfg.set(ck, params[k], source)
    for k, ck in (("train_micro_batch_size_per_gpu", "per_device_train_batch_size"),
                  ("gradient_accumulation_steps", "gradient_accumulation_steps"),
                  ("gradient_clipping", "max_grad_norm")):
        v = ds.get(k)
        if v is not None and v != "auto":
            cfg.set(ck, v, source)
    for prec in ("bf16", "fp16"):
        blk = ds.get(prec)
        if isinstance(blk, dict) and blk.get("enabled") not in (None, "auto"):
            cfg.set(prec, bool(blk["enabled"]), source)
    zero = ds.get("zero_optimization")
    if isinstance(zero, dict) and "stage" in zero:
        cfg.set("zero_stage", zero["stage"], source)


def _self_conflicts(cfg: RunConfig, source: str) -> None:
    """A config that contradicts itself: recorded in ``conflicts`` (and later noted), never fatal."""
    if cfg.get("bf16") is True and cfg.get("fp16") is True:
        cfg.conflicts.append(("bf16/fp16", Sourced(True, f"{source} (bf16)"), Sourced(True, f"{source} (fp16)")))
    if cfg.get("load_in_4bit") is True and cfg.get("load_in_8bit") is True:
        cfg.conflicts.append(("load_in_4bit/load_in_8bit", Sourced(True, f"{source} (load_in_4bit)"), Sourced(True, f"{source} (load_in_8bit)")))


def load_config_file(path: str | Path) -> RunConfig:
    """Parse one config file into a RunConfig (each value sourced to the file name).

    Malformed JSON/YAML is a ConfigError naming the file and line; a file that
    is not a mapping is a ConfigError too. ``*.bin`` files are refused unread.
    """
    p = Path(path)
    if p.suffix == ".bin":
        raise ConfigError("is a pickle (training_args.bin); never loaded: pass training_args.json or the YAML instead", path=p)
    if not p.is_file():
        raise ConfigError("no such config file", path=p)
    raw = _load_raw(p)
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of settings, found {type(raw).__name__}", path=p)
    return config_from_dict(raw, p.name, base=p.parent)


def _candidates(run_path: Path, run: Run) -> list[Path]:
    """Config files beside the run: its folder (or the log's folder), then its best/last checkpoint."""
    folder = run_path if run_path.is_dir() else run_path.parent
    dirs = [folder]
    ck = None
    if run.best_recorded and run.best_recorded.get("step") in run.checkpoints:
        ck = run.checkpoints[run.best_recorded["step"]]
    elif run.checkpoints:
        ck = run.checkpoints[max(run.checkpoints)]
    if ck is not None:
        dirs.append(Path(ck.path))
    out: list[Path] = []
    for d in dirs:
        names: list[Path] = [d / n for n in BESIDE]
        for g in _BESIDE_GLOBS:
            try:
                names.extend(sorted(d.glob(g)))
            except OSError:
                continue
        for p in names:
            if p.is_file() and p not in out and p.stat().st_size < 4 << 20:
                out.append(p)
    return out


def attach(run: Run, run_path: str | Path, *, extra: Sequence[str | Path] = ()) -> None:
    """Attach explicit configs (``extra``, highest priority) then those found beside ``run_path``.

    Explicit files must parse (ConfigError otherwise); a malformed file found
    beside the run is noted and skipped, since the user never asked for it.
    What the reader already found in the log has the lowest priority, and a
    differing value is kept as a conflict.
    """
    cfg = RunConfig()
    for e in extra:
        cfg.merge(load_config_file(e))
    p = Path(run_path)
    if str(run_path) != "-" and p.exists():
        seen = {Path(e).resolve() for e in extra}
        for c in _candidates(p, run):
            if c.resolve() in seen:
                continue
            try:
                raw = _load_raw(c)
            except ConfigError as err:
                run.notes.append(f"config skipped: {err}")
                continue
            if not isinstance(raw, dict) or (c.suffix in (".yaml", ".yml") and flavour(unwrap_wandb(raw) or raw) == "unknown"
                                             and unwrap_wandb(raw) is None):
                continue
            if c.name == "config.json" and flavour(raw) not in ("model", "peft", "deepspeed"):
                continue
            cfg.merge(config_from_dict(raw, c.name, base=c.parent))
            run.sources.append(str(c)) if str(c) not in run.sources else None
    cfg.merge(run.config)
    _run_conflicts(cfg, run)
    run.config = cfg
    ws = cfg.world_size
    if run.num_gpus is None and ws:
        run.num_gpus = ws
    for key, a, b in cfg.conflicts:
        note = f"config conflict: {key} = {a.value!r} ({a.source}) vs {b.value!r} ({b.source})"
        if note not in run.notes:
            run.notes.append(note)


def _run_conflicts(cfg: RunConfig, run: Run) -> None:
    """max_steps / epochs in the config against what the run itself says (trainer_state, tqdm)."""
    ms = cfg.num("max_steps")
    if ms and ms > 0 and run.planned_steps and int(ms) != int(run.planned_steps) and "max_steps" not in run.config:
        cfg.conflicts.append(("max_steps", Sourced(cfg.get("max_steps"), cfg.source("max_steps") or "config"),
                              Sourced(run.planned_steps, "run (planned steps)")))
    ne = cfg.num("num_train_epochs")
    if ne and run.steps_per_epoch and run.planned_steps and not (ms and ms > 0):
        implied = ne * run.steps_per_epoch
        if abs(implied - run.planned_steps) > max(2.0, 0.05 * run.planned_steps):
            cfg.conflicts.append(("num_train_epochs", Sourced(cfg.get("num_train_epochs"), cfg.source("num_train_epochs") or "config"),
                                  Sourced(round(run.planned_steps / run.steps_per_epoch, 2), "run (planned steps / steps per epoch)")))


__all__ = ["FIELD_NAMES", "attach", "canonical_key", "config_from_dict", "flags_to_config", "flavour", "load_config_file", "parse_positional"]
