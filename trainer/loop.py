"""The training loop: train(cfg, run_dir) -> best validation accuracy.

Reads top to bottom: set-up, resume, then per epoch the training steps, validation, the
diagnostics records, live findings and checkpoints. Diagnostics never sync the host inside a step;
the only host reads are at the end of each epoch (the progress bar on a terminal reads an
asynchronous copy). Under torchrun the same function runs on every rank (see distributed.py): DDP
wraps the model, each rank trains on its share of every batch, the epoch's diagnostics are reduced
across ranks, and only rank 0 writes files and logs.
"""

from __future__ import annotations

import logging
import math
import signal
import time
import uuid
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from rundir.files import NOWHERE, JsonlWriter, Status, remove_stale_temporaries, truncate_jsonl, write_json
from rundir.format import (CHECKPOINTS, CONFUSION_FIELD, CONFUSION_INLINE_MAX, CONFUSION_JSONL, DIAGNOSTICS,
                           DIAGNOSTICS_POINTER, DUPLICATE_IMAGES, POINTER_KEY, RUN_ID, RUN_INFO, STATUS, TRAIN_JSONL,
                           VAL_JSONL)
from rundir.read import read_jsonl
from rundir.safe import read_json

from . import checkpoint, distributed, duplicates, faults, per_sample, preflight, val_predictions
from .config import TrainConfig, plain
from .data import (batch_stats, build_datasets, build_loaders, check_labels, epoch_indices, set_epoch,
                   val_indices)
from .device_data import build_device_loaders, use_device_loader
from .diagnostics import Collector, evaluate
from .job import Job
from .errors import ConfigError, StopRun
from .live import LiveFindings
from .loggers import build_logger
from .machine import library_versions, make_autocast, pick_device, seed_everything
from .models import build_model
from .optim import build_optimizer, build_scheduler, current_lr, load_optimizer_state
from .progress import Progress
from .ranks import Ranks
from .signals import INTERRUPTED, Preempted, StopSignal

log = logging.getLogger("trainer")

# ───────────────────────────── the run ─────────────────────────────


