"""The layering rules of docs/architecture.md, checked on the source: one judgement per question.

- a detector imports the facts, the findings and the data model, never another
  detector and never the diagnosis;
- the facts never import a detector or the diagnosis;
- noise is estimated in one module (``facts/noise.py``): no other module
  carries the MAD constant or its own second-difference estimator.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "trainguard"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_detectors_import_neither_each_other_nor_the_diagnosis() -> None:
    names = {p.stem for p in (SRC / "detectors").glob("*.py") if p.stem != "__init__"}
    for p in (SRC / "detectors").glob("*.py"):
        if p.stem == "__init__":
            continue
        imps = _imports(p)
        assert not any("diagnosis" in i for i in imps), p.name
        assert not any(i.lstrip(".") in names or i in {f".{n}" for n in names} for i in imps), (p.name, imps)


def test_facts_import_neither_detectors_nor_the_diagnosis() -> None:
    for p in (SRC / "facts").glob("*.py"):
        imps = _imports(p)
        assert not any("detectors" in i or "diagnosis" in i or "phases" in i for i in imps), (p.name, imps)


def test_one_noise_estimator() -> None:
    for p in SRC.rglob("*.py"):
        if p.name == "noise.py" and p.parent.name == "facts":
            continue
        text = p.read_text()
        assert "1.4826" not in text, f"{p.relative_to(SRC)} carries its own MAD constant"
        assert "def curve_noise" not in text and "def _noise" not in text, p.relative_to(SRC)
