"""Packing keeps documents apart: one packed block a row, position ids restarting, checked on the model's logits."""

from __future__ import annotations

import torch

from trainguard.train.packing import BlockCollator, keeps_documents_apart


def test_tiny_gpt2_keeps_packed_documents_apart(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert keeps_documents_apart(model, pad_token_id=0)


def test_collator_rows_positions_and_labels():
    c = BlockCollator(pad_token_id=0)
    batch = c([
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
        {"input_ids": [4, 4, 4], "labels": [4, 4, 4], "seq_lengths": [3]},
    ])
    assert "attention_mask" not in batch  # transformers then builds the block-diagonal mask from position ids
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, 4, 4, -100, -100]]
    assert batch["input_ids"][1].tolist() == [4, 4, 4, 0, 0]


def test_batch_logits_match_documents_alone(tiny_model):
    """The real forward pass on a collated batch: each document scores exactly as it does alone."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    docs = [[11, 12, 13, 14], [21, 22, 23], [31, 32, 33, 34, 35]]
    batch = BlockCollator(0)([{"input_ids": docs[0] + docs[1], "seq_lengths": [4, 3]},
                              {"input_ids": docs[2], "seq_lengths": [5]}])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone = [model(torch.tensor([d])).logits[0] for d in docs]
    assert torch.allclose(logits[0, 4:7], alone[1], atol=1e-5)
    assert torch.allclose(logits[1, :5], alone[2], atol=1e-5)
