"""Returns a finished, guarded training run: TRL's SFTTrainer built from a TrainConfig, with the guard attached.

Order matters and is the point of this module:

1. lint the config (when ``trainguard.lint`` offers ``lint_config``), check the
   files and the block size against the model's ``config.json``: all before a
   single weight loads, so a typo costs a second, not a model download;
2. read and split the data without leakage (``data.py``), load the model;
3. build ``SFTConfig`` so that eval and save steps are equal (the best eval is
   always a checkpoint on disk), ``load_best_model_at_end`` on ``eval_loss``,
   and attach the guard callback plus ``EarlyStoppingCallback`` as a backstop;
4. train, resuming from the newest *complete* checkpoint when asked; on CUDA
   OOM halve the per-device batch and double accumulation (same effective
   batch), say so, and record it where the diagnosis reads it;
5. save the best model (adapter, or merged), the resolved config, the data
   report and the diagnosis (markdown, HTML, plots) in ``output_dir``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import TrainConfig, check_inputs
from .data import SplitReport, load_splits, render

CONFIG_FILE = "trainguard_config.yaml"
RUN_FILE = "trainguard_run.json"
_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
            "adapter_model.bin")


@dataclass
class TrainResult:
    """What a run produced: where, how far, the best point, and what happened on the way."""

    output_dir: Path
    global_step: int
    max_steps: int
    best_step: int | None
    best_metric: float | None
    stopped_early: bool
    stop_reason: str | None
    notes: list[str] = field(default_factory=list)
    split: SplitReport | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    train_runtime: float | None = None
    tokens_per_second: float | None = None
    diagnosis: Any = None
    report_paths: list[Path] = field(default_factory=list)


# -- checkpoints ------------------------------------------------------------------------


def checkpoint_complete(path: Path) -> bool:
    """True when a checkpoint folder has weights, optimizer state and a parseable trainer_state.json.

    A run killed mid-save leaves a folder with some of these; resuming from it
    would crash or, worse, silently restart the optimizer.
    """
    if not any((path / w).is_file() for w in _WEIGHTS):
        return False
    if not (path / "optimizer.pt").is_file() and not (path / "optimizer.bin").is_file():
        return False
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(output_dir: Path, *, quarantine: bool = True) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``output_dir``; incomplete newer ones are renamed aside."""
    if not output_dir.is_dir():
        return None
    cps = sorted(
        (p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]), reverse=True,
    )
    for p in cps:
        if checkpoint_complete(p):
            return p
        if quarantine:
            # Renamed, not deleted: HF's rotation would otherwise count it, and the user may want it.
            p.rename(p.with_name("incomplete-" + p.name))
    return None


def resolve_resume(cfg: TrainConfig) -> str | None:
    """The checkpoint to resume from: ``last`` -> newest complete one, a path -> that (checked)."""
    if not cfg.resume:
        return None
    out = Path(cfg.output_dir)
    if cfg.resume == "last":
        cp = last_checkpoint(out)
        return str(cp) if cp else None  # nothing to resume: start fresh, as HF users expect
    p = Path(cfg.resume)
    if not p.is_dir() and (out / cfg.resume).is_dir():
        p = out / cfg.resume
    if not p.is_dir():
        raise ConfigError(f"resume: no checkpoint folder {cfg.resume}", key="resume")
    if not checkpoint_complete(p):
        raise ConfigError(f"resume: {p} is incomplete (weights, optimizer.pt or trainer_state.json missing)",
                          key="resume")
    return str(p)


# -- building --------------------------------------------------------------------------


