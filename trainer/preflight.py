"""Checks made before a run touches anything: every path it will write, and the shapes of its data.

`check_run_paths` runs on rank 0 before the trainer is even imported: a run refused here has cut no
JSONL file, replaced no status.json and deleted no checkpoint. `check_shapes` runs once the data and
the model are built, before the first step: a mismatch is a config error, not a crash inside a step.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Iterable, Optional

from rundir.format import (BEST_CHECKPOINT, CHECKPOINTS, CHECKSUM_SUFFIX, DIAGNOSTICS, DIAGNOSTICS_POINTER,
                           HYDRA_DIR, LAST_CHECKPOINT, RUN_ID, RUN_INFO, STATUS, STATUS_FIELDS, TRAIN_JSONL,
                           VAL_JSONL)
from rundir.jsonl import read_jsonl
from rundir.safe import read_json

from .errors import ConfigError, DataError, RunDirError, RunFileError

# What the run writes (names from rundir.format, which the loop and trainer/checkpoint.py write through).
CHECKPOINT_DIR = CHECKPOINTS
CHECKPOINT_FILES = (LAST_CHECKPOINT, BEST_CHECKPOINT, LAST_CHECKPOINT + CHECKSUM_SUFFIX, BEST_CHECKPOINT + CHECKSUM_SUFFIX)
DIAGNOSTICS_FILES = (STATUS, RUN_INFO, TRAIN_JSONL, VAL_JSONL)
RUN_MARKERS = (HYDRA_DIR, CHECKPOINT_DIR)  # what makes a directory the top of a run


def check_run_paths(run_dir: Path, diag_dir: Path, resume: bool) -> None:
    """RunDirError (one line) unless every directory and file the run will write can be written."""
    run_dir, diag_dir = Path(run_dir), Path(diag_dir)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    _check_not_another_runs_top(diag_dir, run_dir)
    check_diagnostics_dir(diag_dir, run_dir)
    for directory in (run_dir, ckpt_dir, diag_dir):
        _check_directory(directory)
    files = [ckpt_dir / n for n in CHECKPOINT_FILES] + [diag_dir / n for n in DIAGNOSTICS_FILES]
    if diag_dir.resolve() != (run_dir / DIAGNOSTICS).resolve():
        files.append(run_dir / DIAGNOSTICS_POINTER)
    for path in files:
        _check_file(path)
    _check_ours(ckpt_dir, diag_dir, resume)
    if resume:
        _check_checkpoint_not_lost(ckpt_dir, diag_dir)


def check_diagnostics_dir(diag_dir: Path, run_dir: Path) -> None:
    """Refuse a diagnostics directory that already holds another run's files."""
    info, problems = diag_dir / RUN_INFO, []
    content = read_json(info, problems)  # rundir's reader: a FIFO or a huge file cannot hang it
    if problems:
        raise RunDirError(f"{info} is unreadable; choose another diagnostics.dir or remove it")
    owner = content.get("run_dir") if content is not None else None
    own_folder = diag_dir.resolve() == (run_dir / DIAGNOSTICS).resolve()  # a moved run keeps its diagnostics
    if isinstance(owner, str) and owner and Path(owner).resolve() != run_dir.resolve() and not own_folder:
        raise RunDirError(f"diagnostics.dir={diag_dir} holds the diagnostics of another run ({owner}); "
                          f"choose another directory (DIAGNOSTICS_DIR or diagnostics.dir)")


def run_id(diag_dir: Path) -> Optional[str]:
    """The run id in diag_dir's run_info.json (rundir.format.RUN_ID), or None: the mark of a traindx run."""
    content = read_json(Path(diag_dir) / RUN_INFO, [])
    found = content.get(RUN_ID) if isinstance(content, dict) else None
    return found if isinstance(found, str) and found else None


def _our_status(path: Path) -> bool:
    """A status.json that rundir.files.Status wrote (a launch refused before run_info.json records why there)."""
    content = read_json(path, [])
    return isinstance(content, dict) and set(content) == set(STATUS_FIELDS)


