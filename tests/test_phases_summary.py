"""The phases' merge: phase ends and summaries taken for all phases at once equal the per-phase definition.

A curve flipping around twice its best after the best point gives one phase
per eval, so :func:`trainguard.phases._merge` works on all phases at once; the
reference here is the per-phase loop it replaced, with ``Series.nearest`` (an
argmin over every point) for the points at each phase's ends.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainguard import phases
from trainguard.diagnosis import Phase, diagnose
from trainguard.phases import _FLAGS, _LABELS, _Grid, _merge, split_phases
from trainguard.run import History, Run, Series


def _merge_reference(g: _Grid, first_step: int, train: Series, ev: Series) -> list[Phase]:
    """One phase per run of equal (label, flag) cells, each summarised by its own nearest-point searches."""
    out: list[Phase] = []
    n = len(g.step)
    a = 0
    while a < n:
        b = a
        while b + 1 < n and g.label[b + 1] == g.label[a] and g.flag[b + 1] == g.flag[a]:
            b += 1
        s = first_step if a == 0 else int(g.step[a - 1])
        e = int(g.step[b])
        parts = []
        for name, ser in (("train", train), ("eval", ev)):
            if not len(ser):
                continue
            i, j = ser.nearest(s), ser.nearest(e)
            assert i is not None and j is not None
            parts.append(f"{name} {phases._fmt(float(ser.values[i]))} → {phases._fmt(float(ser.values[j]))}")
        lab, fl = _LABELS[int(g.label[a])], _FLAGS[int(g.flag[a])]
        out.append(Phase(name=lab, start_step=s, end_step=e, flag=fl, summary=", ".join(parts)))
        a = b + 1
    return out


def _points(rng: np.random.Generator, n: int, last: int, dup: bool) -> Series:
    """``n`` step-sorted points up to ``last``, some steps repeated when ``dup``, values on a few decimals (ties)."""
    steps = np.sort(rng.integers(0, last + 1, n)) if dup else np.sort(rng.choice(last + 1, n, replace=False))
    vals = np.round(rng.choice([1e-6, 0.5, 3.0, 2e5], n) * rng.random(n), 3)
    vals[rng.random(n) < 0.1] = 0.0
    return Series(steps, vals)


@pytest.mark.parametrize("seed", range(6))
def test_merge_equals_the_per_phase_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for cells in (1, 2, 5, 300):
        edges = np.unique(rng.integers(5, 4000, cells * 2))[:cells].astype(np.int64)
        n = len(edges)
        for labels, flags in (
            (rng.integers(0, 3, n), rng.integers(0, 2, n)),  # many short phases
            (np.full(n, 5), np.where(np.arange(n) % 2, 2, 3)),  # the flip: orange, red, orange ...
            (np.zeros(n, int), np.zeros(n, int)),  # one phase
        ):
            g = _Grid(edges, *(np.full(n, np.nan) for _ in range(4)), labels.astype(np.int8), flags.astype(np.int8))
            for nt, ne in ((0, 0), (1, 0), (0, 1), (1, 1), (50, 7), (2000, 300)):
                train = _points(rng, nt, 4100, dup=True)
                ev = _points(rng, ne, 4100, dup=bool(seed % 2))
                first = int(min([int(s.steps[0]) for s in (train, ev) if len(s)] or [int(edges[0])]))
                first = min(first, int(edges[0]))
                got = _merge(g, first, train, ev)
                assert got == _merge_reference(g, first, train, ev), (cells, nt, ne)


def _run(rng: np.random.Generator, n: int, kind: str) -> Run:
    steps = np.arange(1, n + 1, dtype=np.int64)
    t = steps / n
    loss = 2.5 * np.exp(-5 * t) + 0.8 + rng.normal(0, 0.05, n)
    es = steps[9::10]
    ev = 1.2 + 2.0 * np.exp(-5 * es / n) + 0.3 * np.maximum(0, es / n - 0.6) + rng.normal(0, 0.01, len(es))
    if kind == "flip":  # after the best, eval flips around twice its best: red and orange cells alternate
        te = es / n
        ev = np.where(te < 0.1, 2.0 - 10 * te, 1.0 + 1.0 * (np.arange(len(es)) % 2) + 0.05)
    elif kind == "nan":  # NaN and inf scattered in both curves, NaN from 70 %
        loss[rng.random(n) < 0.05] = np.nan
        loss[int(0.7 * n) :] = np.nan
        ev[rng.random(len(ev)) < 0.1] = np.inf
    elif kind == "dup":  # a resumed run: steps logged twice
        steps = np.sort(np.concatenate([steps, steps[n // 3 : n // 2]]))
        loss = np.resize(loss, len(steps)) * (1 + rng.normal(0, 0.01, len(steps)))
        es = np.sort(np.concatenate([es, es[: len(es) // 4]]))
        ev = np.resize(ev, len(es))
    elif kind == "one_eval":
        es, ev = es[-1:], ev[-1:]
    elif kind == "no_eval":
        es, ev = es[:0], ev[:0]
    history = {
        "train_loss": Series(steps, loss),
        "learning_rate": Series(steps, 3e-4 * np.minimum(1.0, 20 * steps / len(steps))),
        "grad_norm": Series(steps, 1.5 * np.exp(-np.resize(t, len(steps))) + rng.gamma(2, 0.1, len(steps))),
    }
    if len(es):
        history["eval_loss"] = Series(es, ev)
    return Run(name=kind, format="synthetic", history=History(history), planned_steps=n, steps_per_epoch=n / 3)


@pytest.mark.parametrize("kind", ["flip", "plain", "nan", "dup", "one_eval", "no_eval"])
def test_split_phases_equal_the_per_phase_reference(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(len(kind))
    for n in (30, 1000, 5000):
        run = _run(rng, n, kind)
        d = diagnose(run)
        got = split_phases(run, d.findings, d.best, d.lr_schedule)
        assert got == d.phases
        with monkeypatch.context() as m:
            m.setattr(phases, "_merge", _merge_reference)
            want = split_phases(run, d.findings, d.best, d.lr_schedule)
        assert got == want, (kind, n)
        if kind == "flip" and n == 5000:
            assert len(got) > 100  # the shape this is for: one phase per eval after the best


def test_fmt_many_equals_fmt() -> None:
    rng = np.random.default_rng(9)
    edge = [0.0, -0.0, 1e-3, -1e-3, np.nextafter(1e-3, 0), 1e5, -1e5, np.nextafter(1e5, 0), 99995.0, 0.00099995,
            np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308, 1.0, -2.5, 123.45678]
    x = np.concatenate([edge, rng.normal(size=500) * 10.0 ** rng.integers(-8, 9, 500)])
    assert phases._fmt_many(x).tolist() == [phases._fmt(float(v)) for v in x]
    assert phases._fmt_many(np.array([])).tolist() == []
