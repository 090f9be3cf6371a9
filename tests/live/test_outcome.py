"""The final line of ``trainguard run`` says what really happened, and a crash or a kill is never healthy."""

from __future__ import annotations

from trainguard.commands._live import outcome
from trainguard.live.guard import Guard
from trainguard.live.policy import Action
from trainguard.live.process import ProcessResult


def _guard() -> Guard:
    g = Guard()
    for step, ev in ((20, 3.0), (40, 2.5), (60, 2.7)):
        g.log(step, train_loss=2.0, eval_loss=ev)
    return g


def test_a_clean_stop_names_the_step_the_checkpoint_and_the_report() -> None:
    r = ProcessResult(0, 0, stop=Action(60, stop=True, reason="stop (overfitting)"), attached=True,
                      stop_acked_step=61, checkpoints={40: "out/checkpoint-40", 61: "out/checkpoint-61"},
                      end={"best_checkpoint": "out/checkpoint-40", "loaded_best": True, "report": "out/r.md"})
    head, extra = outcome(r, _guard())
    assert head == ("trainguard: stopped by trainguard at step 61, best checkpoint at out/checkpoint-40 "
                    "(best eval_loss 2.5 at step 40, loaded); report at out/r.md; exit code 0")
    assert extra == []


def test_crashes_kills_and_ignored_sigints_get_a_finding() -> None:
    head, extra = outcome(ProcessResult(3, 3), _guard())
    assert head.startswith("trainguard: the command exited with code 3: crashed at step 60")
    assert [(f.code, f.severity.value) for f in extra] == [("crashed", "critical")]
    head, extra = outcome(ProcessResult(137, -9), _guard())  # the OOM killer, say: not us
    assert "was killed by SIGKILL at step 60 (exit code 137)" in head and extra[0].severity.value == "critical"
    stopped = ProcessResult(143, -15, stop=Action(60, stop=True, reason="stop"), signals=["SIGINT", "SIGTERM"])
    head, extra = outcome(stopped, _guard())
    assert head.startswith("trainguard: stopped by trainguard at step 60 with SIGINT, then SIGTERM")
    assert [(f.code, f.severity.value) for f in extra] == [("crashed", "warning")]
    head, extra = outcome(ProcessResult(0, 0), _guard())
    assert head.startswith("trainguard: the command finished at step 60 (exit code 0)") and extra == []
