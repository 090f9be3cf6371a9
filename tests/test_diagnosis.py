"""The diagnosis step: phases with flags, causes tied to config values, recommendations, the JSON contract."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.conftest import realrun
from tests.report.builders import seed000_findings, seed000_run, seed003_findings, seed003_run
from trainguard.causes import CONFIG_NOT_FOUND, find_causes
from trainguard.diagnosis import FLAGS, Diagnosis, diagnose
from trainguard.findings import CODES
from trainguard.phases import split_phases
from trainguard.readers import read_run
from trainguard.recommendations import recommend

CONTRACT_TOP = {"format", "best", "findings", "lr_schedule", "waste", "phases", "recommendations", "metrics"}


def build(run, findings) -> Diagnosis:
    """A Diagnosis from hand-made findings, through the same steps as diagnose()."""
    from trainguard.facts import facts_of

    f = facts_of(run)
    best, lr, waste = f.best, f.schedule, f.waste
    causes, unknowns = find_causes(run, findings, best, waste, lr)
    return Diagnosis(run, findings, best, lr, waste, split_phases(run, findings, best, lr), causes,
                     recommend(run, findings, causes, best, lr, waste), unknowns)


@pytest.fixture(scope="module")
def d003() -> Diagnosis:
    return build(seed003_run(), seed003_findings())


def recs(d: Diagnosis) -> dict[str, Any]:
    return {r.key: r for r in d.recommendations}


# -- phases ----------------------------------------------------------------------------


def test_seed003_phases_follow_the_seed_flags(d003: Diagnosis) -> None:
    names = [p.name for p in d003.phases]
    flags = [p.flag for p in d003.phases]
    # warmup, learning to the best, then yellow -> orange -> red -> black, as seed 003's "Signs Visible"
    assert names[:2] == ["warmup", "learning"]
    assert [f for f in flags if f != "green"] == ["yellow", "orange", "red", "black"]
    by = {p.name: p for p in d003.phases}
    assert by["learning"].end_step == 30 == by["turning"].start_step  # the best eval, epoch 15
    assert by["turning"].end_step == 40  # eval 0.1387 (+0.8%): stopped improving, not yet rising
    assert 60 <= by["memorization"].start_step <= 80  # train near zero from epoch ~35-40
    assert 130 <= by["dead"].start_step <= 150  # train zero and grad norm x1000 down: epochs 65-75
    assert by["dead"].end_step == 200


def test_phases_are_contiguous_and_cover_the_run(d003: Diagnosis) -> None:
    ph = d003.phases
    assert ph[0].start_step == 1 and ph[-1].end_step == 200
    for a, b in itertools.pairwise(ph):
        assert a.end_step == b.start_step
        assert a.start_step < a.end_step
    assert all(p.flag in FLAGS for p in ph)


def test_phases_on_real_runs() -> None:
    r022 = diagnose(read_run(realrun("022")))
    assert [(p.name, p.start_step, p.end_step) for p in r022.phases] == [("learning", 10, 200), ("overfitting", 200, 500)]
    r008 = diagnose(read_run(realrun("008")))  # healthy cosine run: eval falls to the last point
    assert {p.flag for p in r008.phases} == {"green"}
    r001 = diagnose(read_run(realrun("001")))  # loss 0.0 and grad_norm 0.0 at every point
    assert [(p.name, p.flag) for p in r001.phases] == [("dead", "black")]


# -- causes ----------------------------------------------------------------------------


def test_seed003_causes_name_the_config_values_and_sources(d003: Diagnosis) -> None:
    by = {c.title: c for c in d003.causes}
    assert by["No LoRA dropout"].config_values["lora_dropout"] == {"value": 0.0, "source": "adapter_config.json"}
    assert "epoch 15" in by["Too many epochs"].explanation
    assert "17 evals" in by["No early stopping"].explanation
    lr = by["Learning rate high for the setting"]
    assert "70B" in lr.explanation and lr.confidence == "possible"
    assert "Weak weight decay for a long run" in by
    save = next(c for c in d003.causes if c.title.startswith("Checkpoints not aligned"))
    assert "save_steps=100" in save.explanation and "eval_steps=10" in save.explanation
    ds = by["DeepSpeed scheduler overrides lr_scheduler_type"]
    assert "WarmupDecayLR" in ds.explanation and ds.config_values["deepspeed_scheduler"]["source"] == "ds_config.json"
    assert "Learning stopped: gradients vanished" in by
    assert all(c.confidence in ("likely", "possible", "unknown") for c in d003.causes)
    assert not any(c.title.startswith("Data leakage") for c in d003.causes)
    assert d003.unknowns == []


def test_no_config_means_no_config_cause_and_says_so() -> None:
    d = build(seed003_run(with_config=False), seed003_findings())
    assert CONFIG_NOT_FOUND in d.unknowns
    assert all(not c.config_keys and not c.config_values for c in d.causes)
    # evidence-only statements survive: the lost checkpoint and the vanished gradients
    titles = " ".join(c.title for c in d.causes)
    assert "best checkpoint was never saved" in titles and "gradients vanished" in titles
    assert "lora_dropout" not in recs(d)


# -- recommendations ---------------------------------------------------------------------


def test_seed003_recommendations_match_the_seed(d003: Diagnosis) -> None:
    r = recs(d003)
    assert (r["early_stopping_patience"].suggested, r["early_stopping_patience"].framework) == (3, "EarlyStoppingCallback")
    assert (r["lora_dropout"].current, r["lora_dropout"].suggested, r["lora_dropout"].framework) == (0.0, 0.1, "LoraConfig")
    assert (r["num_train_epochs"].current, r["num_train_epochs"].suggested) == (100, 20)
    assert (r["learning_rate"].current, r["learning_rate"].suggested) == (2e-4, 1e-4)
    assert r["weight_decay"].suggested == 0.05
    assert (r["lr_scheduler_type"].current, r["lr_scheduler_type"].suggested) == ("constant", "cosine")
    assert r["warmup_steps"].suggested == 10
    assert r["load_best_model_at_end"].suggested is True
    assert r["metric_for_best_model"].suggested == "eval_loss"
    assert all(x.reason for x in d003.recommendations)


def test_seed003_recommendations_do_better_than_the_seed(d003: Diagnosis) -> None:
    r = recs(d003)
    # the lost best checkpoint: save at every eval
    assert (r["save_steps"].current, r["save_steps"].suggested, r["save_steps"].framework) == (100, 10, "TrainingArguments")
    # the DeepSpeed block the seed only suspected
    assert r["scheduler"].framework == "deepspeed" and "remove" in r["scheduler"].suggested
    # and the guard that would have stopped it
    assert any(x.framework == "trainguard" for x in d003.recommendations)


def test_seed000_leakage_is_checked_before_any_hyper_parameter() -> None:
    d = build(seed000_run(), seed000_findings())
    assert d.causes[0].title.startswith("Data leakage") and d.causes[0].confidence == "likely"
    assert d.recommendations[0].framework == "data"
    r = recs(d)
    # the seed's advice (lower LR, more weight decay) would only slow the collapse
    assert "learning_rate" not in r and "weight_decay" not in r
    assert r["eval_strategy"].suggested == "steps"
    assert any("overlap" in x.reason for x in d.recommendations)


# -- the JSON contract ---------------------------------------------------------------------


def test_json_contract_names(d003: Diagnosis) -> None:
    doc = json.loads(json.dumps(d003.to_dict(), allow_nan=False))
    assert set(doc) >= CONTRACT_TOP
    assert isinstance(doc["format"], str)
    assert {"metric", "step", "epoch", "value", "checkpoint_saved"} <= set(doc["best"])
    assert doc["best"]["checkpoint_saved"] is False
    for f in doc["findings"]:
        assert {"code", "severity", "start_step", "end_step", "message", "evidence"} <= set(f)
        assert f["code"] in CODES and f["severity"] in ("info", "warning", "error", "critical")
    assert {"inferred", "configured", "cause"} <= set(doc["lr_schedule"])
    assert {"steps", "fraction", "hours", "gpu_hours"} <= set(doc["waste"])
    assert doc["waste"]["steps"] == 170
    for p in doc["phases"]:
        assert {"name", "start_step", "end_step", "flag"} <= set(p)
    for r in doc["recommendations"]:
        assert {"key", "current", "suggested", "reason", "framework"} <= set(r)
    for m in doc["metrics"].values():
        assert {"points", "first_step", "last_step", "first", "last"} <= set(m)
    assert doc["metrics"]["eval_loss"]["points"] == 20


@pytest.mark.parametrize("prefix", [f"{i:03d}" for i in (1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 21, 22, 23, 24)])
def test_every_real_trainer_state_diagnoses(prefix: str) -> None:
    d = diagnose(read_run(realrun(prefix)))
    json.dumps(d.to_dict(), allow_nan=False)
    for a, b in itertools.pairwise(d.phases):
        assert a.end_step == b.start_step
    assert d.exit_code in (0, 1)
