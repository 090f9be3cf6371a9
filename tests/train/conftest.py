"""Fixtures for the train tests: a tiny GPT-2 saved to a folder (loaded by path, the real from_pretrained route)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

QA_MD = """# Tiny Q&A

## Q: What is warmup?
A: A ramp of the learning rate from zero over the first steps.

**Q:** What is weight decay?
**A:** A penalty that pulls weights toward zero.

Q: What is LoRA?
A: A low-rank adapter trained beside frozen weights.
It needs little memory.

---
"""


def qa_lines(n: int) -> str:
    """``n`` distinct Markdown Q&A pairs (varied words so a tokenizer has something to learn)."""
    words = ["loss", "eval", "rank", "alpha", "dropout", "decay", "warmup", "cosine", "batch", "token", "epoch", "step"]
    out = []
    for i in range(n):
        a, b = words[i % len(words)], words[(i * 7 + 3) % len(words)]
        out.append(f"## Q: Question {i}: how does {a} relate to {b}?\nA: Answer {i}: {a} moves {b} by {i % 5} units.\n")
    return "\n".join(out)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: the CPU is shared; OpenMP spin-waiting under contention made steps 15x slower."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def qa_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("data") / "qa.md"
    p.write_text(qa_lines(96))
    return p


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, qa_file: Path) -> Path:
    from trainguard.train.data import example_text, read_examples
    from trainguard.train.tiny import save_tiny

    _, ex = read_examples(qa_file)
    return save_tiny(tmp_path_factory.mktemp("model") / "tiny-gpt2", [example_text(e) for e in ex] * 2)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false")
    env.pop("TRAINGUARD_DEBUG", None)
    return env
