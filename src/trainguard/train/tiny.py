"""Tiny causal LMs built from a config, with a tokenizer trained locally.

Used by ``trainguard demo`` and by the tests: nothing is downloaded from a hub,
yet the models and tokenizers are real HF objects that ``save_pretrained`` /
``from_pretrained`` round-trip, so the user's ``from_pretrained(name)`` path is
exercised for real against a local folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL = {"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"}


def make_tokenizer(texts: Iterable[str], *, vocab_size: int = 512) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (a second or so on the CPU)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def make_model(tokenizer: Any, *, n_layer: int = 2, n_head: int = 2, n_embd: int = 64, n_positions: int = 128, dropout: float = 0.0, seed: int = 0) -> Any:
    """A freshly initialised GPT-2 sized for the CPU (about 134k parameters at the defaults)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_positions=n_positions,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(cfg)


def save_tiny(path: str | Path, texts: Iterable[str], **model_kwargs: Any) -> Path:
    """Build a tokenizer and model and save both to ``path``, ready for ``from_pretrained(path)``."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(texts)
    model = make_model(tok, **model_kwargs)
    tok.save_pretrained(p)
    model.save_pretrained(p)
    return p
