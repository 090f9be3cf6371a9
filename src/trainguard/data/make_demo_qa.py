"""Writes demo_qa.md: the bundled Q&A set ``trainguard demo`` trains on (deterministic; re-run to regenerate).

Facts about training LLMs, each asked several ways, so that the answer
format is learnable (eval loss falls) while the exact wording of each
training pair can still be memorised (eval loss turns back up):
the shape of seed 003's run, in a minute on a CPU. Every sixth fact is held
out whole into ``demo_qa_eval.md``: an eval on facts the model never saw
stops improving early and then rises as the model memorises, which is the
turn the guard exists to catch.

    python src/trainguard/data/make_demo_qa.py > src/trainguard/data/demo_qa.md
    python src/trainguard/data/make_demo_qa.py --eval > src/trainguard/data/demo_qa_eval.md
"""

from __future__ import annotations

import random

FACTS: list[tuple[str, str]] = [
    ("the learning rate", "the size of each optimizer step; too high diverges, too low plateaus"),
    ("warmup", "a ramp of the learning rate from zero over the first steps, so early updates stay small"),
    ("a cosine schedule", "a learning rate that decays along half a cosine from its peak to near zero"),
    ("a constant schedule", "a learning rate that never decays, which often overfits late in training"),
    ("weight decay", "a penalty that pulls weights toward zero; 0.1 is a common choice for fine-tuning"),
    ("dropout", "randomly zeroing activations during training so the model cannot rely on one path"),
    ("LoRA", "a low-rank adapter trained beside frozen weights, so fine-tuning needs little memory"),
    ("the LoRA rank", "the inner size of the adapter matrices; 16 is a sound default"),
    ("LoRA alpha", "the scale of the adapter update, usually twice the rank"),
    ("LoRA dropout", "dropout on the adapter input; 0.05 to 0.1 keeps adapters from memorising"),
    ("QLoRA", "LoRA on a base model quantised to 4 bits, which fits large models on one GPU"),
    ("gradient accumulation", "summing gradients over several micro-batches before one optimizer step"),
    ("the effective batch", "the per-device batch times accumulation times the number of GPUs"),
    ("gradient clipping", "scaling gradients down when their norm exceeds a limit such as 1.0"),
    ("the gradient norm", "the size of the gradient; a collapse by a thousand times means learning stopped"),
    ("overfitting", "train loss falling while eval loss rises, because the model learns the train set only"),
    ("memorisation", "train loss near zero while eval loss climbs, the model reciting its data"),
    ("data leakage", "eval examples that also sit in the train set, which makes eval loss look too good"),
    ("a duplicate", "the same example twice; duplicates across the split leak answers into eval"),
    ("the eval loss", "the loss on held-out data, the number that decides the best checkpoint"),
    ("the train loss", "the loss on the batches being learned, which always looks better than eval"),
    ("early stopping", "ending training when eval loss stops improving for a few evaluations"),
    ("patience", "how many evaluations without improvement early stopping waits before it stops"),
    ("the best checkpoint", "the saved weights at the lowest eval loss, the ones worth keeping"),
    ("save steps", "how often checkpoints are written; they should equal eval steps"),
    ("eval steps", "how often the model is evaluated; often enough to see the turn"),
    ("load best model at end", "reloading the best checkpoint when training ends instead of the last one"),
    ("an epoch", "one full pass over the training data"),
    ("too many epochs", "extra passes that let the model memorise; seed 003 peaked at 15 of 100"),
    ("a plateau", "a loss that stops improving for a long stretch, often from a learning rate too low"),
    ("divergence", "a loss that climbs above its start or turns into NaN, often from a learning rate too high"),
    ("a loss spike", "a sudden jump of the loss for a few steps, from a bad batch or a high learning rate"),
    ("packing", "joining short examples into full blocks so no compute is spent on padding"),
    ("padding", "filler tokens that make sequences the same length and carry no signal"),
    ("the block size", "the number of tokens in one training sequence"),
    ("a tokenizer", "the mapping from text to token ids that the model reads"),
    ("a chat template", "the format that turns a list of messages into one prompt string"),
    ("completion-only loss", "computing the loss on the answer tokens only, not on the question"),
    ("bf16", "a 16-bit float with the range of fp32, the usual precision on modern GPUs"),
    ("fp16", "a 16-bit float with a small range that needs loss scaling"),
    ("gradient checkpointing", "recomputing activations in the backward pass to save memory"),
    ("an out-of-memory error", "the GPU running out of memory; halve the batch and double accumulation"),
    ("DeepSpeed", "an engine for training across GPUs whose config can override the scheduler"),
    ("a DeepSpeed scheduler block", "a scheduler in ds_config.json that silently replaces the configured one"),
    ("the wasted compute", "the GPU hours spent after the best checkpoint, which buy nothing"),
    ("the guard", "trainguard's callback that saves the best model and stops a run that overfits"),
    ("a held-out split", "data kept out of training to measure how well the model generalises"),
    ("perplexity", "the exponential of the loss; an exploding perplexity means the model is lost"),
    ("a seed", "the number that fixes random choices so a run can be repeated"),
    ("resuming", "continuing a run from its last complete checkpoint with the same step count"),
]

ASK = [
    "What is {t}?",
    "Explain {t}.",
    "In one sentence, what does {t} mean?",
    "Why should I care about {t}?",
    "Define {t} for a fine-tuning run.",
    "Can you describe {t}?",
]
SAY = [
    "{T} is {d}.",
    "{T} means {d}.",
    "In short, {t} is {d}.",
    "{T}: {d}.",
    "Simply put, {t} is {d}.",
    "{T} refers to {d}.",
]


HELD_OUT_EVERY = 6  # every 6th fact is asked only in demo_qa_eval.md: eval on facts never seen


def pairs(seed: int = 0, *, held_out: bool = False) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for n, (t, d) in enumerate(FACTS):
        if (n % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) != held_out:
            continue
        T = t[0].upper() + t[1:]
        for i, q in enumerate(ASK):
            a = SAY[(i + rng.randrange(len(SAY))) % len(SAY)]
            out.append((q.format(t=t), a.format(t=t, T=T, d=d)))
    rng.shuffle(out)
    return out


def markdown(seed: int = 0, *, held_out: bool = False) -> str:
    title = "held-out facts (eval)" if held_out else "training facts"
    lines = [f"# trainguard demo Q&A: {title}", "", "Bundled with trainguard; generated by make_demo_qa.py.", ""]
    for q, a in pairs(seed, held_out=held_out):
        lines += [f"## Q: {q}", f"A: {a}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown(held_out="--eval" in sys.argv), end="")
