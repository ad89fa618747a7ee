"""The machine a run uses: its device, mixed precision, seeding and determinism, and library versions.

Set-up helpers of `trainer.loop.train`; each takes plain values (a device name, `trainer.amp`, the seed).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
from typing import Callable

import numpy as np
import torch

from .errors import ConfigError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but CUDA is not available on this machine (use trainer.device=auto or cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("trainer.device=mps but MPS is not available on this machine (use trainer.device=auto or cpu)")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def make_autocast(device: torch.device, amp: str) -> Callable[[], contextlib.AbstractContextManager]:
    if amp == "none":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def library_versions() -> dict:
    import hydra
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "hydra": hydra.__version__}
