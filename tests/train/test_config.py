"""The train config: defaults carry the seeds' lessons; bad configs fail in one line naming the key, before loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import subprocess_env
from trainguard.errors import ConfigError
from trainguard.train.config import TrainConfig, check_inputs, load_config


def _yaml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(body)
    return p


def test_defaults_carry_the_seed_lessons():
    c = TrainConfig(model="m", data="d.md")
    assert c.lr_scheduler_type == "cosine" and c.warmup_ratio > 0
    assert 0.05 <= c.lora_dropout <= 0.1 and c.lora_r == 16 and c.lora_alpha == 32
    assert c.weight_decay >= 0.05 and c.max_grad_norm == 1.0
    assert c.guard and c.early_stopping_patience == 3 and c.load_best_model_at_end
    assert c.save_total_limit >= 2 and c.epoch_cap <= 20


def test_sources_priority_file_env_set(tmp_path):
    p = _yaml(tmp_path, "model: m\ndata: d.md\nlearning_rate: 1e-4\nlora_r: 8\n")
    env = {"TRAINGUARD_LORA_R": "32", "TRAINGUARD_DEBUG": "1", "TRAINGUARD_LEARNING_RATE": "3e-4"}
    c = load_config(p, env=env, overrides=["learning_rate=2e-5", "lora_target_modules=[c_attn, c_proj]"])
    assert c.lora_r == 32  # env over file
    assert c.learning_rate == pytest.approx(2e-5)  # --set over env; "2e-5" (a YAML string) still a float
    assert c.lora_target_modules == ["c_attn", "c_proj"]


@pytest.mark.parametrize(("body", "sets", "key"), [
    ("model: m\ndata: d.md\nlearning_rat: 1e-4\n", [], "learning_rat"),
    ("model: m\ndata: d.md\nlora_r: sixteen\n", [], "lora_r"),
    ("model: m\ndata: d.md\n", ["per_device_train_batch_size=big"], "per_device_train_batch_size"),
    ("data: d.md\n", [], "model"),
    ("model: m\ndata: d.md\nnum_train_epochs: 100\n", [], None),
])
def test_bad_values_name_the_key(tmp_path, body, sets, key):
    with pytest.raises(ConfigError) as e:
        load_config(_yaml(tmp_path, body), overrides=sets, env={})
    assert e.value.key == key
    if key:
        assert key in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("body", "key", "words"), [
    ("learning_rate: .inf\n", "learning_rate", "finite number"),
    ("learning_rate: .nan\n", "learning_rate", "finite number"),
    ("weight_decay: -.inf\n", "weight_decay", "finite number"),
    ("max_steps: 1.0e+30\n", "max_steps", "(got 1e+30)"),
    ("max_steps: 20000000000\n", "max_steps", "less than or equal to 1000000000"),
    ("eval_steps: " + "9" * 5000 + "\n", None, "line 3: a number out of range"),
])
def test_out_of_range_values_are_refused_by_the_schema(tmp_path, body, key, words):
    with pytest.raises(ConfigError) as e:
        load_config(_yaml(tmp_path, "model: m\ndata: d.md\n" + body), env={})
    assert e.value.key == key and words in str(e.value) and "\n" not in str(e.value)


def test_typos_name_the_nearest_key_and_blame_where_they_came_from(tmp_path):
    p = _yaml(tmp_path, "model: m\ndata: d.md\nlerning_rate: 1e-4\n")
    with pytest.raises(ConfigError, match=r"unknown key 'lerning_rate'; did you mean `learning_rate`\?"):
        load_config(p, env={})
    ok = _yaml(tmp_path, "model: m\ndata: d.md\n")
    with pytest.raises(ConfigError, match=r"^--set lora_rank: unknown key; did you mean `lora_r`\?$"):
        load_config(ok, overrides=["lora_rank=8"], env={})
    with pytest.raises(ConfigError, match=r"^--set learning_rate: learning_rate: Input should be a finite number"):
        load_config(ok, overrides=["learning_rate=inf"], env={})
    with pytest.raises(ConfigError, match="TRAINGUARD_LORA_RANK is not a config key; did you mean TRAINGUARD_LORA_R"):
        load_config(ok, env={"TRAINGUARD_LORA_RANK": "8"})
    # the prefix is shared with the CLI's own switches and with names nowhere near a key: those pass
    assert load_config(ok, env={"TRAINGUARD_DEBUG": "1", "TRAINGUARD_NOTIFY": "json://x", "TRAINGUARD_ZZZ": "1"}).lora_r == 16


def test_missing_data_and_block_size_caught_before_loading(tmp_path, tiny_model, qa_file):
    with pytest.raises(ConfigError, match="data: file not found") as e:
        check_inputs(TrainConfig(model=str(tiny_model), data=str(tmp_path / "nope.md")))
    assert e.value.key == "data"
    with pytest.raises(ConfigError, match=r"block_size: 4096 is over the model's max positions \(128\)") as e:
        check_inputs(TrainConfig(model=str(tiny_model), data=str(qa_file), block_size=4096))
    assert e.value.key == "block_size"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_qlora_without_cuda_is_one_clear_line(tiny_model, qa_file):
    with pytest.raises(ConfigError, match=r"qlora .*needs a CUDA GPU"):
        check_inputs(TrainConfig(model=str(tiny_model), data=str(qa_file), method="qlora"))


def test_cli_bad_config_one_line_exit_2_no_model_load(tmp_path, qa_file, tiny_model):
    """Through the real CLI: exit 2, one stderr line naming the key, and no weights were read."""
    cases = {
        "unknown": (f"model: {tiny_model}\ndata: {qa_file}\nlearning_rat: 1e-4\n", "learning_rat"),
        "type": (f"model: {tiny_model}\ndata: {qa_file}\nlora_r: lots\n", "lora_r"),
        "data": (f"model: {tiny_model}\ndata: {tmp_path / 'missing.md'}\n", "data"),
        "block": (f"model: {tiny_model}\ndata: {qa_file}\nblock_size: 100000\n", "block_size"),
    }
    probe = (
        "import sys, runpy; sys.argv = ['trainguard'] + sys.argv[1:]; "
        "from trainguard.cli import main\n"
        "try:\n    main()\nfinally:\n    print('LOADED' if 'peft' in sys.modules or 'trl' in sys.modules else 'CLEAN', file=sys.stderr)"
    )
    for name, (body, key) in cases.items():
        p = tmp_path / f"{name}.yaml"
        p.write_text(body)
        r = subprocess.run([sys.executable, "-c", probe, "train", str(p)], capture_output=True, text=True,
                           env=subprocess_env(), timeout=120)
        assert r.returncode == 2, (name, r.stderr)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and key in errors[0], (name, r.stderr)
        assert r.stderr.strip().splitlines()[-1] == "CLEAN", name  # failed before the model stack loaded
