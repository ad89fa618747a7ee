"""Checkpoints: atomic saves, safe loads, and the random state that makes a resume exact.

A checkpoint holds only tensors and plain Python values, so it loads with
`torch.load(weights_only=True)`; anything else is refused. The random state of Python, numpy and
torch (and CUDA) is saved with it; the data order needs none, since each epoch's permutation comes
from (seed, epoch) alone.
"""

from __future__ import annotations

import io
import pickle
import random
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from rundir.files import atomic_write

from .errors import CheckpointError

FORMAT = "traindx-checkpoint-1"
LAST, BEST = "last.pt", "best.pt"

# Config keys that decide the shape of the saved state: a checkpoint made with other values
# belongs to another run.
IDENTITY_KEYS = (("model", "name"), ("model", "width"), ("model", "norm"), ("model", "num_classes"), ("model", "in_channels"),
                 ("data", "name"), ("optimizer", "name"))


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"key": np_state[0], "state": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tupled(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # One state per GPU the saving process saw; a resume may see fewer (another node, fewer ranks).
        for device, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)


def _tupled(x: Any) -> Any:
    """random.setstate wants nested tuples; a round trip may hand back lists."""
    return tuple(_tupled(v) for v in x) if isinstance(x, (list, tuple)) else x


def save(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-save leaves the previous file intact."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    data = buffer.getvalue()
    atomic_write(path, lambda f: f.write(data))


def load(path: Path, map_location: Any = "cpu") -> dict:
    """Load with weights_only=True; CheckpointError for a corrupt, truncated or foreign file."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; the one fact that matters is the global it refused to load
        # ("Unsupported global: GLOBAL argparse.Namespace", "unsupported GLOBAL posix.system whose module
        # ..."): every pickled object or function names one. Without one the bytes are no pickle at all.
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(e))
        if unsafe:
            raise CheckpointError(f"{path}: refused, it holds a pickled {unsafe.group(1)}; checkpoints load with "
                                  f"weights_only=True, which allows only tensors and plain values") from None
        raise CheckpointError(f"{path}: corrupt or not a checkpoint (torch.load cannot parse it)") from None
    except (IsADirectoryError, PermissionError, FileNotFoundError) as e:  # the file system refused
        raise CheckpointError(f"{path}: cannot read the checkpoint: {e.strerror or e}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as e:
        # torch reports a zip cut short as RuntimeError or as OSError EINVAL, depending on where the cut
        # falls. First sentence only: torch appends advice about how checkpoints get corrupted.
        detail = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else "empty file"
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {detail})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a traindx checkpoint (no '{FORMAT}' marker)")
    return state


def check_identity(state: dict, config: dict, path: Path) -> None:
    """Refuse a checkpoint made for another model or dataset."""
    saved = state.get("config") or {}
    for group, key in IDENTITY_KEYS:
        old = (saved.get(group) or {}).get(key)
        new = (config.get(group) or {}).get(key)
        if old != new:
            raise CheckpointError(f"{path} belongs to another run ({group}.{key}={old!r}, this run has {new!r}); "
                                  f"use another hydra.run.dir or trainer.resume=false to start over")


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (diagnostics.dir and resume aside)."""
    out = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, dotted + ".")
        elif a != b and dotted not in ("diagnostics.dir", "trainer.resume"):
            out.append(f"{dotted}: {a!r} -> {b!r}")
    return out


def find_resumable(directory: Path) -> Optional[Path]:
    path = Path(directory) / LAST
    return path if path.exists() else None


def discard(directory: Path) -> None:
    """Delete last.pt and best.pt of an earlier run in this directory (trainer.resume=false starts over)."""
    for name in (LAST, BEST):
        path = Path(directory) / name
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CheckpointError(f"{path}: cannot remove the earlier run's checkpoint: {e.strerror or e}") from None
