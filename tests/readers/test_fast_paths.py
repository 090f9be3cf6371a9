"""The fast paths of the HF stdout reader give exactly what the reference paths give.

The scanner has a bulk path (``_scan_fast`` + ``_hf_bars.bars``) and the
per-dict loop it must equal (``scan_exact``); the body parser has an orjson
path and a byte parser. A user relies on the fast path reading the same
points as the slow one, whatever the chunk boundaries, so both are run here on
real logs and on seeded random logs built from the pieces real logs contain
(tqdm bars, ``[rank0]:`` prefixes, escapes, truncated dicts, echoes).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import REALRUNS
from tests.readers.speedups_support import feed_in_chunks
from trainguard.readers import hf_stdout
from trainguard.readers._hf_bodies import _parse_json, parse_bodies, parse_numpy
from trainguard.readers._hf_scan import scan, scan_exact

DATA = Path(__file__).resolve().parents[1] / "data" / "hf_stdout"

_PIECES = (
    b"{'loss': '1.5', 'epoch': '0.1'}", b"{'eval_loss': 0.5, 'epoch': 1.0}", b"\n", b"\r", b" ", b"\t",
    b" 10%|###   | 5/50 [00:01<00:02, 1.0it/s]", b"100%|" + b"#" * 400 + b"| 50/50 [", b"12%|", b"|", b" 7/9 [",
    b"\x1b[A", b"[rank0]: ", b"{", b"}", b"'", b"x = ", b"{'a': {'b': 1}}", b"99999%|x| 1/2 [", b"{'loss': nan}",
    b"1", b"/", b"{'loss': 2.0, 'grad_norm': 1.0", b"eval_results= ",
)


def _feed(fn, data: bytes, chunk: int) -> tuple:  # type: ignore[no-untyped-def]
    sc, used = feed_in_chunks(fn, data, chunk)
    return sc.pos, sc.bodies, sc.bar_n, sc.bar_total, sc.skipped, used


def _real_logs() -> list[Path]:
    logs = sorted(DATA.glob("*.log"))
    if REALRUNS.is_dir():  # ../shared is optional: the fixture log alone still checks the paths
        logs += [p for p in sorted(REALRUNS.iterdir()) if p.is_file() and hf_stdout.sniff(p.read_bytes()[: 1 << 20]) > 0]
    return logs


@pytest.mark.parametrize("chunk", [777, 65536, 4 << 20])
def test_fast_scan_equals_exact_scan_on_real_logs(chunk: int) -> None:
    for log in _real_logs():
        data = log.read_bytes()
        assert _feed(scan, data, chunk) == _feed(scan_exact, data, chunk), log.name


def test_fast_scan_equals_exact_scan_on_random_logs() -> None:
    rng = random.Random(1)
    for _ in range(200):
        data = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 60)))
        for chunk in (rng.randint(8, 200), 1 << 20):
            assert _feed(scan, data, chunk) == _feed(scan_exact, data, chunk), data


def test_tqdm_counter_after_each_dict_is_the_step(tmp_path: Path) -> None:
    """A bar after the dict (plain, wide, rank-prefixed, escape-led) gives the step; a stale bar before it does not."""
    wide = b"#" * 500
    data = (b"\r  5%|#  | 9/100 [00:01<00:02]\r{'loss': 2.0, 'epoch': 0.1}\n\r 10%|#  | 10/100 [00:01<00:02]"
            b"\r{'loss': 1.9, 'epoch': 0.2}\n\r 20%|" + wide + b"| 20/100 [00:02<00:02]"
            b"\r{'loss': 1.8, 'epoch': 0.3}\n[rank0]: 30%|#  | 30/100 [00:03<00:02]"
            b"\r{'loss': 1.7, 'epoch': 0.4}\n\x1b[A 40%|#  | 40/100 [00:04<00:02]\n")
    log = tmp_path / "bars.log"
    log.write_bytes(data)
    tl = hf_stdout.read(log).history["train_loss"]
    assert tl.steps.tolist() == [10, 20, 30, 40]
    assert tl.values.tolist() == [2.0, 1.9, 1.8, 1.7]


def _canon(p) -> list:  # type: ignore[no-untyped-def]
    return sorted((int(d), p.keys[k], float(v) if v == v else "nan") for d, k, v in zip(p.dict_idx, p.key_id, p.value, strict=True))


def test_json_parser_equals_byte_parser() -> None:
    rng = random.Random(2)
    keys = ["'loss'", "'eval_loss'", "'epoch'", "'grad_norm'", "'learning_rate'", "'x'", "''", "'" + "k" * 60 + "'"]
    plain = ["'5.351'", "5.351", "0.0001", "3.29e-05", "'-2.1e-06'", "1", "-0.0", "'1e5'"]
    odd = ["nan", "'nan'", "inf", "True", "None", "'gpt2'", "[1, 2]", "'1.'", "'01'", "''"]
    used = 0
    for _ in range(1500):
        bodies = []
        for _ in range(rng.randint(1, 4)):
            ks = rng.sample(keys, rng.randint(1, 4))
            bodies.append(", ".join(f"{k}: {rng.choice(odd if rng.random() < 0.1 else plain)}" for k in ks).encode())
        fast = _parse_json(bodies)
        if fast is not None:
            used += 1
            assert _canon(fast) == _canon(parse_numpy(bodies)), bodies
    assert used > 500  # the JSON path really ran


def test_values_json_cannot_hold_still_parse() -> None:
    """nan, inf and a non-numeric value send the buffer to the byte parser, which keeps the numbers."""
    bodies = [b"'loss': nan, 'epoch': 0.5", b"'loss': '1.25', 'note': 'warmup'", b"'eval_loss': inf"]
    assert _parse_json(bodies) is None
    got = _canon(parse_bodies(bodies))
    assert got == [(0, "epoch", 0.5), (0, "loss", "nan"), (1, "loss", 1.25), (2, "eval_loss", float("inf"))]


def test_single_pair_dicts_parse() -> None:
    """A dict with one key and no comma (``{'eval_loss': 0.5}``) once crashed the byte parser."""
    assert _canon(parse_numpy([b"'eval_loss': 0.5"])) == [(0, "eval_loss", 0.5)]
    assert _canon(parse_bodies([b"'eval_loss': '0.5'", b"'loss': 2"])) == [(0, "eval_loss", 0.5), (1, "loss", 2.0)]
