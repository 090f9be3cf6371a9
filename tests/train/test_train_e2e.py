"""End to end on the CPU: train -> best model saved -> from_pretrained(output_dir) -> generate; LoRA, merge, full; OOM retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainguard.train.config import TrainConfig
from trainguard.train.runner import train

pytestmark = pytest.mark.slow


def _cfg(tiny_model: Path, qa_file: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model=str(tiny_model), data=str(qa_file), output_dir=str(out), max_steps=20, eval_steps=5,
                logging_steps=5, block_size=128, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                learning_rate=3e-3, use_cpu=True, progress=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def _generate(model, tok) -> str:
    import torch

    ids = tok("Question: how does loss relate to rank?\nAnswer:", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5 or tok.eos_token_id in out[0].tolist()
    return tok.decode(out[0][ids["input_ids"].shape[1]:])


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(bool((sa[k] == sb[k]).all()) for k in sa)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_train_save_best_reload_generate(tmp_path, tiny_model, qa_file, method):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / method
    res = train(_cfg(tiny_model, qa_file, out, method=method))
    assert res.global_step >= 5 and res.best_step is not None
    evals = [(e["step"], e["eval_loss"]) for e in res.log_history if "eval_loss" in e]
    assert res.best_metric == pytest.approx(min(v for _, v in evals))
    saved = (out / "adapter_config.json") if method == "lora" else (out / "model.safetensors")
    assert saved.is_file()
    cfg_text = (out / "trainguard_config.yaml").read_text()
    assert f"method: {method}" in cfg_text and json.loads((out / "data_report.json").read_text())["eval"] > 0
    assert (out / "report.md").is_file() and (out / "report.html").is_file()

    # The saved model is the best checkpoint's, not the last step's, and from_pretrained takes the folder.
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    best = AutoModelForCausalLM.from_pretrained(out / f"checkpoint-{res.best_step}")
    assert _same_weights(model, best)
    assert isinstance(_generate(model, tok), str)
    if method == "lora":
        from peft import PeftConfig

        pc = PeftConfig.from_pretrained(out)
        assert pc.fan_in_fan_out and pc.r == 16 and pc.lora_dropout == 0.1  # GPT-2's Conv1D, seed defaults


def test_lora_merge_saves_a_plain_model(tmp_path, tiny_model, qa_file):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    train(_cfg(tiny_model, qa_file, out, method="lora", merge=True, max_steps=10, generate_report=False))
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    _generate(AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out))


def test_cuda_oom_halves_batch_keeps_effective_batch_and_says_so(tmp_path, tiny_model, qa_file, monkeypatch):
    import torch
    from trl import SFTTrainer

    real = SFTTrainer.train
    calls: list[int] = []

    def flaky(self, *a, **kw):
        calls.append(self.args.per_device_train_batch_size)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *a, **kw)

    monkeypatch.setattr(SFTTrainer, "train", flaky)
    out = tmp_path / "oom"
    res = train(_cfg(tiny_model, qa_file, out, method="lora", max_steps=10, per_device_train_batch_size=4,
                     gradient_accumulation_steps=1))
    assert calls == [4, 2]
    assert any("out of memory" in n and "same effective batch" in n for n in res.notes)
    saved = (out / "trainguard_config.yaml").read_text()
    assert "per_device_train_batch_size: 2" in saved and "gradient_accumulation_steps: 2" in saved
    assert "# note: CUDA out of memory" in saved
    assert json.loads((out / "trainguard_run.json").read_text())["effective_batch"] == 4
    assert "out of memory" in (out / "report.md").read_text()  # the diagnosis notes it


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_gpu_bf16_and_4bit(tmp_path, tiny_model, qa_file, method):
    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    res = train(_cfg(tiny_model, qa_file, tmp_path / method, method=method, use_cpu=False, precision="auto"))
    assert res.global_step > 0 and (tmp_path / method / "adapter_config.json").is_file()
