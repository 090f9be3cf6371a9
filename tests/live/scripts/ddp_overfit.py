"""Two-rank CPU DDP (gloo) run of the tiny overfitting GPT-2 under TrainguardCallback.

Run with ``torchrun --nproc_per_node=2 tests/live/scripts/ddp_overfit.py OUT``.
With ``--one-rank-decides``, rank 0's guard is alert-only and only rank 1's
may stop: both must still stop at the same step, which only the cross-rank
reduction of the decision achieves (without it rank 0 would wait forever in
the next collective). Each rank prints one line ``TRAINGUARD_RANK {json}`` with the step it stopped
at, so the test can check that both ranks stopped together and early.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    import torch.distributed as dist
    from tests.tiny_training import KINDS, build_trainer

    from trainguard.live.hf_callback import TrainguardCallback
    from trainguard.live.policy import Policy

    out = Path(sys.argv[1])
    one_rank = "--one-rank-decides" in sys.argv
    rank_env = int(__import__("os").environ.get("RANK", "0"))
    cb = TrainguardCallback(Policy.alert_only() if one_rank and rank_env == 0 else None)
    spec = {**KINDS["overfit"], "steps": 400}
    trainer = build_trainer(out, callbacks=[cb], use_cpu=True, ddp_backend="gloo", disable_tqdm=True,
                            save_strategy="no", **spec)
    trainer.train()
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    print("TRAINGUARD_RANK " + json.dumps({"rank": rank, "world": world, "global_step": trainer.state.global_step,
                                            "stopped": cb.stop_action is not None,
                                            "best_step": None if cb.guard.best is None else cb.guard.best.step}),
          flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
