"""Returns training examples from Markdown Q&A, JSONL or plain text, split into train/eval without leakage.

Formats (picked by extension):

- ``.md``: Q&A pairs, the shape of the seeds' ``training_data_final_merged.md``.
  A question starts at a line ``## Q: ...``, ``**Q:** ...``, ``Q: ...`` or
  ``Question: ...`` (any heading level, bold or not); its answer starts at
  ``A:`` / ``**A:**`` / ``Answer:`` and runs until the next question, a
  heading or a ``---`` rule. Text after a ``## Q:`` heading with no ``A:``
  marker is the answer. Other headings and prose are section titles, ignored.
- ``.jsonl`` / ``.json``: one object a line with ``prompt``/``completion``
  (strings or message lists), ``messages`` (chat), or ``text``; all lines of
  one kind.
- ``.txt``: documents separated by blank lines.

Q&A pairs become prompt/completion examples, so TRL computes the loss on the
answer only; with a tokenizer that has a chat template they become chat
messages rendered by it. Chat ``messages`` without a template are rendered as
``User:``/``Assistant:`` text rather than refused.

The split groups examples by *normalised* text (case, Unicode form,
punctuation and spacing folded) before assigning them, so a duplicate can never
sit on both sides: seed 000's 3.64 -> 0.005 collapse in 4% of an epoch is what
an eval set full of copies of the train set looks like. Duplicates found are
counted and reported, never silently kept.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

Example = dict[str, Any]

_Q = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:Q|Question)\s*(?:\d+)?\s*[:.)]\s*(?:\*\*|__)?\s*[:]?\s*(.*)$", re.I)
_A = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:A|Answer)\s*(?:\d+)?\s*[:.)]\s*(?:\*\*|__)?\s*[:]?\s*(.*)$", re.I)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")


@dataclass
class SplitReport:
    """What the split did: sizes, and the duplicates it found (exact, and after normalisation)."""

    source: str
    kind: str  # qa | prompt_completion | messages | text
    total: int
    train: int
    eval: int
    exact_duplicates: int = 0  # examples whose text repeats an earlier one verbatim
    normalised_duplicates: int = 0  # further repeats once case/punctuation/spacing are folded
    eval_overlap_dropped: int = 0  # eval examples dropped because train holds them (explicit eval file)
    eval_source: str = "held out"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        dup = self.exact_duplicates + self.normalised_duplicates
        s = f"{self.total} examples ({self.kind}) -> {self.train} train / {self.eval} eval ({self.eval_source})"
        if dup:
            s += f"; {dup} duplicates kept on one side ({self.exact_duplicates} exact, {self.normalised_duplicates} normalised)"
        if self.eval_overlap_dropped:
            s += f"; {self.eval_overlap_dropped} eval examples also in train dropped"
        return s


# -- reading -------------------------------------------------------------------------


def parse_markdown_qa(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from Markdown; prose outside a pair is ignored."""
    pairs: list[tuple[str, str]] = []
    q: list[str] | None = None
    a: list[str] | None = None
    q_heading = False

    def flush() -> None:
        nonlocal q, a
        if q is not None and a is not None:
            qs, ans = _clean(" ".join(q)), _clean("\n".join(a))
            if qs and ans:
                pairs.append((qs, ans))
        q, a = None, None

    for line in text.splitlines():
        mq = _Q.match(line)
        if mq:
            flush()
            q, a = [mq.group(1)], None
            q_heading = bool(_HEADING.match(line))
            continue
        ma = _A.match(line)
        if ma and q is not None:
            a = [ma.group(1)]
            continue
        if _RULE.match(line) or _HEADING.match(line):
            flush()
            continue
        if q is None:
            continue
        if a is not None:
            a.append(line)
        elif q_heading and line.strip():
            a = [line]  # "## Q: ..." heading, then the answer as plain paragraphs
        elif line.strip():
            q.append(line)
    flush()
    return pairs


def _clean(s: str) -> str:
    s = re.sub(r"^\s*(?:\*\*|__)\s*|\s*(?:\*\*|__)\s*$", "", s.strip())
    return re.sub(r"\n{3,}", "\n\n", s).strip()


