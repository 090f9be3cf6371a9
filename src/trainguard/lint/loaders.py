"""Config files -> one :class:`LintConfig`: canonical RunConfig keys, where each was set, and free-text notes.

Several files given together form ONE config, as they do at launch:
TrainingArguments + ``ds_config.json`` + ``adapter_config.json``. A
``deepspeed: ds.json`` key pulls in the file it names when it exists beside
the config. Flavours recognised by their keys (not their names, which users
choose freely): HF TrainingArguments (JSON/YAML), DeepSpeed, a peft
``adapter_config.json``, Axolotl YAML, LLaMA-Factory YAML, and trainguard's own
train YAML (nested ``lora: {r, alpha, dropout}`` sections are flattened).

Defaults matter to a linter: a TrainingArguments file that never mentions
``eval_strategy`` evaluates never, and an LLaMA-Factory LoRA has dropout 0
unless it says otherwise. Such values are recorded with the source
``<flavour> default`` so a message can say where a value came from.

Malformed input is one line naming the file, line and column
(``InputError``); ``training_args.bin`` is a pickle and is refused unread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..readers._io import checked_int
from ..run_config import RunConfig

# Flavour names, as they appear in messages and --json.
HF, DS, PEFT, AXOLOTL, LLAMAFACTORY, TRAINGUARD = "TrainingArguments", "deepspeed", "adapter_config", "axolotl", "llamafactory", "trainguard"


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class LintConfig:
    """The merged config the rules read, with where each key came from."""

    config: RunConfig
    files: list[str] = field(default_factory=list)
    flavours: dict[str, str] = field(default_factory=dict)  # file -> flavour
    locations: dict[str, Location] = field(default_factory=dict)  # canonical key -> where it was set
    notes: list[tuple[Location, str]] = field(default_factory=list)  # free text (comments, "notes:" values)
    defaults: set[str] = field(default_factory=set)  # keys whose value is a framework default, not written
    # keys the tool that reads the file does not know: (where, key, nearest known key or None, the tool)
    unknown_keys: list[tuple[Location, str, str | None, str]] = field(default_factory=list)

    def where(self, key: str) -> Location | None:
        return self.locations.get(key)

    def has(self, flavour: str) -> bool:
        return flavour in self.flavours.values()


# -- key maps: file key -> canonical RunConfig key ------------------------------------------
_HF_KEYS = {
    k: k
    for k in (
        "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "num_train_epochs", "max_steps",
        "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay",
        "eval_strategy", "eval_steps", "save_strategy", "save_steps", "save_total_limit", "logging_steps",
        "load_best_model_at_end", "metric_for_best_model", "greater_is_better", "max_grad_norm", "optim",
        "gradient_checkpointing", "seed", "bf16", "fp16", "early_stopping_patience", "lora_r", "lora_alpha",
        "lora_dropout", "lora_target_modules", "max_seq_length", "world_size", "train_samples", "dropout",
        "load_in_4bit", "load_in_8bit",
    )
}
_HF_KEYS.update({
    "evaluation_strategy": "eval_strategy",  # transformers < 4.46 name
    "model_name_or_path": "model_name",
    "model_name": "model_name",
    "base_model": "model_name",
    "max_length": "max_seq_length",  # TRL SFTConfig
    "early_stopping_threshold": "early_stopping_threshold",
    "do_eval": "do_eval",
    "deepspeed": "deepspeed",
    "lora_rank": "lora_r",  # LLaMA-Factory
    "lora_target": "lora_target_modules",
    "cutoff_len": "max_seq_length",
    "val_size": "val_size",
    "finetuning_type": "finetuning_type",
    "quantization_bit": "quantization_bit",
})
_AXOLOTL_KEYS = {
    "base_model": "model_name", "learning_rate": "learning_rate", "lr_scheduler": "lr_scheduler_type",
    "warmup_steps": "warmup_steps", "warmup_ratio": "warmup_ratio", "num_epochs": "num_train_epochs",
    "max_steps": "max_steps", "micro_batch_size": "per_device_train_batch_size", "eval_batch_size": "per_device_eval_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps", "weight_decay": "weight_decay", "sequence_len": "max_seq_length",
    "adapter": "finetuning_type", "lora_r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
    "lora_target_modules": "lora_target_modules", "load_in_4bit": "load_in_4bit", "load_in_8bit": "load_in_8bit",
    "eval_steps": "eval_steps", "evals_per_epoch": "evals_per_epoch", "save_steps": "save_steps", "saves_per_epoch": "saves_per_epoch",
    "save_total_limit": "save_total_limit", "early_stopping_patience": "early_stopping_patience", "max_grad_norm": "max_grad_norm",
    "optimizer": "optim", "val_set_size": "val_size", "deepspeed": "deepspeed", "load_best_model_at_end": "load_best_model_at_end",
    "metric_for_best_model": "metric_for_best_model", "bf16": "bf16", "fp16": "fp16", "logging_steps": "logging_steps",
    "gradient_checkpointing": "gradient_checkpointing", "eval_strategy": "eval_strategy", "save_strategy": "save_strategy",
    "seed": "seed",
}
_PEFT_KEYS = {
    "r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "target_modules": "lora_target_modules",
    "base_model_name_or_path": "model_name", "use_rslora": "use_rslora",
}
_TRAINGUARD_KEYS = dict(_HF_KEYS, model="model_name", block_size="max_seq_length", eval_fraction="val_size",
                        method="finetuning_type", guard="guard", eval_data="eval_data")

# Keys whose values must be numbers (PyYAML reads "2e-5" as a string: YAML 1.1 wants a dot).
_NUMERIC = {
    "learning_rate", "warmup_steps", "warmup_ratio", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay", "eval_steps", "save_steps",
    "save_total_limit", "logging_steps", "max_grad_norm", "early_stopping_patience", "lora_r", "lora_alpha",
    "lora_dropout", "max_seq_length", "world_size", "train_samples", "dropout", "val_size", "evals_per_epoch",
    "saves_per_epoch", "quantization_bit",
}

# Framework defaults that change what a rule concludes when a key is absent.
_HF_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "no", "save_strategy": "steps", "save_steps": 500, "lr_scheduler_type": "linear",
    "learning_rate": 5e-5, "num_train_epochs": 3, "max_grad_norm": 1.0, "warmup_steps": 0, "weight_decay": 0.0,
    "load_best_model_at_end": False, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
}
_PEFT_DEFAULTS: dict[str, Any] = {"lora_r": 8, "lora_alpha": 8, "lora_dropout": 0.0}  # peft LoraConfig defaults
_OOM = re.compile(r"\b(oom|out[ -]of[ -]memory|cuda out of memory)\b", re.IGNORECASE)
_NOTE_KEYS = ("notes", "note", "comment", "comments", "description", "changelog")


def load_files(paths: list[str | Path], *, train_samples: int | None = None) -> LintConfig:
    """Read every file into one LintConfig; the first file to set a key wins (give the most specific first)."""
    if not paths:
        raise InputError("-", "no config file given")
    lc = LintConfig(RunConfig())
    queue = [Path(p) for p in paths]
    seen: set[Path] = set()
    while queue:
        p = queue.pop(0)
        rp = p.resolve()
        if rp in seen:
            continue
        seen.add(rp)
        data, lines, text = _parse(p)
        flavour = detect_flavour(data, p)
        lc.files.append(str(p))
        lc.flavours[str(p)] = flavour
        _map(lc, p, flavour, data, lines)
        _unknown_keys(lc, p, flavour, data, lines)
        if flavour == TRAINGUARD:
            _count_train_data(lc, p, data)
        _merge_shared_loader(lc, p)
        _collect_notes(lc, p, text, data)
        ds = data.get("deepspeed") if flavour != DS else None
        if isinstance(ds, str) and ds.strip():
            ref = _resolve_ref(p, ds)
            if ref is not None and ref.resolve() not in seen:
                queue.append(ref)
    if train_samples is not None:
        lc.config.set("train_samples", int(train_samples), "--train-samples", override=True)
    _apply_defaults(lc)
    return lc


def _unknown_keys(lc: LintConfig, p: Path, flavour: str, data: dict[str, Any], lines: dict[str, int]) -> None:
    """Record keys the reading tool would refuse or ignore, with the nearest known key.

    trainguard's own YAML is checked against its schema (``train`` refuses any
    unknown key, so every one is reported). A TrainingArguments file often
    carries keys for the script's other argument classes (model, data), so
    there only a near-miss of a known key (``lerning_rate``) is reported.
    Other flavours are not checked: their key sets are too open.
    """
    import difflib

    if flavour == TRAINGUARD:
        from ..train.config import TrainConfig

        known = set(TrainConfig.model_fields)
        strict = True
    elif flavour == HF:
        from ._hf_fields import HF_FIELDS

        known = set(HF_FIELDS) | set(_HF_KEYS) | set(_NOTE_KEYS)
        strict = False
    else:
        return
    for key in data:
        k = str(key)
        if k in known:
            continue
        near = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.8)
        if near or strict:
            lc.unknown_keys.append((Location(str(p), lines.get(k)), k, near[0] if near else None, flavour))


def _count_train_data(lc: LintConfig, p: Path, data: dict[str, Any]) -> None:
    """A trainguard YAML names its data file: count its examples, so the run-length rules know the steps.

    Without it, ``eval_steps: 50`` in a run of ~24 steps (one eval, or none)
    passes lint. The count is of examples (packing makes fewer, longer rows,
    so the real run is shorter still); unreadable data is left to ``train``.
    """
    from ..errors import TrainguardError
    from ..train.data import read_examples

    ref = data.get("data")
    if not isinstance(ref, str) or "train_samples" in lc.config:
        return
    path = _resolve_ref(p, ref)
    if path is None:
        return
    try:
        _, examples = read_examples(path)
    except (TrainguardError, OSError, ValueError):
        return
    n = len(examples)
    if not data.get("eval_data"):
        frac = data.get("eval_fraction", 0.1)
        n = int(n * (1 - (frac if isinstance(frac, (int, float)) and 0 < frac < 1 else 0.1)))
    if n > 0:
        lc.config.set("train_samples", n, f"{path.name}: {n} training examples")


def _resolve_ref(base: Path, ref: str) -> Path | None:
    for cand in (base.parent / ref, Path(ref)):
        if cand.is_file():
            return cand
    return None


def _parse(p: Path) -> tuple[dict[str, Any], dict[str, int], str]:
    """(mapping, key -> first line, raw text); one-line InputError on anything malformed."""
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a folder; pass the config files inside it")
    raw = p.read_bytes()
    if raw.startswith(b"\x80") or p.suffix == ".bin":
        raise InputError(p, "binary file (a pickle such as training_args.bin is never loaded); pass training_args.json or the YAML")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(p, f"not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise InputError(p, "empty file")
    suffix = p.suffix.lower()
    if suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip().startswith("{")):
        try:
            data = json.loads(text, parse_int=lambda s: checked_int(s, text, p))
        except json.JSONDecodeError as e:
            raise InputError(p, f"line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
        except RecursionError:
            raise InputError(p, "JSON too deeply nested (thousands of levels of [ or {); not a config") from None
        except ValueError as e:  # a 5,000-digit integer: Python refuses to convert it
            raise InputError(p, f"a number out of range ({str(e).split(';')[0]})") from None
        lines = _json_lines(text)
    else:
        data, lines = _load_yaml(p, text)
    if not isinstance(data, dict):
        raise InputError(p, f"expected a mapping of key: value at the top level, found {type(data).__name__}")
    return data, lines, text


def _load_yaml(p: Path, text: str) -> tuple[Any, dict[str, int]]:
    """(value, key -> line); aliases bounded and nesting limited (a billion-laughs file is one error line)."""
    import yaml

    from .._yaml import compose_yaml, construct

    node = compose_yaml(text, p)
    data = construct(node, p)
    lines: dict[str, int] = {}

    def walk(n: Any, prefix: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = str(k.value)
                lines.setdefault(key, k.start_mark.line + 1)
                if prefix:
                    lines.setdefault(f"{prefix}.{key}", k.start_mark.line + 1)
                walk(v, key)

    walk(node, "")
    return data, lines


def _json_lines(text: str) -> dict[str, int]:
    """Key -> line of its first ``"key":`` in the text (good enough to point an editor at it)."""
    lines: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        for m in re.finditer(r'"([^"\\]+)"\s*:', line):
            lines.setdefault(m.group(1), i)
    return lines


def detect_flavour(data: dict[str, Any], path: Path | None = None) -> str:
    """Which tool wrote this mapping, from its keys; InputError when none fits."""
    keys = set(data)
    if keys & {"zero_optimization", "train_micro_batch_size_per_gpu", "train_batch_size", "zero_allow_untested_optimizer"} or (
        isinstance(data.get("scheduler"), dict) and "type" in data["scheduler"]
    ) or (isinstance(data.get("optimizer"), dict) and "type" in data["optimizer"]):
        return DS
    if "peft_type" in keys or ({"r", "lora_alpha"} <= keys and "target_modules" in keys):
        return PEFT
    if "base_model" in keys and keys & {"micro_batch_size", "num_epochs", "sequence_len", "adapter", "datasets", "val_set_size"}:
        return AXOLOTL
    if "model_name_or_path" in keys and keys & {"stage", "finetuning_type", "template", "cutoff_len", "lora_rank", "dataset"}:
        return LLAMAFACTORY
    if "model" in keys and "data" in keys:
        return TRAINGUARD
    if keys & set(_HF_KEYS) or "output_dir" in keys:
        return HF
    raise InputError(path or "-", "not a config trainguard recognises (expected TrainingArguments, ds_config, adapter_config, Axolotl, LLaMA-Factory or trainguard YAML)")


def _flatten(data: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Top-level and one level of nested sections -> {key: (value, path-in-file)}; ``lora: {r: 8}`` -> ``lora_r``."""
    out: dict[str, tuple[Any, str]] = {}
    for k, v in data.items():
        k = str(k)
        if isinstance(v, dict) and k not in ("deepspeed",):
            for ck, cv in v.items():
                ck = str(ck)
                name = ck if k != "lora" or ck.startswith("lora_") else f"lora_{'r' if ck in ('r', 'rank') else ck}"
                out.setdefault(name, (cv, f"{k}.{ck}"))
        else:
            out.setdefault(k, (v, k))
    return out


