"""Writes what a finished run leaves behind: the best model, and its diagnosis as markdown, HTML and plots.

The best model goes in the output dir's root, so ``from_pretrained(output_dir)``
is the whole hand-off: a LoRA run saves the adapter (``adapter_config.json``
points at the base model, which transformers and peft both follow), or with
``merge`` the base model with the adapter folded in; full fine-tuning saves
the model. The tokenizer goes beside it either way.

The diagnosis is the same one ``trainguard analyze`` gives, built from the
``trainer_state.json`` the run just wrote, plus what only the trainer knows:
the resolved config and the notes (an OOM retry with a smaller batch, a
resume). A report that fails to render is a note, never a lost model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..run import RunConfig
from .config import TrainConfig


def save_best(trainer: Any, cfg: TrainConfig, out: Path) -> None:
    """Save the model the trainer holds (the best, after ``load_best_model_at_end``) and the tokenizer."""
    model = trainer.model
    if cfg.uses_lora and cfg.merge:
        model = model.merge_and_unload()
    model.save_pretrained(str(out))
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(out))


def run_config(cfg: TrainConfig, world_size: int) -> RunConfig:
    """The TrainConfig as a RunConfig (canonical keys), sourced to the saved config file."""
    src = "trainguard_config.yaml"
    rc = RunConfig()
    vals: dict[str, Any] = {
        "framework": "hf",
        "model_name": cfg.model,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "warmup_ratio": cfg.warmup_ratio,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps if cfg.max_steps > 0 else None,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "per_device_eval_batch_size": cfg.per_device_eval_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "world_size": world_size,
        "weight_decay": cfg.weight_decay,
        "dropout": cfg.dropout,
        "max_seq_length": cfg.block_size,
        "eval_strategy": "steps",
        "eval_steps": cfg.eval_steps,
        "save_strategy": "steps",
        "save_steps": cfg.eval_steps,
        "save_total_limit": cfg.save_total_limit,
        "logging_steps": cfg.logging_steps,
        "load_best_model_at_end": cfg.load_best_model_at_end,
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
        "early_stopping_patience": cfg.early_stopping_patience,
        "max_grad_norm": cfg.max_grad_norm,
        "optim": cfg.optim,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "seed": cfg.seed,
    }
    if cfg.uses_lora:
        vals.update(lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                    lora_target_modules=cfg.lora_target_modules)
    if cfg.method == "qlora":
        vals["load_in_4bit"] = True
    rc.update(vals, src)
    return rc


def write_reports(out: Path, cfg: TrainConfig, notes: list[str], world_size: int) -> tuple[Any, list[Path]]:
    """(diagnosis, paths): report.md, report.html and plots/ in ``out``, from its trainer_state.json."""
    paths: list[Path] = []
    try:
        from ..diagnosis import diagnose
        from ..readers import read_run

        run = read_run(out / "trainer_state.json")
        run.name = cfg.run_name or Path(cfg.output_dir).name
        run.config.merge(run_config(cfg, world_size), override=True)
        run.notes.extend(notes)
        diagnosis = diagnose(run)
    except Exception as e:  # reporting is a bonus on top of a saved model
        (out / "report_error.txt").write_text(f"{type(e).__name__}: {e}\n")
        return None, paths
    for name, fn in (("report.md", _markdown), ("report.html", _html), ("plots", _plots)):
        try:
            paths.extend(fn(diagnosis, out / name))
        except Exception as e:
            (out / "report_error.txt").write_text(f"{name}: {type(e).__name__}: {e}\n")
    return diagnosis, paths


def _markdown(d: Any, path: Path) -> list[Path]:
    from ..report.markdown import render_markdown

    # verbose: the training's own notes (an OOM retry that halved the batch, a resume) belong in its report
    path.write_text(render_markdown(d, verbose=True), encoding="utf-8")
    return [path]


def _html(d: Any, path: Path) -> list[Path]:
    from ..report.html import write_html

    return [write_html(d, path)]


def _plots(d: Any, path: Path) -> list[Path]:
    from ..report.plots import write_plots

    return list(write_plots(d, path))


__all__ = ["run_config", "save_best", "write_reports"]
