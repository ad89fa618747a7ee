"""Training logs written by the real libraries (Lightning, torch.utils.tensorboard) on the digits data,
for the importer tests: a few epochs of a linear model, seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

STEPS_PER_EPOCH = 22  # ceil(1400 / 64)


def digits(seed: int = 0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    data = torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.float32) / 16, torch.tensor(y))
    return torch.utils.data.random_split(data, [1400, 397], generator=torch.Generator().manual_seed(seed))


def lightning_fit(save_dir: Path, *, lr: float = 0.1, epochs: int = 4, names: str = "underscore",
                  csv: str | None = "csv", tensorboard: str | None = None, step_lr: int | None = 2,
                  revalidate: bool = True) -> None:
    """Lightning Trainer.fit with a CSVLogger and/or TensorBoardLogger under save_dir, a LearningRateMonitor,
    then (revalidate) trainer.validate and trainer.test as scripts do. names='slash' logs the
    lightning-hydra-template's metric names (train/loss, val/acc, val/acc_best, test/acc)."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    sep = "/" if names == "slash" else "_"
    train, val = digits()

    class Linear(L.LightningModule):
        def __init__(self, lr: float = 0.1, batch_size: int = 64):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Linear(64, 10)
            self.best = 0.0

        def step(self, batch):
            x, t = batch
            out = self.net(x)
            return torch.nn.functional.cross_entropy(out, t), (out.argmax(1) == t).float().mean()

        def training_step(self, batch, _):
            loss, acc = self.step(batch)
            if names == "slash":  # the template logs epoch means only
                self.log(f"train{sep}loss", loss, on_step=False, on_epoch=True)
            else:  # per step, as Lightning does by default in training_step
                self.log(f"train{sep}loss", loss)
            self.log(f"train{sep}acc", acc, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            loss, acc = self.step(batch)
            self.log(f"val{sep}loss", loss)
            self.log(f"val{sep}acc", acc)

        def on_validation_epoch_end(self):
            if names == "slash":
                acc = self.trainer.callback_metrics.get(f"val{sep}acc")
                self.best = max(self.best, float(acc)) if acc is not None else self.best
                self.log(f"val{sep}acc_best", self.best)

        def test_step(self, batch, _):
            loss, acc = self.step(batch)
            self.log(f"test{sep}loss", loss)
            self.log(f"test{sep}acc", acc)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
            if step_lr is None:
                return opt
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_lr, 0.1)}

    loggers = []
    if csv is not None:
        loggers.append(CSVLogger(str(save_dir), name=csv))
    if tensorboard is not None:
        loggers.append(TensorBoardLogger(str(save_dir / tensorboard), name=""))
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=epochs, logger=loggers, callbacks=[LearningRateMonitor()], log_every_n_steps=5,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        accelerator="cpu", num_sanity_val_steps=0)

    def loader(d, shuffle):
        return torch.utils.data.DataLoader(d, batch_size=64, shuffle=shuffle)

    model = Linear(lr=lr)
    trainer.fit(model, loader(train, True), loader(val, False))
    if revalidate:
        trainer.validate(model, loader(val, False), verbose=False)
        trainer.test(model, loader(val, False), verbose=False)


def hydra_job(job: Path, num: int, lr: float, epochs: int) -> None:
    """The .hydra/ files Hydra writes for one lightning-hydra-template job (configs/train.yaml's keys)."""
    hydra = job / ".hydra"
    hydra.mkdir(parents=True)
    config = {"task_name": "train", "tags": ["dev"], "train": True, "test": True, "ckpt_path": None, "seed": None,
              "data": {"_target_": "src.data.mnist_datamodule.MNISTDataModule", "batch_size": 64},
              "model": {"_target_": "src.models.mnist_module.MNISTLitModule",
                        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": lr, "weight_decay": 0.0},
                        "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True,
                                      "step_size": 2, "gamma": 0.1},
                        "net": {"output_size": 10}},
              "trainer": {"_target_": "lightning.pytorch.trainer.Trainer", "max_epochs": epochs,
                          "accelerator": "cpu"},
              "logger": {"csv": {"_target_": "lightning.pytorch.loggers.csv_logs.CSVLogger",
                                 "save_dir": "${paths.output_dir}", "name": "csv/", "prefix": ""}}}
    (hydra / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (hydra / "overrides.yaml").write_text(yaml.safe_dump([f"model.optimizer.lr={lr}", "logger=csv"]))
    (hydra / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"job": {"name": "train", "num": num}, "runtime": {"output_dir": str(job)}}}))


