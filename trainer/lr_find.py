"""`python -m trainer.lr_find [overrides]`: Smith's LR range test on the configured model, data and optimizer.

The same overrides as a run build the same datasets (faults included), model and optimizer; then the LR rises
exponentially from START_LR to END_LR over NUM_STEPS training steps (Smith 2017, "Cyclical Learning Rates",
section 3.3; fastai's `lr_find` and Lightning's `Tuner.lr_find` use the same sweep) and the test stops once the
smoothed loss exceeds DIVERGE times its best. The schedule is left out (the test sets the LR itself) and so is
AMP (the loss is read every step: a probe, not a training run); gradient clipping and weight decay stay, since
they change what a given LR does.

The suggestion is the LR at the smoothed loss' minimum divided by 10 (fastai's `lr_min`): the last decade before
the minimum is where the loss falls fastest and still stably. The steepest point of the curve is recorded too.
It is printed as the `optimizer.lr=...` override for the configured scheduler: the LR itself for a constant,
step, plateau or cosine schedule (with a warmup, its target), onecycle's peak 3x higher (rundir/lr_find.py).

Writes lr_find.json (rundir/format.py names it and its fields) and lr_find.png into its own Hydra run
directory (outputs/lr_find/<date>/<time>/). `python -m analysis RUN` cites it as evidence for the LR causes
when its setup matches the run's; `--verify` adds its suggestion to the fixes it reruns.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig

from . import config as _schemas  # noqa: F401 - registers the structured-config schemas with Hydra
from .__main__ import config_dir
from .errors import UserError
from .hydra_errors import one_line_errors

START_LR, END_LR = 1e-7, 10.0  # the sweep's range (fastai's defaults): every optimizer's usable LR lies inside
NUM_STEPS = 100  # steps of the sweep (Smith: "a few epochs"; fastai and Lightning: 100)
# EMA coefficient of the loss, bias-corrected. fastai's and Lightning's 0.98 averages over ~50 steps, 4 of the
# sweep's 8 decades: its minimum lags the loss' by a factor of ~5 in LR. 0.9 averages over ~10 steps.
SMOOTHING = 0.9
DIVERGE = 4.0  # stop once the smoothed loss exceeds 4x its best (fastai's and Lightning's early stop)
SUGGEST_DIVISOR = 10.0  # suggested LR = the minimum's LR / 10 (fastai's lr_min)


def range_test(cfg, num_steps: int = NUM_STEPS, start_lr: float = START_LR, end_lr: float = END_LR) -> dict:
    """Run the sweep on a validated config (trainer.config.TrainConfig); returns lr_find.json's content."""
    import torch
    from torch import nn

    from rundir.format import LR_FIND_VERSION
    from rundir.lr_find import lr_override, setup_of

    from . import faults
    from .data import build_datasets, build_loaders, set_epoch
    from .loop import pick_device, plain, seed_everything
    from .models import build_model
    from .optim import build_optimizer

    t = cfg.trainer
    device = pick_device(t.device.value)
    seed_everything(t.seed, t.deterministic)
    data = faults.break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, t.seed), t.seed)
    loader, _ = build_loaders(data, cfg.data, seed=t.seed, pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise UserError(f"data.batch_size={cfg.data.batch_size} leaves no training batch")
    model = faults.break_model(cfg.fault, build_model(cfg.model)).to(device)
    optimizer = build_optimizer(cfg.optimizer, cfg.regularization, model.parameters())
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.regularization.label_smoothing)
    params = [p for p in model.parameters() if p.requires_grad]
    growth = (end_lr / start_lr) ** (1 / max(1, num_steps - 1))

    def batches():
        epoch = 1
        while True:
            set_epoch(loader, epoch)
            yield from loader
            epoch += 1

    lrs, losses = [], []
    avg, best, stopped = 0.0, math.inf, f"reached {end_lr:g} after {num_steps} steps"
    model.train()
    for step, (x, y) in zip(range(num_steps), batches()):
        lr = start_lr * growth ** step
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = x.to(device), y.to(device)
        loss = criterion(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.regularization.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.regularization.grad_clip)
        optimizer.step()
        value = float(loss.item())  # one host read per step: this is a probe, not training
        if not math.isfinite(value):
            stopped = f"the loss became non-finite at LR {lr:.3g} (step {step + 1})"
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        s = avg / (1 - SMOOTHING ** (step + 1))  # ema(losses)[-1], kept as it runs
        lrs.append(lr)
        losses.append(value)
        best = min(best, s)
        if s > DIVERGE * best:
            stopped = f"the smoothed loss exceeded {DIVERGE:g}x its best at LR {lr:.3g} (step {step + 1})"
            break
    smoothed = zero_lag(losses)  # the suggestion is read off a curve without the running average's lag
    result = suggest(lrs, smoothed)
    config = plain(cfg)
    return {"version": LR_FIND_VERSION, "lrs": lrs, "losses": losses, "smoothed_losses": smoothed,
            **result, "stopped": stopped, "start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps,
            "smoothing": SMOOTHING, "diverge_factor": DIVERGE, "device": str(device),
            "scheduler": config["scheduler"], "override": (lr_override(result["suggested_lr"], config["scheduler"])
                                                         if result["suggested_lr"] else None),
            "setup": setup_of(config)}


