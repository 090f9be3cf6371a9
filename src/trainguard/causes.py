"""Root causes: findings joined with the config values that explain them, each value with its source.

The rule is *no cause without evidence*. A cause needs a finding (or a
measured fact such as the best checkpoint missing) **and** a config value read
from a named source; when the config is unknown only the evidence-based
statements are made, and what could not be checked goes to ``unknowns``. A
plausible story with no number behind it is never told: seed 000 called a
3.64 → 0.005 collapse in 4% of an epoch "overfitting" and blamed the LR, when
the evidence points at the data first.

Confidence: ``likely`` (the value is known and the finding shows its effect),
``possible`` (a known value that usually contributes), ``unknown`` (the effect
is seen but the value that would explain it was not found).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from .diagnosis import Best, Cause, LRSchedule, Waste
from .findings import Finding
from .run import EVAL_LOSS, LEARNING_RATE, TRAIN_LOSS, Run, RunConfig

CONFIG_NOT_FOUND = "config not found: pass --config training_args.json to tie findings to hyper-parameters"

# Keys that show a training config was read (not just values inferred from the log).
_HYPER_KEYS = (
    "learning_rate",
    "lr_scheduler_type",
    "weight_decay",
    "lora_r",
    "lora_dropout",
    "dropout",
    "warmup_steps",
    "warmup_ratio",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
)

# LR guides, with where they come from. QLoRA (Dettmers et al. 2023, appendix)
# used 2e-4 for 7B/13B and 1e-4 for 33B/65B; full fine-tuning of LLMs is
# usually 1e-5..5e-5 (Alpaca 2e-5, Llama-2-chat 2e-5).
_LORA_LR_HIGH = 2e-4
_LORA_LR_HIGH_BIG = 1e-4  # >= 30B parameters
_LORA_LR_LOW = 2e-5
_FULL_LR_HIGH = 5e-5
_MANY_EPOCHS = 10


def config_known(cfg: RunConfig) -> bool:
    """True when at least one training hyper-parameter was read from a config, log line or file name."""
    return any(k in cfg for k in _HYPER_KEYS)


def model_size_b(cfg: RunConfig) -> float | None:
    """Parameters in billions parsed from the model name (``Llama-3.1-70B`` -> 70), else None."""
    name = cfg.get("model_name")
    if not isinstance(name, str):
        return None
    m = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", name)
    return float(m.group(1)) if m else None


def _src(cfg: RunConfig, key: str) -> str:
    v = cfg.get(key)
    return f"{key}={v!r} ({cfg.source(key)})"


def _vals(cfg: RunConfig, *keys: str) -> dict[str, Any]:
    return {k: {"value": cfg.get(k), "source": cfg.source(k)} for k in keys if k in cfg}


def _by_code(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.code, []).append(f)
    return out


def evals_after_best(run: Run, best: Best | None) -> int:
    """Eval points logged after the best one (what an early-stopping patience counts)."""
    if best is None:
        return 0
    ev = run.history.get_series(EVAL_LOSS if best.metric == TRAIN_LOSS else best.metric)
    return int((ev.steps > best.step).sum()) if len(ev) else 0


def planned_epochs(run: Run) -> float | None:
    """Planned epochs from the config, else the epoch of the last logged point."""
    ne = run.config.num("num_train_epochs")
    if ne:
        return ne
    ep = run.history.get_series("epoch")
    if len(ep):
        return float(ep.values[-1])
    return None


def find_causes(
    run: Run,
    findings: list[Finding],
    best: Best | None,
    waste: Waste | None,
    lr: LRSchedule | None,
) -> tuple[list[Cause], list[str]]:
    """Causes (most important first) and the unknowns that stopped us from saying more."""
    cfg = run.config
    # info-level findings are notes ("within the eval noise"): never the evidence for a cause
    by = _by_code([f for f in findings if f.severity.rank >= 1])
    causes: list[Cause] = []
    unknowns: list[str] = []
    known = config_known(cfg)
    if not known and findings:
        unknowns.append(CONFIG_NOT_FOUND)

    overfit = "overfitting" in by or "eval_metric_explosion" in by
    memorized = "memorization" in by
    fast = by.get("suspicious_fast_drop", [])
    has_eval = len(run.history.get_series(EVAL_LOSS)) > 0 or bool(run.history.eval_metrics())

    # -- leakage first: it makes every hyper-parameter story wrong -------------------
    if fast or (memorized and not has_eval) or _eval_near_zero(run):
        causes.append(_leakage(run, fast, memorized, has_eval))

    if overfit or memorized:
        causes.extend(_regularisation(run, by, best, waste, unknowns))

    # -- the best checkpoint that was lost ---------------------------------------------
    lost = by.get("best_checkpoint_not_saved") or []
    if lost or (best is not None and best.checkpoint_saved is False):
        causes.append(_save_eval(run, best, lost[0] if lost else None))

    # -- the LR schedule that was not the one configured ---------------------------------
    if "lr_schedule_mismatch" in by or (lr is not None and lr.matches is False):
        c = _schedule(run, lr, by.get("lr_schedule_mismatch", []), unknowns)
        if c is not None:
            causes.append(c)

    # -- gradients that vanished ------------------------------------------------------
    if "grad_norm_collapse" in by:
        causes.append(_grad_collapse(run, by["grad_norm_collapse"][0]))

    # -- instability: warmup, batch, clipping, precision --------------------------------
    unstable = [f for c in ("instability", "divergence", "nan_loss", "grad_norm_explosion") for f in by.get(c, [])]
    # a lone warning-level spike (often just the first logged loss) is not a pattern to blame a config for
    unstable += [f for f in by.get("loss_spike", []) if f.severity.rank >= 2 or (f.evidence.get("count") or 0) >= 3]
    if unstable:
        causes.extend(_instability(run, unstable))

    if "plateau" in by or "no_learning" in by:
        c = _low_lr(run, by.get("plateau", []) + by.get("no_learning", []))
        if c is not None:
            causes.append(c)

    if "no_eval_data" in by:
        unknowns.append("no eval data: overfitting and the best checkpoint cannot be judged from this log")
    if "wasted_compute" in by and waste is not None and waste.gpus_assumed and waste.gpu_hours is not None:
        unknowns.append("GPU count not found: GPU-hours assume 1 GPU (pass the launch command or ds_config with --config)")
    if known and cfg.uses_lora and "lora_dropout" not in cfg and (overfit or memorized):
        unknowns.append("lora_dropout unknown: pass --config adapter_config.json to check LoRA regularisation")
    # a cause names only config keys that were actually read: a key never seen is an unknown, not a cause
    causes = [replace(c, config_keys=[k for k in c.config_keys if k in cfg]) for c in causes]
    return causes, unknowns


def _eval_near_zero(run: Run) -> bool:
    """Eval loss essentially zero (< 0.01 nats): a held-out set that is too easy to be held out."""
    ev = run.history.get_series(EVAL_LOSS).finite()
    return len(ev) >= 2 and float(ev.values.min()) < 0.01


def _leakage(run: Run, fast: list[Finding], memorized: bool, has_eval: bool) -> Cause:
    parts: list[str] = []
    codes: list[str] = []
    if fast:
        e = fast[0].evidence
        frac = e.get("fraction_of_epoch")
        parts.append(
            f"train loss fell {_g(e.get('from_value'))} → {_g(e.get('to_value'))} in {e.get('steps', '?')} steps"
            + (f" ({float(frac):.0%} of an epoch)" if isinstance(frac, (int, float)) else "")
        )
        codes.append("suspicious_fast_drop")
    if memorized:
        codes.append("memorization")
    if _eval_near_zero(run):
        ev = run.history.get_series(EVAL_LOSS).finite()
        parts.append(f"eval loss reaches {_g(float(ev.values.min()))} (perplexity ≈ {math.exp(float(ev.values.min())):.3f})")
    why = (
        "a loss that collapses this fast, or an eval set this easy, is what duplicated examples, "
        "train/eval overlap, or a target visible in the input (e.g. a bidirectional model trained as a causal LM) produce; "
        "a high LR or weak regularisation do not make a model perfect in a fraction of an epoch."
    )
    if not has_eval:
        why += " There is no eval set to tell memorisation from leakage."
    return Cause(
        title="Data leakage, duplicates or a trivially predictable target",
        explanation="; ".join(parts) + ": " + why if parts else why,
        finding_codes=codes,
        confidence="likely",
    )


def _is_lora(cfg: Any) -> bool:
    """LoRA unless the config says full fine-tuning: a trainguard config carries lora_r even with method: full."""
    kind = str(cfg.get("finetuning_type") or cfg.get("method") or "").lower()
    if kind in ("full", "freeze"):
        return False
    return bool(cfg.uses_lora or "lora_dropout" in cfg)


def _regularisation(run: Run, by: dict[str, list[Finding]], best: Best | None, waste: Waste | None, unknowns: list[str]) -> list[Cause]:
    cfg = run.config
    out: list[Cause] = []
    codes = [c for c in ("overfitting", "memorization", "eval_metric_explosion") if c in by]
    lora = _is_lora(cfg)

    # dropout
    if lora and cfg.num("lora_dropout") == 0:
        out.append(Cause(
            "No LoRA dropout",
            f"{_src(cfg, 'lora_dropout')}: the adapters have no stochastic regularisation and can store training "
            "examples freely (0.05–0.1 is the usual range).",
            ["lora_dropout"], _vals(cfg, "lora_dropout"), codes, "likely",
        ))
    if not lora and cfg.num("dropout") == 0:
        out.append(Cause(
            "No dropout",
            f"{_src(cfg, 'dropout')}: nothing stops the model from fitting noise in a small dataset.",
            ["dropout"], _vals(cfg, "dropout"), codes, "likely",
        ))

    # epochs / early stopping
    n_after = evals_after_best(run, best)
    epochs = cfg.num("num_train_epochs")
    best_epoch = best.epoch if best is not None else None
    if epochs and best_epoch and epochs >= 2 * best_epoch and epochs >= 3:
        frac = 1 - best_epoch / epochs
        out.append(Cause(
            "Too many epochs",
            f"{_src(cfg, 'num_train_epochs')} but the best eval came at epoch {best_epoch:.3g}: "
            f"{frac:.0%} of the planned epochs came after the best point.",
            ["num_train_epochs"], _vals(cfg, "num_train_epochs"), codes, "likely",
        ))
    patience = cfg.num("early_stopping_patience")
    if best is not None and n_after >= 3:
        if patience is None:
            tail = f" ({waste.fraction:.0%} of the run)" if waste is not None and waste.fraction else ""
            out.append(Cause(
                "No early stopping",
                f"{n_after} evals after the best one never improved on it and training went on{tail}; "
                "an EarlyStoppingCallback with patience 3 would have stopped after 3"
                + ("" if known_callbacks(cfg) else " (no early_stopping_patience found in the config: absent, or not recorded)")
                + ".",
                ["early_stopping_patience"], _vals(cfg, "early_stopping_patience"), codes,
                "likely" if config_known(cfg) else "possible",
            ))
        elif patience < n_after:
            out.append(Cause(
                "Early stopping did not fire",
                f"{_src(cfg, 'early_stopping_patience')} but {n_after} evals passed without improvement: "
                "the callback was not attached, or it watches another metric (metric_for_best_model).",
                ["early_stopping_patience", "metric_for_best_model"],
                _vals(cfg, "early_stopping_patience", "metric_for_best_model"), codes, "likely",
            ))

    # learning rate for the setting
    lr_val = cfg.num("learning_rate")
    if lr_val:
        size = model_size_b(cfg)
        if lora:
            limit = _LORA_LR_HIGH_BIG if (size or 0) >= 30 else _LORA_LR_HIGH
            long_run = (epochs or 0) >= _MANY_EPOCHS
            if lr_val > limit or (lr_val >= limit and long_run):
                where = f" on a {size:g}B model" if size else ""
                out.append(Cause(
                    "Learning rate high for the setting",
                    f"{_src(cfg, 'learning_rate')} with LoRA{where}"
                    + (f" for {epochs:g} epochs" if epochs else "")
                    + f": QLoRA used 2e-4 up to 13B and 1e-4 for 33B–65B; at {lr_val:g} the adapters fit the training set fast.",
                    ["learning_rate"], _vals(cfg, "learning_rate", "model_name", "num_train_epochs"), codes, "possible",
                ))
        elif lr_val > _FULL_LR_HIGH and (size is None or size >= 0.3):
            out.append(Cause(
                "Learning rate high for full fine-tuning",
                f"{_src(cfg, 'learning_rate')}: full fine-tuning of a pretrained LM usually uses 1e-5–5e-5.",
                ["learning_rate"], _vals(cfg, "learning_rate", "model_name"), codes, "possible",
            ))

    # weight decay against a long run
    wd = cfg.num("weight_decay")
    long_run = (epochs or 0) >= _MANY_EPOCHS or (waste is not None and waste.fraction >= 0.5)
    if wd is not None and wd <= 0.01 and long_run:
        out.append(Cause(
            "Weak weight decay for a long run",
            f"{_src(cfg, 'weight_decay')} against "
            + (f"{epochs:g} epochs" if epochs else f"{waste.fraction:.0%} of the run past the best point" if waste else "a long run")
            + ": too little L2 pull to slow memorisation.",
            ["weight_decay"], _vals(cfg, "weight_decay", "num_train_epochs"), codes, "possible",
        ))
    return out


def known_callbacks(cfg: RunConfig) -> bool:
    """True when the config names its callbacks (so a missing early stopping is a fact, not a gap)."""
    return "callbacks" in cfg or "early_stopping_patience" in cfg


def _save_eval(run: Run, best: Best | None, f: Finding | None) -> Cause:
    cfg = run.config
    ev = f.evidence if f is not None else {}
    best_step = ev.get("best_step", best.step if best is not None else None)
    saved = ev.get("saved_steps") or sorted(run.checkpoints)
    save_steps, eval_steps = cfg.num("save_steps"), cfg.num("eval_steps")
    keys = [k for k in ("save_steps", "eval_steps", "save_strategy", "eval_strategy", "load_best_model_at_end") if k in cfg]
    text = f"the best eval was at step {best_step}, but checkpoints exist only at {_steps(saved)}"
    if save_steps and eval_steps and save_steps != eval_steps:
        text = (
            f"{_src(cfg, 'save_steps')} while {_src(cfg, 'eval_steps')}: "
            + text
            + f"; a best point between saves (every {save_steps:g} steps) is lost"
        )
    lbm = cfg.get("load_best_model_at_end")
    if lbm is not True:
        text += "; load_best_model_at_end " + (f"is {lbm!r} ({cfg.source('load_best_model_at_end')})" if lbm is not None else "was not set") + ", so nothing kept the best model"
    return Cause(
        "Checkpoints not aligned with evals: the best checkpoint was never saved",
        text + ".",
        keys,
        _vals(cfg, *keys),
        ["best_checkpoint_not_saved"],
        "likely",
    )


def _schedule(run: Run, lr: LRSchedule | None, fs: list[Finding], unknowns: list[str]) -> Cause | None:
    cfg = run.config
    inferred = (lr.inferred if lr is not None else None) or {}
    configured = (lr.configured if lr is not None else None) or {}
    shape = inferred.get("shape") or (fs[0].evidence.get("inferred_shape") if fs else None) or "?"
    conf_type = configured.get("type") or cfg.get("lr_scheduler_type") or (fs[0].evidence.get("configured") if fs else None)
    ds = cfg.get("deepspeed_scheduler")
    if ds is None and isinstance(cfg.get("deepspeed"), dict):
        sch = cfg.get("deepspeed").get("scheduler")
        ds = sch.get("type") if isinstance(sch, dict) else None
    if ds:
        return Cause(
            "DeepSpeed scheduler overrides lr_scheduler_type",
            f"the LR followed a {shape} schedule although lr_scheduler_type={conf_type!r}"
            f" ({cfg.source('lr_scheduler_type') or 'configured'}): the DeepSpeed config's scheduler block "
            f"({ds}, {cfg.source('deepspeed_scheduler') or cfg.source('deepspeed')}) takes precedence over the Trainer's, "
            "and WarmupDecayLR decays linearly to 0 over total_num_steps.",
            ["lr_scheduler_type", "deepspeed_scheduler"],
            _vals(cfg, "lr_scheduler_type", "deepspeed_scheduler"),
            ["lr_schedule_mismatch"],
            "likely",
        )
    if lr is not None and lr.cause:
        return Cause("LR schedule differs from the configured one", lr.cause, [], {}, ["lr_schedule_mismatch"], "likely")
    if cfg.get("framework") == "deepspeed" or "deepspeed" in cfg:
        return Cause(
            "LR schedule differs from the configured one (DeepSpeed run)",
            f"the LR followed a {shape} schedule, not {conf_type!r}; this is a DeepSpeed launch, whose ds_config.json "
            "`scheduler` block would override lr_scheduler_type: pass --config ds_config.json to confirm.",
            ["lr_scheduler_type"], _vals(cfg, "lr_scheduler_type"), ["lr_schedule_mismatch"], "possible",
        )
    unknowns.append(
        f"LR schedule: followed {shape} but configured {conf_type!r}; cause unknown "
        "(no DeepSpeed config found: a ds_config.json `scheduler` block is the usual culprit)"
    )
    return None


def _grad_collapse(run: Run, f: Finding) -> Cause:
    e = f.evidence
    ratio = e.get("ratio")
    text = f"grad norm fell from a median {_g(e.get('early_median'))} to {_g(e.get('late_median'))}"
    if isinstance(ratio, (int, float)) and ratio:
        text += f" (×{(1 / ratio if ratio < 1 else ratio):,.0f} smaller)"
    tl = run.history.get_series(TRAIN_LOSS).finite()
    lrs = run.history.get_series(LEARNING_RATE).finite()
    bits = []
    if len(tl):
        bits.append(f"train loss ends at {_g(float(tl.values[-1]))}")
    if len(lrs) and float(lrs.values.max()) > 0:
        bits.append(f"LR ends at {float(lrs.values[-1]) / float(lrs.values.max()):.1%} of its peak")
    return Cause(
        "Learning stopped: gradients vanished",
        text + (": " + ", ".join(bits) if bits else "") + "; with nothing left to fit, further steps change nothing.",
        [], {}, ["grad_norm_collapse"], "likely",
    )


def _instability(run: Run, fs: list[Finding]) -> list[Cause]:
    cfg = run.config
    out: list[Cause] = []
    codes = sorted({f.code for f in fs})
    last = run.last_step or 1
    early = [f for f in fs if f.start_step is not None and f.start_step <= 0.1 * last]
    ws, wr = cfg.num("warmup_steps"), cfg.num("warmup_ratio")
    if early and ("warmup_steps" in cfg or "warmup_ratio" in cfg) and not ws and not wr:
        out.append(Cause(
            "No warmup",
            f"{_src(cfg, 'warmup_steps') if 'warmup_steps' in cfg else _src(cfg, 'warmup_ratio')}: "
            f"the first instability is at step {early[0].start_step}, in the first 10% of the run, "
            "where Adam's second-moment estimates are still poor and a full-size LR overshoots.",
            ["warmup_steps", "warmup_ratio"], _vals(cfg, "warmup_steps", "warmup_ratio"), codes, "likely",
        ))
    eb = cfg.effective_batch
    # all three factors must be known: a missing accumulation would make any batch look tiny
    if eb is not None and eb <= 8 and "gradient_accumulation_steps" in cfg and ("world_size" in cfg or run.num_gpus):
        out.append(Cause(
            "Tiny effective batch",
            f"effective batch {eb} (per_device_train_batch_size × gradient_accumulation_steps × world size, "
            f"{_src(cfg, 'per_device_train_batch_size')}): noisy gradient estimates make spikes likely.",
            ["per_device_train_batch_size", "gradient_accumulation_steps"],
            _vals(cfg, "per_device_train_batch_size", "gradient_accumulation_steps", "world_size"), codes, "possible",
        ))
    mgn = cfg.num("max_grad_norm")
    if mgn is not None and mgn <= 0:
        out.append(Cause(
            "Gradient clipping off",
            f"{_src(cfg, 'max_grad_norm')}: one bad batch can move the weights arbitrarily far.",
            ["max_grad_norm"], _vals(cfg, "max_grad_norm"), codes, "likely",
        ))
    if cfg.get("fp16") is True and any(f.code in ("nan_loss", "divergence") for f in fs):
        out.append(Cause(
            "fp16 overflow",
            f"{_src(cfg, 'fp16')}: float16's range (max 65504) overflows on large activations or losses; bf16 does not.",
            ["fp16"], _vals(cfg, "fp16", "bf16"), codes, "possible",
        ))
    lr_val = cfg.num("learning_rate")
    if lr_val and any(f.code in ("divergence", "nan_loss") for f in fs):
        high = _LORA_LR_HIGH if cfg.uses_lora else _FULL_LR_HIGH
        if lr_val > high:
            out.append(Cause(
                "Learning rate too high to be stable",
                f"{_src(cfg, 'learning_rate')} is above the usual ceiling ({high:g}) for "
                + ("LoRA" if cfg.uses_lora else "full fine-tuning") + " and the loss diverged.",
                ["learning_rate"], _vals(cfg, "learning_rate"), codes, "likely",
            ))
    return out


def _low_lr(run: Run, fs: list[Finding]) -> Cause | None:
    cfg = run.config
    lr_val = cfg.num("learning_rate")
    if not lr_val:
        return None
    low = _LORA_LR_LOW if cfg.uses_lora else 1e-6
    if lr_val > low:
        return None
    return Cause(
        "Learning rate too low to make progress",
        f"{_src(cfg, 'learning_rate')} is at or below {low:g}, low for "
        + ("LoRA (typically 1e-4–2e-4)" if cfg.uses_lora else "fine-tuning")
        + "; the loss barely moves.",
        ["learning_rate"], _vals(cfg, "learning_rate", "lr_scheduler_type"), sorted({f.code for f in fs}), "possible",
    )


def _steps(steps: Any) -> str:
    if not steps:
        return "no step (none saved)"
    steps = list(steps)
    s = ", ".join(str(x) for x in steps[:8])
    return s + (f" … ({len(steps)} in all)" if len(steps) > 8 else "")


def _g(x: Any) -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:.4g}"
    return "?" if x is None else str(x)


__all__ = ["CONFIG_NOT_FOUND", "config_known", "evals_after_best", "find_causes", "model_size_b", "planned_epochs"]
