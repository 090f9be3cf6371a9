"""``trainguard train CONFIG.yaml [--set key=value ...]``: guarded fine-tuning with the seeds' lessons as defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ._common import err_console, guarded

if TYPE_CHECKING:
    from ..train.runner import TrainResult


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def train(
        config: str = typer.Argument(..., help="YAML train config (see examples/train_lora.yaml)."),
        set_: list[str] = typer.Option([], "--set", help="Override a key: --set learning_rate=1e-4 (repeatable)."),
        resume: str = typer.Option(None, "--resume", help="'last' or a checkpoint folder."),
        merge: bool = typer.Option(False, "--merge", help="Save the LoRA adapter merged into the base model."),
        gpus: int = typer.Option(1, "--gpus", help="Processes to launch through accelerate (>= 2 re-launches)."),
        deepspeed: str = typer.Option(None, "--deepspeed", help="DeepSpeed JSON config (with --gpus)."),
        fsdp: bool = typer.Option(False, "--fsdp", help="Shard with FSDP (with --gpus)."),
        cpu: bool = typer.Option(False, "--cpu", help="Train on the CPU (with --gpus: DDP over gloo)."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Print the resolved config before training."),
    ) -> None:
        """Fine-tune a causal LM under the guard; writes the best model, config and report to output_dir."""
        from ..train.config import check_inputs, load_config
        from ..train.launch import is_launched_child, relaunch

        overrides = list(set_)
        if resume:
            overrides.append(f"resume={resume}")
        if merge:
            overrides.append("merge=true")
        if cpu and gpus < 2:
            overrides.append("use_cpu=true")
        cfg = load_config(config, overrides=overrides)
        if verbose:  # the resolved config is also saved in output_dir; errors stay one line without it
            err_console.print("[bold]config[/] (defaults < file < TRAINGUARD_* env < --set):")
            err_console.print(cfg.to_yaml().rstrip(), markup=False, highlight=False)
        if gpus >= 2 and not is_launched_child():
            check_inputs(cfg)  # refuse a bad config once, here, not in N children
            mp = {"bf16": "bf16", "fp16": "fp16"}.get(cfg.precision, "no")
            raise typer.Exit(relaunch(config, overrides, gpus=gpus, cpu=cpu, deepspeed=deepspeed, fsdp=fsdp,
                                      mixed_precision=mp))
        from ..train.runner import train as run_train

        result = run_train(cfg, console=err_console)
        _summary(result, json_out)


def _summary(r: TrainResult, json_out: bool) -> None:
    import json
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    info = {
        "output_dir": str(r.output_dir), "global_step": r.global_step, "max_steps": r.max_steps,
        "best_step": r.best_step, "best_eval_loss": r.best_metric,
        "stopped_early": r.stopped_early, "stop_reason": r.stop_reason, "notes": r.notes,
        "tokens_per_second": r.tokens_per_second,
        "reports": [str(p) for p in r.report_paths],
    }
    if json_out:
        print(json.dumps(info, indent=2))
        return
    best = "n/a" if r.best_metric is None else f"{r.best_metric:.4f} at step {r.best_step}"
    err_console.print(f"[bold green]done[/]: {r.global_step}/{r.max_steps} steps; best eval_loss {best}")
    if r.stopped_early:
        saved = 1 - r.global_step / max(r.max_steps, 1)
        err_console.print(f"stopped early ({r.stop_reason}); {saved:.0%} of the planned steps not spent")
    err_console.print(f"best model, config and report in {r.output_dir}")
