"""Returns the model, tokenizer and LoRA config for a TrainConfig: any HF causal LM, full, LoRA or 4-bit QLoRA.

The LoRA adapter itself is applied by TRL's SFTTrainer (``peft_config=``), which
also handles QLoRA's k-bit preparation and adapter dtype: we only decide the
LoraConfig, because that needs the loaded model in hand:

- GPT-2 and friends implement their projections as ``Conv1D`` (weights stored
  transposed): LoRA on them needs ``fan_in_fan_out=True`` or it learns on the
  wrong axis. We detect it from the target modules' types, not from the name.
- ``dropout`` overrides every dropout field the model's config has, so the
  seeds' "dropout 0.1" means the same thing on GPT-2 (``resid_pdrop``...) and
  Llama (``attention_dropout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .config import TrainConfig

_DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout", "hidden_dropout",
                 "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "summary_first_dropout")


@dataclass
class Loaded:
    """The model and tokenizer, the peft LoraConfig (None for full fine-tuning) and the precision chosen."""

    model: Any
    tokenizer: Any
    peft_config: Any | None
    precision: str  # bf16 | fp16 | fp32
    device: str  # cuda | cpu
    notes: list[str]


def choose_precision(cfg: TrainConfig) -> tuple[str, str]:
    """(precision, device): bf16 where the GPU supports it, fp16 on older GPUs, fp32 on the CPU."""
    import torch

    cuda = torch.cuda.is_available() and not cfg.use_cpu
    device = "cuda" if cuda else "cpu"
    if cfg.precision != "auto":
        return cfg.precision, device
    if not cuda:
        return "fp32", device  # CPU autocast in bf16 is slower than fp32 on most CPUs and less exact
    return ("bf16" if torch.cuda.is_bf16_supported() else "fp16"), device


def load(cfg: TrainConfig) -> Loaded:
    """Load tokenizer and model (4-bit where asked), apply the dropout override, build the LoraConfig."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    precision, device = choose_precision(cfg)
    notes: list[str] = []
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    except Exception as e:
        raise ConfigError(f"model: cannot load a tokenizer from {cfg.model!r} ({str(e).splitlines()[0][:200]})",
                          key="model") from None
    if tokenizer.pad_token is None:
        # GPT-2 and Llama ship without one; eos is the usual stand-in and the loss masks it by -100 labels.
        tokenizer.pad_token = tokenizer.eos_token
        notes.append("tokenizer had no pad token; using eos")
    hf_cfg = AutoConfig.from_pretrained(cfg.model)
    if cfg.dropout is not None:
        touched = [k for k in _DROPOUT_KEYS if isinstance(getattr(hf_cfg, k, None), float)]
        for k in touched:
            setattr(hf_cfg, k, cfg.dropout)
        if touched:
            notes.append(f"dropout {cfg.dropout} set on {', '.join(touched)}")
    kwargs: dict[str, Any] = {"config": hf_cfg}
    if precision == "bf16":
        kwargs["dtype"] = torch.bfloat16 if cfg.method == "qlora" else torch.float32
    if cfg.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",  # QLoRA paper: NF4 + double quantisation
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float16,
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    # Master weights stay fp32 for full/LoRA: the Trainer's autocast does bf16/fp16 compute,
    # and fp32 masters keep small updates from rounding away.
    model = AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
    peft_config = lora_config(cfg, model) if cfg.uses_lora else None
    return Loaded(model, tokenizer, peft_config, precision, device, notes)


def lora_config(cfg: TrainConfig, model: Any) -> Any:
    """A peft LoraConfig for ``model``; ``fan_in_fan_out`` set when the targets are Conv1D (GPT-2)."""
    from peft import LoraConfig

    targets: list[str] | str = cfg.lora_target_modules
    fan_in_fan_out = False
    conv1d_names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Conv1D"}
    if targets == "all-linear" and conv1d_names:
        # peft's "all-linear" looks for nn.Linear and finds none in GPT-2: target its Conv1D layers.
        targets = sorted(conv1d_names)
    if conv1d_names and isinstance(targets, list) and set(targets) & conv1d_names:
        fan_in_fan_out = True
    if isinstance(targets, list):
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [t for t in targets if t not in names]
        if missing:
            raise ConfigError(
                f"lora_target_modules: {', '.join(missing)} not in the model (e.g. {', '.join(sorted(names - {''})[:8])})",
                key="lora_target_modules",
            )
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        fan_in_fan_out=fan_in_fan_out,
        bias="none",
        task_type="CAUSAL_LM",
    )


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


__all__ = ["Loaded", "choose_precision", "count_parameters", "load", "lora_config"]