def sft_config(cfg: TrainConfig, precision: str) -> Any:
    """SFTConfig from the TrainConfig: the seeds' lessons as TrainingArguments."""
    from trl import SFTConfig

    # transformers 5 renamed gradient_checkpointing; TRL still defaults the old name to True.
    ckpt_key = "activation_checkpointing" if "activation_checkpointing" in SFTConfig.__dataclass_fields__ else (
        "gradient_checkpointing")
    return SFTConfig(
        **{ckpt_key: cfg.gradient_checkpointing},
        output_dir=cfg.output_dir,
        run_name=cfg.run_name,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=cfg.optim,
        seed=cfg.seed,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.eval_steps,  # aligned: seed 003 evaluated every 10 and saved every 100
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=cfg.load_best_model_at_end,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=cfg.use_cpu,
        ddp_backend=cfg.ddp_backend,
        dataloader_num_workers=cfg.dataloader_num_workers,
        report_to=[],
        disable_tqdm=True,
        max_length=cfg.block_size,
        packing=cfg.packing,
        completion_only_loss=cfg.completion_only_loss,
        dataset_num_proc=None,
    )


def guard_callbacks(cfg: TrainConfig) -> tuple[list[Any], str]:
    """(callbacks, description): the trainguard callback when it is installed, EarlyStopping as a backstop."""
    from transformers import EarlyStoppingCallback

    cbs: list[Any] = []
    desc: list[str] = []
    if cfg.guard:
        try:
            from ..live.hf_callback import TrainguardCallback
        except ImportError:
            TrainguardCallback = None
        if TrainguardCallback is not None:
            cbs.append(TrainguardCallback())
            desc.append("trainguard guard")
    if cfg.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
        desc.append(f"early stopping (patience {cfg.early_stopping_patience})")
    return cbs, " + ".join(desc) or "none"


def run_lint(cfg: TrainConfig) -> list[Any]:
    """``trainguard lint`` findings for the resolved config, before anything loads.

    The resolved config is written to a temporary YAML and linted as a
    trainguard train file, the same path ``trainguard lint config.yaml`` takes,
    so the two can never disagree. Findings are shown, not fatal: the guard is
    attached anyway, and the demo's V1 run is bad on purpose. A lint bug must
    never block training, so an unexpected exception yields no findings.
    """
    import tempfile

    from ..errors import TrainguardError
    from ..lint import lint_files

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trainguard_train.yaml"
        path.write_text(cfg.to_yaml())
        try:
            return list(lint_files([path]))
        except TrainguardError:
            return []
        except Exception:  # a lint bug must not block training
            return []


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


# -- the run -----------------------------------------------------------------------------


