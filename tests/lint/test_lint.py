"""``trainguard lint`` on seed 003's configuration, its recommended fix, every input flavour and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.seedlogs import write_seed003
from trainguard.cli import app
from trainguard.lint import lint_config, lint_files


def _cli(*args: str):
    return CliRunner().invoke(app, ["lint", *args], terminal_width=200)


@pytest.fixture()
def seed003(tmp_path: Path) -> list[Path]:
    """training_args.json (constant, 100 epochs, eval 10 / save 100), ds_config.json (WarmupDecayLR), adapter_config.json (dropout 0)."""
    folder = write_seed003(tmp_path / "s003", with_checkpoints=False)
    return [folder / "training_args.json", folder / "ds_config.json", folder / "adapter_config.json"]


def _fixed(tmp_path: Path) -> list[Path]:
    """Seed 003's "Recommendations for Future Runs", all of them, as the three files."""
    args = {
        "output_dir": "./output", "learning_rate": 1e-4, "lr_scheduler_type": "cosine", "warmup_steps": 10,
        "num_train_epochs": 20, "per_device_train_batch_size": 2, "per_device_eval_batch_size": 2,
        "gradient_accumulation_steps": 10, "weight_decay": 0.05, "eval_strategy": "steps", "eval_steps": 10,
        "save_strategy": "steps", "save_steps": 10, "save_total_limit": 2, "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss", "greater_is_better": False, "early_stopping_patience": 3,
        "optim": "adamw_8bit", "bf16": True, "max_grad_norm": 1.0, "deepspeed": "ds_config.json",
    }
    ds = {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "bf16": {"enabled": "auto"},
          "zero_optimization": {"stage": 2}, "gradient_clipping": "auto"}
    adapter = {"peft_type": "LORA", "base_model_name_or_path": "marcelbinz/Llama-3.1-Centaur-70B-adapter", "r": 8,
               "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    paths = []
    for name, doc in (("training_args.json", args), ("ds_config.json", ds), ("adapter_config.json", adapter)):
        (tmp_path / name).write_text(json.dumps(doc, indent=2))
        paths.append(tmp_path / name)
    return paths


def test_seed003_configuration_is_flagged(seed003: list[Path]) -> None:
    results = lint_files(seed003)
    by = {r.rule: r for r in results}
    # The DeepSpeed scheduler overriding "constant", 100 epochs without early stopping, dropout 0,
    # saves every 100 against evals every 10, and 2e-4 for a 70B LoRA.
    assert {"TG101", "TG303", "TG401", "TG202", "TG501"} <= set(by), [r.rule for r in results]
    assert by["TG101"].file.endswith("ds_config.json") and by["TG101"].line is not None
    assert "WarmupDecayLR" in by["TG101"].message and "'constant'" in by["TG101"].message
    assert by["TG303"].key == "num_train_epochs" and by["TG303"].severity.value == "error"
    assert by["TG303"].file.endswith("training_args.json") and by["TG303"].line == 6
    assert by["TG202"].key == "save_steps" and "every 10 steps but checkpoints every 100" in by["TG202"].message
    assert by["TG401"].file.endswith("adapter_config.json")
    assert "70B" in by["TG501"].message and by["TG501"].fix == "learning_rate=0.0001"
    # DeepSpeed warms up for 10 steps itself: "no warmup" would be a false alarm.
    assert "TG502" not in by


def test_seed003_cli_exit_codes_and_json(seed003: list[Path]) -> None:
    res = _cli(*map(str, seed003))
    assert res.exit_code == 1
    assert "TG101" in res.stdout and "fix:" in res.stdout
    res = _cli(*map(str, seed003), "--json")
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 1 and doc["counts"]["error"] >= 3
    assert {"rule", "severity", "key", "message", "fix", "file", "line"} <= set(doc["results"][0])
    # --ignore by id or name; --fail-on never turns the gate off.
    res = _cli(*map(str, seed003), "--ignore", "TG101,TG303", "--ignore", "best-checkpoint-not-saved", "--json")
    rules = {r["rule"] for r in json.loads(res.stdout)["results"]}
    assert not rules & {"TG101", "TG303", "TG202"} and "TG401" in rules
    assert res.exit_code == 0  # what is left are warnings, below the default --fail-on error
    assert _cli(*map(str, seed003), "--ignore", "TG101,TG303,TG202", "--fail-on", "warning").exit_code == 1
    assert _cli(*map(str, seed003), "--fail-on", "never").exit_code == 0
    res = _cli(*map(str, seed003), "--ignore", "TG999")
    assert res.exit_code == 2 and "unknown rule" in res.output


def test_seed003_recommended_fix_passes_clean(tmp_path: Path) -> None:
    paths = _fixed(tmp_path)
    assert lint_files(paths) == []
    res = _cli(*map(str, paths), "--fail-on", "info")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.yaml", "learning_rate: 2e-4\nlora:\n  r: [8, 16\n  alpha: 16\n", "line 4"),
        ("bad.json", '{\n  "learning_rate": 2e-4,\n  "num_train_epochs": ,\n}\n', "line 3, column 23"),
        ("list.yaml", "- a\n- b\n", "expected a mapping"),
        ("empty.json", "  \n", "empty file"),
    ],
)
def test_malformed_input_is_one_clear_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    res = _cli(str(p))
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {p}: ") and where in lines[0], res.output
    assert "Traceback" not in res.output


