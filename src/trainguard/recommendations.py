"""Recommendations: concrete config changes in the user's own framework, each with its reason.

Each :class:`Recommendation` is ``key: current -> suggested`` plus why, in the
vocabulary the user edits: ``TrainingArguments`` fields, an
``EarlyStoppingCallback``, a peft ``LoraConfig``, the DeepSpeed JSON, a
Lightning callback, or trainguard itself. :func:`code_blocks` turns them into
copy-paste snippets for the reports.

What we recommend follows the evidence, not a checklist: for a loss that
collapses in a fraction of an epoch (seed 000) the first change is to check
the data for train/eval overlap and duplicates, *not* to lower the LR (which
only slows the collapse down); for a best checkpoint that was lost (seed 003)
the fix is to align ``save_steps`` with ``eval_steps`` and keep the best model,
which the seed's own recommendations never mention.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .causes import evals_after_best, planned_epochs
from .diagnosis import Best, Cause, LRSchedule, Recommendation, Waste
from .findings import Finding
from .run import EVAL_LOSS, Run

HF = "TrainingArguments"
ES = "EarlyStoppingCallback"
LORA = "LoraConfig"
DS = "deepspeed"
TG = "trainguard"
DATA = "data"
LIGHTNING = "Lightning"
CUSTOM = "custom"

_HF_FORMATS = ("hf", "trainer", "llamafactory", "deepspeed", "trl", "axolotl")


_HF_CONFIG_KEYS = ("per_device_train_batch_size", "eval_strategy", "evaluation_strategy", "save_strategy", "output_dir")


def framework(run: Run) -> str:
    """``hf`` | ``lightning`` | ``custom``: whose vocabulary the recommendations use."""
    fw = str(run.config.get("framework") or "").lower()
    fmt = (run.format or "").lower()
    if "lightning" in fw or "lightning" in fmt:
        return "lightning"
    if any(k in fw for k in _HF_FORMATS) or any(k in fmt for k in _HF_FORMATS):
        return "hf"
    if any(k in run.config for k in _HF_CONFIG_KEYS):  # an HF Trainer's TensorBoard or text log: its config says so
        return "hf"
    if fw or fmt:
        return "custom"
    return "hf"


def recommend(
    run: Run,
    findings: list[Finding],
    causes: list[Cause],
    best: Best | None,
    lr: LRSchedule | None,
    waste: Waste | None,
) -> list[Recommendation]:
    """The config changes that follow from the findings and causes, most important first."""
    cfg = run.config
    codes = {f.code for f in findings if f.severity.rank >= 1}  # info-level notes change no config
    titles = {c.title for c in causes}
    fw = framework(run)
    out: list[Recommendation] = []

    def add(key: str, current: Any, suggested: Any, reason: str, fwk: str) -> None:
        if any(r.key == key and r.framework == fwk for r in out):
            return
        if current == suggested:
            return
        out.append(Recommendation(key, current, suggested, reason, fwk))

    leak = any(c.title.startswith("Data leakage") for c in causes)
    if leak:
        add(
            "dataset", "as logged", "deduplicate; remove train/eval overlap; check the target is not visible in the input",
            "Check the data before any hyper-parameter: a loss that collapses this fast comes from duplicated examples, "
            "train/eval overlap or a leaked target. Lowering the LR or raising weight decay would only slow the collapse "
            "and hide the problem.",
            DATA,
        )
    if "no_eval_data" in codes or (leak and not run.history.eval_metrics() and not len(run.history.get_series(EVAL_LOSS))):
        every = _eval_interval_suggestion(run)
        if fw == "hf":
            add("eval_strategy", cfg.get("eval_strategy", "no"), "steps",
                "Without an eval set, overfitting and leakage look the same as learning; hold out 5% (deduplicated against train).", HF)
            add("eval_steps", cfg.get("eval_steps"), every, f"About 20 evals over the run ({every} steps apart).", HF)
        elif fw == "lightning":
            add("val_check_interval", None, every, "Add a validation dataloader and check it ~20 times per run.", LIGHTNING)
        else:
            add("eval_interval", cfg.get("eval_interval"), every, "Evaluate on held-out data ~20 times per run.", CUSTOM)

    overfit = bool(codes & {"overfitting", "memorization", "eval_metric_explosion"}) and not leak
    wasted = "wasted_compute" in codes
    n_after = evals_after_best(run, best)
    if overfit or (wasted and best is not None and n_after >= 3):
        _stop_and_keep_best(run, best, add, fw, n_after)
    if "best_checkpoint_not_saved" in codes or (best is not None and best.checkpoint_saved is False):
        _align_saves(run, best, add, fw)

    if "No LoRA dropout" in titles:
        add("lora_dropout", cfg.get("lora_dropout"), 0.1, "LoRA adapters without dropout memorise small datasets; 0.05–0.1 is the usual range.", LORA)
    elif overfit and cfg.uses_lora and "lora_dropout" not in cfg:
        add("lora_dropout", "unknown", 0.1, "If it is 0 (peft's default), set 0.05–0.1: the adapters are overfitting.", LORA)
    if "No dropout" in titles:
        add("dropout", cfg.get("dropout"), 0.1, "Dropout 0 leaves a full fine-tune unregularised (set attention/hidden dropout in the model config).", "model config")

    if "Too many epochs" in titles or (overfit and best is not None and best.epoch):
        _cap_epochs(run, best, add, fw)

    lr_val = cfg.num("learning_rate")
    if lr_val and ("Learning rate high for the setting" in titles or "Learning rate high for full fine-tuning" in titles
                   or "Learning rate too high to be stable" in titles):
        add("learning_rate", lr_val, _nice(lr_val / 2), "Halve the LR: the run fits (or diverges) faster than it generalises.", HF if fw == "hf" else fw)
    if lr_val and "Learning rate too low to make progress" in titles:
        add("learning_rate", lr_val, 1e-4 if cfg.uses_lora else _nice(lr_val * 10),
            "The loss barely moves; LoRA usually trains at 1e-4–2e-4.", HF if fw == "hf" else fw)
    if "Weak weight decay for a long run" in titles:
        add("weight_decay", cfg.num("weight_decay"), 0.05, "More L2 pull to slow memorisation over a long run (0.05–0.1).", HF if fw == "hf" else fw)

    _schedule(run, lr, causes, codes, overfit, add, fw)

    if "No warmup" in titles:
        ws = _warmup_steps(run)
        add("warmup_steps", cfg.get("warmup_steps", 0), ws,
            f"Warm the LR up over {_warmup_words(run, ws)} so early updates do not overshoot.", HF if fw == "hf" else fw)
    if "Tiny effective batch" in titles:
        ga = cfg.num("gradient_accumulation_steps") or 1
        add("gradient_accumulation_steps", int(ga), int(ga * 4), "4× the effective batch for smoother gradients, at the same memory.", HF if fw == "hf" else fw)
    if "Gradient clipping off" in titles:
        add("max_grad_norm", cfg.num("max_grad_norm"), 1.0, "Clip gradients so one bad batch cannot wreck the weights.", HF if fw == "hf" else fw)
    if "fp16 overflow" in titles:
        add("bf16", cfg.get("bf16", False), True, "bf16 has float32's range: no overflow to inf/NaN (use fp16=False).", HF)

    # trainguard: the guard would have stopped the run and kept the best checkpoint
    # (not said to a run the guard already watched: its callback or `trainguard run` set guarded_by).
    if (overfit or wasted or "best_checkpoint_not_saved" in codes or leak) and not cfg.get("guarded_by"):
        if fw == "hf":
            add("callbacks", None, "TrainguardCallback()",
                "Stops on overfitting and saves a checkpoint whenever a new best eval appears, even between save_steps.", TG)
        elif fw == "custom":
            add("guard.log", None, "action = guard.log(step, train_loss=…, eval_loss=…)",
                "Call trainguard's Guard from the loop: action.save / action.stop decide for you.", TG)
        add("launch", cfg.get("launch_command"), "trainguard run -- <your launch command>",
            "Wraps any command (python, torchrun, deepspeed), parses its log live and stops it on overfitting.", TG)
    return out


# -- the pieces -----------------------------------------------------------------------


def _stop_and_keep_best(run: Run, best: Best | None, add: Any, fw: str, n_after: int) -> None:
    cfg = run.config
    why = f"{n_after} evals after the best never improved on it" if n_after else "eval stopped improving"
    if fw == "lightning":
        add("EarlyStopping", None, 'EarlyStopping(monitor="val_loss", mode="min", patience=3)', f"Stop after 3 evals without improvement: {why}.", LIGHTNING)
        add("ModelCheckpoint", None, 'ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=1)', "Keep the best checkpoint, not the last.", LIGHTNING)
        return
    if fw == "custom":
        add("early_stopping", None, "stop after 3 evals without a new best val loss", f"{why}.", CUSTOM)
        add("checkpoint", None, "save a checkpoint only when val loss reaches a new best (in nanoGPT: always_save_checkpoint=False)", "Keep the best, not the last, weights.", CUSTOM)
        return
    add("early_stopping_patience", cfg.get("early_stopping_patience"), 3,
        f"Stop after 3 evals without improvement: {why}. Needs load_best_model_at_end=True and metric_for_best_model.", ES)
    add("load_best_model_at_end", cfg.get("load_best_model_at_end", False), True, "End with the best checkpoint loaded, not the last (overfit) one.", HF)
    add("metric_for_best_model", cfg.get("metric_for_best_model"), "eval_loss", "What 'best' means for early stopping and load_best_model_at_end.", HF)
    if cfg.get("greater_is_better") is True:
        add("greater_is_better", True, False, "eval_loss is lower-is-better.", HF)


def _align_saves(run: Run, best: Best | None, add: Any, fw: str) -> None:
    cfg = run.config
    if fw != "hf":
        if fw == "lightning":
            add("ModelCheckpoint", None, 'ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=1)', "Save on each new best val loss.", LIGHTNING)
        else:
            add("checkpoint", None, "save at every eval that sets a new best", "The best point was never written to disk.", CUSTOM)
        return
    ev_every = cfg.num("eval_steps") or _observed_eval_interval(run)
    ss = cfg.num("save_steps")
    if cfg.get("save_strategy") not in (None, cfg.get("eval_strategy", "steps")) or (cfg.get("eval_strategy") == "steps" and cfg.get("save_strategy") != "steps"):
        add("save_strategy", cfg.get("save_strategy"), cfg.get("eval_strategy", "steps"),
            "load_best_model_at_end requires the save and eval strategies to match.", HF)
    if ev_every:
        ev_i = int(ev_every)
        add("save_steps", int(ss) if ss else None, ev_i,
            f"Save at every eval (eval_steps={ev_i}) so the best point is on disk; the best step"
            + (f" {best.step}" if best else "") + " fell between saves. load_best_model_at_end refuses save_steps that are not a multiple of eval_steps.", HF)
        add("save_total_limit", cfg.get("save_total_limit"), 2,
            "With load_best_model_at_end the Trainer keeps the best checkpoint plus the latest; older ones are deleted.", HF)


def _cap_epochs(run: Run, best: Best | None, add: Any, fw: str) -> None:
    if best is None or not best.epoch:
        return
    cfg = run.config
    planned = planned_epochs(run)
    cap = max(1, math.ceil(best.epoch * 4 / 3))
    if planned is None or cap >= planned:
        return
    key = "max_epochs" if fw == "lightning" else "num_train_epochs"
    current = cfg.get("num_train_epochs", f"{planned:g} (from the log)")
    add(key, current, cap,
        f"The best eval came at epoch {best.epoch:.3g}; a cap at ~4/3 of that leaves room for early stopping to confirm it.",
        LIGHTNING if fw == "lightning" else (HF if fw == "hf" else CUSTOM))


def _schedule(run: Run, lr: LRSchedule | None, causes: list[Cause], codes: set[str], overfit: bool, add: Any, fw: str) -> None:
    cfg = run.config
    ds_cause = any(c.title.startswith("DeepSpeed scheduler") for c in causes)
    if ds_cause:
        block = (cfg.get("deepspeed") or {}).get("scheduler") if isinstance(cfg.get("deepspeed"), dict) else None
        add("scheduler", block or {"type": cfg.get("deepspeed_scheduler")}, "remove the block (or set every param to \"auto\")",
            "Without a `scheduler` block the HF Trainer builds the schedule from lr_scheduler_type / warmup_steps; with "
            "\"auto\" params it fills DeepSpeed's from them. Either way the configured schedule is the one followed.", DS)
    sched = cfg.get("lr_scheduler_type")
    mismatch = "lr_schedule_mismatch" in codes or ds_cause
    inferred_shape = ((lr.inferred or {}).get("shape") if lr is not None else None) or ""
    constant = sched in ("constant", "constant_with_warmup") or (sched is None and inferred_shape.startswith("constant") and fw == "hf" and "learning_rate" in cfg)
    if fw == "hf" and (overfit or mismatch) and (constant or mismatch) and sched != "cosine":
        add("lr_scheduler_type", sched, "cosine",
            "Warmup + cosine decay: a constant LR keeps full-size steps while the model starts memorising.", HF)
        ws = cfg.num("warmup_steps")
        if not ws and not cfg.num("warmup_ratio"):
            w = _warmup_steps(run)
            add("warmup_steps", cfg.get("warmup_steps", 0), w, f"A short warmup ({_warmup_words(run, w)}) before the decay.", HF)


def _observed_eval_interval(run: Run) -> int | None:
    ev = run.history.get_series(EVAL_LOSS)
    if len(ev) < 2:
        return None
    import numpy as np

    from ._arrays import median, unique

    d = np.diff(unique(ev.steps))
    return int(median(d)) if len(d) else None


def _run_steps(run: Run) -> int:
    return int(run.planned_steps or run.config.num("max_steps") or run.last_step or 100)


def _warmup_steps(run: Run) -> int:
    return max(1, round(0.05 * _run_steps(run)))


def _warmup_words(run: Run, ws: int) -> str:
    """``~5% of the run (40 steps)``; a run too short for 5% to be a step says ``1 step`` and no percentage."""
    steps = f"{ws} step{'' if ws == 1 else 's'}"
    return f"~5% of the run ({steps})" if 0.05 * _run_steps(run) >= 1 else steps


def _eval_interval_suggestion(run: Run) -> int:
    n = max(1, _run_steps(run) // 20)
    if n < 10:
        return n
    mag = 10 ** int(math.log10(n))
    return int(round(n / mag) * mag)


def _nice(x: float) -> float:
    """Round to one significant digit (1e-4, not 1.0000000000000002e-4)."""
    if x <= 0:
        return x
    return float(f"{x:.1g}")


# -- code blocks for the reports ----------------------------------------------------------


def code_blocks(recs: list[Recommendation]) -> list[tuple[str, str, str]]:
    """``(title, language, code)`` snippets that apply ``recs``, one per framework."""
    by: dict[str, list[Recommendation]] = {}
    for r in recs:
        by.setdefault(r.framework, []).append(r)
    out: list[tuple[str, str, str]] = []
    hf = [r for r in by.get(HF, []) if not isinstance(r.suggested, str) or r.key in _STR_ARGS]
    if hf or ES in by:
        lines = ["from transformers import EarlyStoppingCallback, Trainer, TrainingArguments", "", "args = TrainingArguments("]
        lines += [f"    {r.key}={_py(r.suggested)},  # was {_py(r.current)}" for r in hf]
        lines += ["    # ...your other arguments", ")"]
        if ES in by:
            p = by[ES][0].suggested
            lines += ["trainer = Trainer(", "    args=args,", f"    callbacks=[EarlyStoppingCallback(early_stopping_patience={_py(p)})],", "    # ...model, datasets", ")"]
        out.append(("TrainingArguments", "python", "\n".join(lines)))
    if LORA in by:
        lines = ["from peft import LoraConfig", "", "lora = LoraConfig("]
        lines += [f"    {r.key}={_py(r.suggested)},  # was {_py(r.current)}" for r in by[LORA]]
        lines += ["    # ...r, lora_alpha, target_modules as before", ")"]
        out.append(("LoraConfig", "python", "\n".join(lines)))
    if DS in by:
        patch = {
            "scheduler": {
                "type": "WarmupCosineLR",
                "params": {"total_num_steps": "auto", "warmup_num_steps": "auto", "warmup_min_ratio": 0, "cos_min_ratio": 0.1},
            }
        }
        code = (
            "// ds_config.json: delete the \"scheduler\" block so lr_scheduler_type applies,\n"
            "// or make DeepSpeed's schedule explicit and let the Trainer fill the numbers:\n"
            + json.dumps(patch, indent=2)
        )
        out.append(("DeepSpeed config", "jsonc", code))
    if LIGHTNING in by:
        lines = ["from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint", "", "trainer = Trainer("]
        cbs = [str(r.suggested) for r in by[LIGHTNING] if r.key in ("EarlyStopping", "ModelCheckpoint")]
        if cbs:
            lines.append(f"    callbacks=[{', '.join(cbs)}],")
        lines += [f"    {r.key}={_py(r.suggested)}," for r in by[LIGHTNING] if r.key not in ("EarlyStopping", "ModelCheckpoint")]
        lines.append(")")
        out.append(("Lightning", "python", "\n".join(lines)))
    if DATA in by:
        out.append(("Check the data first", "python", _DEDUP_SNIPPET))
    if TG in by:
        lines = []
        for r in by[TG]:
            if r.key == "callbacks":
                lines += ["from trainguard.live import TrainguardCallback  # stops on overfitting, saves each new best", "", "trainer.add_callback(TrainguardCallback())"]
            elif r.key == "launch":
                cmd = r.current if isinstance(r.current, str) and r.current else "<your launch command>"
                lines += ["# or wrap the unmodified job:", f"# trainguard run -- {cmd}"]
            else:
                lines += [f"# {r.suggested}"]
        out.append(("trainguard", "python", "\n".join(lines)))
    return out


_STR_ARGS = {"eval_strategy", "save_strategy", "metric_for_best_model", "lr_scheduler_type"}

_DEDUP_SNIPPET = """import hashlib

def key(text: str) -> str:
    return hashlib.sha1(" ".join(text.split()).lower().encode()).hexdigest()

train_keys = [key(x) for x in train_texts]
eval_keys = {key(x) for x in eval_texts}
print("duplicates in train:", len(train_keys) - len(set(train_keys)))
print("eval examples also in train:", len(eval_keys & set(train_keys)))"""


def _py(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v)


__all__ = ["code_blocks", "framework", "recommend"]
