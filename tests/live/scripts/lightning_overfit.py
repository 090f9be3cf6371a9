"""An ordinary Lightning script that overfits: a wide MLP memorising 16 noisy points (val loss turns up).

It knows nothing of trainguard; under ``trainguard run`` the bootstrap adds
the guard's callback to its ``Trainer``. Checkpoints and the guard's report go
to OUTPUT_DIR.

    python tests/live/scripts/lightning_overfit.py OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


def data():  # type: ignore[no-untyped-def]
    """The same tensors in every process (a fixed generator): the test re-validates with them."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = x @ w + 0.8 * torch.randn(16, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv @ w + 0.8 * torch.randn(256, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(xv, yv), batch_size=256)


def make_module():  # type: ignore[no-untyped-def]
    import lightning as L
    import torch

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1))

        def training_step(self, batch, i):  # type: ignore[no-untyped-def]
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, i):  # type: ignore[no-untyped-def]
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return Net()


def main() -> None:
    import lightning as L
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = Path(sys.argv[1])
    train, val = data()
    trainer = L.Trainer(max_epochs=1500, accelerator="cpu", devices=1, default_root_dir=out, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        check_val_every_n_epoch=10, log_every_n_steps=1)
    trainer.fit(make_module(), train, val)
    print(f"TRAINING FINISHED at epoch {trainer.current_epoch}", flush=True)


if __name__ == "__main__":
    main()