def train(cfg: TrainConfig, run_dir: Path, ranks: Optional[Ranks] = None, job: Optional[Job] = None) -> float:
    """Train as configured, writing diagnostics; returns the best validation accuracy.

    ranks: this process's place in a torchrun/submitit run (default: a single process). The caller
    joins nothing; `distributed.start` below does, and `distributed.close()` ends it.
    job: what Hydra says about this launch (trainer/job.py): its identity, saved with each checkpoint
    and compared on resume; None when train() is called without Hydra.
    """
    ranks = ranks or Ranks()
    job = job or Job()
    main = ranks.is_main  # the only rank that writes files and logs
    run_dir = Path(run_dir)
    diag_dir = Path(cfg.diagnostics.dir)
    ckpt_dir = run_dir / CHECKPOINTS
    config = plain(cfg)
    t = cfg.trainer

    # ── set-up: nothing is written, replaced or removed before every input has been checked ──
    device = pick_device(t.device.value)
    amp = t.amp.value
    if amp == "fp16" and device.type == "mps":
        raise ConfigError("trainer.amp=fp16 is not supported on mps; use trainer.amp=none")
    batch_size = ranks.share_of_batch(cfg.data.batch_size)  # per rank; data.batch_size is the global batch
    # DDP: join the process group; every rank takes rank 0's directories (Hydra's ${now:} differs per rank).
    device = distributed.start(ranks, device)
    run_dir, diag_dir = (Path(p) for p in distributed.share((str(run_dir), str(diag_dir))))
    ckpt_dir = run_dir / CHECKPOINTS
    if main:
        preflight.check_diagnostics_dir(diag_dir, run_dir)
    earlier = read_json(diag_dir / RUN_INFO, []) or {}  # an earlier launch's facts, if any
    resume_from = checkpoint.find_resumable(ckpt_dir) if t.resume else None
    saved = None
    if resume_from is not None:
        saved = checkpoint.load_for_resume(resume_from)
        checkpoint.check_identity(saved, config, resume_from)
        checkpoint.check_job(saved, config, job.identity(), earlier.get(RUN_ID), resume_from)
        changed = checkpoint.changed_keys(saved.get("config") or {}, config)
        if changed:
            log.warning("resuming with a changed config (%s); per-step schedules continue from the saved step",
                        ", ".join(changed))

    seed_everything(t.seed, t.deterministic)
    data = faults.break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, t.seed), t.seed)
    channels_last = device.type == "cuda"
    # The GPU fast path holds tensor datasets on the device and augments there (device_data.py).
    on_device = use_device_loader(cfg.data, cfg.augmentation, data, device)
    if on_device:
        train_loader, val_loader = build_device_loaders(data, cfg.data, cfg.augmentation, seed=t.seed, device=device,
                                                        ranks=ranks, channels_last=channels_last)
    else:
        train_loader, val_loader = build_loaders(data, cfg.data, seed=t.seed, pin_memory=device.type == "cuda",
                                                 ranks=ranks)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} leaves no training batch")
    if cfg.data.batch_size > len(data.train):
        log.warning("data.batch_size=%d is more than the %d training images: one step per epoch",
                    cfg.data.batch_size, len(data.train))

    model = build_model(cfg.model)
    preflight.check_shapes(data.val, cfg.data, model, cfg.model.name)  # before a fault breaks it: a shape check only
    model = faults.break_model(cfg.fault, model)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    ddp_model = distributed.wrap(model, device)  # the model itself in a single process
    optimizer = build_optimizer(cfg.optimizer, cfg.regularization, model.parameters(), fused=device.type == "cuda")
    schedule = build_scheduler(cfg.scheduler, optimizer, t.epochs, steps_per_epoch)
    criterion = nn.CrossEntropyLoss(weight=class_weights(cfg.regularization.class_weights, data.facts["class_counts"],
                                                         device), label_smoothing=cfg.regularization.label_smoothing)
    autocast = make_autocast(device, amp)
    scaler = faults.break_scaler(cfg.fault, torch.amp.GradScaler(device.type) if amp == "fp16" else None)
    forward = torch.compile(ddp_model) if t.compile else ddp_model
    # Validation: each rank runs its own share through the bare module; DDP's forward is for training.
    eval_forward = forward if ddp_model is model else (torch.compile(model) if t.compile else model)
    grad_clip = cfg.regularization.grad_clip
    collector = Collector(model, steps_per_epoch, device, grad_clip, cfg.diagnostics.update_every,
                          enabled=cfg.diagnostics.enabled,
                          probe_activations=not t.compile,  # hooks would force recompiles
                          labels=data.train.labels)
    # Each validation image's predicted probabilities, kept on the device, written when val accuracy improves.
    predictions = (val_predictions.ValPredictions(val_indices(val_loader), len(data.val), cfg.data.num_classes, device)
                   if cfg.diagnostics.enabled else None)
    params = [p for p in model.parameters() if p.requires_grad]
    logger = build_logger(cfg.logger, run_dir) if main else NOWHERE  # a viewer of the JSONL records (docs/logging.md)

    start_epoch, start_step = 1, 0
    best_acc, best_epoch = -1.0, None
    if saved is not None:
        checkpoint.check_fits(saved, model, optimizer, resume_from, schedule)
        checkpoint.check_schedule_length(saved, config, steps_per_epoch, resume_from)
        model.load_state_dict(saved["model"])
        load_optimizer_state(optimizer, saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        best_acc = saved["best_val_accuracy"]
        best_epoch = saved["best_epoch"]
        start_epoch, start_step = saved["epoch"] + 1, saved.get("step", 0)
        checkpoint.set_rng_state(saved["rng"])
        if saved.get("collector") is not None:
            collector.load_state_dict(saved["collector"], device, counts=main)  # DDP: rank 0 carries the sums
    input_stats = batch_stats(data.val, 256, t.seed) if main else {}  # un-augmented: batch_stats says why
    preflight.check_inputs(input_stats, cfg.data)
    run_info = {
        RUN_ID: (saved or {}).get("run_id") or uuid.uuid4().hex,
        "run_dir": str(run_dir.resolve()),
        **data.facts,
        **input_stats,
        # Copies across the split by content (the index overlap cannot see them); rank 0 alone.
        **({DUPLICATE_IMAGES: duplicates.check(data, t.seed)} if main and cfg.diagnostics.duplicates else {}),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "amp": amp,
        "steps_per_epoch": steps_per_epoch,
        "loader": "device" if on_device else "dataloader",
        "world_size": ranks.world_size,  # DDP processes; each takes data.batch_size / world_size per step
        "resumed_from_epoch": start_epoch - 1 if saved is not None else None,
        "versions": library_versions(),
        "config": config,
    }
    if earlier:  # a run of this directory's before: a run that cannot train replaces none of its files
        check_labels(data.facts, cfg.data.num_classes)

    # ── every check passed: from here on this launch owns the directory ──
    if main:
        job.accept()  # .hydra/ is this launch's (trainer/job.py)
    if main and not t.resume:
        # Starting over: the earlier run's checkpoints go first, its diagnostics lines next (below). In
        # the other order a crash in between would leave its last.pt for the next launch to resume on
        # top of emptied JSONL files.
        checkpoint.discard(ckpt_dir)
    # Drop diagnostics of epochs the checkpoint does not cover (a crash after the lines were written).
    for name in (TRAIN_JSONL, VAL_JSONL, CONFUSION_JSONL):
        if main:
            truncate_jsonl(diag_dir / name, start_epoch - 1)
    if main:
        per_sample.discard_after(diag_dir, start_epoch - 1)
        val_predictions.discard_after(diag_dir, start_epoch - 1)
    # Temporary files of atomic writes that a killed run left behind (a checkpoint's can be large).
    if main:  # rank 0 owns the run directory
        for directory in (ckpt_dir, diag_dir):
            remove_stale_temporaries(directory)
    moved_from = earlier.get("run_dir") if saved is not None else None
    if main and isinstance(moved_from, str) and moved_from != run_info["run_dir"]:
        log.info("the run directory moved from %s to %s; resuming it there (the run id, not the path, is "
                 "the run's identity)", moved_from, run_info["run_dir"])

    status = (Status(diag_dir / STATUS, t.epochs, resumed=saved is not None) if main
              else NOWHERE)  # only rank 0 writes
    # From the moment status.json says "running", a failure or a stop signal is recorded in it: SIGTERM
    # or SIGUSR2 during the rest of the set-up stops the run after its first step, with a checkpoint.
    stop = StopSignal()
    train_log = val_log = confusion_log = NOWHERE
    try:
        stop.install()
        if main:  # run_info.json first: it is the mark of a traindx run (rundir.format.RUN_ID)
            write_json(diag_dir / RUN_INFO, run_info)
            per_sample.write_labels(diag_dir, data.train.labels)
            if diag_dir.resolve() != (run_dir / DIAGNOSTICS).resolve():  # DIAGNOSTICS_DIR, diagnostics.dir
                write_json(run_dir / DIAGNOSTICS_POINTER, {POINTER_KEY: str(diag_dir.resolve())})
        status.update(epoch=start_epoch - 1, best_val_accuracy=best_acc if best_epoch else None, best_epoch=best_epoch)
        if saved is not None:
            log.info("resumed from %s at epoch %d%s", resume_from, start_epoch - 1,
                     f", step {start_step}" if start_step else "")
        log.info("%s: %d train / %d val images, %d classes; %s on %s, %d parameters",
                 cfg.data.name, len(data.train), len(data.val), cfg.data.num_classes, cfg.model.name, device,
                 run_info["num_parameters"])

        # Live findings run on rank 0 only; under DDP its decision to stop is shared below.
        live = (LiveFindings(config, run_info, t.stop_on, read_jsonl(diag_dir / TRAIN_JSONL, []),
                             read_jsonl(diag_dir / VAL_JSONL, []), t.stop_persist_epochs, diag_dir) if main else None)
        train_log, val_log = ((JsonlWriter(diag_dir / TRAIN_JSONL), JsonlWriter(diag_dir / VAL_JSONL)) if main
                              else (NOWHERE, NOWHERE))
        # Many classes: the confusion matrices get their own file (rundir/format.py), the VAL records stay small.
        confusion_apart = cfg.diagnostics.enabled and cfg.data.num_classes > CONFUSION_INLINE_MAX
        confusion_log = JsonlWriter(diag_dir / CONFUSION_JSONL) if main and confusion_apart else NOWHERE

        def save_checkpoint(epoch: int, step: int, path_name: str = checkpoint.LAST) -> None:
            if not main:
                return
            checkpoint.save(ckpt_dir / path_name, {
                "epoch": epoch, "step": step, "run_id": run_info[RUN_ID],
                "job": job.identity(),  # compared on resume (checkpoint.check_job)
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "best_val_accuracy": best_acc, "best_epoch": best_epoch,
                "rng": checkpoint.rng_state(),
                "collector": collector.state_dict() if step else None,
                # A mid-epoch checkpoint keeps the LR the epoch began with: per-step schedules have moved
                # it since, and the epoch's record reports the one in effect when it began.
                "epoch_lr": lr if step else None,
                "config": config,
            })

        check_labels(data.facts, cfg.data.num_classes)  # after run_info.json, so the analysis sees the labels
        for epoch in range(start_epoch, t.epochs + 1):
            # ── train one epoch ──
            first_step = start_step if epoch == start_epoch else 0
            # The epoch's order and augmentation draws, from (seed, epoch, rank) alone (data.py).
            set_epoch(train_loader, epoch, skip=first_step * batch_size)
            if first_step == 0:
                collector.start_epoch()
            collector.order_samples(epoch_indices(train_loader), skip=first_step * batch_size)
            model.train()
            lr = current_lr(optimizer)
            if first_step and saved is not None and saved.get("epoch_lr") is not None:
                lr = saved["epoch_lr"]  # resumed mid-epoch: the LR when this epoch began
            progress = Progress(steps_per_epoch - first_step, epoch, t.epochs, collector.running_loss, show=main)
            t0 = time.perf_counter()
            for step, (x, y) in enumerate(train_loader, start=first_step):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                probe = collector.is_probe_step(step)
                if probe:
                    collector.probe.attach()
                with autocast():
                    logits = forward(x)
                    loss = criterion(logits.float(), y)
                if probe:
                    collector.probe.detach()
                collector.on_loss(loss, logits, y)

                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)  # unscale before clipping: the seed's critical fix
                else:
                    loss.backward()
                norm = collector.grad_norm()  # recorded unscaled, before clipping
                if grad_clip is not None:
                    _clip(params, grad_clip, norm)

                collector.before_update()
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                collector.after_update()
                schedule.after_step()
                progress.update()
                # Mid-epoch stop in a single process only: DDP ranks would have to agree on it every
                # step (a collective); they stop together at the epoch's end instead (below).
                if stop.received and step < steps_per_epoch - 1 and not ranks.distributed:
                    progress.close()
                    save_checkpoint(epoch - 1, step + 1)
                    raise stop.preempted()
            progress.close()
            train_record = collector.end_epoch()  # the epoch's one host sync
            train_time = time.perf_counter() - t0

            # ── validate ──
            t1 = time.perf_counter()
            distributed.average_buffers_(model)  # DDP: one set of BatchNorm statistics for every rank
            val_record = evaluate(eval_forward, val_loader, device, criterion, autocast, cfg.data.num_classes,
                                  channels_last, confusion=cfg.diagnostics.enabled, predictions=predictions)
            val_time = time.perf_counter() - t1
            lr_end = current_lr(optimizer)
            schedule.after_epoch(val_record["loss"] if val_record["loss"] is not None else math.inf)

            # ── record ──
            train_record = {"epoch": epoch, **train_record,
                            "learning_rate": lr,  # in effect when the epoch began
                            "learning_rate_end": lr_end,  # after its last step (per-step schedules move it)
                            "epoch_time_s": round(train_time, 4),
                            "samples_per_s": round(train_record["num_samples"] / max(train_time, 1e-9), 2)}
            if scaler is not None:
                train_record["amp_scale"] = float(scaler.get_scale())
            val_record = {"epoch": epoch, **val_record, "val_time_s": round(val_time, 4)}
            if confusion_apart:
                confusion_log.write({"epoch": epoch, CONFUSION_FIELD: val_record.pop(CONFUSION_FIELD)})
                confusion_log.sync()
            train_log.write(train_record)
            val_log.write(val_record)
            if main and collector.sample_arrays is not None:  # each training image's loss, margin, prediction
                per_sample.write_epoch(diag_dir, epoch, collector.sample_arrays)
            train_log.sync()
            val_log.sync()

            improved = val_record["accuracy"] > best_acc  # the same on every rank: the accuracy is all-reduced
            if improved:
                best_acc, best_epoch = val_record["accuracy"], epoch
                if predictions is not None:  # the best pass's probabilities: a collective, then rank 0 writes
                    arrays = predictions.gather()
                    if main:
                        val_predictions.write(diag_dir, epoch, arrays)
            log.info(epoch_summary(epoch, t.epochs, train_record, val_record))

            # ── live findings ──
            stop_finding = live.epoch_end(epoch, train_record, val_record) if live is not None else None
            logger.epoch(epoch, train_record, val_record, live.fired if live is not None else [])
            if ranks.distributed:
                # Every rank leaves at the same epoch: rank 0's finding or any rank's signal decides.
                stop_all, signal_all = distributed.agree(stop_finding is not None, stop.received is not None)
                if stop_all and stop_finding is None:
                    stop_finding = StopRun("stopped_on_rank_0", "rank 0 stopped the run on a live finding")
                if signal_all and stop.received is None:
                    stop.received = signal.SIGTERM

            # ── checkpoints and status ──
            if stop_finding is not None:  # keep the last good checkpoint: this epoch's state is suspect
                status.update(epoch=epoch, best_val_accuracy=best_acc, best_epoch=best_epoch)
                raise stop_finding
            if improved:
                save_checkpoint(epoch, 0, checkpoint.BEST)
            save_checkpoint(epoch, 0)
            status.update(epoch=epoch, best_val_accuracy=best_acc, best_epoch=best_epoch)
            if stop.received and epoch < t.epochs:  # after the last epoch the run is complete
                raise stop.preempted()
        if main and collector.sample_arrays is not None:
            per_sample.write_top_losses(diag_dir, data.train, collector.sample_arrays)
        status.update(status="completed")
        log.info("done: best validation accuracy %.4f at epoch %s; the run is in %s", best_acc, best_epoch,
                 run_info["run_dir"])
        return float(best_acc)
    except Preempted as e:
        status.update(status="preempted", error=str(e))
        log.warning("preempted: %s; the run is in %s", e, run_info["run_dir"])
        raise
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the handlers were installed
        status.update(status="preempted", error=INTERRUPTED)
        raise
    except StopRun as e:
        status.fail(str(e), finding=e.finding_id)
        log.error("stopped: %s", e)
        raise
    except Exception as e:
        status.fail(f"{type(e).__name__}: {e}")
        raise
    finally:
        stop.restore()
        train_log.close()
        val_log.close()
        confusion_log.close()
        logger.close(best_acc if best_epoch is not None else None)


