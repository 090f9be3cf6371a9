"""What a training log prints about its own run: config dumps, the Trainer banner, checkpoint saves.

Scripts print their settings, and often nothing else survives of them:

* ``TrainingArguments(`` / ``SFTConfig(`` ... one ``key=value,`` per line (or on one line);
* ``LoraConfig(r=8, lora_alpha=8, lora_dropout=0, ...)`` (a dataclass repr);
* DeepSpeed's engine config block (``scheduler_name ....... WarmupDecayLR``,
  ``scheduler_params ..... {...}``), whose scheduler overrides ``lr_scheduler_type``;
* HF's ``***** Running training *****`` banner (examples, epochs, batch sizes,
  total optimization steps, trainable parameters);
* Megatron-LM's ``arguments`` block (``  lr ......... 0.0003``, ``  train_iters ..... 500``);
* ``Namespace(lr=..., epochs=...)`` and plain ``key=value`` lines, for known keys only;
* ``Saving model checkpoint to out/checkpoint-100``: a checkpoint that exists.

Each value is sourced ``printed in the log, line N`` so a cause built on it
can say where it came from. Values are parsed with ``ast.literal_eval`` (never
``eval``); enum reprs (``<PeftType.LORA: 'LORA'>``, ``SchedulerType.CONSTANT``)
become their plain value.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..run import CONFIG_KEYS, Checkpoint, Run, RunConfig

_ARGS_OPEN = re.compile(r"\b(?:\w*TrainingArguments|SFTConfig|DPOConfig|GRPOConfig|ORPOConfig|KTOConfig|RewardConfig|PPOConfig|Namespace)\($")
_ONE_LINE = re.compile(r"\b(?P<cls>\w*TrainingArguments|SFTConfig|DPOConfig|GRPOConfig|LoraConfig|Namespace)\((?P<body>.*)\)\s*$")
_DS_LINE = re.compile(r"^(?:.*?\]\s*)?\s*(?P<key>[a-z_][\w]*)\s\.{2,}\s*(?P<val>.*?)\s*$|^(?:.*?config\.py:\d+:print\]\s*)(?P<key2>[a-z_]\w*)\s{2,}(?P<val2>.*?)\s*$")
_BANNER = re.compile(r"(?:^|>>|\]\s)\s*(?P<key>Num examples|Num Epochs|Instantaneous batch size per device|Total train batch size[^=]*|"
                     r"Gradient Accumulation steps|Total optimization steps|Number of trainable parameters|Num update steps per epoch)\s*=\s*(?P<val>[\d,.]+)")
_KV_LINE = re.compile(r"^\s*(?P<key>[a-z][a-z0-9_]*)\s*=\s*(?P<val>[^=\s,][^=]*?)\s*,?\s*$")
_SAVE = re.compile(r"Saving model checkpoint to (?P<path>\S*?checkpoint-(?P<step>\d+))\b")
_ENUM = re.compile(r"^<\w+\.\w+: (?P<v>'[^']*'|\d+)>$|^(?:SchedulerType|IntervalStrategy|OptimizerNames|SaveStrategy|HubStrategy|"
                   r"EvaluationStrategy|FSDPOption|PeftType|TaskType)\.(?P<n>\w+)$")
_BANNER_KEYS = {
    "Num examples": "train_samples",
    "Num Epochs": "num_train_epochs",
    "Instantaneous batch size per device": "per_device_train_batch_size",
    "Gradient Accumulation steps": "gradient_accumulation_steps",
    "Total optimization steps": "max_steps",
    "Number of trainable parameters": "trainable_parameters",
    "Num update steps per epoch": "steps_per_epoch",
}
_DS_KEYS = {
    "scheduler_name": "deepspeed_scheduler",
    "scheduler_params": "deepspeed_scheduler_params",
    "optimizer_name": "deepspeed_optimizer",
    "optimizer_params": "deepspeed_optimizer_params",
    "zero_optimization_stage": "zero_stage",
    "gradient_clipping": "max_grad_norm",
    "train_micro_batch_size_per_gpu": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "bfloat16_enabled": "bf16",
    "fp16_enabled": "fp16",
}
# Megatron-LM's printed ``arguments`` block (``  lr ........ 0.0003``) -> RunConfig keys.
_MEGATRON_KEYS = {"lr": "learning_rate", "lr_decay_style": "lr_scheduler_type", "lr_warmup_iters": "warmup_steps",
                  "micro_batch_size": "per_device_train_batch_size", "global_batch_size": "global_batch_size",
                  "train_iters": "max_steps", "weight_decay": "weight_decay", "clip_grad": "max_grad_norm",
                  "seq_length": "max_seq_length", "seed": "seed", "bf16": "bf16", "fp16": "fp16", "world_size": "world_size",
                  "hidden_dropout": "dropout", "eval_interval": "eval_steps", "save_interval": "save_steps",
                  "log_interval": "logging_steps", "min_lr": "min_lr", "lr_warmup_fraction": "warmup_ratio"}
_DOTTED = re.compile(r"^(?P<key>[a-z_]\w*)\s\.{2,}\s*(?P<val>.*?)\s*$")
# Keys of a LoraConfig repr -> RunConfig keys (others of the repr are not run settings).
_LORA_KEYS = {"r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "target_modules": "lora_target_modules",
              "use_dora": "use_dora", "use_rslora": "use_rslora", "task_type": "task_type"}


@dataclass
class LogFacts:
    """Settings printed in a log, each with its line, and the checkpoints it says were saved."""

    values: list[tuple[str, Any, int]] = field(default_factory=list)  # (canonical key, value, line)
    checkpoints: dict[int, str] = field(default_factory=dict)
    framework: str | None = None

    def apply(self, run: Run) -> None:
        """Add what the log printed to ``run`` (lowest priority: a config file beside the run wins)."""
        cfg = RunConfig()
        for key, value, line in self.values:
            cfg.set(key, value, f"printed in the log, line {line}")
        if self.framework and "framework" not in cfg:
            cfg.set("framework", self.framework, "printed in the log")
        cfg.merge(run.config)  # first source wins: keep the line-numbered one when both agree
        run.config = cfg
        for step, path in self.checkpoints.items():
            run.checkpoints.setdefault(step, Checkpoint(step, path, has_weights=True))
        ms = cfg.num("max_steps")
        if ms and ms > 0 and not run.planned_steps:
            run.planned_steps = int(ms)
        if self.checkpoints:
            run.notes.append("checkpoints saved at step " + ", ".join(str(s) for s in sorted(self.checkpoints))
                             + " (from 'Saving model checkpoint' lines in the log)")


def literal(raw: str) -> Any:
    """A printed value as Python data: numbers, bools, None, lists/sets/dicts, enum reprs; else the text."""
    s = raw.strip().rstrip(",").strip()
    m = _ENUM.match(s)
    if m:
        v = m.group("v")
        return (ast.literal_eval(v) if v else m.group("n")).lower() if not (v and v.isdigit()) else int(v)
    if s in ("None", "null"):
        return None
    if s in ("True", "False", "true", "false"):
        return s.lower() == "true"
    try:
        v = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return s.strip("'\"")
    return sorted(v) if isinstance(v, (set, frozenset)) else v


def split_top(body: str) -> list[tuple[str, str]]:
    """``a=1, b={'x': 2}, c='y'`` -> [(a, 1), (b, {...}), (c, 'y')]: commas inside brackets or quotes do not split."""
    out: list[tuple[str, str]] = []
    depth, quote, start = 0, "", 0
    parts: list[str] = []
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    for p in parts:
        if "=" in p:
            k, v = p.split("=", 1)
            k = k.strip()
            if re.fullmatch(r"[A-Za-z_]\w*", k):
                out.append((k, v.strip()))
    return out


def _args_key(k: str) -> str | None:
    """The RunConfig key of a printed argument name, or None for names that are not run settings."""
    from ..configs import canonical_key

    key = canonical_key(k)
    return key if key in CONFIG_KEYS or _KNOWN_EXTRA.match(key) else None


_KNOWN_EXTRA = re.compile(r"^(?:lr_scheduler_kwargs|warmup_\w+|logging_\w+|eval_\w+|save_\w+|max_\w+|num_\w+|per_device_\w+|"
                          r"gradient_\w+|load_\w+|fp16|bf16|tf32|optim\w*|adam_\w+|seed|dataloader_\w+|report_to|packing|"
                          r"neftune_noise_alpha|beta|loss_type|use_dora|use_rslora)$")


def _add(facts: LogFacts, key: str | None, value: Any, line: int) -> None:
    """Record one printed setting; ``deepspeed=<path>`` names the DeepSpeed config file (read by configs.attach)."""
    if key is None:
        return
    if key == "deepspeed" and isinstance(value, str):
        key = "deepspeed_config"
        facts.framework = "deepspeed"
    facts.values.append((key, value, line))


_FIRST_METRIC = ("{'loss'", "{'eval_", "{'train_runtime'")
_SETTINGS_MARGIN = 1 << 16  # settings printed right after the first metric line (a late LoraConfig) are still read


def scan(text: str, *, first_line: int = 1) -> LogFacts:
    """Every printed setting and checkpoint save in ``text``.

    Settings are printed before training: only the text up to the first
    metric dict (plus a margin) is read line by line, with cheap substring
    checks before any regex, so a log that is mostly tqdm noise costs little.
    Checkpoint saves are found anywhere, by one regex pass.
    """
    facts = LogFacts()
    for m in _SAVE.finditer(text):
        facts.checkpoints[int(m.group("step"))] = m.group("path")
    cuts = [i for i in (text.find(k) for k in _FIRST_METRIC) if i >= 0]
    if cuts:
        text = text[: min(cuts) + _SETTINGS_MARGIN]
    block: str | None = None  # "args" inside a multi-line TrainingArguments(, "megatron" inside its arguments block
    for i, raw in enumerate(text.split("\n")):
        n = i + first_line
        s = raw.rsplit("\r", 1)[-1].strip()
        if not s or len(s) > 4096:
            continue
        if block == "megatron":
            if "end of arguments" in s:
                block = None
                continue
            m = _DOTTED.match(s)
            if m and m.group("key") in _MEGATRON_KEYS:
                _add(facts, _MEGATRON_KEYS[m.group("key")], literal(m.group("val")), n)
            continue
        if block == "args":
            if s.startswith(")"):
                block = None
                continue
            m = _KV_LINE.match(s)
            if m:
                _add(facts, _args_key(m.group("key")), literal(m.group("val")), n)
            continue
        if s.startswith("---") and s.rstrip("-").strip("- ") == "arguments":
            block = "megatron"
            facts.framework = "megatron"
            continue
        if "(" in s:
            if s.endswith("(") and _ARGS_OPEN.search(s):
                block = "args"
                continue
            if ("Config(" in s or "Arguments(" in s or "Namespace(" in s) and (m := _ONE_LINE.search(s)):
                lora = m.group("cls") == "LoraConfig"
                for k, v in split_top(m.group("body")):
                    _add(facts, _LORA_KEYS.get(k) if lora else _args_key(k), literal(v), n)
                continue
        if "DeepSpeed" in s and ("DeepSpeedEngine configuration" in s or "DeepSpeed Flops Profiler" in s):
            facts.framework = "deepspeed"
            continue
        if "config.py" in s and ".." in s:
            m = _DS_LINE.match(s)
            if m:
                k = m.group("key") or m.group("key2")
                if k in _DS_KEYS:
                    facts.framework = "deepspeed"
                    v = literal(m.group("val") if m.group("key") else m.group("val2"))
                    if not (k == "scheduler_name" and v is None):
                        facts.values.append((_DS_KEYS[k], v, n))
                continue
        if "=" not in s:
            continue
        if "(" not in s and len(s) < 200 and (m := _KV_LINE.match(s)):  # a lone ``learning_rate=2e-4`` of a settings dump
            _add(facts, _args_key(m.group("key")), literal(m.group("val")), n)
            continue
        m = _BANNER.search(s) if " = " in s else None  # also behind a logging prefix: "[INFO|trainer.py:2134] >>   Num Epochs = 3"
        if m:
            k = m.group("key")
            key = _BANNER_KEYS.get(k, "total_train_batch_size" if k.startswith("Total train batch size") else "")
            if key:
                facts.values.append((key, literal(m.group("val").replace(",", "")), n))
    return facts


__all__ = ["LogFacts", "literal", "scan", "split_top"]