def train(cfg: TrainConfig, *, console: Any = None, progress: Any = None, label: str = "train",
          extra_callbacks: list[Any] | None = None) -> TrainResult:
    """Train as configured and write everything into ``cfg.output_dir``; see the module docstring."""
    from rich.console import Console

    con = console if console is not None else Console(stderr=True, highlight=False)
    _quiet_libraries()
    say = con.print if _is_main() else (lambda *a, **k: None)
    for r in run_lint(cfg):
        if r.severity.rank >= 1:  # warnings and worse; info stays in `trainguard lint`
            say(f"[yellow]lint {r.rule} ({r.severity.value}): {r.key}: {r.message}[/]")
    check_inputs(cfg)
    # Everything checkable is checked before the model loads (seconds to minutes): --resume /nope
    # fails here, in one line, not after the weights are in memory.
    resume = resolve_resume(cfg)
    kind, train_ex, eval_ex, split = load_splits(cfg.data, cfg.eval_data, eval_fraction=cfg.eval_fraction,
                                                  seed=cfg.seed, dedup=cfg.dedup)
    say(f"data: {split.summary()}")
    for n in split.notes:
        say(f"[yellow]data: {n}[/]")

    from .model import count_parameters, load

    loaded = load(cfg)
    notes = list(loaded.notes)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        say(f"resuming from {resume}")
        notes.append(f"resumed from {Path(resume).name}")
    if _is_main():
        (out / CONFIG_FILE).write_text(cfg.to_yaml())
        (out / "data_report.json").write_text(json.dumps(split.to_dict(), indent=2))

    from datasets import Dataset

    tok = loaded.tokenizer
    train_ds = Dataset.from_list(render(kind, train_ex, tok))
    eval_ds = Dataset.from_list(render(kind, eval_ex, tok))
    callbacks, guard_desc = guard_callbacks(cfg)
    say(f"guard: {guard_desc}")
    if cfg.progress:
        from .progress import RichProgress

        callbacks.append(RichProgress(label, console=con, progress=progress))
    callbacks.extend(extra_callbacks or [])

    cur = cfg
    if cfg.packing:
        from .packing import keeps_documents_apart, uses_flash

        if not uses_flash(loaded.model) and not keeps_documents_apart(loaded.model, tok.pad_token_id):
            note = ("packing off: this model's attention ignores packed position ids, so packed documents would "
                    "attend to each other; padding instead")
            say(f"[yellow]{note}[/]")
            notes.append(note)
            cur = cfg.model_copy(update={"packing": False})
            train_ds = Dataset.from_list(render(kind, train_ex, tok))
    trainer = None
    while True:
        trainer = _build(cur, loaded, train_ds, eval_ds, callbacks)
        if trainer.is_world_process_zero() and resume is None:
            tr, tot = count_parameters(trainer.model)
            say(f"model: {cfg.model} ({cfg.method}, {loaded.precision} on {loaded.device}): "
                f"{tr:,} trainable of {tot:,} parameters; effective batch {cur.effective_batch(trainer.args.world_size)}")
        try:
            output = trainer.train(resume_from_checkpoint=resume)
            break
        except Exception as e:
            if not _is_oom(e) or cur.per_device_train_batch_size == 1:
                raise
            new = cur.model_copy(update={
                "per_device_train_batch_size": cur.per_device_train_batch_size // 2,
                "gradient_accumulation_steps": cur.gradient_accumulation_steps * 2,
            })
            note = (f"CUDA out of memory at per_device_train_batch_size={cur.per_device_train_batch_size}: "
                    f"retried with {new.per_device_train_batch_size} x grad accumulation "
                    f"{new.gradient_accumulation_steps} (same effective batch)")
            say(f"[yellow]{note}[/]")
            notes.append(note)
            _tell_guard(callbacks, note, new)
            cur = new
            del trainer
            _free_cuda()
            cp = last_checkpoint(out)
            resume = str(cp) if cp else None
            loaded = load(cfg)  # a fresh model: the OOM may have left the old one half-updated
    result = _finish(cur, trainer, output, loaded, split, notes, con)
    _ddp_teardown()
    return result


def _quiet_libraries() -> None:
    """No per-map and per-shard tqdm bars from datasets/transformers: our one rich bar says it all."""
    import warnings

    import datasets
    import transformers

    # transformers 5 renames (gradient -> activation checkpointing) that TRL/peft still call: not the user's to fix.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6.*", category=FutureWarning)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    # transformers' own advice (no attention_mask passed to generate, lm_head tied or newly initialised on
    # load) is about code the user did not write: trainguard passes the masks and ties the heads itself.
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*attention.mask.*")


def _build(cfg: TrainConfig, loaded: Any, train_ds: Any, eval_ds: Any, callbacks: list[Any]) -> Any:
    from transformers import PrinterCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=loaded.model, args=sft_config(cfg, loaded.precision), train_dataset=train_ds, eval_dataset=eval_ds,
        processing_class=loaded.tokenizer, peft_config=loaded.peft_config, callbacks=list(callbacks),
    )
    # The HF printer writes dict lines to stdout, which --json owns: send them to stderr, or drop
    # them when the rich bar shows the losses.
    trainer.remove_callback(PrinterCallback)
    if cfg.packing:
        from .packing import BlockCollator, uses_flash

        if not uses_flash(trainer.model):
            # One packed block a row: TRL's flattened padding-free batch needs flash-attn to pay off.
            trainer.data_collator = BlockCollator(loaded.tokenizer.pad_token_id)
    if not cfg.progress:
        from .progress import StderrPrinter

        trainer.add_callback(StderrPrinter())
    return trainer