def class_weights(kind: str, counts: list[int], device: torch.device) -> Optional[torch.Tensor]:
    """regularization.class_weights=balanced: n / (C * count) per class (1 for a class with no images)."""
    if kind == "none":
        return None
    n = torch.tensor(counts, dtype=torch.float32)
    return torch.where(n > 0, n.sum() / (len(counts) * n.clamp_min(1)), torch.ones_like(n)).to(device)


def _clip(params: list[torch.Tensor], max_norm: float, total_norm: Optional[torch.Tensor]) -> None:
    """Scale gradients so their global norm is at most max_norm, reusing the norm already measured."""
    if total_norm is None:
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    else:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total_norm, foreach=True)


def epoch_summary(epoch: int, epochs: int, tr: dict, va: dict) -> str:
    def f(x, spec=".4f"):
        return "nan" if x is None else format(x, spec)

    top5 = f"  top5 {va['top5_accuracy']:.4f}" if "top5_accuracy" in va else ""
    grad = f"  grad {f(tr.get('mean_grad_norm'), '.3g')}" if "mean_grad_norm" in tr else ""
    return (f"epoch {epoch}/{epochs}  train loss {f(tr['loss'])} acc {tr['accuracy']:.4f}  "
            f"| val loss {f(va['loss'])} acc {va['accuracy']:.4f}{top5}  | lr {tr['learning_rate']:.3g}{grad}  "
            f"| {tr['epoch_time_s']:.1f}s {tr['samples_per_s']:.0f} img/s")
