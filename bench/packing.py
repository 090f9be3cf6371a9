"""Packing vs padding on the same Q&A data, model and step count: effective (non-pad) tokens per second.

Run: ``.venv/bin/python bench/packing.py [--steps N]``. Prints a table.

All three rows go through TRL's SFTTrainer exactly as ``trainguard train``
builds it (``runner.sft_config``), on the bundled demo Q&A and the same
freshly initialised tiny GPT-2, one torch thread:

- ``packing (rows)``: what ``trainguard train`` does off flash-attn: TRL's
  best-fit-decreasing blocks, one block a row (``train/packing.py``);
- ``packing (flat)``: TRL's own padding-free batch, flattened into one row
  (made for flash-attn varlen kernels: dense attention over the row elsewhere);
- ``padding (longest)``: one example per row, padded to the batch's longest;
- ``padding (block)``: padded to ``block_size``, what a fixed-length pipeline does.

Effective tokens are the real tokens of the batches the steps consumed
(counted from the same dataloader, pads excluded), divided by the train
runtime. The first row also checks, on the CPU, that a packed document's
logits equal its logits alone (attention never crosses documents).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def separation_check(model, tok) -> bool:
    """Logits of document B packed after A (position ids restarting) == logits of B alone."""
    import torch

    a = tok("Question: what is warmup?\nAnswer: a ramp.")["input_ids"]
    b = tok("Question: what is LoRA?\nAnswer: an adapter.")["input_ids"]
    model.eval()
    with torch.no_grad():
        alone = model(torch.tensor([b])).logits[0]
        pos = torch.tensor([list(range(len(a))) + list(range(len(b)))])
        packed = model(torch.tensor([a + b]), position_ids=pos, use_cache=False).logits[0, len(a):]
    model.train()
    return bool(torch.allclose(alone, packed, atol=1e-5))


def _lengths(batch) -> list[list[int]]:
    """Real tokens per row of a packed batch: the documents' extents read back from position ids."""
    out = []
    for row, ids in zip(batch["position_ids"], batch["labels"], strict=True):
        starts = [*(row == 0).nonzero().flatten().tolist(), len(row)]
        docs = [b - a for a, b in itertools.pairwise(starts)]
        if docs and bool((ids[starts[-2]:] == -100).all()):  # the tail pad "document"
            docs = docs[:-1]
        out.append(docs)
    return out


def run(mode: str, steps: int, base: Path, data: Path, out: Path) -> dict[str, float]:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    from trainguard.train.config import TrainConfig
    from trainguard.train.data import load_splits, render
    from trainguard.train.runner import sft_config

    datasets.disable_progress_bars()
    cfg = TrainConfig(model=str(base), data=str(data), output_dir=str(out), method="full", max_steps=steps,
                      block_size=128, per_device_train_batch_size=8, gradient_accumulation_steps=1,
                      packing=mode.startswith("packing"), eval_steps=10_000, use_cpu=True, progress=False, seed=0,
                      load_best_model_at_end=False)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    kind, train, _evals, _ = load_splits(str(data), None, eval_fraction=0.1, seed=0)
    args = sft_config(cfg, "fp32")
    args.save_strategy = "no"
    args.eval_strategy = "no"
    if mode == "padding (block)":
        args.pad_to_multiple_of = cfg.block_size
    tr = SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(render(kind, train, tok)),
                    processing_class=tok)
    tr.remove_callback(PrinterCallback)
    if mode == "packing (rows)":
        from trainguard.train.packing import BlockCollator

        tr.data_collator = BlockCollator(tok.pad_token_id)
    real = slots = 0
    dl = tr.get_train_dataloader()
    seen = 0
    while seen < steps:  # the batches the steps will consume (epochs repeat the same data)
        for batch in dl:
            ids = batch["input_ids"]
            slots += ids.numel()
            if "attention_mask" in batch:
                real += int(batch["attention_mask"].sum())
            else:  # packed: pads are the unlabelled tail past the last document
                real += sum(sum(e) for e in _lengths(batch))
            seen += 1
            if seen == steps:
                break
    ok = separation_check(tr.model, tok) if mode == "packing (rows)" else None
    t0 = time.perf_counter()
    tr.train()
    secs = time.perf_counter() - t0
    return {"real": real, "slots": slots, "secs": secs, "tps": real / secs, "sep": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from trainguard.train.demo import build_base, dataset_path

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-packing-"))
    try:
        base = build_base(tmp, dataset_path())
        rows = {m: run(m, a.steps, base, dataset_path(), tmp / m.split()[0])
                for m in ("packing (rows)", "packing (flat)", "padding (longest)", "padding (block)")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = rows["padding (longest)"]["tps"]
    print(f"packing vs padding, tiny GPT-2 (2 layers, 64 wide), bundled Q&A, {a.steps} steps x batch 8, "
          "block 128, 1 CPU thread")
    print(f"{'mode':<20}{'real tokens':>12}{'pad share':>11}{'seconds':>10}{'real tok/s':>12}{'vs padding':>12}")
    for m, r in rows.items():
        pad = 1 - r["real"] / r["slots"]
        print(f"{m:<20}{r['real']:>12,}{pad:>10.1%}{r['secs']:>10.2f}{r['tps']:>12,.0f}{r['tps'] / ref:>11.2f}x")
    sep = rows["packing (rows)"]["sep"]
    print(f"packed documents kept apart (logits of a packed doc == alone): {'yes' if sep else 'NO'}")


if __name__ == "__main__":
    main()
