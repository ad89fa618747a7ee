"""Optimizers and learning-rate schedules.

`build_optimizer(cfg.optimizer, cfg.regularization, params)` (regularization holds the weight
decay every optimizer applies) and `build_scheduler(cfg.scheduler, optimizer, epochs, steps_per_epoch)`:
each takes only its own sub-configs and plain values. The schedule hides whether the torch scheduler steps per batch or per epoch behind two
calls the loop makes in fixed places: `after_step()` and `after_epoch(val_loss)`.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch

from .config import OptimizerConf, RegularizationConf, SchedulerConf


def build_optimizer(cfg: OptimizerConf, reg: RegularizationConf, params: Iterable[torch.nn.Parameter],
                    fused: bool = False) -> torch.optim.Optimizer:
    """fused=True (CUDA): one kernel for the whole update, and GradScaler hands it the inf check on
    the device instead of reading it on the host every step (`_maybe_opt_step`'s `.item()`)."""
    params = list(params)
    weight_decay = reg.weight_decay
    kind = {"fused": True} if fused else {}
    if cfg.name == "sgd":
        sgd = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                              weight_decay=weight_decay, **kind)
        if fused and cfg.momentum > 0:
            # Fused SGD creates its momentum buffers with empty_like on the first step and lets the
            # kernel fill them; when GradScaler skips that step (an fp16 overflow, routine at the
            # initial scale) the kernel returns early and the buffers keep whatever memory held, which
            # the next step multiplies into the weights. Zeros give the same first update (dampening
            # is 0: 0.9 * 0 + g = g) and nothing undefined.
            for p in params:
                sgd.state[p]["momentum_buffer"] = torch.zeros_like(p)
        return sgd
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=weight_decay,
                                **kind)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=weight_decay,
                                 **kind)
    raise ValueError(f"optimizer={cfg.name} is unknown")


class Schedule:
    """A torch LR scheduler plus when to step it (per batch or per epoch on the validation loss)."""

    def __init__(self, scheduler: Optional[object], per_step: bool, on_val_loss: bool = False):
        self.scheduler = scheduler
        self.per_step = per_step
        self.on_val_loss = on_val_loss

    def after_step(self) -> None:
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.scheduler is None or self.per_step:
            return
        if self.on_val_loss:
            self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def build_scheduler(cfg: SchedulerConf, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> Schedule:
    sched = torch.optim.lr_scheduler
    total = max(1, epochs * steps_per_epoch)
    if cfg.name == "constant":
        return Schedule(None, per_step=False)
    if cfg.name == "plateau":
        return Schedule(sched.ReduceLROnPlateau(optimizer, mode="min", patience=cfg.patience, factor=cfg.factor,
                                                threshold=cfg.threshold, threshold_mode="rel",
                                                cooldown=cfg.cooldown, min_lr=cfg.min_lr),
                        per_step=False, on_val_loss=True)
    if cfg.name == "step":
        return Schedule(sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma), per_step=False)
    if cfg.name == "onecycle":
        return Schedule(sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                         total_steps=total, pct_start=cfg.pct_start, div_factor=cfg.div_factor,
                                         final_div_factor=cfg.final_div_factor), per_step=True)
    if cfg.name == "cosine":
        warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        base = optimizer.param_groups[0]["lr"]
        floor = min(cfg.min_lr / base, 1.0)

        def factor(step: int) -> float:  # LR multiplier for the step about to run
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return Schedule(sched.LambdaLR(optimizer, factor), per_step=True)
    raise ValueError(f"scheduler={cfg.name} is unknown")


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Restore a checkpoint's optimizer state into this run's optimizer, keeping this run's kernels.

    `load_state_dict` takes the saved param groups whole, `fused` and `foreach` included: a CPU
    checkpoint resumed on CUDA would lose the fused kernel, and GradScaler would then hand its
    device-side inf check to the plain kernel, which refuses it. Saved buffers also keep the saved
    memory layout, and the fused kernels want each buffer laid out like its (channels-last) weight.
    """
    kernels = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, kept in zip(optimizer.param_groups, kernels):
        group.update(kept)
    for p, state in optimizer.state.items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                state[name] = torch.empty_like(p, dtype=value.dtype).copy_(value)
