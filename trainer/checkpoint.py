"""Checkpoints: atomic saves, safe loads, and the random state that makes a resume exact.

A checkpoint holds only tensors and plain Python values, so it loads with
`torch.load(weights_only=True)`; anything else is refused. The random state of Python, numpy and
torch (and CUDA) is saved with it; the data order needs none, since each epoch's permutation comes
from (seed, epoch) alone.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
import stat
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from rundir.files import atomic_write
from rundir.format import BEST_CHECKPOINT, CHECKSUM_SUFFIX, LAST_CHECKPOINT

from .errors import CheckpointError

FORMAT = "traindx-checkpoint-1"
LAST, BEST = LAST_CHECKPOINT, BEST_CHECKPOINT
KEPT_CHECKSUMS = 3  # digests listed: the current one and two before it (a save can die between its two renames)

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


def checksum_path(path: Path) -> Path:
    """`last.pt` -> `last.pt.sha256`: the SHA-256 of the checkpoint's bytes, written with it."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _accepted_checksums(path: Path) -> list[str]:
    """The digests in path's checksum file ([] when there is none: a checkpoint of an earlier version)."""
    side = checksum_path(path)
    try:
        return side.read_text(encoding="ascii").split()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not a checksum file"
        raise CheckpointError(f"{side}: cannot read the checkpoint's checksum: {reason}") from None


