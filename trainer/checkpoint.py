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


# Overrides a resumed launch may change without becoming another job: how long and where it runs, how it
# loads its data and who watches it. Any other difference in the command line makes it another job's run.
RESUMABLE_OVERRIDES = ("trainer.resume", "trainer.epochs", "trainer.device", "trainer.stop_on",
                       "trainer.stop_persist_epochs", "data.num_workers", "data.root", "data.download",
                       "diagnostics", "logger", "hydra")
ANOTHER_JOB = ("rerun it with its own overrides to resume it, or choose another hydra.run.dir (hydra.sweep.dir "
               "in a sweep); trainer.resume=false starts over and discards it")


def identity_overrides(overrides: Any) -> Optional[list[str]]:
    """A job's overrides without those RESUMABLE_OVERRIDES lets a resume change, sorted; None when unknown."""
    if not isinstance(overrides, list):
        return None
    kept = []
    for o in map(str, overrides):
        key = o.lstrip("+~").partition("=")[0]
        if not any(key == k or key.startswith((k + ".", k + "/")) for k in RESUMABLE_OVERRIDES):
            kept.append(o)
    return sorted(kept)


def check_job(state: dict, config: dict, job: dict, run_id: Optional[str], path: Path) -> None:
    """Refuse a checkpoint of another job: another seed, sweep job number or command line (trainer/job.py),
    or another run than the one whose run_info.json sits beside it. Unknown values (a checkpoint of an earlier
    version, train() called without Hydra) are not compared."""
    saved_seed = ((state.get("config") or {}).get("trainer") or {}).get("seed")
    seed = (config.get("trainer") or {}).get("seed")
    if saved_seed is not None and saved_seed != seed:
        raise CheckpointError(f"{path} was trained with trainer.seed={saved_seed}, this command has "
                              f"trainer.seed={seed}: it is another job's run; {ANOTHER_JOB}")
    saved_job = state.get("job") if isinstance(state.get("job"), dict) else {}
    old_num, new_num = saved_job.get("num"), job.get("num")
    if old_num is not None and new_num is not None and old_num != new_num:
        raise CheckpointError(f"{path} belongs to job {old_num} of a sweep, this is job {new_num}: a "
                              f"hydra.sweep.subdir without ${{hydra.job.num}} gives several jobs one directory; keep "
                              f"the default hydra.sweep.subdir, or choose another hydra.sweep.dir")
    old, new = identity_overrides(saved_job.get("overrides")), identity_overrides(job.get("overrides"))
    if old is not None and new is not None and old != new:
        gone, added = [o for o in old if o not in new], [o for o in new if o not in old]
        change = "; ".join(part for part in (f"it had {' '.join(gone)}" if gone else "",
                                             f"this command has {' '.join(added)}" if added else "") if part)
        raise CheckpointError(f"{path} was trained with other overrides ({change}): it is another job's run; "
                              f"{ANOTHER_JOB}")
    if isinstance(run_id, str) and run_id and state["run_id"] != run_id:
        raise CheckpointError(f"{path} belongs to run {state['run_id']}, but the diagnostics beside it to run "
                              f"{run_id}: the checkpoints were copied from another run; restore this run's, or start "
                              f"over with trainer.resume=false")


# Schedules whose every step's LR depends on the planned length: resuming with another trainer.epochs would
# stretch the curve under the steps already taken, and the LR jump.
LENGTH_BOUND_SCHEDULES = ("cosine", "onecycle")


def check_schedule_length(state: dict, config: dict, steps_per_epoch: int, path: Path) -> None:
    """Refuse to resume a cosine or one-cycle schedule with another trainer.epochs: its LR would jump (a
    finished cosine run extended from 3 to 6 epochs goes from its floor back to half its peak). The way on is
    named: keep the planned length, or start over with the new one."""
    saved = state.get("config") or {}
    name = (config.get("scheduler") or {}).get("name")
    old = (saved.get("trainer") or {}).get("epochs")
    new = (config.get("trainer") or {}).get("epochs")
    done = state["epoch"] * steps_per_epoch + state["step"]
    if name not in LENGTH_BOUND_SCHEDULES or old is None or old == new or done == 0:
        return
    raise CheckpointError(f"{path} follows a scheduler={name} schedule planned for trainer.epochs={old}; resumed with "
                          f"trainer.epochs={new} its LR would jump at epoch {state['epoch'] + 1} instead of decaying "
                          f"smoothly: keep trainer.epochs={old} to finish this run, or start over with "
                          f"trainer.epochs={new} trainer.resume=false (or in another hydra.run.dir)")


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