def _check_ours(ckpt_dir: Path, diag_dir: Path, resume: bool) -> None:
    """Nothing is replaced or removed in a directory traindx did not write: the diagnostics directory must
    hold a run id in run_info.json before its files are replaced, and before trainer.resume=false deletes
    the checkpoints."""
    if run_id(diag_dir) is not None:
        return
    foreign = [name for name in DIAGNOSTICS_FILES if os.path.lexists(diag_dir / name)
               and not (name == STATUS and _our_status(diag_dir / STATUS))]
    if foreign:
        raise RunDirError(f"diagnostics.dir={diag_dir} holds a {foreign[0]} that traindx did not write (no {RUN_ID} "
                          f"in {RUN_INFO}); choose a directory of its own (DIAGNOSTICS_DIR or diagnostics.dir)")
    checkpoints = [name for name in CHECKPOINT_FILES if os.path.lexists(ckpt_dir / name)]
    if checkpoints and not resume:
        raise RunDirError(f"{ckpt_dir / checkpoints[0]} was not written by a traindx run (no {RUN_ID} in "
                          f"{diag_dir / RUN_INFO}), so trainer.resume=false does not delete it: move it away, or "
                          f"choose another hydra.run.dir")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "Is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    return "it is a special file, not a regular file"


def _stat(path: Path) -> Optional[os.stat_result]:
    """os.stat, following links; None when nothing is there (a dangling link counts as something)."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise RunFileError("write", path, f"it is a link to nothing ({os.readlink(path)})") from None
        return None
    except OSError as e:  # a symlink loop, a name too long, no permission on a parent
        raise RunFileError("write", path, str(e.strerror or e)) from None


def _check_directory(directory: Path) -> None:
    st = _stat(directory)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise RunFileError("write", directory, "it is a file, not a directory; move it away")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise RunFileError("write", directory, "Permission denied")
        return
    parent = _existing_ancestor(directory)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunFileError("create", directory, f"{parent} is not writable")


def check_writable_dir(directory: Path) -> None:
    """RunFileError unless directory is one that can be written, or can be created (a logger's directory)."""
    _check_directory(Path(directory))


def _existing_ancestor(path: Path) -> Path:
    for parent in path.absolute().parents:
        st = _stat(parent)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                raise RunFileError("create", path, f"{parent} is a file, not a directory")
            return parent
    return Path("/")


def _check_file(path: Path) -> None:
    st = _stat(path)
    if st is None:
        return
    if not stat.S_ISREG(st.st_mode):
        raise RunFileError("write", path, _kind(st.st_mode))
    if not os.access(path, os.R_OK | os.W_OK):
        raise RunFileError("write", path, "Permission denied")


def _check_not_another_runs_top(diag_dir: Path, run_dir: Path) -> None:
    """diagnostics.dir=<another run's directory> would mix this run's files into that run's top."""
    if diag_dir.resolve() == run_dir.resolve():
        return
    for marker in RUN_MARKERS:
        if (diag_dir / marker).is_dir():
            raise RunDirError(f"diagnostics.dir={diag_dir} is the directory of another run (it holds {marker}/); "
                              f"choose a directory of its own (DIAGNOSTICS_DIR or diagnostics.dir)")


def _check_checkpoint_not_lost(ckpt_dir: Path, diag_dir: Path) -> None:
    """Diagnostics past epoch 1 mean a last.pt was written (each epoch's checkpoint comes before the next
    epoch's lines): without it, resuming would silently start over and cut them all."""
    if os.path.lexists(ckpt_dir / CHECKPOINT_FILES[0]):
        return
    diagnostics = diag_dir / DIAGNOSTICS_FILES[2]
    last_epoch = _last_epoch(diagnostics)
    if last_epoch >= 2:
        raise RunDirError(f"{diagnostics} records {last_epoch} epochs but {ckpt_dir / CHECKPOINT_FILES[0]} is gone; "
                          f"restore the checkpoints, or start over with trainer.resume=false (which discards "
                          f"these diagnostics)")


def _last_epoch(path: Path) -> int:
    """The last epoch a JSONL file records (0 when absent or unreadable), read by rundir's one parser."""
    records = read_jsonl(path, [])
    return max((r["epoch"] for r in records), default=0)


def check_data_root(root: Optional[str]) -> None:
    """A data.root the file system cannot even look up (a name too long, a symlink loop) is a DataError;
    a missing one is left to the dataset builders, which say what they expected there."""
    if root is None:
        return
    try:
        os.stat(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise DataError(f"data.root={root}: {e.strerror or e}") from None


# ───────────────────────────── shapes and inputs, once data and model exist ─────────────────────────────


def check_inputs(stats: dict, data_cfg) -> None:
    """The statistics of the first normalised training images (data.batch_stats) must be finite: a data.std
    near 0 makes every input infinite or NaN, and the run could learn nothing."""
    values = [v for key in ("input_mean", "input_std") for v in stats.get(key, [])]
    values += [stats[key] for key in ("input_min", "input_max") if key in stats]
    if any(not math.isfinite(v) for v in values):
        raise DataError(f"data.mean={list(data_cfg.mean)} and data.std={list(data_cfg.std)} make the normalised "
                        f"inputs non-finite (input std {stats.get('input_std')}); data.std is each channel's "
                        f"standard deviation, e.g. 0.25")


def check_shapes(dataset, data_cfg, model, model_name: str) -> None:
    """One image of the data against data.in_channels, then one forward pass of it through the model (CPU,
    eval mode, no gradient, the random state untouched): a size the model cannot take is refused here."""
    import torch

    with torch.random.fork_rng(devices=[]):
        image = dataset[0][0]
    channels = int(image.shape[0])
    if channels != data_cfg.in_channels:
        raise ConfigError(f"data.in_channels={data_cfg.in_channels} but data={data_cfg.name} images have "
                          f"{channels} channels; set data.in_channels={channels} with {channels} values in "
                          f"data.mean and data.std")
    failure = _forward_fails(model, tuple(image.shape))
    if failure:
        smallest = next((s for s in _sizes_above(data_cfg.image_size)
                         if not _forward_fails(model, (channels, s, s))), None)
        hint = f"; use data.image_size >= {smallest}" if smallest else ""
        raise ConfigError(f"data.image_size={data_cfg.image_size} is too small for model={model_name} "
                          f"({failure}){hint}")


def _sizes_above(size: int) -> Iterable[int]:
    return range(size + 1, 65)


def _forward_fails(model, shape: tuple) -> Optional[str]:
    """Why one zero image of this shape cannot go through the model, or None when it can. A layer that
    downsamples a map already 1 pixel wide counts as failing: it runs, but the image was smaller than the
    model's total stride, so from there on every kernel sees one real pixel among its padding (a 1x1 image
    through resnet18 trains without an error and learns nothing spatial)."""
    import torch

    collapsed: list[str] = []

    def watch(name: str):
        def hook(_module, inputs) -> None:
            if not collapsed and min(inputs[0].shape[-2:]) == 1:
                collapsed.append(name)
        return hook

    handles = [m.register_forward_pre_hook(watch(name)) for name, m in model.named_modules() if _downsamples(m)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model(torch.zeros((1, *shape)))
        return f"its downsampling layer {collapsed[0]} gets a 1x1 feature map" if collapsed else None
    except RuntimeError as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def _downsamples(module) -> bool:
    """A convolution or pooling layer with a stride above 1 (adaptive pooling sets its own output size)."""
    from torch import nn

    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return False
    stride = module.stride if module.stride is not None else module.kernel_size
    return max(stride if isinstance(stride, tuple) else (stride,)) > 1
