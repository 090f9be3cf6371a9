"""Returns the demo's outcome: a common overfitting fine-tune and the guarded one, in about a minute on a CPU.

A tiny GPT-2 is trained *from scratch* (a tokenizer trained locally on the
bundled Q&A, nothing downloaded) twice, one bar each:

1. **The common config** (``V1`` below), as many real fine-tunes start: constant LR, no
   warmup, dropout 0, weight decay 0, many epochs, no early stopping. The
   guard rides along as a *shadow*: it records where it would have stopped
   but lets the run go on, so the demo can show the whole overfitting curve
   and score the guard's decision against it (the eval loss it would have
   kept against the run's best, and the steps it would have saved).
2. **trainguard's defaults** (``V2``: warmup + cosine, weight decay 0.1, dropout
   0.1, eval == save steps, best model at the end) with the guard in charge.

Then the comparison table, the terminal report of the first run's diagnosis, and where
the markdown/HTML reports and the saved best model are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .config import TrainConfig

# A 70B LoRA run's overfitting config, scaled to a 2-layer GPT-2 and 270 Q&A pairs: LR constant and high,
# no warmup, no dropout, no weight decay, and far more epochs than the data supports.
V1: dict[str, Any] = dict(
    lr_scheduler_type="constant", warmup_ratio=0.0, weight_decay=0.0, dropout=0.0, num_train_epochs=15,
    epoch_cap=100, guard=False, early_stopping_patience=None, load_best_model_at_end=False, save_total_limit=2,
)
# V2 changes only what the defaults change; the epoch budget stays, so the guard has something to save.
V2: dict[str, Any] = dict(num_train_epochs=15, epoch_cap=100)
# What the user reads: the two runs' names (also their output folders, lower-cased, first word).
LABELS = ("Unguarded (common config: constant LR, no warmup, no dropout)", "Guarded (trainguard defaults)")
COMMON: dict[str, Any] = dict(
    method="full",  # from scratch: there is no pretrained base for an adapter to adapt
    learning_rate=6e-3, block_size=128, per_device_train_batch_size=8, gradient_accumulation_steps=1,
    per_device_eval_batch_size=16, eval_steps=10, logging_steps=10, use_cpu=True, seed=0, packing=True,
)


def dataset_path(eval_split: bool = False) -> Path:
    name = "demo_qa_eval.md" if eval_split else "demo_qa.md"
    return Path(str(resources.files("trainguard") / "data" / name))


@dataclass
class DemoRun:
    label: str
    result: Any  # TrainResult
    seconds: float
    shadow_stop: tuple[int, str] | None = None  # (step, reason) where the guard would have stopped


def build_base(out: Path, data: Path, *, n_embd: int = 64, n_layer: int = 2) -> Path:
    """Train the tokenizer on the Q&A and save a fresh tiny GPT-2 beside it (``from_pretrained``-ready)."""
    from .data import read_examples
    from .tiny import save_tiny

    _, ex = read_examples(data)
    texts = [f"Question: {e['question']}\nAnswer: {e['answer']}" for e in ex]
    return save_tiny(out / "base-model", texts, n_embd=n_embd, n_layer=n_layer, n_head=2, n_positions=128)


def shadow_guard() -> Any:
    """A TrainguardCallback that records its first stop decision and lets training go on."""
    from ..live.hf_callback import TrainguardCallback

    class ShadowGuard(TrainguardCallback):  # type: ignore[misc]
        would_stop: tuple[int, str] | None = None

        def _hold(self, state: Any, control: Any) -> None:
            if control.should_training_stop and self.stop_action is not None:
                if self.would_stop is None:
                    self.would_stop = (int(self.stop_action.step), str(self.stop_action.reason))
                control.should_training_stop = False

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            super().on_log(args, state, control, logs=logs, **kw)
            self._hold(state, control)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any) -> None:
            super().on_evaluate(args, state, control, metrics=metrics, **kw)
            self._hold(state, control)

    return ShadowGuard(report=False)


def run_demo(out: Path, *, console: Any, v1_epochs: float | None = None, quick: bool = False) -> list[DemoRun]:
    """Train the common config (shadow-guarded) then trainguard's defaults (guarded) into ``out``; returns both runs."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .runner import train

    # One thread: a 2-layer model gains nothing from more, and on a busy machine OpenMP's
    # spin-waiting threads made each step 15x slower (measured while others trained).
    torch.set_num_threads(1)
    from .runner import _quiet_libraries

    _quiet_libraries()
    data = dataset_path()
    base = build_base(out, data)
    console.print(f"[dim]tiny GPT-2 built from scratch with a local tokenizer: {base}[/]")
    common = dict(COMMON, model=str(base), data=str(data), eval_data=str(dataset_path(True)), progress=True)
    epochs = v1_epochs or (8 if quick else V1["num_train_epochs"])
    runs: list[DemoRun] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    with progress:
        for label, extra, shadow in ((LABELS[0], dict(V1, num_train_epochs=epochs), True),
                                     (LABELS[1], dict(V2, num_train_epochs=epochs), False)):
            cfg = TrainConfig(**common, **extra, output_dir=str(out / label.split()[0].lower()), run_name=label)
            sg = shadow_guard() if shadow else None
            t0 = time.perf_counter()
            res = train(cfg, console=console, progress=progress, label=f"{label.split(' (')[0]:<10}",
                        extra_callbacks=[sg] if sg is not None else None)
            runs.append(DemoRun(label, res, time.perf_counter() - t0, getattr(sg, "would_stop", None)))
    return runs