def lightning_hydra_multirun(root: Path, lrs: list[float], epochs: int = 3, tensorboard_jobs: tuple = ()) -> Path:
    """logs/train/multiruns/<date>/<time> as lightning-hydra-template writes it for
    `python src/train.py -m logger=csv model.optimizer.lr=...`: multirun.yaml, then per job .hydra/ and
    csv/version_0/metrics.csv (CSVLogger(save_dir=output_dir, name='csv/')), or tensorboard/version_0/."""
    sweep = root / "logs" / "train" / "multiruns" / "2026-11-30" / "06-00-00"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "mode": "MULTIRUN", "job": {"name": "train", "config_name": "train.yaml"},
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "overrides": {"task": ["logger=csv", "model.optimizer.lr=" + ",".join(str(v) for v in lrs)]}}}))
    for num, lr in enumerate(lrs):
        job = sweep / str(num)
        hydra_job(job, num, lr, epochs)
        if num in tensorboard_jobs:
            lightning_fit(job, lr=lr, epochs=epochs, names="slash", csv=None, tensorboard="tensorboard/",
                          revalidate=False)
        else:
            lightning_fit(job, lr=lr, epochs=epochs, names="slash", csv="csv/", revalidate=False)
    return sweep


def summary_writer_per_epoch(log_dir: Path, val_acc: list[float], train_loss: list[float]) -> None:
    """add_scalar(tag, value, epoch) with epoch from 0, the PyTorch tutorial's way."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as w:
        for epoch, (acc, loss) in enumerate(zip(val_acc, train_loss)):
            w.add_scalar("Loss/train", loss, epoch)
            w.add_scalar("Accuracy/val", acc, epoch)
            w.add_scalar("Loss/val", 1.0 - acc, epoch)


def summary_writer_per_step(log_dir: Path, epochs: int, steps_per_epoch: int, lr: float = 0.01) -> None:
    """Training loss per global step, validation once per epoch at its last step (global_step counted from 0)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as w:
        for e in range(epochs):
            for i in range(steps_per_epoch):
                step = e * steps_per_epoch + i
                w.add_scalar("train/loss", 2.0 / (1 + e) + 0.01 * i, step)
                w.add_scalar("lr", lr * (0.5 ** e), step)
            w.add_scalar("val/loss", 2.0 / (1 + e), (e + 1) * steps_per_epoch - 1)
            w.add_scalar("val/acc", 0.5 + 0.1 * e, (e + 1) * steps_per_epoch - 1)


def keras_tensorboard(log_dir: Path, train_loss: list[float], val_loss: list[float], val_acc: list[float],
                      train_acc: list[float] | None = None, lr: float | None = 0.001, steps_per_epoch: int = 20) -> None:
    """What keras.callbacks.TensorBoard (Keras 3 on TensorFlow 2) writes: log_dir/train/ and log_dir/validation/,
    each an event file of tensor scalars (plugin `scalars`) tagged epoch_loss, epoch_accuracy (and, in train/,
    epoch_learning_rate) at step = the 0-based epoch; validation/ also gets evaluation_*_vs_iterations at the
    iteration count. Written with tensorboard's own event writer and protos, as TensorFlow would."""
    import time

    import numpy as np
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))

    def write(folder: str, rows: list[tuple[int, str, float]]) -> None:
        w = EventFileWriter(str(log_dir / folder))
        for step, tag, value in rows:
            v = Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)), metadata=meta)
            w.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=[v])))
        w.close()

    train = []
    for e, loss in enumerate(train_loss):
        train.append((e, "epoch_loss", loss))
        if train_acc is not None:
            train.append((e, "epoch_accuracy", train_acc[e]))
        if lr is not None:
            train.append((e, "epoch_learning_rate", lr))
    val = []
    for e, (loss, acc) in enumerate(zip(val_loss, val_acc)):
        val += [(e, "epoch_loss", loss), (e, "epoch_accuracy", acc),
                ((e + 1) * steps_per_epoch, "evaluation_loss_vs_iterations", loss),
                ((e + 1) * steps_per_epoch, "evaluation_accuracy_vs_iterations", acc)]
    write("train", train)
    write("validation", val)


def write_yaml(path: Path, obj) -> None:
    path.write_text(yaml.safe_dump(obj))


def write_fixtures(out: Path) -> None:
    """tests/data/importers/lightning and lht: what Lightning 2.x wrote, committed so that the default tests
    read real files without installing Lightning (regenerate: python tests/importer_logs.py tests/data/importers)."""
    lightning_fit(out / "lightning", lr=0.1, epochs=4, csv="csv", tensorboard="tb")
    for num, lr in enumerate((0.01, 0.5)):
        job = out / "lht" / str(num)
        if num == 1:
            lightning_fit(job, lr=lr, epochs=3, names="slash", csv=None, tensorboard="tensorboard/", revalidate=False)
        else:
            lightning_fit(job, lr=lr, epochs=3, names="slash", csv="csv/", revalidate=False)


if __name__ == "__main__":
    import sys

    write_fixtures(Path(sys.argv[1]))
