"""The multi-line reader's line pattern reads what it always read, in linear time.

Its header pattern had two starred blank classes side by side
(``[^\\S\\n]*\\]?[^\\w\\n]*``) and its numbers were ``\\d+\\.?\\d*``: on a line that
nearly matched, the regex engine tried every split of a long run of blanks or
digits. A 100 KB log holding one 40 KB line of spaces took 30 s to sniff (every
text log is sniffed by this reader), and a line of 20,000 digits 60 s. The
patterns now give each run of blanks or digits one way to match. A user relies
on the same records being read, so each pattern is compared here, match for
match and group for group, with the old one on random lines made of the pieces
these lines are made of (short lines: the old pattern is slow on long ones).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from trainguard.readers import multiline, read_runs

_OLD_HEADER = (r"[^\S\n]*[\W_]*?(?P<kw>epoch|step|iteration|iter|round)\b[^\S\n]*[:#=]?[^\S\n]*\[?[^\S\n]*(?P<n>\d+)"
               r"(?:[^\S\n]*/[^\S\n]*(?P<tot>\d+))?[^\S\n]*\]?[^\w\n]*")
_OLD_KV = (r"[^\S\n]*(?:[|>*-][^\S\n]*)*(?P<key>[A-Za-z][\w ./@()-]{0,60}?)[^\S\n]*[:=][^\S\n]*"
           r"(?P<val>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)[^\S\n]*(?P<pct>%)?[^\S\n]*")
_OLD_MULTI = r"(?P<multi>[^\S\n]*[|>*-]?[^\S\n]*[A-Za-z][^\n]*?[:=][^\S\n]*[-+]?(?:\d|\.\d|nan|inf)[^\n]*)"
_OLD_LINE = re.compile(rf"^(?:{_OLD_HEADER}|{_OLD_KV}|{_OLD_MULTI})$", re.IGNORECASE | re.MULTILINE)
_OLD_PAIR = re.compile(r"(?<![\w.])([A-Za-z][\w./@-]*(?: [A-Za-z][\w./@-]*)?)\s*[:=]\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)(%)?(?![\w.:])",
                       re.IGNORECASE)

_PIECES = ("epoch", "Epoch", "step", "STEP", "iteration", "iter", "round", " ", "  ", "\t", "\n", ":", "=", "#", "[", "]", "/",
           "%", "|", ">", "-", "*", "_", ".", "e", "E", "+", "1", "23", "0.5", "1e-05", "nan", "inf", "-inf", "loss", "val loss",
           "Training loss", "lr", "x", "===", "(", ")", "@", ",", "!", "\u3000")


def _junk(rng: random.Random, n: int = 3) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, n)))


def _blanks(rng: random.Random) -> str:
    return rng.choice(("", " ", "  ", "\t", " \t "))


def _number(rng: random.Random) -> str:
    return rng.choice(("3", "12", "0.5", "1.", ".25", "1e-05", "-2.5E+3", "nan", "inf", "-inf", "007", "1.2.3"))


def _line(rng: random.Random) -> str:
    """A line near one of the three shapes (a header, a key-value line, several pairs), or junk."""
    r = rng.random()
    if r < 0.3:
        return (rng.choice(("", "==", "-- ", "_", " [", "\t")) + rng.choice(("epoch", "Step", "iter", "round", "iteration"))
                + _blanks(rng) + rng.choice(("", ":", "#", "=")) + _blanks(rng) + rng.choice(("", "[")) + _blanks(rng)
                + rng.choice(("3", "12", "", "x")) + rng.choice(("", _blanks(rng) + "/" + _blanks(rng) + "40"))
                + _blanks(rng) + rng.choice(("", "]")) + rng.choice(("", " ===", ".", " x", _junk(rng, 1))))
    if r < 0.6:
        return (_blanks(rng) + rng.choice(("", "|", "> ", "* ", "- ", "|- ")) + rng.choice(("loss", "val loss", "Training loss", "lr", "x", "a.b"))
                + _blanks(rng) + rng.choice((":", "=", "")) + _blanks(rng) + _number(rng) + _blanks(rng) + rng.choice(("", "%"))
                + _blanks(rng) + rng.choice(("", "", "x", _junk(rng, 1))))
    if r < 0.8:
        return " | ".join(rng.choice(("loss", "acc", "val_loss", "epoch")) + rng.choice((": ", "=", " : ")) + _number(rng) + rng.choice(("", "%"))
                          for _ in range(rng.randint(1, 4))) + rng.choice(("", " x", _junk(rng, 1)))
    return _junk(rng, 14)


def _found(rx: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], dict[str, str | None]]]:
    return [(m.span(), m.groupdict()) for m in rx.finditer(text)]


def test_the_line_pattern_matches_as_before_on_random_lines() -> None:
    rng = random.Random(12)
    branches = {"kw": 0, "key": 0, "multi": 0}
    for _ in range(6000):
        text = "\n".join(_line(rng) for _ in range(rng.randint(1, 4)))
        new = _found(multiline._LINE, text)
        assert new == _found(_OLD_LINE, text), repr(text)
        for _span, groups in new:
            branches[next(k for k in branches if groups[k] is not None)] += 1
    assert min(branches.values()) > 500, branches  # every branch matched, not only the misses


def test_the_pair_pattern_finds_as_before_on_random_lines() -> None:
    rng = random.Random(13)
    for _ in range(6000):
        text = _line(rng) + " " + _line(rng)
        assert multiline._PAIR.findall(text) == _OLD_PAIR.findall(text), repr(text)


def test_lines_that_nearly_match_are_read_in_a_moment(tmp_path: Path) -> None:
    """Each of these took 30-60 s (whole seconds even at a tenth of the size); the log around them still reads."""
    bad = ["step 2" + " " * 20000 + "loss" + " " * 20000, "loss: " + "1" * 20000 + "x", " " * 20000 + "!",
           "epoch" + " " * 20000 + ":" + " " * 20000 + "[" + " " * 20000 + "x"]
    f = tmp_path / "train.log"
    f.write_text("epoch 1\nloss: 0.9\nval loss: 1.0\nepoch 2\nloss: 0.7\nval loss: 0.95\n" + "\n".join(bad)
                 + "\nepoch 3\nloss: 0.6\nval loss: 0.97\n")
    [run] = read_runs(f)  # the sniff reads the first 64 KB, bad lines included; the reader all of it
    assert run.format == "multiline"
    assert run.history["train_loss"].values.tolist() == [0.9, 0.7, 0.6]
    assert run.history["eval_loss"].steps.tolist() == [1, 2, 3]