def test_pickle_and_missing_files_are_refused(tmp_path: Path) -> None:
    pkl = tmp_path / "training_args.bin"
    pkl.write_bytes(b"\x80\x04\x95\x00\x00")
    res = _cli(str(pkl))
    assert res.exit_code == 2 and "never loaded" in res.output
    res = _cli(str(tmp_path / "nope.json"))
    assert res.exit_code == 2 and "no such file" in res.output
    assert _cli().exit_code == 2


def test_explain_and_list_rules() -> None:
    res = _cli("--explain", "tg101")
    assert res.exit_code == 0
    assert "deepspeed-scheduler-override" in res.stdout and "lr_scheduler_type" in res.stdout and "A 70B LoRA run" in res.stdout
    assert _cli("--explain", "epochs-without-early-stopping").exit_code == 0
    assert _cli("--explain", "TG999").exit_code == 2
    res = _cli("--list-rules", "--json")
    ids = [r["id"] for r in json.loads(res.stdout)]
    assert len(ids) == len(set(ids)) >= 17


def test_axolotl_yaml(tmp_path: Path) -> None:
    p = tmp_path / "axolotl.yml"
    p.write_text(
        "base_model: meta-llama/Llama-2-7b-hf\nadapter: qlora\nload_in_4bit: true\nsequence_len: 4096\n"
        "micro_batch_size: 2\ngradient_accumulation_steps: 4\nnum_epochs: 30\nlearning_rate: 2e-3\n"
        "lr_scheduler: cosine\nwarmup_steps: 10\nlora_r: 64\nlora_alpha: 8\nval_set_size: 0\n"
        "datasets:\n  - path: data.jsonl\n    type: alpaca\n"
    )
    by = {r.rule: r for r in lint_files([p])}
    assert {"TG301", "TG303", "TG401", "TG402", "TG501"} <= set(by), sorted(by)
    assert "val_set_size" in by["TG301"].message
    assert by["TG401"].message.startswith("lora_dropout=0 (peft's default)")  # never written, still 0
    assert by["TG501"].severity.value == "error"  # 2e-3 is ~7x the 7B LoRA limit; "2e-3" read as a number
    assert by["TG402"].line == 12


def test_llamafactory_yaml(tmp_path: Path) -> None:
    p = tmp_path / "llama3_lora_sft.yaml"
    p.write_text(
        "model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
        "lora_rank: 8\nlora_target: all\ndataset: identity,alpaca_en_demo\ntemplate: llama3\ncutoff_len: 2048\n"
        "per_device_train_batch_size: 1\ngradient_accumulation_steps: 8\nlearning_rate: 1.0e-4\nnum_train_epochs: 3.0\n"
        "lr_scheduler_type: cosine\nwarmup_ratio: 0.1\nbf16: true\neval_strategy: steps\neval_steps: 500\n"
    )
    by = {r.rule: r for r in lint_files([p])}
    assert "TG401" in by and "(LLaMA-Factory's default)" in by["TG401"].message
    assert "TG301" in by and by["TG301"].key == "val_size"  # eval on, but nothing to evaluate on
    assert "TG402" not in by  # lora_alpha defaults to 2 x rank there
    assert "TG303" not in by and "TG501" not in by and "TG502" not in by


def test_trainguard_train_yaml(tmp_path: Path) -> None:
    # Its guarded defaults pass clean ...
    good = tmp_path / "train.yaml"
    good.write_text("model: gpt2\ndata: qa.md\nnum_train_epochs: 3\n")
    assert [r.rule for r in lint_files([good])] == []
    # ... and a nested lora section is read, with a user's overrides flagged.
    bad = tmp_path / "train_bad.yaml"
    bad.write_text("model: gpt2\ndata: qa.md\nlearning_rate: 5e-3\nwarmup_ratio: 0.0\nlora:\n  r: 64\n  alpha: 8\n  dropout: 0\n")
    by = {r.rule: r for r in lint_files([bad])}
    assert {"TG401", "TG402", "TG501", "TG502"} <= set(by), sorted(by)
    assert by["TG402"].line == 7 and "alpha/r = 0.125" in by["TG402"].message


