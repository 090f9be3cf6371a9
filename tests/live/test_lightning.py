"""TrainguardLightningCallback in a real Lightning Trainer on the CPU: a tiny model that overfits is stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytestmark = pytest.mark.slow


def _module_and_data():
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    # 16 noisy training points, a wide MLP: it memorises the noise and validation loss turns up
    x = torch.randn(16, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = x @ w + 0.8 * torch.randn(16, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv @ w + 0.8 * torch.randn(256, 1, generator=g)

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1))

        def training_step(self, batch, i):
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, i):
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return Net(), DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(xv, yv), batch_size=256)


def test_lightning_overfitting_run_is_stopped_and_best_saved(tmp_path: Path) -> None:
    import lightning as L
    import torch

    from trainguard.live.lightning_callback import TrainguardLightningCallback

    torch.manual_seed(0)
    model, train, val = _module_and_data()
    cb = TrainguardLightningCallback()
    trainer = L.Trainer(max_epochs=1500, accelerator="cpu", devices=1, callbacks=[cb], default_root_dir=tmp_path,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, check_val_every_n_epoch=10, log_every_n_steps=1)
    trainer.fit(model, train, val)
    assert cb.stop_action is not None and cb.stop_action.findings[0].code == "overfitting"
    assert trainer.current_epoch < 1500
    best = cb.guard.best
    assert best is not None and best.step < cb.stop_action.step
    assert cb.best_path is not None and cb.best_path.is_file()
    # the checkpoint saved is the best one: reload and validate
    ckpt = torch.load(cb.best_path, weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    val_loss = trainer.validate(model, val, verbose=False)[0]["val_loss"]
    assert val_loss == pytest.approx(best.value, rel=1e-4)
    assert (tmp_path / "trainguard" / "guard.json").is_file()
