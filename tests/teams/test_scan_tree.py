"""``trainguard scan`` over a tree: every real run in ../shared/realruns plus an ``mlruns/`` store, once each.

The tree also holds things that must be named, not fatal: a log that is not
a log, a truncated trainer_state.json. The HTML index is opened in a real
headless Chromium: our script ran (the page marks itself rendered), no script
error fired, every link resolves to a written report, and a ``<script>`` planted
in a run name shows as text.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from .conftest import run_scan

EVIL = "<script>document.title='PWNED'</script>"


def _mlruns(root: Path, curves: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An MLflow file store written by the real client; returns run name -> run id."""
    pytest.importorskip("mlflow", reason="the mlruns store is written with the mlflow client")
    from mlflow.tracking import MlflowClient

    from .conftest import log_curve

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    c = MlflowClient(tracking_uri=f"file:{root}")
    eid = c.create_experiment("file-store")
    return {name: log_curve(c, eid, name, curves[kind])
            for name, kind in (("store-overfit", "overfit"), (f"store-{EVIL}", "healthy"))}


@pytest.fixture(scope="module")
def tree(realruns: Path, curves: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fleet")
    shutil.copytree(realruns, root / "realruns")
    mp = pytest.MonkeyPatch()
    try:
        store = _mlruns(root / "team" / "mlruns", curves, mp)
    finally:
        mp.undo()
    bad = root / "team" / "broken"
    bad.mkdir()
    (bad / "trainer_state.json").write_text('{"log_history": [{"loss": 2.0, "step": 1', encoding="utf-8")
    (root / "team" / "notes.log").write_bytes(b"\x00\x01\x02 not a log \x00" * 50)
    return {"root": root, "store": store, "entries": sorted(p.name for p in realruns.iterdir())}


@pytest.fixture(scope="module")
def scanned(tree: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("scan")
    code, stdout, stderr = run_scan([str(tree["root"]), "--json", "--jobs", "2", "--cache", str(out / "cache")])
    assert code in (0, 1), stderr[-3000:]
    return {"doc": json.loads(stdout), "stderr": stderr}


@pytest.fixture(scope="module")
def site(tree: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The HTML index of a smaller tree (a run report renders four plots: ~1 s each run on a CPU):
    the mlruns store (with the planted run name) and the first two real runs."""
    out = tmp_path_factory.mktemp("site")
    small = out / "tree"
    shutil.copytree(tree["root"] / "team" / "mlruns", small / "mlruns")
    for name in tree["entries"][:2]:
        src = tree["root"] / "realruns" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, small / name)
    code, stdout, stderr = run_scan([str(small), "--json", "--jobs", "2", "--html", str(out / "site"), "--no-cache"])
    assert code in (0, 1), stderr[-3000:]
    return {"doc": json.loads(stdout), "site": out / "site"}


def test_every_run_once_and_every_skip_named(tree: dict[str, Any], scanned: dict[str, Any]) -> None:
    doc, root = scanned["doc"], str(tree["root"])
    sources = [r["source"] for r in doc["runs"]]
    assert len(sources) == len(set(sources))  # nothing read twice
    skipped = {s["source"]: s["reason"] for s in doc["skipped"]}
    for s, why in skipped.items():
        assert why and "internal error" not in why, (s, why)
        assert f"skipped {s}: " in scanned["stderr"]
    # each real run is a run or a named skip (a folder's files count for the folder)
    seen = {p.split("/realruns/")[1].split("/")[0].split(" ")[0] for p in [*sources, *skipped] if "/realruns/" in p}
    assert seen == set(tree["entries"]), set(tree["entries"]) ^ seen
    # the mlruns store: each run once, read from the files (no server, no mlflow import needed)
    store = [r for r in doc["runs"] if "/team/mlruns/" in r["source"]]
    assert sorted(r["run"] for r in store) == sorted(tree["store"])
    assert {r["format"] for r in store} == {"mlflow_file_store"}
    over = next(r for r in store if r["run"] == "store-overfit")
    assert over["verdict"] == "overfit"
    # the store's metric timestamps (one second per step, see log_curve) give the hours after the best
    assert over["waste"]["hours"] == pytest.approx(over["waste"]["steps"] / 3600, rel=0.01)
    assert any(s.endswith("/team/broken") for s in skipped)
    assert any(s.endswith("/team/notes.log") for s in skipped)
    assert all(s.startswith(root) for s in [*sources, *skipped])
    t = doc["totals"]
    assert t["runs"] == len(doc["runs"]) and t["skipped"] == len(doc["skipped"])
    assert t["verdicts"]["overfit"] >= 10  # the real runs hold many overfit ones


def test_html_index_links_resolve_and_escape(site: dict[str, Any]) -> None:
    doc, site = site["doc"], site["site"]
    text = (site / "index.html").read_text(encoding="utf-8")
    assert text.count("<script") == 1 and EVIL not in text and "&lt;script&gt;document.title=" in text
    assert "default-src 'none'" in text and not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert re.search(r"\d+ runs: \d+ overfit, [\d.,]+ GPU-hours after their best points.*?, \d+ best checkpoints? never saved", text)
    links = re.findall(r'href="([^"#]+)"', text)
    assert len(links) == len(doc["runs"]) >= 4
    for href in links:
        assert (site / unquote(href)).is_file(), href


def test_html_index_renders_in_headless_chromium(site: dict[str, Any], tmp_path: Path) -> None:
    from tests.report.test_html import _browser, _chromium
    from trainguard.scan.index import RENDERED_MARKER

    chrome = _chromium()
    if chrome is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run does it)")
    dom = _browser(chrome, tmp_path / "p", "--dump-dom", url=(site["site"] / "index.html").resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert RENDERED_MARKER in title and title != "PWNED"
    body = html.split("<body", 1)[1].split(">", 1)[0]
    assert 'data-index-ok="yes"' in body and 'data-charts-broken="0"' in body and "data-js-errors" not in body
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Refused to" in ln]
    assert not console, console


def test_second_scan_reanalyzes_only_changed_runs(realruns: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    picks = sorted(p for p in realruns.iterdir() if p.suffix == ".json")[:3]
    for p in picks:
        shutil.copy(p, tree / p.name)
    cache = tmp_path / "cache"
    first = json.loads(run_scan([str(tree), "--json", "-j", "1", "--cache", str(cache)])[1])
    assert (first["analyzed"], first["from_cache"]) == (3, 0)
    again = json.loads(run_scan([str(tree), "--json", "-j", "1", "--cache", str(cache)])[1])
    assert (again["analyzed"], again["from_cache"]) == (0, 3) and again["runs"] == first["runs"]
    changed = tree / picks[1].name
    changed.write_text(changed.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    third = json.loads(run_scan([str(tree), "--json", "-j", "1", "--cache", str(cache)])[1])
    assert (third["analyzed"], third["from_cache"]) == (1, 2)
    assert not any(tree.rglob("*cache*")) and any(cache.iterdir())  # the cache lives outside the tree


def test_analyze_never_imports_the_tracker_clients(realruns: Path) -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom trainguard.cli import app\n"
            f"r = CliRunner().invoke(app, ['analyze', {str(sorted(realruns.glob('*.json'))[0])!r}, '--json'])\n"
            "assert r.exit_code in (0, 1), r.output\n"
            "print(sorted(m for m in ('mlflow', 'wandb', 'prometheus_client') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"