def test_training_args_yaml_rules(tmp_path: Path) -> None:
    p = tmp_path / "args.yaml"
    p.write_text(
        "model_name_or_path: gpt2\nlearning_rate: 5.0e-5\nmax_steps: 1000\neval_strategy: steps\neval_steps: 400\n"
        "save_strategy: steps\nsave_steps: 500\nload_best_model_at_end: true\nmax_grad_norm: 0\nsave_total_limit: 1\n"
    )
    by = {r.rule: r for r in lint_files([p])}
    assert by["TG201"].key == "save_steps" and "multiple of eval_steps" in by["TG201"].message  # HF refuses to start
    assert by["TG302"].key == "eval_steps" and "only ~2 evals" in by["TG302"].message
    assert "TG601" in by and "TG203" not in by  # load_best_model_at_end protects the best from rotation


def test_early_stopping_and_save_limit_rules(tmp_path: Path) -> None:
    p = tmp_path / "args.json"
    p.write_text(json.dumps({"learning_rate": 2e-5, "num_train_epochs": 3, "eval_strategy": "epoch", "save_strategy": "epoch",
                             "early_stopping_patience": 2, "save_total_limit": 2, "weight_decay": 0.01}))
    by = {r.rule: r for r in lint_files([p])}
    assert by["TG204"].key == "metric_for_best_model" and by["TG204"].severity.value == "error"
    assert "TG205" in by and "TG203" in by
    assert by["TG302"].key == "eval_strategy"  # 3 evals, patience 2


def test_deepspeed_mismatch_and_optimizer_override(tmp_path: Path) -> None:
    args = tmp_path / "training_args.json"
    args.write_text(json.dumps({"learning_rate": 1e-5, "per_device_train_batch_size": 4, "optim": "adamw_bnb_8bit",
                                "eval_strategy": "steps", "eval_steps": 50, "save_steps": 50, "num_train_epochs": 2,
                                "warmup_ratio": 0.03, "weight_decay": 0.1}))
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"train_micro_batch_size_per_gpu": 8, "gradient_clipping": 0,
                              "optimizer": {"type": "AdamW", "params": {"lr": "auto"}}, "zero_optimization": {"stage": 3}}))
    by: dict[str, list] = {}
    for r in lint_files([args, ds]):
        by.setdefault(r.rule, []).append(r)
    assert "train_micro_batch_size_per_gpu=8" in by["TG103"][0].message and by["TG103"][0].file.endswith("ds.json")
    assert "adamw_bnb_8bit" in by["TG102"][0].message
    assert any("gradient_clipping=0" in r.message for r in by["TG601"])


def test_oom_note_flags_a_silent_batch_change(tmp_path: Path) -> None:
    p = tmp_path / "args.yaml"
    p.write_text("learning_rate: 1.0e-5\nper_device_train_batch_size: 16  # reduced from 32 due to OOM\n"
                 "gradient_accumulation_steps: 1\neval_strategy: steps\neval_steps: 500\nsave_steps: 500\n")
    [r] = [r for r in lint_files([p]) if r.rule == "TG701"]
    assert r.line == 2 and "32 -> 16" in r.message and "from 32 to 16 examples per step" in r.message


def test_lint_config_on_an_in_memory_config() -> None:
    from trainguard.run import RunConfig

    cfg = RunConfig()
    cfg.update({"learning_rate": 2e-4, "num_train_epochs": 100, "lora_r": 8, "lora_alpha": 8, "lora_dropout": 0.0,
                "eval_strategy": "steps", "eval_steps": 10, "save_steps": 100, "lr_scheduler_type": "constant",
                "deepspeed_scheduler": "WarmupDecayLR"}, "train.yaml")
    rules = {r.rule for r in lint_config(cfg)}
    assert {"TG101", "TG202", "TG303", "TG401"} <= rules


def test_lr_tier_from_a_local_model_folder(tmp_path: Path) -> None:
    """A local path has no size in its name: the size comes from its config.json, so a tiny
    from-scratch model at 6e-3 passes while a GPT-2-small-sized one at 6e-3 is flagged."""
    import json

    from trainguard.lint import lint_files

    def lint_with(model_cfg: dict) -> set[str]:
        mdir = tmp_path / f"m{model_cfg['n_embd']}"
        mdir.mkdir()
        (mdir / "config.json").write_text(json.dumps(model_cfg))
        args = tmp_path / f"train{model_cfg['n_embd']}.yaml"  # trainguard's own YAML: says full vs LoRA
        args.write_text(f"model: {mdir}\ndata: qa.md\nmethod: full\nlearning_rate: 6.0e-3\nwarmup_ratio: 0.05\n")
        return {r.rule for r in lint_files([args])}

    assert "TG501" not in lint_with({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "vocab_size": 512})
    assert "TG501" in lint_with({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "vocab_size": 50257})
