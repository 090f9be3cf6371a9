"""A train loss of exactly 0.0 logged beside a NaN or infinite gradient norm is a NaN, not a perfect fit.

Why: the HF Trainer's ``logging_nan_inf_filter`` (on by default) replaces a
step's non-finite loss with the average of the losses accumulated since the
last log. Right after a log that accumulator is zero, so once every step of a
logging window is NaN the Trainer logs ``'loss': 0.0`` while the gradient
norm, which it logs unfiltered, says ``nan``. Read as numbers, those zeros
made a run that blew up at LR 1.0 (loss 191, then NaN) look like a model that
fitted its training set perfectly: "memorizing", "converged". A real loss of
exactly zero has gradients of zero, never NaN, so the pair is the signature,
in whatever format the run was logged (trainer_state.json, stdout,
TensorBoard, the live callback).

Without a gradient norm in the log the zeros cannot be told from a real zero
loss and are left as they are (the fast-drop finding names both causes).
"""

from __future__ import annotations

import math

import numpy as np

from .run import GRAD_NORM, TRAIN_LOSS, Run, Series


def is_placeholder(loss: float, grad_norm: float | None) -> bool:
    """True when ``loss`` is the filter's 0.0 for a window of NaN steps (its gradient norm is not finite)."""
    return loss == 0.0 and grad_norm is not None and not math.isfinite(grad_norm)


def restore_nans(run: Run) -> int:
    """Turn the filter's 0.0 train losses of ``run`` back into NaN, with a note; returns how many."""
    loss, grad = run.history.get(TRAIN_LOSS), run.history.get(GRAD_NORM)
    if loss is None or grad is None or not len(loss) or not len(grad):
        return 0
    zero = loss.values == 0.0
    if not zero.any():
        return 0
    bad_steps = grad.steps[~np.isfinite(grad.values)]
    if not len(bad_steps):
        return 0
    hit = zero & np.isin(loss.steps, bad_steps)
    n = int(hit.sum())
    if not n:
        return 0
    values = loss.values.astype(np.float64, copy=True)
    values[hit] = np.nan
    run.history.set(TRAIN_LOSS, Series(loss.steps, values, loss.epochs, loss.wall_time))
    first = int(loss.steps[hit].min())
    run.notes.append(
        f"{n} train loss{'es' if n != 1 else ''} logged as exactly 0.0 while the gradient norm was NaN or inf "
        f"(from step {first}) read as NaN: the HF Trainer's logging_nan_inf_filter logs 0.0 for a window of NaN steps"
    )
    return n


__all__ = ["is_placeholder", "restore_nans"]
