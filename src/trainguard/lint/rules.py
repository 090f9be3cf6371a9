"""The lint rules: checks on a config before launch, each with a stable id, a severity, a fix and why.

Ids are API (``--ignore TG303``, CI scripts, ``# noqa``-style suppressions):
never renumber one; retire an id rather than reuse it. Families:
TG0xx the keys themselves (unknown or misspelt), TG1xx DeepSpeed against TrainingArguments, TG2xx checkpoints and early
stopping, TG3xx evaluation and run length, TG4xx LoRA, TG5xx learning rate
and regularisation, TG6xx stability, TG7xx batch.

Each rule reads the merged :class:`~trainguard.lint.loaders.LintConfig` and
says nothing when a value it needs is unknown: a linter that guesses gets
ignored. Help texts cite the HF docs or source, the paper, or the real run
that taught the rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..findings import Severity
from .loaders import AXOLOTL, LLAMAFACTORY, LintConfig

W, E, I = Severity.WARNING, Severity.ERROR, Severity.INFO  # noqa: E741


@dataclass(frozen=True)
class LintResult:
    """One problem found in a config: which rule, how bad, which key, what to do."""

    rule: str
    name: str
    severity: Severity
    key: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        if not self.file:
            return "<config>"
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity.value,
            "key": self.key,
            "message": self.message,
            "fix": self.fix,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class Hit:
    """What a check returns; the Rule turns it into a LintResult with location and severity."""

    key: str
    message: str
    fix: str
    severity: Severity | None = None  # None: the rule's default
    at: str | None = None  # the location key, when not ``key``


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str
    help: str
    check: Callable[[LintConfig], list[Hit]]


# -- helpers -------------------------------------------------------------------------------------


def _num(lc: LintConfig, key: str) -> float | None:
    return lc.config.num(key)


def _get(lc: LintConfig, key: str) -> Any:
    return lc.config.get(key)


def _src(lc: LintConfig, key: str) -> str:
    s = lc.config.source(key)
    return f" ({s})" if s else ""


def _g(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes", "on")
    return bool(v)


def _strategy(lc: LintConfig, key: str) -> str | None:
    v = _get(lc, key)
    if v is None:
        return None
    s = str(v).lower()
    return s.split(".", 1)[1] if s.startswith(("intervalstrategy.", "savestrategy.")) else s


def uses_lora(lc: LintConfig) -> bool | None:
    """True for LoRA/QLoRA, False for a full fine-tune, None when the config does not say."""
    ft = str(_get(lc, "finetuning_type") or "").lower()
    if ft in ("lora", "qlora"):
        return True
    if ft in ("full", "freeze"):
        return False
    if "lora_r" in lc.config and "lora_r" not in lc.defaults:
        return True
    return None


_KNOWN_SIZES = {"distilgpt2": 0.082, "gpt2-xl": 1.5, "gpt2-large": 0.774, "gpt2-medium": 0.355, "gpt2": 0.124, "gpt-j": 6.0}


def model_size_b(name: Any) -> float | None:
    """Parameters in billions from a model name: ``Llama-3.1-Centaur-70B-adapter`` -> 70, ``gpt2`` -> 0.124, ``8x7B`` -> 56."""
    if not isinstance(name, str) or not name:
        return None
    base = name.rsplit("/", 1)[-1].lower()
    m = re.search(r"(?<![\d.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z])", base)
    if m:
        return float(m.group(1)) * float(m.group(2))
    m = re.search(r"(?<![\d.a-z])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", base)
    if m:
        v = float(m.group(1))
        return v if m.group(2) == "b" else v / 1000
    for k, v in _KNOWN_SIZES.items():  # longest names first in the table
        if base.startswith(k):
            return v
    return _local_model_size_b(name)


def _local_model_size_b(name: str) -> float | None:
    """Parameters in billions estimated from ``config.json`` when ``name`` is a local model folder.

    A decoder block holds about 12·d² weights (attention 4·d², MLP 8·d², or
    3·d·intermediate for gated MLPs) plus the embeddings: close enough to pick
    an LR tier, and it lets a local path (no size in its name) be judged at all.
    """
    import json
    from pathlib import Path

    cfg_path = Path(name) / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    d = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    vocab = cfg.get("vocab_size") or 0
    if not isinstance(d, int) or not isinstance(layers, int):
        return None
    inter = cfg.get("intermediate_size")
    mlp = 3 * d * inter if isinstance(inter, int) else 8 * d * d
    return (layers * (4 * d * d + mlp) + int(vocab) * d) / 1e9


def lr_limit(lc: LintConfig) -> tuple[float, str] | None:
    """The highest LR we call safe for this method and model size, with its reason; None when the method is unknown.

    LoRA: QLoRA (Dettmers et al. 2023, appendix B) used 2e-4 for 7B/13B and
    1e-4 for 33B/65B; small models (< 1B) tolerate ~1e-3. Full fine-tuning:
    Alpaca and Llama-2-chat used 2e-5 at 7B+; GPT-2-sized models are usually
    tuned at 5e-5..1e-4.
    """
    lora = uses_lora(lc)
    size = model_size_b(_get(lc, "model_name"))
    if lora is None:
        return None
    if lora:
        if size is None:
            return 3e-4, "LoRA usually trains at 1e-4..2e-4 (QLoRA paper)"
        if size >= 30:
            return 1e-4, f"QLoRA used 1e-4 for 33B/65B models (this one is ~{size:g}B); a 70B LoRA run that overfitted at 2e-4 did well at 1e-4"
        if size >= 1:
            return 3e-4, f"QLoRA used 2e-4 for 7B/13B models (this one is ~{size:g}B)"
        return 1e-3, f"a ~{size * 1000:.0f}M model with LoRA rarely needs more than 1e-3"
    if size is None:
        return 1e-4, "full fine-tuning of an LLM usually runs at 1e-5..5e-5"
    if size >= 30:
        return 1e-5, f"full fine-tuning at ~{size:g}B is usually done at ~1e-5"
    if size >= 1:
        return 5e-5, f"full fine-tuning at ~{size:g}B is usually done at 1e-5..2e-5 (Alpaca, Llama-2-chat: 2e-5)"
    if size < 0.01:  # a few million parameters or fewer: toy/tiny models train at 1e-3..1e-2
        return 1e-2, f"a model this small (~{size * 1e3:.2g}M parameters) tolerates up to ~1e-2"
    return 2e-4, f"GPT-2-sized models (~{size * 1000:.0f}M) are usually fine-tuned at 5e-5..1e-4"


def has_early_stopping(lc: LintConfig) -> bool:
    p = _get(lc, "early_stopping_patience")
    return (p is not None and p is not False and _num(lc, "early_stopping_patience") != 0) or _truthy(_get(lc, "guard"))


def planned_epochs(lc: LintConfig) -> float | None:
    if (_num(lc, "max_steps") or -1) > 0:
        return None
    return _num(lc, "num_train_epochs")


def steps_per_epoch(lc: LintConfig) -> float | None:
    n = _num(lc, "train_samples")
    if not n:
        return None
    b = (_num(lc, "per_device_train_batch_size") or 1) * (_num(lc, "gradient_accumulation_steps") or 1) * (_num(lc, "world_size") or 1)
    return max(1.0, math.ceil(n / b))


def total_steps(lc: LintConfig) -> float | None:
    ms = _num(lc, "max_steps")
    if ms and ms > 0:
        return ms
    ep, spe = planned_epochs(lc), steps_per_epoch(lc)
    return ep * spe if ep and spe else None


def _ds(lc: LintConfig) -> dict[str, Any] | None:
    ds = _get(lc, "deepspeed")
    return ds if isinstance(ds, dict) else None


def _ds_val(ds: dict[str, Any], path: str) -> Any:
    cur: Any = ds
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _explicit(lc: LintConfig, key: str) -> bool:
    return key in lc.config and key not in lc.defaults


# -- TG1xx DeepSpeed -------------------------------------------------------------------------------

_DS_TO_HF = {"WarmupLR": ("constant_with_warmup", "constant"), "WarmupDecayLR": ("linear",), "WarmupCosineLR": ("cosine",)}


def _ds_scheduler(lc: LintConfig) -> list[Hit]:
    ds = _ds(lc)
    kind = _ds_val(ds, "scheduler.type") if ds else _get(lc, "deepspeed_scheduler")
    if not kind:
        return []
    hf = str(_get(lc, "lr_scheduler_type") or "linear").lower()
    same = hf in _DS_TO_HF.get(str(kind), ())
    if same:
        return []
    explicit = _explicit(lc, "lr_scheduler_type")
    msg = (
        f"the DeepSpeed config has a \"scheduler\" block ({kind}): DeepSpeed's schedule runs and "
        f"lr_scheduler_type={hf!r}{_src(lc, 'lr_scheduler_type')} is silently ignored"
    )
    if kind == "WarmupDecayLR" and hf.startswith("constant"):
        msg += "; the LR will decay linearly to 0 (a 70B LoRA run configured 'constant' saw its LR decay to 0 this way)"
    return [Hit("lr_scheduler_type", msg,
                f"delete the \"scheduler\" block from the DeepSpeed config so lr_scheduler_type applies "
                f"(and set warmup_steps), or set lr_scheduler_type to what {kind} does",
                None if explicit else W, at="ds.scheduler")]


def _ds_optimizer(lc: LintConfig) -> list[Hit]:
    ds = _ds(lc)
    kind = _ds_val(ds, "optimizer.type") if ds else _get(lc, "deepspeed_optimizer")
    optim = _get(lc, "optim")
    if not kind or not _explicit(lc, "optim") or str(optim).lower().replace("_", "") in (str(kind).lower(), "adamwtorch", "adamwhf"):
        return []
    return [Hit("optim", f"optim={optim!r}{_src(lc, 'optim')} is ignored: the DeepSpeed \"optimizer\" block ({kind}) builds the optimizer",
                "delete the \"optimizer\" block to use optim, or drop optim from the TrainingArguments", at="ds.optimizer")]


def _ds_mismatch(lc: LintConfig) -> list[Hit]:
    ds = _ds(lc)
    if not ds:
        return []
    pairs = [
        ("train_micro_batch_size_per_gpu", "per_device_train_batch_size"),
        ("gradient_accumulation_steps", "gradient_accumulation_steps"),
        ("gradient_clipping", "max_grad_norm"),
        ("optimizer.params.lr", "learning_rate"),
        ("scheduler.params.warmup_max_lr", "learning_rate"),
        ("optimizer.params.weight_decay", "weight_decay"),
    ]
    out = []
    for ds_key, hf_key in pairs:
        dv = _ds_val(ds, ds_key)
        if dv is None or dv == "auto" or not _explicit(lc, hf_key):
            continue
        try:
            mismatch = not math.isclose(float(dv), float(_get(lc, hf_key)), rel_tol=1e-9)
        except (TypeError, ValueError):
            continue
        if mismatch:
            out.append(Hit(hf_key, f"DeepSpeed {ds_key}={_g(dv)} but {hf_key}={_g(_get(lc, hf_key))}{_src(lc, hf_key)}: the Trainer refuses to start",
                           f"set \"{ds_key}\": \"auto\" in the DeepSpeed config so the Trainer fills it",
                           at=f"ds.{ds_key.split('.')[0]}"))
    return out


# -- TG2xx checkpoints and early stopping ---------------------------------------------------------


def _load_best_misaligned(lc: LintConfig) -> list[Hit]:
    if not _truthy(_get(lc, "load_best_model_at_end")):
        return []
    ev, sv = _strategy(lc, "eval_strategy") or "no", _strategy(lc, "save_strategy") or "steps"
    if sv == "best":
        return []
    if ev != sv:
        return [Hit("save_strategy", f"load_best_model_at_end needs save_strategy == eval_strategy, found save={sv!r}, eval={ev!r}: the Trainer refuses to start",
                    f"set save_strategy={ev!r}" if ev != "no" else "turn evaluation on (eval_strategy='steps')")]
    es, ss = _num(lc, "eval_steps"), _num(lc, "save_steps")
    if ev == "steps" and es and ss and (ss * 1e6) % (es * 1e6) != 0:
        return [Hit("save_steps", f"load_best_model_at_end needs save_steps a multiple of eval_steps, found save_steps={_g(ss)}, eval_steps={_g(es)}: the Trainer refuses to start",
                    f"set save_steps={_g(es)} (or a multiple of it)")]
    return []


def _best_not_saved(lc: LintConfig) -> list[Hit]:
    if _truthy(_get(lc, "load_best_model_at_end")):
        return []
    ev, sv = _strategy(lc, "eval_strategy"), _strategy(lc, "save_strategy") or "steps"
    if not ev or ev == "no":
        return []
    if sv == "no":
        return [Hit("save_strategy", "evaluation is on but save_strategy='no': the best eval point can never be restored, only the last weights exist",
                    "save_strategy='steps', save_steps=eval_steps, load_best_model_at_end=True, metric_for_best_model='eval_loss'", W)]
    if ev == "steps" and sv == "steps":
        es, ss = _num(lc, "eval_steps"), _num(lc, "save_steps")
        if es and ss and ss > es:
            ratio = ss / es
            lost = 1 - 1 / ratio
            sev = E if ratio >= 5 else W
            return [Hit("save_steps", f"eval every {_g(es)} steps but checkpoints every {_g(ss)}{_src(lc, 'save_steps')}: {lost:.0%} of evals fall between saves, "
                        "and the best one is probably among them (a 70B LoRA run peaked at step 30 while saving at 100 and 200: its best model was lost)",
                        f"save_steps={_g(es)}, load_best_model_at_end=True, metric_for_best_model='eval_loss', save_total_limit=2", sev)]
    if ev == "steps" and sv == "epoch":
        return [Hit("save_strategy", "eval every eval_steps but checkpoints once per epoch: the best eval between epoch ends is lost",
                    "save_strategy='steps' with save_steps=eval_steps, and load_best_model_at_end=True", W)]
    return []


def _save_limit(lc: LintConfig) -> list[Hit]:
    lim = _num(lc, "save_total_limit")
    if not lim or lim <= 0 or _truthy(_get(lc, "load_best_model_at_end")) or (_strategy(lc, "save_strategy") == "no"):
        return []
    return [Hit("save_total_limit", f"save_total_limit={_g(lim)} without load_best_model_at_end: rotation deletes the oldest checkpoints, "
                "and in an overfitting run the best one is an early one",
                "set load_best_model_at_end=True (the Trainer then never deletes the best checkpoint) with metric_for_best_model='eval_loss'")]


def _es_metric(lc: LintConfig) -> list[Hit]:
    p = _get(lc, "early_stopping_patience")
    if p is None or p is False:
        return []
    if (_strategy(lc, "eval_strategy") or "no") == "no":
        return [Hit("early_stopping_patience", f"early_stopping_patience={_g(p)} with no evaluation (eval_strategy='no'): EarlyStoppingCallback needs evals and fails at start",
                    "eval_strategy='steps' with eval_steps set")]
    if _get(lc, "metric_for_best_model") is None and not _truthy(_get(lc, "load_best_model_at_end")):
        return [Hit("metric_for_best_model", f"early_stopping_patience={_g(p)} without metric_for_best_model: EarlyStoppingCallback asserts it is set and stops the job at start",
                    "metric_for_best_model='eval_loss' (with greater_is_better=False) and load_best_model_at_end=True")]
    return []


def _es_keeps_last(lc: LintConfig) -> list[Hit]:
    p = _get(lc, "early_stopping_patience")
    if p is None or p is False or _truthy(_get(lc, "load_best_model_at_end")) or (_strategy(lc, "eval_strategy") or "no") == "no":
        return []
    return [Hit("load_best_model_at_end", f"early stopping (patience {_g(p)}) without load_best_model_at_end: the job stops {_g(p)} evals after the best, "
                "and the model you get is that worse, last one",
                "load_best_model_at_end=True, metric_for_best_model='eval_loss'")]


# -- TG3xx evaluation and run length --------------------------------------------------------------


def _no_eval(lc: LintConfig) -> list[Hit]:
    ev = _strategy(lc, "eval_strategy")
    vs = _num(lc, "val_size")
    flav = set(lc.flavours.values())
    if ev == "no" or (ev is None and "val_size" in lc.config and not vs):
        where = "eval_strategy='no'" + (" (the TrainingArguments default)" if "eval_strategy" in lc.defaults else _src(lc, "eval_strategy"))
        if AXOLOTL in flav and not vs:
            where = "val_set_size is 0 (no held-out split)"
        return [Hit("eval_strategy", f"no evaluation at all ({where}): overfitting, memorisation and leakage look exactly like learning "
                    "(two fine-tunes saw train loss fall 3.64 -> 0.005 with no eval and could only guess why)",
                    "hold out 5-10% of the data (deduplicated against train) and set eval_strategy='steps' with ~20 evals over the run")]
    if LLAMAFACTORY in flav and ev in ("steps", "epoch") and not vs and "eval_dataset" not in lc.config:
        return [Hit("val_size", f"eval_strategy={ev!r} but no eval set (val_size 0 and no eval_dataset)", "val_size: 0.05")]
    return []


_MIN_EVALS = 8


def _eval_sparse(lc: LintConfig) -> list[Hit]:
    ev = _strategy(lc, "eval_strategy")
    if not ev or ev == "no":
        return []
    total, epochs = total_steps(lc), planned_epochs(lc)
    n: float | None = None
    how = ""
    if ev == "steps":
        es = _num(lc, "eval_steps")
        per_epoch = _num(lc, "evals_per_epoch")
        if es and 0 < es < 1:
            n, how = 1 / es, f"eval_steps={_g(es)} (a fraction of the run)"
        elif es and total:
            if es > total:
                return [Hit("eval_steps", f"eval_steps={_g(es)} is more than the run's ~{total:.0f} steps: evaluation never runs",
                            f"eval_steps={max(1, int(total // 20))} (~20 evals)", E)]
            n, how = total / es, f"eval_steps={_g(es)} over ~{total:.0f} steps"
        elif per_epoch and epochs:
            n, how = per_epoch * epochs, f"evals_per_epoch={_g(per_epoch)} over {_g(epochs)} epochs"
    elif ev == "epoch" and epochs:
        n, how = epochs, f"eval once per epoch over {_g(epochs)} epochs"
    if n is None or n >= _MIN_EVALS:
        return []
    p = _num(lc, "early_stopping_patience")
    extra = f"; early stopping with patience {p:g} needs {p + 1:g} evals after the best" if p else ""
    fix = f"eval_steps={max(1, int(total // 20))}" if total else "eval_strategy='steps' with eval_steps ~ total_steps / 20"
    return [Hit("eval_steps" if ev == "steps" else "eval_strategy",
                f"only ~{n:.0f} evals ({how}): the optimum falls between two of them and is missed{extra}", fix)]


def _epochs_no_es(lc: LintConfig) -> list[Hit]:
    ep = planned_epochs(lc)
    if not ep or ep <= 5 or has_early_stopping(lc):
        return []
    sev = E if ep >= 20 else W
    return [Hit("num_train_epochs", f"num_train_epochs={_g(ep)}{_src(lc, 'num_train_epochs')} with no early stopping: a 70B LoRA run peaked at epoch 15 of 100 "
                "and spent 83% of its 93 GPU-hours making the model worse",
                "add EarlyStoppingCallback(early_stopping_patience=3) with load_best_model_at_end=True and metric_for_best_model='eval_loss' "
                "(or early_stopping_patience: 3 in the config), and cap the epochs (<= 20)", sev)]


# -- TG4xx LoRA ---------------------------------------------------------------------------------


_BIG_DATASET = 50_000


def _lora_dropout(lc: LintConfig) -> list[Hit]:
    if not uses_lora(lc):
        return []
    d = _num(lc, "lora_dropout")
    if d is None or d > 0:
        return []
    n = _num(lc, "train_samples")
    if n and n >= _BIG_DATASET:
        return []
    size = f"on a small dataset ({n:.0f} examples)" if n else "and a dataset of unknown size (--train-samples N tells)"
    dflt = _src(lc, "lora_dropout")  # "(peft's default)" when no file wrote it
    return [Hit("lora_dropout", f"lora_dropout=0{dflt} {size}: the adapters have no regularisation and memorise "
                "(a 70B LoRA run with dropout 0 drove train loss to 0 while eval rose 3.6x)", "lora_dropout=0.1 (0.05-0.1)")]


def _lora_alpha(lc: LintConfig) -> list[Hit]:
    if not uses_lora(lc):
        return []
    r, a = _num(lc, "lora_r"), _num(lc, "lora_alpha")
    if not r or not a or _truthy(_get(lc, "use_rslora")):
        return []
    ratio = a / r
    if 0.5 <= ratio <= 4:
        return []
    effect = "the update is scaled down so far the adapter barely learns" if ratio < 0.5 else "the update is scaled up, as if the LR were multiplied by it"
    return [Hit("lora_alpha", f"lora_alpha={_g(a)} with r={_g(r)}: scale alpha/r = {ratio:g}; {effect}",
                f"lora_alpha={_g(r)} or {_g(2 * r)} (alpha = r or 2r), or use_rslora=True for large ranks")]


# -- TG5xx learning rate and regularisation ----------------------------------------------------------


def _lr_high(lc: LintConfig) -> list[Hit]:
    lr = _num(lc, "learning_rate")
    lim = lr_limit(lc)
    if not lr or lim is None or "learning_rate" in lc.defaults:
        return []
    limit, why = lim
    if lr <= limit * 1.0001:
        return []
    method = "LoRA" if uses_lora(lc) else "full fine-tuning"
    return [Hit("learning_rate", f"learning_rate={_g(lr)}{_src(lc, 'learning_rate')} is high for {method}: {why}",
                f"learning_rate={_g(limit)}", E if lr >= 3 * limit else None)]


def _warmup_steps(lc: LintConfig) -> float | None:
    """Warmup that will run: DeepSpeed's scheduler block when present (it overrides), else HF's."""
    ds = _ds(lc)
    params = _get(lc, "deepspeed_scheduler_params")
    if (ds and _ds_val(ds, "scheduler.type")) or (_get(lc, "deepspeed_scheduler") and isinstance(params, dict)):
        w = _ds_val(ds, "scheduler.params.warmup_num_steps") if ds else params.get("warmup_num_steps")  # type: ignore[union-attr]
        if w is not None and w != "auto":
            try:
                return float(w)
            except (TypeError, ValueError):
                return None
    w = _num(lc, "warmup_steps") or 0.0
    r = _num(lc, "warmup_ratio") or 0.0
    return max(w, r)


def _no_warmup(lc: LintConfig) -> list[Hit]:
    lr = _num(lc, "learning_rate")
    if not lr or "learning_rate" in lc.defaults:
        return []
    lora = uses_lora(lc)
    threshold = 2e-5 if lora is False else 1e-4
    if lr < threshold:
        return []
    w = _warmup_steps(lc)
    if w is None or w > 0:
        return []
    return [Hit("warmup_steps", f"no warmup with learning_rate={_g(lr)}: the first updates, on Adam's unwarmed second moments, are the largest of the run "
                "and can throw the model off before it learns anything (a run with early loss blow-ups was fixed by a longer warmup)",
                "warmup_steps ~3-5% of the run (or warmup_ratio=0.03), with lr_scheduler_type='cosine'")]


def _weight_decay(lc: LintConfig) -> list[Hit]:
    wd = _num(lc, "weight_decay")
    ep = planned_epochs(lc)
    if wd is None or wd > 0 or not ep or ep <= 3:
        return []
    return [Hit("weight_decay", f"weight_decay=0{_src(lc, 'weight_decay')} over {_g(ep)} epochs: no L2 pull against memorisation (fine-tunes that memorised were fixed by raising it 0.0 -> 0.1)",
                "weight_decay=0.05 (0.01-0.1)")]


# -- TG6xx stability, TG7xx batch ---------------------------------------------------------------------


def _no_clipping(lc: LintConfig) -> list[Hit]:
    out = []
    if "max_grad_norm" in lc.config and "max_grad_norm" not in lc.defaults:
        v = _get(lc, "max_grad_norm")
        if v is None or (_num(lc, "max_grad_norm") is not None and (_num(lc, "max_grad_norm") or 0) <= 0):
            out.append(Hit("max_grad_norm", f"max_grad_norm={v!r}: gradient clipping is off, so one bad batch can take a step large enough to diverge",
                           "max_grad_norm=1.0 (the TrainingArguments default)"))
    ds = _ds(lc)
    gc = _ds_val(ds, "gradient_clipping") if ds else None
    if gc is not None and gc != "auto":
        try:
            if float(gc) <= 0:
                out.append(Hit("max_grad_norm", f"DeepSpeed gradient_clipping={gc}: clipping is off under DeepSpeed whatever max_grad_norm says",
                               "\"gradient_clipping\": \"auto\" (the Trainer fills max_grad_norm, 1.0 by default)", at="ds.gradient_clipping"))
        except (TypeError, ValueError):
            pass
    return out


_FROM = re.compile(r"(?:from|was)\s+(\d+)", re.IGNORECASE)
_TO = re.compile(r"(?:to|now|is)\s+(\d+)", re.IGNORECASE)


def _batch_changed(lc: LintConfig) -> list[Hit]:
    out: list[Hit] = []
    bs = _num(lc, "per_device_train_batch_size")
    acc = _num(lc, "gradient_accumulation_steps") or 1
    for loc, text in lc.notes:
        m = _FROM.search(text)
        old = float(m.group(1)) if m else None
        t = _TO.search(text)
        new = float(t.group(1)) if t else bs
        detail = ""
        if old and new and old != new:
            detail = (f": the per-device batch went {old:g} -> {new:g}; unless gradient_accumulation_steps was multiplied by {old / new:g} "
                      f"(it is {acc:g} now), the effective batch changed from {old * acc:g} to {new * acc:g} examples per step")
        out.append(Hit("per_device_train_batch_size", f"an OOM retry is noted at {loc} ({text[:120]!r}){detail}; "
                       "LR, noise and steps per epoch all assume the old effective batch (a run cut its batch 32 -> 16 after an OOM, then stalled)",
                       "keep the effective batch: halve per_device_train_batch_size AND double gradient_accumulation_steps "
                       "(trainguard train does this on OOM)"))
    for key, a, b in lc.config.conflicts:
        if key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
            out.append(Hit(key, f"{key} is {_g(a.value)} in {a.source} but {_g(b.value)} in {b.source}: the effective batch differs between the files "
                           "(a batch cut after an OOM without the matching accumulation change?)",
                           "make the files agree, and keep per_device_train_batch_size x gradient_accumulation_steps constant"))
    return out


def _unknown_key(lc: LintConfig) -> list[Hit]:
    hits = []
    for loc, key, near, flavour in lc.unknown_keys:
        tool = "trainguard train" if flavour == "trainguard" else "TrainingArguments"
        what = f"did you mean `{near}`?" if near else "it is not a key of this config"
        fix = f"rename it to {near}" if near else "remove it (trainguard train --help lists the keys)"
        sev = E if flavour == "trainguard" else W
        hits.append(Hit(key, f"unknown key {key!r} for {tool}: {what}", fix, sev, at=f"unknown:{loc.file}:{key}"))
        lc.locations.setdefault(f"unknown:{loc.file}:{key}", loc)
    return hits


RULES: tuple[Rule, ...] = (
    Rule("TG001", "unknown-key", E, "A key the training tool does not know (a typo is a setting silently lost).",
         "TrainingArguments(**config) raises TypeError on an unexpected keyword, but scripts that parse JSON with "
         "HfArgumentParser(..., allow_extra_keys=True) or copy keys one by one drop a misspelt one silently: a `lerning_rate` "
         "leaves the default LR in place. trainguard train refuses unknown keys outright. Error for a trainguard train file; "
         "for TrainingArguments, a warning when the key is close to a real one.", _unknown_key),
    Rule("TG101", "deepspeed-scheduler-override", E, "A DeepSpeed scheduler block silently replaces lr_scheduler_type.",
         "When the DeepSpeed config has a \"scheduler\" entry, the HF Trainer hands scheduling to DeepSpeed and ignores "
         "--lr_scheduler_type (HF docs, 'DeepSpeed > Scheduler': 'If you don't configure the scheduler entry in the configuration "
         "file, the Trainer will use the value of --lr_scheduler_type'; transformers integrations/deepspeed.py, deepspeed_optim_sched). "
         "A 70B LoRA run configured 'constant', logged a linear decay to 0 and spent a section of its report guessing why.", _ds_scheduler),
    Rule("TG102", "deepspeed-optimizer-override", W, "A DeepSpeed optimizer block silently replaces optim.",
         "With an \"optimizer\" entry DeepSpeed builds its own optimizer and TrainingArguments.optim is not used (HF docs, 'DeepSpeed > "
         "Optimizer'): an 8-bit optimizer chosen to save memory quietly becomes a 32-bit one.", _ds_optimizer),
    Rule("TG103", "deepspeed-value-mismatch", E, "A hard-coded DeepSpeed value disagrees with the TrainingArguments.",
         "The Trainer checks DeepSpeed values that are not \"auto\" against the TrainingArguments and refuses to start on a mismatch "
         "(transformers integrations/deepspeed.py: 'Please correct the following DeepSpeed config values that mismatch "
         "TrainingArguments values'). Finding it here costs seconds instead of a queue slot and a model load.", _ds_mismatch),
    Rule("TG201", "load-best-misaligned", E, "load_best_model_at_end with save and eval not aligned.",
         "TrainingArguments raises at start: '--load_best_model_at_end requires the save and eval strategy to match' and 'requires the "
         "saving steps to be a round multiple of the evaluation steps' (transformers training_args.py __post_init__).", _load_best_misaligned),
    Rule("TG202", "best-checkpoint-not-saved", W, "Evals happen between saves, so the best eval point is never on disk.",
         "A checkpoint exists only every save_steps; an eval between two saves can be reported but never restored. A 70B LoRA run evaluated "
         "every 10 steps and saved every 100: its best point (step 30, eval 0.1376) was lost and the saved checkpoints were 2.8x and "
         "3.6x worse. Error when 80% or more of the evals fall between saves.", _best_not_saved),
    Rule("TG203", "save-limit-drops-best", W, "save_total_limit may delete the best checkpoint.",
         "Checkpoint rotation deletes the oldest checkpoints first; only with load_best_model_at_end=True does the Trainer keep the "
         "best one out of the rotation (HF docs, TrainingArguments.save_total_limit). In an overfitting run the best is an early one.", _save_limit),
    Rule("TG204", "early-stopping-needs-metric", E, "Early stopping without an eval or a metric_for_best_model.",
         "EarlyStoppingCallback asserts 'EarlyStoppingCallback requires metric_for_best_model to be defined' and needs an eval strategy "
         "(transformers trainer_callback.py, on_train_begin); metric_for_best_model defaults to 'loss' only when load_best_model_at_end=True.", _es_metric),
    Rule("TG205", "early-stopping-keeps-last", W, "Early stopping without load_best_model_at_end keeps the worse, last model.",
         "The callback stops `patience` evals after the best; without load_best_model_at_end the weights you get are those of the last "
         "eval, which by construction is worse than the best (transformers warns 'Using EarlyStoppingCallback without "
         "load_best_model_at_end=True').", _es_keeps_last),
    Rule("TG301", "no-eval", E, "No evaluation at all.",
         "Without held-out evaluation overfitting, memorisation and data leakage are indistinguishable from learning. Two fine-tunes "
         "watched train loss fall 3.64 -> 0.005 in 4% of an epoch with no eval and could only guess (they blamed the LR; the evidence "
         "points at the data). TrainingArguments' default eval_strategy is 'no'.", _no_eval),
    Rule("TG302", "eval-too-sparse", W, "Evaluations so sparse that the optimum would be missed.",
         f"With fewer than {_MIN_EVALS} evals the best point can be anywhere between two of them, and early stopping with patience p needs "
         "p+1 evals after the optimum before it acts. One 70B LoRA run's optimum lay between its 3rd and 4th eval of 20; "
         "another team moved from per-epoch evals to every 500 steps for this reason.", _eval_sparse),
    Rule("TG303", "epochs-without-early-stopping", W, "Many epochs and nothing to stop them.",
         "A 70B LoRA run ran 100 epochs without early stopping; eval was best at epoch 15 and 3.6x worse at the end, with 83% of its "
         "~93 GPU-hours spent after the optimum. Warning above 5 epochs, error from 20.", _epochs_no_es),
    Rule("TG401", "lora-dropout-zero", W, "LoRA dropout 0 on a small dataset.",
         "peft's LoraConfig and LLaMA-Factory default lora_dropout to 0. On a few thousand examples the adapters memorise: a 70B LoRA run "
         "(dropout 0) drove train loss to 0.0000 while eval rose 3.6x. 0.05-0.1 is the usual range (QLoRA used 0.05-0.1). "
         f"Silent when --train-samples is at least {_BIG_DATASET}.", _lora_dropout),
    Rule("TG402", "lora-alpha-ratio", W, "lora_alpha far from r.",
         "LoRA scales its update by alpha/r (Hu et al. 2021, section 4.1), so alpha/r acts as an LR multiplier: r=256 with alpha=16 "
         "trains at 1/16 of the LR, r=8 with alpha=64 at 8x. alpha = r or 2r is the usual choice; rsLoRA (use_rslora=True, "
         "Kalajdzievski 2023) scales by alpha/sqrt(r) for large ranks.", _lora_alpha),
    Rule("TG501", "lr-high", W, "Learning rate high for the method and model size.",
         "QLoRA (Dettmers et al. 2023, appendix B) used 2e-4 for 7B/13B and 1e-4 for 33B/65B; full fine-tunes of 7B+ models "
         "(Alpaca, Llama-2-chat) use ~2e-5. Model size is read from the model name (70B, 6B, gpt2). One 70B LoRA run at 2e-4, "
         "2x its successful runs, overfitted. Error at 3x the limit.", _lr_high),
    Rule("TG502", "no-warmup-high-lr", W, "No warmup with a high learning rate.",
         "Adam's first updates are the largest of the run (its second-moment estimates start at zero); without warmup a high LR can "
         "wreck the pretrained weights in the first steps. One unstable run fixed its early blow-ups by extending warmup; HF's cosine/linear "
         "schedules take warmup_steps or warmup_ratio. A DeepSpeed scheduler's warmup_num_steps counts (it is the one that runs).", _no_warmup),
    Rule("TG503", "no-weight-decay", I, "No weight decay over a multi-epoch run.",
         "weight_decay defaults to 0.0 in TrainingArguments. Two fine-tunes that memorised were fixed by raising it 0.0 -> 0.1, and 0.01 proved "
         "too weak over 100 epochs. Informational: decay is one lever, early stopping is the stronger one.", _weight_decay),
    Rule("TG601", "grad-clipping-off", W, "Gradient clipping turned off.",
         "max_grad_norm defaults to 1.0 in TrainingArguments; 0 or null disables clipping, and under DeepSpeed gradient_clipping: 0 "
         "does the same. One diverging run added clipping at 1.0 among the changes that ended its divergence.", _no_clipping),
    Rule("TG701", "batch-changed-after-oom", W, "The effective batch changed silently (an OOM retry).",
         "Cutting the per-device batch after an OOM without raising gradient accumulation changes the effective batch, and with it the "
         "gradient noise, the steps per epoch and the LR that suits the run. One run went 32 -> 16 after an OOM and then blamed "
         "instability on the smaller batch. Found in comments or notes that mention OOM, or in files that disagree on the batch.", _batch_changed),
)

BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}


def find_rule(ref: str) -> Rule | None:
    """A rule by id (``TG303``, case-insensitive) or name (``epochs-without-early-stopping``)."""
    return BY_ID.get(ref.strip().upper()) or BY_NAME.get(ref.strip().lower())


def run_rules(lc: LintConfig, *, ignore: set[str] | frozenset[str] = frozenset()) -> list[LintResult]:
    """Every rule's results on ``lc``, worst first, then by file and line."""
    out: list[LintResult] = []
    for rule in RULES:
        if rule.id in ignore or rule.name in ignore:
            continue
        for h in rule.check(lc):
            loc = lc.where(h.at or h.key) or lc.where(h.key)
            out.append(LintResult(rule.id, rule.name, h.severity or rule.severity, h.key, h.message, h.fix,
                                  loc.file if loc else None, loc.line if loc else None))
    out.sort(key=lambda r: (-r.severity.rank, r.file or "", r.line or 0, r.rule))
    return out


__all__ = ["BY_ID", "RULES", "LintResult", "Rule", "find_rule", "lr_limit", "model_size_b", "run_rules"]