def save(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-save leaves the previous file intact.

    The checksum file goes first and names the new digest and those it replaces, so a crash between the
    two replacements leaves a checkpoint that still verifies (the previous one, even after such crashes
    KEPT_CHECKSUMS - 1 times in a row).
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    data = buffer.getvalue()
    try:
        previous = _accepted_checksums(path)[: KEPT_CHECKSUMS - 1]
    except CheckpointError:  # an unreadable old checksum is replaced, not kept
        previous = []
    digests = [hashlib.sha256(data).hexdigest(), *previous]
    atomic_write(checksum_path(path), lambda f: f.write("".join(d + "\n" for d in digests)), mode="w")
    atomic_write(path, lambda f: f.write(data))


def _read_regular_file(path: Path) -> bytes:
    """path's bytes; CheckpointError for anything that is not a regular file (a FIFO would block
    torch.load forever, a symlink loop has no content) or cannot be read."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
            raise CheckpointError(f"{path}: cannot read the checkpoint: it is {kind}, not a regular file")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {e.strerror or e}") from None


def load(path: Path, map_location: Any = "cpu") -> dict:
    """Load with weights_only=True; CheckpointError for a corrupt, truncated, altered or foreign file."""
    path = Path(path)
    data = _read_regular_file(path)
    accepted = _accepted_checksums(path)
    if accepted and hashlib.sha256(data).hexdigest() not in accepted:
        raise CheckpointError(f"{path}: checksum mismatch, its bytes changed after it was written (a disk or copy "
                              f"error); resume from {BEST} instead (copy it and its {BEST}{CHECKSUM_SUFFIX} over "
                              f"{LAST} and its {LAST}{CHECKSUM_SUFFIX}) or start over with trainer.resume=false")
    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
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


def load_for_resume(path: Path) -> dict:
    """load(), then check_structure(): a state the loop can restore without a surprise."""
    state = load(path)
    check_structure(state, path)
    return state


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# key -> (what it must be, test); optional keys may also be None or absent.
_REQUIRED = {
    "epoch": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
    "step": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
    "run_id": ("a string", lambda v: isinstance(v, str)),
    "config": ("a dict", lambda v: isinstance(v, dict)),
    "model": ("a dict of tensors", lambda v: isinstance(v, dict) and bool(v)
              and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items())),
    "optimizer": ("an optimizer state with param groups", lambda v: isinstance(v, dict)
                  and isinstance(v.get("state"), dict) and isinstance(v.get("param_groups"), list)
                  and bool(v["param_groups"]) and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                                      and all(_is_int(i) for i in g["params"])
                                                      for g in v["param_groups"])),
    "scheduler": ("a dict", lambda v: isinstance(v, dict)),
    "best_val_accuracy": ("a number", _is_number),
    "rng": ("a random state", lambda v: isinstance(v, dict)),
}
_OPTIONAL = {
    "best_epoch": ("an int", _is_int),
    "scaler": ("a dict", lambda v: isinstance(v, dict)),
    "collector": ("a dict with 'step' and 'acc'", lambda v: isinstance(v, dict) and _is_int(v.get("step"))
                  and isinstance(v.get("acc"), torch.Tensor)),
    "epoch_lr": ("a number", _is_number),
}


def check_structure(state: dict, path: Path) -> None:
    """Every key the loop reads, of the type it expects, before any of it is used: a crafted or damaged
    checkpoint that passed the format check is refused in one line, not a traceback mid-set-up."""
    for key, (what, ok) in _REQUIRED.items():
        if key not in state:
            raise CheckpointError(f"{path}: damaged checkpoint, '{key}' is missing; resume from {BEST} or start "
                                  f"over with trainer.resume=false")
        if not ok(state[key]):
            raise CheckpointError(f"{path}: damaged checkpoint, '{key}' must be {what}, got "
                                  f"{_shown(state[key])}; start over with trainer.resume=false")
    for key, (what, ok) in _OPTIONAL.items():
        if state.get(key) is not None and not ok(state[key]):
            raise CheckpointError(f"{path}: damaged checkpoint, '{key}' must be {what} or null, got "
                                  f"{_shown(state[key])}; start over with trainer.resume=false")
    current = rng_state()
    try:  # the one sure test of a random state is setting it; this process's own goes back at once
        set_rng_state(state["rng"])
    except Exception as e:  # noqa: BLE001 - any failure means the saved state is malformed
        raise CheckpointError(f"{path}: damaged checkpoint, its random state cannot be restored "
                              f"({type(e).__name__}); start over with trainer.resume=false") from None
    finally:
        set_rng_state(current)


def check_fits(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path,
               schedule: Any = None) -> None:
    """The saved model and optimizer state have this run's parameters, shape for shape, and the saved
    scheduler state every key this run's scheduler restores."""
    if schedule is not None:
        missing = sorted(set(schedule.state_dict()) - set(state["scheduler"]))
        if missing:
            raise CheckpointError(f"{path}: its scheduler state lacks '{missing[0]}'; start over with "
                                  f"trainer.resume=false")
    expected = model.state_dict()
    saved = state["model"]
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: its model state does not match this model ("
                              f"{'missing ' + missing[0] if missing else 'unexpected ' + extra[0]}); "
                              f"start over with trainer.resume=false")
    for name, tensor in expected.items():
        if saved[name].shape != tensor.shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(saved[name].shape)}, this model's has "
                                  f"{tuple(tensor.shape)}; start over with trainer.resume=false")
    groups = state["optimizer"]["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in optimizer.param_groups]:
        raise CheckpointError(f"{path}: its optimizer state has other parameter groups than this optimizer; "
                              f"start over with trainer.resume=false")
    params = {i: p for g, own in zip(groups, optimizer.param_groups) for i, p in zip(g["params"], own["params"])}
    for i, entry in state["optimizer"]["state"].items():
        if i not in params or not isinstance(entry, dict):
            raise CheckpointError(f"{path}: its optimizer state names no parameter of this model ({i!r}); "
                                  f"start over with trainer.resume=false")
        for name, value in entry.items():  # buffers like the parameter; counters (Adam's step) are scalars
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[i].shape:
                raise CheckpointError(f"{path}: optimizer {name} of parameter {i} has shape {tuple(value.shape)}, "
                                      f"the parameter {tuple(params[i].shape)}; start over with trainer.resume=false")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


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
    """last.pt when anything is there: a broken symlink or a FIFO is refused by load(), never skipped."""
    path = Path(directory) / LAST
    return path if os.path.lexists(path) else None


def discard(directory: Path) -> None:
    """Delete last.pt and best.pt of an earlier run in this directory (trainer.resume=false starts over)."""
    for name in (LAST, BEST, LAST + CHECKSUM_SUFFIX, BEST + CHECKSUM_SUFFIX):  # each checkpoint before its checksum
        path = Path(directory) / name
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CheckpointError(f"{path}: cannot remove the earlier run's checkpoint: {e.strerror or e}") from None