def _tell_guard(callbacks: list[Any], note: str, cfg: TrainConfig) -> None:
    """Put an OOM retry in the live guard's Run, so the diagnosis it writes says so."""
    for cb in callbacks:
        guard = getattr(cb, "guard", None)
        run = getattr(guard, "run", None)
        if run is not None:
            run.notes.append(note)
            run.config.set("per_device_train_batch_size", cfg.per_device_train_batch_size, "trainguard train (OOM retry)",
                           override=True)
            run.config.set("gradient_accumulation_steps", cfg.gradient_accumulation_steps,
                           "trainguard train (OOM retry)", override=True)


def _is_oom(e: BaseException) -> bool:
    import torch

    return isinstance(e, torch.OutOfMemoryError) or "CUDA out of memory" in str(e)


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _ddp_teardown() -> None:
    """All ranks meet before exit; without it the second rank crashes at shutdown (STACK.md)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _finish(cfg: TrainConfig, trainer: Any, output: Any, loaded: Any, split: SplitReport, notes: list[str],
            con: Any) -> TrainResult:
    from .outputs import save_best, write_reports

    state = trainer.state
    out = Path(cfg.output_dir)
    stopped = state.global_step < state.max_steps
    reason = _stop_reason(trainer) if stopped else None
    runtime = (output.metrics or {}).get("train_runtime") if output is not None else None
    tokens = getattr(state, "num_input_tokens_seen", 0) or _logged_tokens(state.log_history)
    result = TrainResult(
        output_dir=out, global_step=state.global_step, max_steps=state.max_steps,
        best_step=_step_of(state.best_model_checkpoint), best_metric=state.best_metric,
        stopped_early=stopped, stop_reason=reason, notes=notes, split=split,
        log_history=list(state.log_history), train_runtime=runtime,
        tokens_per_second=(tokens / runtime) if tokens and runtime else None,
    )
    if trainer.is_world_process_zero():
        state.save_to_json(str(out / "trainer_state.json"))
        save_best(trainer, cfg, out)
        (out / CONFIG_FILE).write_text(_config_with_notes(cfg, notes))
        run_info = {k: v for k, v in result.__dict__.items()
                    if k not in ("split", "log_history", "diagnosis", "report_paths", "output_dir")}
        run_info["effective_batch"] = cfg.effective_batch(trainer.args.world_size)
        run_info["world_size"] = trainer.args.world_size
        (out / RUN_FILE).write_text(json.dumps(run_info, indent=2, default=str))
        if cfg.generate_report:
            result.diagnosis, result.report_paths = write_reports(out, cfg, notes, trainer.args.world_size)
        for cp in out.glob("incomplete-checkpoint-*"):
            shutil.rmtree(cp, ignore_errors=True)
    return result


def _config_with_notes(cfg: TrainConfig, notes: list[str]) -> str:
    head = "# resolved by trainguard train\n" + "".join(f"# note: {n}\n" for n in notes)
    return head + cfg.to_yaml()


def _stop_reason(trainer: Any) -> str:
    for cb in trainer.callback_handler.callbacks:
        act = getattr(cb, "stop_action", None)
        if act is not None:
            return f"trainguard: {getattr(act, 'reason', act)}"
        if type(cb).__name__ == "EarlyStoppingCallback" and getattr(cb, "early_stopping_patience_counter", 0) >= getattr(
                cb, "early_stopping_patience", 1 << 30):
            return f"eval_loss did not improve for {cb.early_stopping_patience} evaluations (early stopping)"
    return "stopped before max_steps"


def _step_of(path: str | None) -> int | None:
    if not path:
        return None
    tail = Path(path).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _logged_tokens(log_history: list[dict[str, Any]]) -> int:
    vals = [e.get("num_tokens") for e in log_history if isinstance(e.get("num_tokens"), (int, float))]
    return int(max(vals)) if vals else 0


__all__ = ["CONFIG_FILE", "RUN_FILE", "TrainResult", "checkpoint_complete", "last_checkpoint", "resolve_resume",
           "sft_config", "train"]
