"""Data: Markdown Q&A in the shapes people write, JSONL kinds, and a split that cannot leak."""

from __future__ import annotations

import json

import pytest

from tests.train.conftest import QA_MD
from trainguard.errors import InputError
from trainguard.train.data import load_splits, parse_markdown_qa, read_examples, render, split


def test_markdown_qa_shapes():
    pairs = parse_markdown_qa(QA_MD)
    assert [q for q, _ in pairs] == ["What is warmup?", "What is weight decay?", "What is LoRA?"]
    assert pairs[1][1] == "A penalty that pulls weights toward zero."
    assert pairs[2][1] == "A low-rank adapter trained beside frozen weights.\nIt needs little memory."


def test_heading_question_with_plain_answer():
    assert parse_markdown_qa("### Q: Why warmup?\nSmall early steps.\n\n## Notes\nignored\n") == [
        ("Why warmup?", "Small early steps.")]


def test_split_keeps_duplicates_on_one_side_and_reports_them():
    base = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(50)]
    dups = [{"question": f"Q{i}!", "answer": f"A{i}"} for i in range(10)]  # normalised duplicates
    exact = [dict(base[i]) for i in range(5)]
    train, evals, rep = split("qa", base + dups + exact, eval_fraction=0.2, seed=1, source="x.md")
    norm = {(e["question"].lower().strip("!"), e["answer"].lower()) for e in train}
    assert not any((e["question"].lower().strip("!"), e["answer"].lower()) in norm for e in evals)
    assert rep.exact_duplicates == 5 and rep.normalised_duplicates == 10
    assert rep.train + rep.eval == 65


def test_explicit_eval_file_loses_its_overlap(tmp_path):
    tr = tmp_path / "t.jsonl"
    ev = tmp_path / "e.jsonl"
    tr.write_text("\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}) for i in range(20)))
    ev.write_text("\n".join(json.dumps({"prompt": f"P{i} ", "completion": f"c{i}"}) for i in range(15, 25)))
    kind, train, evals, rep = load_splits(str(tr), str(ev), eval_fraction=0.1, seed=0)
    assert kind == "prompt_completion" and len(train) == 20
    assert rep.eval_overlap_dropped == 5 and len(evals) == 5  # p15..p19 are train items, case-folded


def test_jsonl_mixed_kinds_and_bad_lines_name_the_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"text": "a"}\n{"prompt": "p", "completion": "c"}\n')
    with pytest.raises(InputError, match="line 2"):
        read_examples(p)
    p.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        read_examples(p)


def test_messages_without_chat_template_become_text(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = render("messages", [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}], tok)
    assert rows == [{"text": "User: hi\nAssistant: yo"}]
    qa = render("qa", [{"question": "q?", "answer": "a."}], tok)
    assert qa == [{"prompt": "Question: q?\nAnswer:", "completion": " a."}]


def test_bundled_demo_data_is_what_the_generator_makes():
    import runpy

    from trainguard.train.demo import dataset_path

    gen = runpy.run_path(str(dataset_path().with_name("make_demo_qa.py")))
    assert dataset_path().read_text() == gen["markdown"]()
    assert dataset_path().stat().st_size < 200_000
    kind, ex = read_examples(dataset_path())
    assert kind == "qa" and len(ex) >= 200