def read_examples(path: str | Path) -> tuple[str, list[Example]]:
    """(kind, examples) from one file; InputError naming the file (and line) on bad input."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(p, f"not UTF-8 text (byte {e.start}); convert it first") from None
    ext = p.suffix.lower()
    if ext in (".md", ".markdown"):
        pairs = parse_markdown_qa(text)
        if not pairs:
            raise InputError(p, "no Q&A pairs found; expected lines like '## Q: ...' or '**Q:** ...' followed by 'A: ...'")
        return "qa", [{"question": q, "answer": a} for q, a in pairs]
    if ext in (".jsonl", ".json"):
        return _read_jsonl(p, text)
    docs = [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]
    if not docs:
        raise InputError(p, "empty text file")
    return "text", [{"text": d} for d in docs]


def _read_jsonl(p: Path, text: str) -> tuple[str, list[Example]]:
    rows: list[Example] = []
    stripped = text.lstrip()
    if p.suffix.lower() == ".json" and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(p, f"not valid JSON ({e.msg} at line {e.lineno})") from None
        items = list(enumerate(data, 1))
    else:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise InputError(p, f"line {n}: not valid JSON ({e.msg})") from None
    kind = None
    for n, obj in items:
        if not isinstance(obj, dict):
            raise InputError(p, f"line {n}: expected a JSON object")
        if "prompt" in obj and "completion" in obj:
            k = "prompt_completion"
            row = {"prompt": obj["prompt"], "completion": obj["completion"]}
        elif "messages" in obj:
            k = "messages"
            row = {"messages": obj["messages"]}
            if not isinstance(row["messages"], list) or not all(
                isinstance(m, dict) and "role" in m and "content" in m for m in row["messages"]
            ):
                raise InputError(p, f"line {n}: messages must be a list of {{role, content}} objects")
        elif "text" in obj:
            k = "text"
            row = {"text": str(obj["text"])}
        else:
            raise InputError(p, f"line {n}: no prompt/completion, messages or text key (found: {', '.join(obj) or 'none'})")
        if kind is None:
            kind = k
        elif k != kind:
            raise InputError(p, f"line {n}: a {k} record in a file of {kind} records; use one kind per file")
        rows.append(row)
    if not rows:
        raise InputError(p, "no records")
    return kind or "text", rows


# -- rendering for the tokenizer ----------------------------------------------------------


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render(kind: str, examples: list[Example], tokenizer: Any) -> list[Example]:
    """Examples in the shape TRL's SFTTrainer takes (prompt/completion, messages, or text)."""
    chat = has_chat_template(tokenizer)
    out: list[Example] = []
    for ex in examples:
        if kind == "qa":
            if chat:
                out.append({
                    "prompt": [{"role": "user", "content": ex["question"]}],
                    "completion": [{"role": "assistant", "content": ex["answer"]}],
                })
            else:
                out.append({"prompt": f"Question: {ex['question']}\nAnswer:", "completion": f" {ex['answer']}"})
        elif kind == "messages" and not chat:
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in ex["messages"]]
            out.append({"text": "\n".join(lines)})
        elif kind == "prompt_completion" and not chat and not isinstance(ex["prompt"], str):
            p = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in ex["prompt"])
            c = "\n".join(f"{m['content']}" for m in ex["completion"])
            out.append({"prompt": p + "\nAssistant:", "completion": " " + c})
        else:
            out.append(ex)
    return out


def example_text(ex: Example) -> str:
    """One string for an example, whatever its shape: the key duplicates are judged on."""
    if "question" in ex:
        return f"{ex['question']}\n{ex['answer']}"
    if "text" in ex:
        return str(ex["text"])
    if "messages" in ex:
        return "\n".join(f"{m['role']}: {m['content']}" for m in ex["messages"])
    return json.dumps([ex.get("prompt"), ex.get("completion")], ensure_ascii=False, sort_keys=True)