def ema(values: list[float], beta: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average (the early stop's running loss)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def zero_lag(values: list[float], beta: float = SMOOTHING) -> list[float]:
    """The EMA run forward, then backward over its result: the same smoothing, centred (no lag)."""
    return ema(ema(values, beta)[::-1], beta)[::-1]


def suggest(lrs: list[float], smoothed: list[float]) -> dict:
    """suggested_lr and how it was chosen, from the smoothed curve (None when the sweep recorded too little)."""
    import numpy as np

    if len(lrs) < 5:
        return {"suggested_lr": None, "method": f"too few steps recorded ({len(lrs)}) to suggest an LR",
                "lr_at_min_loss": None, "steepest_lr": None}
    s = np.asarray(smoothed)
    i_min = int(np.argmin(s))
    slope = np.gradient(s, np.log(np.asarray(lrs)))
    i_steep = int(np.argmin(slope[:max(i_min, 1)]))  # the steepest fall before the minimum
    lr_min = float(lrs[i_min])
    return {"suggested_lr": float(f"{lr_min / SUGGEST_DIVISOR:.3g}"),
            "method": f"the LR at the smoothed loss' minimum ({lr_min:.3g}, loss {s[i_min]:.4g}) / {SUGGEST_DIVISOR:g}",
            "lr_at_min_loss": lr_min, "steepest_lr": float(lrs[i_steep])}


def how_it_reads(result: dict) -> str:
    """The lines printed at the end."""
    from rundir.lr_find import ONECYCLE_PEAK

    sched = result["scheduler"].get("name")
    if result["suggested_lr"] is None:
        return f"lr_find: no suggestion: {result['method']}; {result['stopped']}"
    what = {"onecycle": f"onecycle's peak ({ONECYCLE_PEAK:g}x the suggestion)"}.get(
        sched, "the warmup's target" if result["scheduler"].get("warmup_epochs") else f"the {sched} schedule's starting (highest) LR")
    return (f"lr_find: suggested LR {result['suggested_lr']:.3g}: {result['method']}; {result['stopped']}\n"
            f"for scheduler={sched}, optimizer.lr is {what}:\n  {result['override']}")


def plot(result: dict, path: Path) -> None:
    import matplotlib  # lazily: only lr_find draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(result["lrs"], result["losses"], color="0.75", lw=1, label="loss")
    ax.plot(result["lrs"], result["smoothed_losses"], color="C0", lw=2, label="smoothed loss")
    if result["suggested_lr"]:
        ax.axvline(result["suggested_lr"], color="C3", ls="--", label=f"suggested {result['suggested_lr']:.3g}")
    if result["smoothed_losses"]:  # the diverged tail would squash the curve that matters
        ax.set_ylim(0, 1.5 * max(result["smoothed_losses"][0], min(result["losses"])))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def find(cfg: DictConfig, out_dir: Path) -> dict:
    from rundir.files import write_json
    from rundir.format import LR_FIND_JSON, LR_FIND_PNG

    from .config import validate

    result = range_test(validate(cfg))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / LR_FIND_JSON, result)
    plot(result, out_dir / LR_FIND_PNG)
    print(how_it_reads(result))
    print(f"wrote {out_dir / LR_FIND_JSON} and {out_dir / LR_FIND_PNG}")
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="lr_find")
def _main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        find(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)


def main() -> None:
    with one_line_errors():
        _main()


if __name__ == "__main__":
    main()
