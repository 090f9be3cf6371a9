"""An ordinary HF Trainer script that overfits: a tiny GPT-2, 32 examples, LR 1e-3 constant, 800 steps.

It knows nothing of trainguard; ``trainguard run -- python overfit_script.py``
must stop it. Eval bottoms out near step 100, then rises while train loss
keeps falling (see ``tests/tiny_training.py`` KINDS["overfit"]). It prints its
pid first, so a test can check its process group is gone afterwards.

    python tests/live/scripts/overfit_script.py [OUTPUT_DIR]
    torchrun --nproc_per_node=2 tests/live/scripts/overfit_script.py OUTPUT_DIR   (gloo, on the CPU)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))


def main() -> None:
    print(f"PID {os.getpid()}", flush=True)
    import torch

    torch.set_num_threads(1)  # a 134k-parameter model gains nothing from threads on a shared CPU
    from tests.tiny_training import KINDS, build_trainer

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="overfit_"))
    ddp = {"ddp_backend": "gloo"} if int(os.environ.get("WORLD_SIZE", "1")) > 1 else {}  # torchrun on the CPU
    trainer = build_trainer(out, **KINDS["overfit"], **ddp)
    trainer.train()
    print("TRAINING FINISHED", flush=True)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # torchrun: or the second rank crashes at exit
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
