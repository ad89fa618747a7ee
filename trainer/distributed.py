"""The torch.distributed side of a DDP run: join the group, wrap the model, per-epoch collectives.

Inside a training step the only communication is DDP's own gradient all-reduce. Everything here
runs at the epoch's end, where the loop already reads the device once:

- `all_reduce_sum_`: what each rank counted on its own share of the data (loss and accuracy sums,
  sample counts, per-step losses, ReLU activity, validation sums) adds up to the one-process value;
- `max_and_min`: one MAX all-reduce of (x, -x) gives max and min together; the Collector uses it to
  check that what DDP makes identical on every rank (the averaged gradient's norm) is identical;
- `average_buffers_`: BatchNorm running statistics are per rank (DDP is told not to broadcast them
  every step); they are averaged once per epoch, before validation and the checkpoint;
- `share` (rank 0's run directory) and `agree` (stop together) are one small collective each.

Every function is a no-op in a single process, so the Collector and `evaluate` call them always.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError
from .ranks import Ranks


def active() -> bool:
    """True in a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def start(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo otherwise); returns this rank's device."""
    if not ranks.distributed:
        return device
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run a single process")
    if device.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={ranks.local_rank} but this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s): start at most that many processes per node")
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"DDP runs on cuda (NCCL) or cpu (gloo), not {device.type}")
    if not dist.is_initialized():
        # env:// reads MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE, set by torchrun (or exported from submitit).
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return device


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the model (the model itself in a single process).

    BatchNorm buffers are not broadcast at every forward (a per-step collective); they are averaged
    once per epoch instead (`average_buffers_`), as timm's `--dist-bn reduce` does.
    """
    if not active():
        return model
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    buffers = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, **buffers)


def share(obj: Any) -> Any:
    """Rank 0's value of obj, on every rank (a picklable object; used once, for the run directory)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum t over the ranks, in place."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def max_and_min(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise max and min of t over the ranks, from one MAX all-reduce of (t, -t)."""
    if not active():
        return t, t
    both = torch.cat([t.reshape(-1), -t.reshape(-1)])
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    n = t.numel()
    return both[:n].view_as(t), -both[n:].view_as(t)


@torch.no_grad()
def average_buffers_(model: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running mean and variance) over the ranks, in place."""
    if not active():
        return
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.reshape(-1).float() for b in buffers])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    for b, v in zip(buffers, flat.split([b.numel() for b in buffers])):
        b.copy_(v.view_as(b))


def agree(*flags: bool) -> tuple[bool, ...]:
    """Each flag is true on every rank if it is true on any: ranks leave the loop at the same epoch."""
    if not active():
        return tuple(bool(f) for f in flags)
    t = torch.tensor([float(bool(f)) for f in flags])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())