def _eval_at(result: Any, step: int) -> float | None:
    best = None
    for e in result.log_history:
        if "eval_loss" in e and e.get("step", 0) <= step:
            best = float(e["eval_loss"])
    return best


def _evals(result: Any) -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e["eval_loss"])) for e in result.log_history if "eval_loss" in e]


def summary_table(runs: list[DemoRun]) -> Any:
    """The side-by-side table: steps, best and final eval, who stopped it, compute saved."""
    from rich.table import Table

    table = Table(title="The common config against trainguard's defaults, same data and budget", title_justify="left")
    table.add_column("")
    for r in runs:
        table.add_column(r.label, justify="right")
    rows: dict[str, list[str]] = {k: [] for k in (
        "steps run / planned", "best eval_loss (step)", "final eval_loss", "stopped by", "guard stop (would stop)",
        "eval_loss at the guard's stop", "model kept under the guard", "compute saved by the guard", "wall time")}
    for r in runs:
        res = r.result
        ev = _evals(res)
        best_step, best = min(ev, key=lambda x: x[1]) if ev else (None, float("nan"))
        rows["steps run / planned"].append(f"{res.global_step} / {res.max_steps}")
        rows["best eval_loss (step)"].append(f"{best:.3f} ({best_step})")
        rows["final eval_loss"].append(f"{ev[-1][1]:.3f}" if ev else "n/a")
        by = "-"
        if res.stopped_early:
            by = "the guard" if (res.stop_reason or "").startswith("trainguard") else "early stopping"
        rows["stopped by"].append(by if res.stopped_early else "ran to the end")
        stop = r.shadow_stop[0] if r.shadow_stop else (res.global_step if res.stopped_early else None)
        rows["guard stop (would stop)"].append("-" if stop is None else (
            f"({stop})" if r.shadow_stop else f"{stop}"))
        at_stop = _eval_at(res, stop) if stop is not None else None
        rows["eval_loss at the guard's stop"].append("-" if at_stop is None else f"{at_stop:.3f}")
        kept = min((v for s_, v in ev if stop is None or s_ <= stop), default=None)
        rows["model kept under the guard"].append(
            "-" if kept is None else f"best ckpt {kept:.3f} (+{(kept / best - 1) * 100:.1f}%)")
        saved = None if stop is None else 1 - stop / max(res.max_steps, 1)
        rows["compute saved by the guard"].append("-" if saved is None else f"{saved:.0%} of the steps")
        rows["wall time"].append(f"{r.seconds:.0f} s")
    for k, v in rows.items():
        table.add_row(k, *v)
    return table


def show(runs: list[DemoRun], out: Path, console: Any) -> None:
    """Print the table, the unguarded run's diagnosis and where everything was written."""
    console.print()
    console.print(summary_table(runs))
    v1 = runs[0]
    if v1.shadow_stop:
        console.print(f"[bold]the guard, riding along on the unguarded run[/]: would have stopped at step {v1.shadow_stop[0]}: "
                      f"{v1.shadow_stop[1]}")
    if v1.result.diagnosis is not None:
        from ..report.terminal import print_report

        console.rule("The unguarded run's diagnosis (what trainguard analyze says about it)")
        print_report(v1.result.diagnosis, console)
    console.rule("written")
    for r in runs:
        res = r.result
        console.print(f"{r.label}: {res.output_dir}  (report.md, report.html, plots/, best model)")
    console.print(f"reload the guarded best model: AutoModelForCausalLM.from_pretrained({str(runs[-1].result.output_dir)!r})")


__all__ = ["COMMON", "LABELS", "V1", "V2", "DemoRun", "build_base", "dataset_path", "run_demo", "show", "summary_table"]
