"""Returns batches of packed blocks, one block a row, with position ids that keep documents apart.

TRL packs with best-fit decreasing and then goes *padding-free*: the whole
batch is flattened into one row, documents told apart by position ids that
restart at 0. That is right for FlashAttention's varlen kernels, which only
attend within each document. With SDPA or eager attention (the CPU, and GPUs
without flash-attn) the flattened row costs a dense ``(batch x block)^2``
attention: on the bundled Q&A, 8 blocks of 128 ran *slower* per real token
than plain padding (bench/packing.py: 0.82x).

This collator keeps TRL's packed blocks but gives each its own row:
attention costs ``batch x block^2`` again, and documents stay apart the same
way, through position ids with no attention mask, from which transformers 5
builds a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``).
Checked on the CPU: a packed document's logits equal its logits alone. The
detection only runs without a KV cache (``use_cache=False``), which TRL's
``compute_loss`` sets on every training and eval forward; a forward *with* a
cache would let packed documents see each other.

What happens where it cannot: a model whose attention ignores position-id
packing (remote code, or a custom attention that builds its own mask from
``attention_mask``) would see one causal mask over the whole block, so a
document would attend to the ones packed before it. ``trainguard train``
checks this once on the real model before training (``keeps_documents_apart``)
and falls back to padding, with a note, when it fails.
"""

from __future__ import annotations

from typing import Any

FLASH = ("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn", "kernels-community/vllm-flash-attn3")


class BlockCollator:
    """Collate TRL-packed examples (``input_ids``, ``labels``, ``seq_lengths``) into padded rows."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        pos = torch.zeros((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = torch.as_tensor(e["input_ids"])
            lab = torch.as_tensor(e.get("labels", e["input_ids"]))
            lengths = list(e.get("seq_lengths") or [n])
            at = 0
            for length in lengths:
                pos[i, at:at + length] = torch.arange(length)
                lab_doc = lab[at:at + length].clone()
                lab_doc[0] = -100  # no document is predicted from the previous one's last token
                labels[i, at:at + length] = lab_doc
                at += length
            if at < width:  # the tail pad is its own "document" (positions restart), never a target
                pos[i, at:] = torch.arange(width - at)
        return {"input_ids": ids, "labels": labels, "position_ids": pos}


def keeps_documents_apart(model: Any, pad_token_id: int) -> bool:
    """True when, on ``model``, a document packed after another has the same logits as alone."""
    import torch

    a = [(pad_token_id + 1 + i) % model.config.vocab_size for i in range(6)]
    b = [(pad_token_id + 7 + 3 * i) % model.config.vocab_size for i in range(5)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(torch.tensor([b], device=device)).logits[0].float()
            pos = torch.tensor([list(range(6)) + list(range(5))], device=device)
            packed = model(torch.tensor([a + b], device=device), position_ids=pos, use_cache=False).logits[0, 6:].float()
        return bool(torch.allclose(alone, packed, atol=1e-3, rtol=1e-3))
    except Exception:
        return False
    finally:
        model.train(was_training)


def uses_flash(model: Any) -> bool:
    return str(getattr(model.config, "_attn_implementation", "")) in FLASH


__all__ = ["FLASH", "BlockCollator", "keeps_documents_apart", "uses_flash"]
