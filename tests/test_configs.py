"""Configs: every flavour mapped to canonical keys with sources, priority, conflicts, malformed files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trainguard.configs import attach, flags_to_config, load_config_file, parse_positional
from trainguard.errors import ConfigError
from trainguard.run import Run

DATA = Path(__file__).resolve().parent / "data" / "configs"


def test_training_args_json_with_deepspeed_path() -> None:
    cfg = load_config_file(DATA / "training_args.json")
    assert cfg.get("framework") == "hf"
    assert cfg.get("eval_strategy") == "steps"  # old evaluation_strategy name
    assert cfg.source("learning_rate") == "training_args.json" and cfg.get("learning_rate") == 0.0002
    assert cfg.get("some_future_key") == 7  # unknown keys kept under their own name
    # the deepspeed path is loaded relative to the config: its scheduler overrides lr_scheduler_type
    assert cfg.get("deepspeed_scheduler") == "WarmupDecayLR" and cfg.source("deepspeed_scheduler") == "ds_config.json"
    assert cfg.get("lr_scheduler_type") == "constant"
    assert cfg.get("max_grad_norm") == 1.0
    assert "per_device_train_batch_size" in cfg and cfg.get("per_device_train_batch_size") == 2  # "auto" never wins


def test_deepspeed_and_adapter_and_model_config() -> None:
    ds = load_config_file(DATA / "ds_config.json")
    assert ds.get("framework") == "deepspeed" and ds.get("zero_stage") == 2
    assert ds.get("deepspeed")["scheduler"]["type"] == "WarmupDecayLR"
    assert "learning_rate" not in ds  # "auto" defers to TrainingArguments
    ad = load_config_file(DATA / "adapter_config.json")
    assert (ad.get("lora_r"), ad.get("lora_alpha"), ad.get("lora_dropout")) == (8, 8, 0.0)
    assert ad.get("lora_target_modules") == ["q_proj", "v_proj"]
    assert ad.get("model_name") == "marcelbinz/Llama-3.1-Centaur-70B-adapter"
    m = load_config_file(DATA / "model_config.json")
    assert m.get("dropout") == 0.1 and m.get("model_type") == "gpt2" and m.get("model_attn_pdrop") == 0.0


def test_axolotl_yaml() -> None:
    cfg = load_config_file(DATA / "axolotl.yaml")
    assert cfg.get("framework") == "axolotl"
    assert cfg.get("learning_rate") == 2e-4  # YAML 1.1 reads "2e-4" as a string: converted
    assert (cfg.get("lora_r"), cfg.get("max_seq_length"), cfg.get("per_device_train_batch_size")) == (16, 4096, 2)
    assert cfg.get("num_train_epochs") == 3 and cfg.get("lr_scheduler_type") == "cosine"
    assert cfg.get("load_in_4bit") is True and cfg.get("early_stopping_patience") == 3
    assert cfg.get("evals_per_epoch") == 4 and cfg.get("val_size") == 0.05
    assert cfg.get("deepspeed_scheduler") == "WarmupDecayLR"


def test_llamafactory_yaml() -> None:
    cfg = load_config_file(DATA / "llamafactory.yaml")
    assert cfg.get("framework") == "llamafactory" and cfg.get("finetuning_type") == "lora"
    assert cfg.get("lora_r") == 8 and cfg.get("max_seq_length") == 2048
    assert cfg.get("lora_target_modules") == ["q_proj", "v_proj"]
    assert cfg.get("load_in_4bit") is True and cfg.get("model_name") == "Qwen/Qwen2.5-0.5B"


def test_malformed_files_name_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"malformed\.json: malformed JSON at line 3"):
        load_config_file(DATA / "malformed.json")
    with pytest.raises(ConfigError, match=r"malformed\.yaml: malformed YAML at line \d"):
        load_config_file(DATA / "malformed.yaml")
    with pytest.raises(ConfigError, match="pickle"):
        load_config_file(DATA / "training_args.bin")


def test_attach_priority_conflicts_and_gpus(tmp_path: Path) -> None:
    for name in ("training_args.json", "ds_config.json", "adapter_config.json"):
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / "explicit.json").write_text('{"output_dir": "x", "learning_rate": 0.001, "bf16": true, "fp16": true}')
    log = tmp_path / "train.log"
    log.write_text("")
    run = Run(name="r", format="hf_stdout")
    run.config.set("world_size", 8, "log")
    run.config.set("learning_rate", 0.5, "log (launch command)")
    attach(run, log, extra=[tmp_path / "explicit.json"])
    assert run.config.get("learning_rate") == 0.001 and run.config.source("learning_rate") == "explicit.json"
    assert run.config.get("lora_r") == 8  # beside the log
    assert run.num_gpus == 8
    keys = [k for k, _a, _b in run.config.conflicts]
    assert "bf16/fp16" in keys and "learning_rate" in keys
    assert any("config conflict: bf16/fp16" in n for n in run.notes)


def test_max_steps_against_run(tmp_path: Path) -> None:
    (tmp_path / "training_args.json").write_text('{"output_dir": "x", "max_steps": 1000}')
    run = Run(name="r", format="hf_trainer_state", planned_steps=630)
    attach(run, tmp_path)
    assert ("max_steps" in [k for k, _a, _b in run.config.conflicts])


def test_positional_and_flags() -> None:
    want = {"learning_rate": 0.0002, "max_seq_length": 8870, "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2, "gradient_accumulation_steps": 10, "weight_decay": 0.01, "num_train_epochs": 100}
    pat = "lr_seqlen_bs_evalbs_accum_wd_epochs"
    assert parse_positional(["0.0002", "8870", "2", "2", "10", "0.01", "100"], pat) == want
    assert parse_positional("loss_plot_0.0002_8870_2_2_10_0.01_100.jpg", pat) == want
    with pytest.raises(ConfigError):
        parse_positional(["1"], pat)
    assert flags_to_config(["--learning_rate", "2e-4", "--num_train_epochs=3", "--bf16", "--local_rank=0"]) == {
        "learning_rate": 2e-4, "num_train_epochs": 3, "bf16": True}


def test_wandb_run_folder_config_yaml_is_a_config_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``wandb/run-*/files/``: output.log is the log, config.yaml (``key: {desc, value}``) its settings."""
    import shutil
    from pathlib import Path

    from trainguard.readers import read_run

    files = tmp_path / "wandb" / "run-20240101_000000-abc123" / "files"
    files.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "wandb_output" / "output.log", files / "output.log")
    (files / "config.yaml").write_text(
        "wandb_version: 1\n\n_wandb:\n  desc: null\n  value:\n    python_version: 3.10.12\n"
        "lr:\n  desc: null\n  value: 0.1\nepochs:\n  desc: null\n  value: 4\nweight_decay:\n  desc: null\n  value: 0.0005\n")
    (files / "wandb-summary.json").write_text('{"val_loss": 1.0811, "_step": 4}')
    run = read_run(files / "output.log")
    assert len(run.eval_loss) == 4
    assert run.config.get("learning_rate") == 0.1 and run.config.source("learning_rate") == "config.yaml"
    assert run.config.get("weight_decay") == 0.0005 and "_wandb" not in run.config