def _coerce(key: str, v: Any) -> Any:
    if key in _NUMERIC and isinstance(v, str):
        try:
            f = float(v)
            return int(f) if f == int(f) and "." not in v and "e" not in v.lower() else f
        except ValueError:
            return v
    return v


def _map(lc: LintConfig, p: Path, flavour: str, data: dict[str, Any], lines: dict[str, int]) -> None:
    cfg = lc.config
    src = p.name

    def put(key: str, value: Any, file_key: str) -> None:
        if value is None:
            return
        value = _coerce(key, value)
        before = key in cfg
        # A ``deepspeed: ds.json`` path read earlier is replaced by the file's contents.
        cfg.set(key, value, src, override=key == "deepspeed" and isinstance(cfg.get(key), str))
        if key == "deepspeed" and isinstance(value, dict):
            before = False
        if not before and key in cfg:
            lc.locations[key] = Location(str(p), lines.get(file_key) or lines.get(file_key.split(".")[-1]))

    if flavour == DS:
        put("deepspeed", data, "zero_optimization")
        sched = data.get("scheduler")
        if isinstance(sched, dict) and sched.get("type"):
            put("deepspeed_scheduler", sched["type"], "scheduler")
            if isinstance(sched.get("params"), dict):
                put("deepspeed_scheduler_params", sched["params"], "scheduler")
        opt = data.get("optimizer")
        if isinstance(opt, dict) and opt.get("type"):
            put("deepspeed_optimizer", opt["type"], "optimizer")
        for k in ("scheduler", "optimizer", "gradient_clipping", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
            if k in lines:
                lc.locations.setdefault(f"ds.{k}", Location(str(p), lines[k]))
        cfg.set("framework", "deepspeed", src)
        return
    table = {PEFT: _PEFT_KEYS, AXOLOTL: _AXOLOTL_KEYS, TRAINGUARD: _TRAINGUARD_KEYS}.get(flavour, _HF_KEYS)
    for k, (v, path) in _flatten(data).items():
        key = table.get(k)
        if key is not None:
            put(key, v, path)
    if flavour == PEFT and "lora_r" in cfg:
        cfg.set("finetuning_type", "lora", src)
    if flavour in (AXOLOTL, LLAMAFACTORY, TRAINGUARD):
        cfg.set("framework", flavour, src)
    elif flavour == HF:
        cfg.set("framework", "hf", src)
    if flavour == TRAINGUARD:
        # trainguard always picks the best checkpoint by eval_loss (train/runner.py).
        cfg.set("metric_for_best_model", "eval_loss", f"{src} (trainguard selects on eval_loss)")
        # An explicit `early_stopping_patience: null` turns early stopping off; the schema
        # default (3) must not be filled in for it.
        if "early_stopping_patience" in data and data["early_stopping_patience"] is None:
            cfg.set("early_stopping_patience", False, f"{src} (off)")
        # trainguard saves at every eval by design (train/config.py: save_steps is not a key).
        es = cfg.get("eval_steps")
        if es is not None:
            cfg.set("eval_strategy", "steps", f"{src} (trainguard evaluates every eval_steps)")
            cfg.set("save_strategy", "steps", f"{src} (trainguard saves at every eval)")
            cfg.set("save_steps", es, f"{src} (trainguard saves at every eval)")
    lc.flavours[str(p)] = flavour


def _merge_shared_loader(lc: LintConfig, p: Path) -> None:
    """Add keys that :func:`trainguard.configs.load_config_file` knows and our maps do not (never overriding ours).

    The shared loader is the project's one mapping of framework keys; ours
    stays first because a linter needs line numbers and flavour defaults.
    Any failure there (not implemented yet, a format it does not know) is not
    the user's problem: our own mapping already covered the file.
    """
    try:
        from ..configs import load_config_file

        other = load_config_file(p)
    except Exception:
        return
    for key, s in other.items():
        if key not in lc.config:
            lc.config.set(key, s.value, s.source)


def _collect_notes(lc: LintConfig, p: Path, text: str, data: dict[str, Any]) -> None:
    """Comment lines and note-like values that mention OOM: the only trace an OOM retry leaves in a config."""
    for i, line in enumerate(text.splitlines(), start=1):
        if _OOM.search(line) and ("#" in line or "//" in line or any(f'"{k}"' in line or f"{k}:" in line for k in _NOTE_KEYS)):
            lc.notes.append((Location(str(p), i), line.strip()))
    for k in _NOTE_KEYS:
        v = data.get(k)
        if isinstance(v, list):
            v = " ".join(map(str, v))
        if isinstance(v, str) and _OOM.search(v) and not any(v.strip() in n for _, n in lc.notes):
            lc.notes.append((Location(str(p)), v.strip()))


def _apply_defaults(lc: LintConfig) -> None:
    """Fill what the framework would use for keys no file set (recorded in ``lc.defaults``)."""
    cfg = lc.config
    flavours = set(lc.flavours.values())
    if flavours & {HF, LLAMAFACTORY}:
        for k, v in _HF_DEFAULTS.items():
            if k not in cfg:
                cfg.set(k, v, "TrainingArguments default")
                lc.defaults.add(k)
    if TRAINGUARD in flavours:
        try:
            from ..train.config import TrainConfig
        except Exception:  # the train extra may be missing; the schema then cannot add defaults
            TrainConfig = None  # type: ignore[assignment]
        if TrainConfig is not None:
            for name, f in TrainConfig.model_fields.items():
                key = _TRAINGUARD_KEYS.get(name)
                if key and key not in cfg and f.default is not None and not callable(f.default) and repr(f.default) != "PydanticUndefined":
                    cfg.set(key, f.default, "trainguard default")
                    lc.defaults.add(key)
            if "eval_steps" in cfg and "save_steps" not in cfg:
                cfg.set("save_steps", cfg.get("eval_steps"), "trainguard (saves at every eval)")
                cfg.set("eval_strategy", "steps", "trainguard default")
                cfg.set("save_strategy", "steps", "trainguard default")
    lora = cfg.get("finetuning_type") in ("lora", "qlora") or "lora_r" in cfg
    if lora and (flavours & {PEFT, LLAMAFACTORY, AXOLOTL} or "lora_r" in cfg):
        for k, v in _PEFT_DEFAULTS.items():
            if k not in cfg:
                if k == "lora_alpha" and LLAMAFACTORY in flavours and "lora_r" in cfg:
                    v = 2 * int(cfg.num("lora_r") or 8)  # LLaMA-Factory: lora_alpha defaults to 2 x rank
                cfg.set(k, v, "peft's default" if LLAMAFACTORY not in flavours else "LLaMA-Factory's default")
                lc.defaults.add(k)
    if AXOLOTL in flavours and "eval_strategy" not in cfg:
        has_val = (cfg.num("val_size") or 0) > 0
        if not has_val:
            cfg.set("eval_strategy", "no", "axolotl (val_set_size 0)")
        elif "eval_steps" in cfg or "evals_per_epoch" in cfg:
            cfg.set("eval_strategy", "steps", "axolotl")
        else:
            cfg.set("eval_strategy", "epoch", "axolotl default")
        lc.defaults.add("eval_strategy")


def from_run_config(config: RunConfig) -> LintConfig:
    """Wrap an in-memory RunConfig (``trainguard train`` lints its own resolved config this way)."""
    return LintConfig(config, files=[], flavours={"<config>": str(config.get("framework") or "config")})


__all__ = ["AXOLOTL", "DS", "HF", "LLAMAFACTORY", "PEFT", "TRAINGUARD", "LintConfig", "Location", "detect_flavour", "from_run_config", "load_files"]