def normalise(s: str) -> str:
    """Case, Unicode form, punctuation and spacing folded: "What is LoRA?" == "what is lora"."""
    s = unicodedata.normalize("NFKC", s).casefold()
    s = re.sub(r"[^\w\s]", " ", s)
    return " ".join(s.split())


# -- splitting -----------------------------------------------------------------------------


def split(
    kind: str,
    examples: list[Example],
    *,
    eval_fraction: float,
    seed: int,
    source: str,
    eval_examples: list[Example] | None = None,
    eval_source: str | None = None,
    dedup: bool = True,
) -> tuple[list[Example], list[Example], SplitReport]:
    """(train, eval, report). Duplicate groups go wholly to one side; an explicit eval file loses its overlap.

    With ``dedup=False`` the split is a plain seeded shuffle and the report
    still counts what leaks, so the user sees it.
    """
    exact_seen: set[str] = set()
    groups: dict[str, list[int]] = {}
    exact_dups = norm_dups = 0
    for i, ex in enumerate(examples):
        t = example_text(ex)
        n = normalise(t)
        if t in exact_seen:
            exact_dups += 1
        elif n in groups:
            norm_dups += 1
        exact_seen.add(t)
        groups.setdefault(n, []).append(i)
    notes: list[str] = []
    rng = random.Random(seed)
    if eval_examples is not None:
        train = list(examples)
        train_keys = set(groups)
        kept = [e for e in eval_examples if normalise(example_text(e)) not in train_keys]
        dropped = len(eval_examples) - len(kept)
        if dropped:
            notes.append(f"{dropped} of {len(eval_examples)} eval examples also appear in train (leakage); dropped")
        evals = kept
        report = SplitReport(source, kind, len(examples) + len(eval_examples), len(train), len(evals),
                             exact_dups, norm_dups, dropped, eval_source or "file", notes)
    else:
        keys = list(groups)
        rng.shuffle(keys)
        if not dedup:
            idx = list(range(len(examples)))
            rng.shuffle(idx)
            n_eval = max(1, round(len(idx) * eval_fraction))
            ev, tr = idx[:n_eval], idx[n_eval:]
        else:
            n_eval = max(1, round(len(examples) * eval_fraction))
            ev, tr = [], []
            for k in keys:
                (ev if len(ev) < n_eval else tr).extend(groups[k])
        evals = [examples[i] for i in sorted(ev)]
        train = [examples[i] for i in sorted(tr)]
        if not dedup:
            tk = {normalise(example_text(e)) for e in train}
            leaked = sum(normalise(example_text(e)) in tk for e in evals)
            if leaked:
                notes.append(f"dedup is off: {leaked} eval examples also appear in train; eval loss will be optimistic")
        report = SplitReport(source, kind, len(examples), len(train), len(evals), exact_dups, norm_dups, 0,
                             "held out", notes)
    if exact_dups + norm_dups:
        share = (exact_dups + norm_dups) / max(len(examples), 1)
        notes.append(
            f"{exact_dups + norm_dups} duplicates in {source} ({share:.0%}); each group kept on one side of the split"
        )
    if not train:
        raise InputError(source, "no training examples left after the split")
    if not evals:
        raise InputError(eval_source or source, "no eval examples left after removing those also in train")
    return train, evals, report


def load_splits(data: str, eval_data: str | None, *, eval_fraction: float, seed: int,
                dedup: bool = True) -> tuple[str, list[Example], list[Example], SplitReport]:
    """(kind, train, eval, report) for the config's data files, not yet rendered for a tokenizer."""
    kind, examples = read_examples(data)
    eval_ex = None
    if eval_data is not None:
        ekind, eval_ex = read_examples(eval_data)
        if ekind != kind:
            raise InputError(eval_data, f"holds {ekind} records but the training data holds {kind}")
    train, evals, report = split(kind, examples, eval_fraction=eval_fraction, seed=seed, source=str(data),
                                 eval_examples=eval_ex, eval_source=eval_data, dedup=dedup)
    return kind, train, evals, report


__all__ = ["SplitReport", "example_text", "load_splits", "normalise", "parse_markdown_qa", "read_examples",
           "render", "split"]
