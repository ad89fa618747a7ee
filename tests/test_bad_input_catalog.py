"""Bad input, catalogued: config and files alike, each with the one line it must print, its exit code,
and proof that nothing in the existing run directory it was aimed at changed.

Every row runs against a fresh copy of a finished run (the `tiny_run` fixture), as a user who reruns a
command in an old run directory would. The directory is hashed before and after, file by file.
One exception, only for rows launched as a real subprocess that got past Hydra's own checks: `train.log`
is appended to (its old content must stay a prefix). Hydra rewrites `.hydra/{config,hydra,overrides}.yaml`
on every launch into an existing directory (facebookresearch/hydra#2103), before any check of ours; a
refused launch puts them back (trainer/job.py), so they must be unchanged too.

Most rows call `trainer.app.run` in this process (what `python -m trainer` calls after Hydra composed the
config: same messages, same exit codes, no 1.5 s start-up each); rows marked "cli" run the real command
where the command line itself is the point: Hydra's own errors, an environment variable, the security case.

The analysis rows (LOG_CASES, at the end) aim `python -m analysis` at other tools' logs, whole and damaged,
and at bad arguments: each is refused in one line, or read with the damage named in a warning, and the logs
it read and the working directory it ran in are unchanged.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest
import torch

from rundir.errorline import INTERNAL_ERROR
import damaged_logs as dl
from conftest import ROOT, compose, run_trainer
from reliability_helpers import HYDRA_APPENDS, TINY_ARGS, TINY_ENV, copy_run, digest, no_hang, snapshot
from rundir.lock import DirectoryLock
from trainer import checkpoint
from trainer.job import Job

LAST = "checkpoints/last.pt"


@dataclass
class Case:
    id: str
    args: list[str]  # overrides after TINY_ARGS; "{run}" and "{tmp}" are filled in
    message: str  # must appear in the one line on stderr ("{run}", "{tmp}" filled in)
    via: str = "inproc"  # or "cli"; "hydra": Hydra refuses the command line before any job runs;
    # "read-only": the real command, with the run copy mounted read-only (READ_ONLY_MOUNT)
    prepare: Optional[Callable[[Path, Path], None]] = None  # (run copy, tmp_path): damage a file first
    env: dict = field(default_factory=dict)
    run_dir: str = "{run}"  # where the command runs (a fresh directory for the DIAGNOSTICS_DIR row)
    cwd: Optional[str] = None  # "cli" rows: the working directory (created empty; it must stay empty)
    skip: Optional[str] = None  # reason, when this machine cannot show the case
    slow: bool = False  # a real command that imports torchvision: `-m slow` (CI runs it)
    # in-process rows: launched as Hydra would launch them, with the job's identity (trainer/job.py): its
    # overrides (TINY_ARGS and args) and, when not None, this sweep job number
    as_job: bool = False
    job_num: Optional[int] = None


def _write(rel: str, data: bytes) -> Callable[[Path, Path], None]:
    def prepare(run: Path, _tmp: Path) -> None:
        (run / rel).write_bytes(data)
        _drop_checksum(run)
    return prepare


def _drop_checksum(run: Path) -> None:
    """A checkpoint of a version that wrote no checksum: what torch.load itself meets is the case."""
    checkpoint.checksum_path(run / LAST).unlink()


def _truncate_checkpoint(percent: int) -> Callable[[Path, Path], None]:
    def prepare(run: Path, _tmp: Path) -> None:  # a copy cut short: the zip's central directory is lost
        data = (run / LAST).read_bytes()
        (run / LAST).write_bytes(data[: len(data) * percent // 100])
        _drop_checksum(run)
    return prepare


def _flip_bytes(run: Path, _tmp: Path) -> None:
    """Bits flipped by a disk or a copy, inside the model's weights: torch.load reads it without a complaint."""
    data = bytearray((run / LAST).read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    (run / LAST).write_bytes(bytes(data))


def _crafted(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    """A checkpoint that passes the format, checksum and identity checks, with change() applied to it."""
    def prepare(run: Path, _tmp: Path) -> None:
        state = checkpoint.load(run / LAST)
        state.pop("format")
        change(state)
        checkpoint.save(run / LAST, state)  # with a matching checksum
    return prepare


def _other_shape(state: dict) -> None:
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(2, 2)


def _fifo_checkpoint(run: Path, _tmp: Path) -> None:
    (run / LAST).unlink()
    os.mkfifo(run / LAST)  # torch.load would wait for a writer forever


def _symlink_loop(run: Path, _tmp: Path) -> None:
    (run / LAST).unlink()
    (run / LAST).symlink_to("last.pt")


def _no_checkpoints(run: Path, _tmp: Path) -> None:
    shutil.rmtree(run / "checkpoints")


def _file_instead_of_checkpoints(run: Path, _tmp: Path) -> None:
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("not a directory")


def _plain_pickle(run: Path, _tmp: Path) -> None:
    with open(run / LAST, "wb") as f:
        pickle.dump({"epoch": 3}, f)  # protocol 4+: torch warns about it before refusing
    _drop_checksum(run)


def _directory_instead_of(rel: str) -> Callable[[Path, Path], None]:
    def prepare(run: Path, _tmp: Path) -> None:
        (run / rel).unlink()
        (run / rel).mkdir()
        (run / rel / "x").write_text("not a file")
    return prepare


def _unreadable_checkpoint(run: Path, _tmp: Path) -> None:
    (run / LAST).chmod(0)


def _foreign_torch_file(run: Path, _tmp: Path) -> None:
    torch.save({"weight": torch.zeros(3)}, run / LAST)  # a valid torch file, but no traindx marker
    _drop_checksum(run)


class _RunsACommand:
    """Unpickling this calls os.system: weights_only loading must refuse before anything runs."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _pickled_object(run: Path, tmp: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "model": {}, "payload": _RunsACommand(f"touch {tmp / 'pwned'}")}, buffer)
    (run / LAST).write_bytes(buffer.getvalue())
    _drop_checksum(run)  # so that torch.load itself is what refuses it


def _another_tools_checkpoints(run: Path, _tmp: Path) -> None:
    """A directory another tool wrote: a checkpoints/last.pt, no traindx run id anywhere."""
    shutil.rmtree(run / "diagnostics")
    for name in ("last.pt.sha256", "best.pt", "best.pt.sha256"):
        (run / "checkpoints" / name).unlink()
    (run / LAST).write_bytes(b"another tool's weights")


def _another_tools_status(run: Path, _tmp: Path) -> None:
    (run / "othertool").mkdir()
    (run / "othertool" / "status.json").write_text('{"state": "serving", "port": 8080}\n')


_HELD: list[DirectoryLock] = []  # locks a row holds for its whole test (released when the test ends)


def _hold_the_lock(run: Path, _tmp: Path) -> None:
    """Another process writes the run: its lock held (by this test process, through another open file)."""
    _HELD.append(DirectoryLock(run, "").acquire())


def _hold_shared_diagnostics(_run: Path, tmp: Path) -> None:
    """Another run writes the diagnostics directory this one is pointed at (an exported DIAGNOSTICS_DIR)."""
    _HELD.append(DirectoryLock(tmp / "shared", "").acquire())


def _lock_is_a_link(run: Path, tmp: Path) -> None:
    (tmp / "elsewhere").write_text("not the lock\n")
    (run / ".traindx.lock").unlink()
    (run / ".traindx.lock").symlink_to(tmp / "elsewhere")


def _empty_class_folders(_run: Path, tmp: Path) -> None:
    for name in ("a", "b"):
        (tmp / "folder" / name).mkdir(parents=True)


def _fuzz_images():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fuzz_images  # the image fuzzer's builders of real and hostile files

    return fuzz_images


# data=imagefolder on {tmp}/folder: two class folders a and b (a PNG and a JPEG each), starting over so that
# the data is loaded (and the old run must still be untouched).
FOLDER_ARGS = ["data=imagefolder", "data.root={tmp}/folder", "data.num_classes=2", "trainer.resume=false"]


def _image_folder(*damage: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """A folder of good images, then each damage(folder) applied."""
    def prepare(_run: Path, tmp: Path) -> None:
        fz = _fuzz_images()
        for i, label in enumerate(("a", "b")):
            (tmp / "folder" / label).mkdir(parents=True)
            (tmp / "folder" / label / "0.png").write_bytes(fz.image_bytes("PNG", "RGB", (20, 20), i))
            (tmp / "folder" / label / "1.jpg").write_bytes(fz.image_bytes("JPEG", "RGB", (40, 40), i))
        for d in damage:
            d(tmp / "folder")
    return prepare


def _image(rel: str, make: Callable[[object], bytes]) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_bytes(make(_fuzz_images()))


def _cut(data: bytes, share: float) -> bytes:
    return data[: int(len(data) * share)]


def _fifo_image(folder: Path) -> None:
    os.mkfifo(folder / "a" / "fifo.png")  # Pillow would wait for a writer forever


def _self_links(folder: Path) -> None:
    (folder / "b" / "self").symlink_to(".")  # os.walk(followlinks=True) walked it 40 levels deep, twice: a hang
    (folder / "b" / "again").symlink_to(".")


def _unreadable_image(folder: Path) -> None:
    (folder / "a" / "0.png").chmod(0)


# Mounts $1 read-only over itself, then runs the rest of the arguments. `unshare -rm` gives the command a user
# and mount namespace of its own: no privileges needed, and the mount is gone when the command ends.
READ_ONLY_MOUNT = ("unshare", "-rm", "sh", "-c",
                   'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"', "sh")


def _cannot_mount_read_only() -> Optional[str]:
    """Why this machine cannot show a read-only file system (a container that forbids user namespaces)."""
    probe_dir = tempfile.mkdtemp(prefix="traindx-ro-")
    try:
        probe = subprocess.run([*READ_ONLY_MOUNT, probe_dir, "sh", "-c", f"! touch {probe_dir}/x"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run unshare here: {e}"
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    return None if probe.returncode == 0 else f"no read-only bind mount here: {probe.stderr.strip()[:200]}"


NO_MLFLOW = None if importlib.util.find_spec("mlflow") else 'no mlflow package (pip install "traindx[mlflow]")'

ROOT_NOTE = ("running as root: chmod 000 does not stop root from reading; the rows with a directory in place "
             "of a file cover unreadable files")

CASES = [
    # ── Hydra refuses the command line before any job runs: nothing written ──
    Case("unknown option", ["optimizer=sgdd"],
         "no option 'sgdd' in config group 'optimizer'; did you mean optimizer=sgd? (options: adam, adamw, sgd)",
         via="hydra"),
    Case("unknown key", ["scheduler.warmup_epoch=1"],
         "unknown key scheduler.warmup_epoch; did you mean scheduler.warmup_epochs?", via="hydra"),
    Case("float for an int", ["trainer.epochs=1.5"],
         "trainer.epochs: Value '1.5' of type 'float' could not be converted to Integer", via="hydra"),
    Case("value outside an enum", ["trainer.amp=off"],
         "trainer.amp: Invalid value 'off', expected one of [none, bf16, fp16]", via="hydra"),
    Case("unparsable override", ["optimizer.lr=[0.1"], "cannot parse the override 'optimizer.lr=[0.1'", via="hydra"),
    Case("key of another scheduler", ["scheduler.patience=3"],
         "unknown key scheduler.patience; scheduler.patience belongs to scheduler=plateau (keys of scheduler=cosine:",
         via="hydra"),
    Case("unknown launcher", ["hydra/launcher=slrum"],
         "no option 'slrum' in config group 'hydra/launcher'; did you mean hydra/launcher=slurm?", via="hydra"),
    # ── the trainer's schema and range checks: exit 2, before torch is imported ──
    Case("unknown key added with +", ["+scheduler.warmup_epoch=1"], "unknown key scheduler.warmup_epoch"),
    Case("unknown top-level key", ["+foo=1"], "unknown top-level key 'foo'"),
    Case("key of another scheduler added with +", ["+scheduler.patience=3"],
         "unknown key scheduler.patience (not in CosineConf; scheduler.patience belongs to scheduler=plateau)"),
    Case("zero learning rate", ["optimizer.lr=0"], "optimizer.lr must be > 0, got 0.0"),
    Case("NaN learning rate", ["optimizer.lr=nan"], "optimizer.lr must be > 0, got nan"),
    Case("nesterov without momentum", ["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
         "optimizer.nesterov=true needs optimizer.momentum > 0", via="cli"),
    Case("momentum of 1", ["optimizer.momentum=1.0"], "optimizer.momentum must lie in [0, 1), got 1.0"),
    Case("one Adam beta", ["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas must be two values in [0, 1)"),
    Case("label smoothing above 1", ["regularization.label_smoothing=1.5"],
         "regularization.label_smoothing must lie in [0, 1), got 1.5"),
    Case("zero gradient clip", ["regularization.grad_clip=0"], "regularization.grad_clip must be > 0 or null"),
    Case("zero epochs", ["trainer.epochs=0"], "trainer.epochs must be >= 1, got 0"),
    Case("negative seed", ["trainer.seed=-1"], "trainer.seed must be >= 0, got -1"),
    Case("zero batch size", ["data.batch_size=0"], "data.batch_size must be >= 1, got 0"),
    Case("no images left to train on", ["data.val_fraction=1.0"], "data.val_fraction must lie in (0, 1), got 1.0"),
    Case("mean for one channel of three", ["data.mean=[0.5]"], "data.mean and data.std need 3 values"),
    Case("onecycle peak after the end", ["scheduler=onecycle", "scheduler.pct_start=1.5"],
         "scheduler.pct_start must lie in (0, 1), got 1.5"),
    Case("diagnostics never measured", ["diagnostics.update_every=0"], "diagnostics.update_every must be >= 1, got 0"),
    Case("imagefolder without a root", ["data=imagefolder"], "data=imagefolder needs data.root"),
    Case("warmup as long as the run", ["scheduler.warmup_epochs=3"],
         "scheduler.warmup_epochs=3.0 must be < trainer.epochs=3"),
    Case("cosine min_lr at the LR", ["scheduler.min_lr=0.05"],
         "scheduler.min_lr=0.05 is not below optimizer.lr=0.05: cosine would never lower the LR"),
    Case("plateau min_lr above the LR", ["scheduler=plateau", "scheduler.min_lr=1"],
         "scheduler.min_lr=1.0 is not below optimizer.lr=0.05: the plateau scheduler could never cut the LR"),
    Case("a fault that would do nothing: fp32", ["fault=clip_before_unscale", "regularization.grad_clip=1.0"],
         "fault=clip_before_unscale only acts with trainer.amp=fp16 and regularization.grad_clip set"),
    Case("a fault that would do nothing: no augmentation", ["fault=shared_transforms", "augmentation=none"],
         "fault=shared_transforms only acts with a random augmentation"),
    # ── numbers that pass the ranges above but crash later: bounds derived from the schema ──
    Case("seed beyond 32 bits", ["trainer.seed=4294967296"], "trainer.seed must be <= 4294967295"),
    Case("zero image size", ["data.image_size=0"], "data.image_size must be >= 1, got 0"),
    Case("negative image size", ["data.image_size=-5"], "data.image_size must be >= 1, got -5"),
    # shapes are checked against the data and the model once both are built (starting over, to get there)
    Case("image too small for the model", ["augmentation=none", "data.image_size=1", "trainer.resume=false"],
         "data.image_size=1 is too small for model=small_cnn"),
    Case("image collapsed to 1x1 inside ResNet-18",
         ["model=resnet18", "augmentation=none", "data.image_size=1", "trainer.resume=false"],
         "data.image_size=1 is too small for model=resnet18 (its downsampling layer stages.2.conv1 gets a 1x1 "
         "feature map); use data.image_size >= 5"),
    Case("one channel of RGB digits",
         ["data.in_channels=1", "data.mean=[0.5]", "data.std=[0.25]", "trainer.resume=false"],
         "data.in_channels=1 but data=digits images have 3 channels"),
    Case("no channels at all", ["data.in_channels=0", "data.mean=[]", "data.std=[]"],
         "data.in_channels must be >= 1, got 0"),
    Case("update_every beyond any C int", ["diagnostics.update_every=99999999999999999999"],
         "diagnostics.update_every must be <= 2147483647"),
    Case("crop padding of 120 GB", ["augmentation.crop_padding=100000"],
         "augmentation.crop_padding=100000 must be <= data.image_size=16"),
    Case("infinite eps", ["optimizer=adam", "optimizer.eps=inf"], "optimizer.eps must be finite, got inf"),
    Case("infinite min_lr", ["scheduler.min_lr=inf"], "scheduler.min_lr must be finite, got inf"),
    Case("infinite weight decay", ["regularization.weight_decay=inf"], "regularization.weight_decay must be finite"),
    Case("NaN mean", ["data.mean=[nan,nan,nan]"], "data.mean must be finite, got [nan, nan, nan]"),
    Case("infinite std", ["data.std=[inf,inf,inf]"], "data.std must be finite, got [inf, inf, inf]"),
    Case("epochs beyond any run", ["trainer.epochs=123456789012345678901234567890"],
         "trainer.epochs must be <= 100000"),
    Case("newline inside an override value", ["data=imagefolder", "data.root='{tmp}/a\nb'", "trainer.resume=false"],
         "data.root={tmp}/a\\nb is not a directory", via="cli", slow=True),
    # ── run directories Hydra cannot create: refused before anything is written ──
    Case("run directory under a file", [], "cannot create {run}/train.log/x: Not a directory", via="cli",
         run_dir="{run}/train.log/x"),
    Case("run directory under /proc", [], "cannot create /proc/traindx-run: No such file or directory", via="cli",
         run_dir="/proc/traindx-run"),
    Case("run directory name too long", [], "File name too long", via="cli", run_dir="{tmp}/" + "r" * 300),
    Case("data.root name too long", ["data=imagefolder", "data.root={tmp}/" + "d" * 300, "trainer.resume=false"],
         "File name too long"),
    Case("torchrun variables without MASTER_ADDR", [], "WORLD_SIZE=2 asks for a distributed run but MASTER_ADDR is "
         "not set", via="cli", env={"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": ""}),
    Case("existing run on a read-only file system", [], "cannot write {run}/train.log: Read-only file system",
         via="read-only"),
    Case("new run directory on a read-only file system", [], "cannot create {run}/new: Read-only file system",
         via="read-only", run_dir="{run}/new"),
    # ── options this machine cannot serve ──
    Case("cuda without CUDA", ["trainer.device=cuda"], "trainer.device=cuda but CUDA is not available",
         skip="this machine has CUDA" if torch.cuda.is_available() else None),
    Case("mps without MPS", ["trainer.device=mps"], "trainer.device=mps but MPS is not available",
         skip="this machine has MPS" if torch.backends.mps.is_available() else None),
    Case("far more workers than cores", ["data.num_workers=1000"], "data.num_workers=1000 is far more than"),
    # ── data that is not there (trainer.resume=false: starting over must not touch the old run either) ──
    Case("missing dataset", ["data=cifar10", "data.root={tmp}/nowhere", "trainer.resume=false"],
         "cifar10 not found or corrupted in data.root={tmp}/nowhere (set data.download=true to fetch it)"),
    Case("missing data root", ["data=imagefolder", "data.root={tmp}/nowhere", "trainer.resume=false"],
         "data.root={tmp}/nowhere is not a directory"),
    Case("data root is a file", ["data=imagefolder", "data.root={run}/train.log", "trainer.resume=false"],
         "data.root={run}/train.log is not a directory"),
    Case("class folders without images", FOLDER_ARGS,
         "data.root={tmp}/folder: no usable image in the class folder(s) a, b", prepare=_empty_class_folders),
    Case("image folder without class folders", FOLDER_ARGS, "data.root={tmp}/folder has no class folders",
         prepare=lambda _run, tmp: (tmp / "folder").mkdir()),
    # ── image folders a user really has: each bad file named in one line (trainer/image_folder.py) ──
    Case("corrupt image", FOLDER_ARGS, "data.root={tmp}/folder: 1 of 5 images cannot be used: a/corrupt.png "
         "(not an image Pillow can read); fix or remove them, or set data.skip_bad_images=true",
         prepare=_image_folder(_image("a/corrupt.png", lambda fz: fz.PNG_SIGNATURE + bytes(range(256)) * 4))),
    Case("truncated PNG", FOLDER_ARGS, "1 of 5 images cannot be used: a/cut.png (OSError: image file is truncated",
         prepare=_image_folder(_image("a/cut.png", lambda fz: _cut(fz.image_bytes("PNG", "RGB", (64, 64)), 0.7)))),
    Case("truncated JPEG", FOLDER_ARGS, "1 of 5 images cannot be used: a/cut.jpg (OSError: image file is truncated",
         prepare=_image_folder(_image("a/cut.jpg", lambda fz: _cut(fz.image_bytes("JPEG", "RGB", (64, 64)), 0.5)))),
    Case("empty image file", FOLDER_ARGS, "1 of 5 images cannot be used: a/empty.jpg (an empty file)",
         prepare=_image_folder(_image("a/empty.jpg", lambda fz: b""))),
    Case("decompression bomb", FOLDER_ARGS, "1 of 5 images cannot be used: a/bomb.png (more than Pillow's "
         "Image.MAX_IMAGE_PIXELS=", prepare=_image_folder(_image("a/bomb.png", lambda fz: fz.with_png_size(
             fz.image_bytes("PNG", "RGB", (8, 8)), 30_000, 30_000)))),
    Case("zTXt bomb", FOLDER_ARGS, "1 of 5 images cannot be used: a/text.png (ValueError: Decompressed data too "
         "large for PngImagePlugin.MAX_TEXT_CHUNK)", prepare=_image_folder(_image("a/text.png", lambda fz: (
             fz.with_chunk_after_header(fz.image_bytes("PNG", "RGB", (8, 8)), fz.ztxt_bomb_chunk(8)))))),
    Case("FIFO named like an image", FOLDER_ARGS, "1 of 5 images cannot be used: a/fifo.png (a FIFO, not a regular "
         "file)", prepare=_image_folder(_fifo_image)),
    Case("link to nothing named like an image", FOLDER_ARGS, "a/gone.jpg (a link to nothing)",
         prepare=_image_folder(lambda folder: (folder / "a" / "gone.jpg").symlink_to("nowhere.jpg"))),
    # the links are followed once: 4 good images, not 4 + 2 x 40 (and no hang); the corrupt file is what refuses
    Case("class folder that links to itself twice", FOLDER_ARGS, "1 of 5 images cannot be used: a/corrupt.png",
         prepare=_image_folder(_self_links, _image("a/corrupt.png", lambda fz: b"not an image"))),
    Case("unreadable image", FOLDER_ARGS, "1 of 4 images cannot be used: a/0.png (Permission denied)",
         prepare=_image_folder(_unreadable_image), skip=ROOT_NOTE if os.geteuid() == 0 else None),
    Case("every image of a class skipped", [*FOLDER_ARGS, "data.skip_bad_images=true"],
         "data.root={tmp}/folder: no usable image in the class folder(s) b", prepare=_image_folder(
             lambda folder: [(folder / "b" / n).write_bytes(b"x") for n in ("0.png", "1.jpg")])),
    Case("one validation image", ["data.val_fraction=1e-300", "trainer.resume=false"],
         "data.val_fraction=1e-300 holds out 0 of 1797 images for validation, fewer than one per class "
         "(data.num_classes=10); use data.val_fraction >= 0.0056"),
    # ── logger destinations, checked before the first step (trainer/loggers.py) ──
    Case("logger.dir that cannot be written", ["logger=tensorboard", "logger.dir={run}/train.log/tb"],
         "logger.dir={run}/train.log/tb cannot be used: cannot write {run}/train.log/tb: Not a directory",
         skip=None if importlib.util.find_spec("tensorboard") else "no tensorboard package"),
    Case("MLflow tracking URI that is not one", ["logger=mlflow", "logger.tracking_uri='::not a uri::'"],
         "logger.tracking_uri='::not a uri::' is not a URI", skip=NO_MLFLOW),
    Case("MLflow server without its scheme", ["logger=mlflow", "logger.tracking_uri=localhost:5000"],
         "MLflow has no tracking store for localhost: (schemes: ", skip=NO_MLFLOW),
    Case("unreachable MLflow server", ["logger=mlflow", "logger.tracking_uri=http://127.0.0.1:9"],
         "logger.tracking_uri=http://127.0.0.1:9 does not answer within 5 s", skip=NO_MLFLOW),
    Case("MLflow file store under a file", ["logger=mlflow", "logger.tracking_uri=file:{run}/train.log/mlruns"],
         "logger.tracking_uri=file:{run}/train.log/mlruns cannot be used", skip=NO_MLFLOW),
    # ── checkpoints that cannot be resumed from ──
    Case("corrupt checkpoint", [], "{run}/checkpoints/last.pt: corrupt or not a checkpoint",
         prepare=_write(LAST, b"\x00garbage\xff" * 100)),
    # torch fails differently depending on where the cut falls: RuntimeError early, ValueError (a seek before
    # the start of the bytes) later
    Case("checkpoint cut at 10%", [], "{run}/checkpoints/last.pt: corrupt or truncated checkpoint (RuntimeError",
         prepare=_truncate_checkpoint(10)),
    Case("checkpoint cut at 60%", [], "{run}/checkpoints/last.pt: corrupt or truncated checkpoint (ValueError",
         prepare=_truncate_checkpoint(60)),
    Case("empty checkpoint", [], "{run}/checkpoints/last.pt: corrupt or truncated checkpoint (EOFError",
         prepare=_write(LAST, b"")),
    Case("checkpoint of another model", ["model.width=8"],
         "{run}/checkpoints/last.pt belongs to another run (model.width=4, this run has 8)"),
    Case("torch file that is no traindx checkpoint", [], "{run}/checkpoints/last.pt: not a traindx checkpoint",
         prepare=_foreign_torch_file),
    Case("checkpoint holding a pickled object", [],
         "{run}/checkpoints/last.pt: refused, it holds a pickled posix.system; checkpoints load with weights_only=True",
         via="cli", prepare=_pickled_object),
    Case("directory in place of the checkpoint", [], "cannot write {run}/checkpoints/last.pt: Is a directory",
         prepare=_directory_instead_of(LAST)),
    Case("checkpoint with flipped bytes", [],
         "{run}/checkpoints/last.pt: checksum mismatch, its bytes changed after it was written", prepare=_flip_bytes),
    Case("the way on after flipped bytes names best.pt and resume=false", [],
         "resume from best.pt instead (copy it and its best.pt.sha256 over last.pt and its last.pt.sha256) or start "
         "over with trainer.resume=false", prepare=_flip_bytes),
    Case("checkpoint without its model", [], "{run}/checkpoints/last.pt: damaged checkpoint, 'model' is missing",
         prepare=_crafted(lambda s: s.pop("model"))),
    Case("checkpoint whose epoch is a word", [],
         "{run}/checkpoints/last.pt: damaged checkpoint, 'epoch' must be an int >= 0, got 'three'",
         prepare=_crafted(lambda s: s.update(epoch="three"))),
    Case("checkpoint with a tensor of another shape", [], "has shape (2, 2), this model's has",
         prepare=_crafted(_other_shape)),
    Case("checkpoint with a malformed random state", [],
         "{run}/checkpoints/last.pt: damaged checkpoint, its random state cannot be restored",
         prepare=_crafted(lambda s: s["rng"].update(torch=torch.zeros(5, dtype=torch.uint8)))),
    Case("checkpoint whose optimizer has no param groups", [],
         "'optimizer' must be an optimizer state with param groups",
         prepare=_crafted(lambda s: s["optimizer"].update(param_groups=[]))),
    Case("checkpoint whose scheduler state is empty", [], "{run}/checkpoints/last.pt: its scheduler state lacks",
         prepare=_crafted(lambda s: s.update(scheduler={}))),
    Case("FIFO in place of the checkpoint", [], "cannot write {run}/checkpoints/last.pt: it is a FIFO",
         prepare=_fifo_checkpoint),
    Case("checkpoint that is a symlink loop", [],
         "cannot write {run}/checkpoints/last.pt: Too many levels of symbolic links", prepare=_symlink_loop),
    Case("checkpoints deleted", [], "records 3 epochs but {run}/checkpoints/last.pt is gone; restore the checkpoints, "
         "or start over with trainer.resume=false", prepare=_no_checkpoints),
    Case("file in place of checkpoints/", [], "cannot write {run}/checkpoints: it is a file, not a directory",
         prepare=_file_instead_of_checkpoints),
    Case("file in place of checkpoints/, starting over", ["trainer.resume=false"],
         "cannot write {run}/checkpoints: it is a file, not a directory", prepare=_file_instead_of_checkpoints),
    Case("plain pickle as the checkpoint", [], "{run}/checkpoints/last.pt: corrupt or not a checkpoint", via="cli",
         prepare=_plain_pickle),
    Case("unreadable checkpoint", [], "{run}/checkpoints/last.pt: cannot read the checkpoint: Permission denied",
         prepare=_unreadable_checkpoint, skip=ROOT_NOTE if os.geteuid() == 0 else None),
    # ── run directories that are not this run's, or not usable ──
    Case("diagnostics of another run", [], "diagnostics.dir={run}/diagnostics holds the diagnostics of another run",
         via="cli", env={"DIAGNOSTICS_DIR": "{run}/diagnostics"}, run_dir="{tmp}/new"),
    Case("diagnostics of another run that has no status.json yet", [],
         "diagnostics.dir={run}/diagnostics holds the diagnostics of another run",
         env={"DIAGNOSTICS_DIR": "{run}/diagnostics"}, run_dir="{tmp}/new",
         prepare=lambda run, _tmp: (run / "diagnostics" / "status.json").unlink()),  # no failed status written there
    Case("corrupt run_info.json", [], "{run}/diagnostics/run_info.json is unreadable",
         prepare=_write("diagnostics/run_info.json", b'{"run_dir": ')),
    Case("diagnostics.dir set to nothing", [], "diagnostics.dir is empty (DIAGNOSTICS_DIR set to nothing?)",
         via="cli", env={"DIAGNOSTICS_DIR": ""}, cwd="{tmp}/cwd"),  # "" is the current directory to Path()
    Case("diagnostics.dir at another run's top directory", [],
         "diagnostics.dir={run} is the directory of another run (it holds .hydra/)",
         env={"DIAGNOSTICS_DIR": "{run}"}, run_dir="{tmp}/new"),
    Case("directory in place of a JSONL file", [],
         "cannot write {run}/diagnostics/train_diagnostics.jsonl: Is a directory",
         prepare=_directory_instead_of("diagnostics/train_diagnostics.jsonl")),
    Case("directory in place of status.json", [], "cannot write {run}/diagnostics/status.json: Is a directory",
         prepare=_directory_instead_of("diagnostics/status.json")),
    # ── nothing replaced or removed before every check passed, and only what traindx wrote (issue 21) ──
    Case("starting over with a std near 0 keeps the old run", ["trainer.resume=false", "data.std=[1e-300,1e-300,1e-300]"],
         "data.std=[1e-300, 1e-300, 1e-300] make the normalised inputs non-finite"),
    Case("starting over where another tool keeps its checkpoints", ["trainer.resume=false"],
         "{run}/checkpoints/last.pt was not written by a traindx run (no run_id in {run}/diagnostics/run_info.json), "
         "so trainer.resume=false does not delete it", prepare=_another_tools_checkpoints),
    Case("DIAGNOSTICS_DIR at another tool's status.json", [],
         "diagnostics.dir={run}/othertool holds a status.json that traindx did not write",
         env={"DIAGNOSTICS_DIR": "{run}/othertool"}, prepare=_another_tools_status),
    # ── one writer per run directory, and a run directory belongs to one job ──
    Case("a second trainer on a run directory in use", [],
         f"cannot write {{run}}: another process is writing it (pid {os.getpid()} on host", prepare=_hold_the_lock),
    Case("a second run into a diagnostics directory in use", [],
         "cannot write {tmp}/shared: another process is writing it (pid", env={"DIAGNOSTICS_DIR": "{tmp}/shared"},
         run_dir="{tmp}/new", prepare=_hold_shared_diagnostics),
    Case("a lock file that is a link", [], "cannot write {run}/.traindx.lock: it is a link", prepare=_lock_is_a_link),
    Case("sweep job 2 in job 1's directory (a fixed hydra.sweep.subdir)", [],
         "{run}/checkpoints/last.pt belongs to job 1 of a sweep, this is job 2",
         prepare=_crafted(lambda s: s.update(job={**s["job"], "num": 1})), as_job=True, job_num=2),
    Case("a rerun with other values into a finished run", ["optimizer.lr=0.2"],
         "{run}/checkpoints/last.pt was trained with other overrides (this command has optimizer.lr=0.2)",
         as_job=True),
    Case("a rerun with other values, from the command line: .hydra/ put back", ["optimizer.lr=0.2"],
         "{run}/checkpoints/last.pt was trained with other overrides (this command has optimizer.lr=0.2)", via="cli"),
    Case("another seed into a finished run", ["trainer.seed=5"],
         "{run}/checkpoints/last.pt was trained with trainer.seed=0, this command has trainer.seed=5"),
    Case("checkpoints copied from another run", [], "the checkpoints were copied from another run",
         prepare=_crafted(lambda s: s.update(run_id="0" * 32))),
    Case("extending a finished cosine run", ["trainer.epochs=6"],
         "follows a scheduler=cosine schedule planned for trainer.epochs=3; resumed with trainer.epochs=6 its LR "
         "would jump at epoch 4"),
]


def invoke(case: Case, run_dir: Path, fill: Callable[[str], str], capsys) -> tuple[int, str]:
    args = [fill(a) for a in case.args]
    env = {k: fill(v) for k, v in case.env.items()}
    if case.via in ("cli", "hydra", "read-only"):
        cwd = Path(fill(case.cwd)) if case.cwd else ROOT
        cwd.mkdir(exist_ok=True)
        wrapper = (*READ_ONLY_MOUNT, fill("{run}")) if case.via == "read-only" else ()
        proc = run_trainer([f"hydra.run.dir={run_dir}", *TINY_ARGS, *args], env={**TINY_ENV, **env},
                           timeout=CASE_TIMEOUT_S, cwd=cwd, wrapper=wrapper)
        assert not case.cwd or list(cwd.iterdir()) == [], f"written into the working directory: {list(cwd.iterdir())}"
        return proc.returncode, proc.stderr
    from trainer import app

    # Deterministic mode is process-wide: leave the test process as it was.
    cfg = compose([*TINY_ARGS, "trainer.deterministic=false", *args],
                  diag_dir=env.get("DIAGNOSTICS_DIR", run_dir / "diagnostics"))
    job = Job(num=case.job_num, overrides=[*TINY_ARGS, *args]) if case.as_job else None
    with pytest.raises(SystemExit) as exit_, no_hang(CASE_TIMEOUT_S):
        app.run(cfg, run_dir, job=job)
    return exit_.value.code, capsys.readouterr().err


CASE_TIMEOUT_S = 120  # a hang (a FIFO read, an endless run) fails its row instead of the suite


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=pytest.mark.slow if c.slow else ()) for c in CASES])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(case, tiny_run, tmp_path, capsys):
    if case.skip:
        pytest.skip(case.skip)
    if case.via == "read-only" and (reason := _cannot_mount_read_only()):
        pytest.skip(reason)
    run = copy_run(tiny_run, tmp_path / "run")

    def fill(text: str) -> str:
        return text.replace("{run}", str(run)).replace("{tmp}", str(tmp_path))

    if case.prepare:
        case.prepare(run, tmp_path)
    before = snapshot(run)

    try:
        code, stderr = invoke(case, Path(fill(case.run_dir)), fill, capsys)
        after = snapshot(run)
    finally:  # after the snapshot: letting go empties the lock file
        while _HELD:
            _HELD.pop().release()

    assert "Traceback" not in stderr and INTERNAL_ERROR not in stderr, stderr  # the last line of defence is a bug
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert lines == [f"error: {lines[0].removeprefix('error: ')}"] and fill(case.message) in lines[0], stderr

    launched_here = case.via == "cli" and case.run_dir == "{run}"
    if launched_here:  # the log of a launch into a reused directory (see the module docstring)
        for name in HYDRA_APPENDS:
            old, new = before.pop(name), after.pop(name)
            assert new.startswith(old), f"{name} was rewritten, not appended to"
    assert digest(after) == digest(before)
    assert not (tmp_path / "pwned").exists()  # the pickled command never ran


# ── other tools' logs and the analysis command line (issue 21 §4) ──
# Each row writes a log under {tmp}/logs (tests/damaged_logs.py), runs `python -m analysis`'s main() on it in
# this process from an empty working directory, and checks: the exit code, the one `error:` line (exit 2) or
# the line that names what was read or skipped, no internal error, the logs unchanged, nothing written into
# the working directory (no --out: nowhere).


@dataclass
class LogCase:
    id: str
    build: Callable[[Path], list]  # (the logs directory) -> the command's arguments
    message: str  # exit 2: in the one error line; else in a `warning:` line (stderr) or in stdout
    code: int = 0
    stream: str = "stderr"  # where the message is, when the log is read: "stderr" (a warning) or "stdout"
    quiet: bool = False  # nothing at all on stderr (a legitimate log read without a word)


def _paths(*builders: Callable[[Path], Path]) -> Callable[[Path], list]:
    return lambda logs: [str(b(logs / str(i))) for i, b in enumerate(builders)]


def _with_args(builder: Callable[[Path], Path], *args: str) -> Callable[[Path], list]:
    return lambda logs: [str(builder(logs)), *args]


def _keras_tensorboard(tmp: Path) -> Path:
    from importer_logs import keras_tensorboard

    epochs = 27
    keras_tensorboard(tmp, [1 / (e + 1) for e in range(epochs)], [1.2 / (e + 1) for e in range(epochs)],
                      [0.4 + 0.02 * e for e in range(epochs)], train_acc=[0.5 + 0.015 * e for e in range(epochs)])
    return tmp


def _bad_header_crc(tmp: Path) -> Path:
    d = dl.traindx_events_dir(tmp)
    f = next(d.iterdir())
    data = bytearray(f.read_bytes())
    data[dl.record_offsets(bytes(data))[10][0] + 8] ^= 0xFF  # the 11th record's length CRC
    f.write_bytes(bytes(data))
    return d


def _cut_events(tmp: Path) -> Path:
    d = dl.traindx_events_dir(tmp)
    f = next(d.iterdir())
    f.write_bytes(f.read_bytes()[:-7])
    return d


HUGE = "9" * 400
_KERAS_ROWS = dl.keras_rows()
LOG_CASES = [
    # ── whole logs once misread ──
    LogCase("the trainer's own TensorBoard file of 5 epochs", _paths(dl.traindx_events_dir), "status unknown, 5 epochs",
            stream="stdout", quiet=True),
    LogCase("gradient norms from TensorBoard", _paths(dl.traindx_events_dir),
            "train.mean_grad_norm <- train/mean_grad_norm", stream="stdout", quiet=True),
    LogCase("SGD momentum a log does not state", _paths(lambda t: dl.lightning(t, "optimizer: sgd\nlr: 0.1\n")),
            "val_size, optimizer.momentum", stream="stdout", quiet=True),
    LogCase("a Lightning run at chance, its class count nested under cfg:",
            _paths(lambda t: dl.at_chance(t, "cfg:\n  num_classes: 10\n")), "[CRITICAL] accuracy_at_chance",
            stream="stdout", quiet=True),
    LogCase("a Lightning run at chance, the model's output size", _paths(lambda t: dl.at_chance(t, "net:\n  output_size: 10\n")),
            "class count: 10, from net.output_size in the tool's config", stream="stdout", quiet=True),
    LogCase("a Lightning run at chance, num_classes logged",
            _paths(lambda t: dl.at_chance(t, None, {"num_classes": lambda e: 10})), "class count: 10, from the logged num_classes",
            stream="stdout", quiet=True),
    LogCase("a Lightning run at chance, per-class accuracies",
            _paths(lambda t: dl.at_chance(t, None, {f"val_acc_{i}": (lambda e: 0.1) for i in range(10)})),
            "class count: 10, from 10 per-class accuracies logged", stream="stdout", quiet=True),
    LogCase("a Lightning run at chance whose class count is unknown", _paths(lambda t: dl.at_chance(t, "lr: 0.1\n")),
            "not checked: the chance-level checks (accuracy at 1/C, loss at ln C) did not run: the class count is unknown",
            stream="stdout", quiet=True),
    LogCase("Keras's TensorBoard layout (train/ and validation/)", _paths(_keras_tensorboard), "status unknown, 27 epochs",
            stream="stdout", quiet=True),
    LogCase("Keras's TensorBoard validation/ folder alone", lambda logs: [str(_keras_tensorboard(logs) / "validation")],
            "status unknown, 27 epochs", stream="stdout", quiet=True),
    LogCase("a custom CSV numbered from epoch 1", _paths(lambda t: dl.keras(t, [dl.KERAS_HEADER, *dl.keras_rows(1)])),
            "status unknown, 5 epochs", stream="stdout", quiet=True),
    LogCase("logs of two tools compared without --out", _paths(dl.traindx_events_dir, lambda t: dl.keras(t, [
        dl.KERAS_HEADER, *_KERAS_ROWS])), "2 runs", stream="stdout", quiet=True),
    LogCase("a Keras CSV with a byte-order mark", _paths(lambda t: dl.keras(t, [dl.KERAS_HEADER, *_KERAS_ROWS], prefix="\ufeff")),
            "status unknown, 5 epochs", stream="stdout", quiet=True),
    LogCase("a legitimate 21 MB trainer_state.json", _paths(dl.hf_big), "status completed, 3 epochs", stream="stdout",
            quiet=True),
    # ── numbers no float holds: named by the one number reader (rundir/numbers.py) ──
    LogCase("inf in a Keras log", _paths(lambda t: dl.keras_with(t, 2, "2,inf,0.3,0.6,0.4")),
            "accuracy 'inf' at epoch 3: read as non-finite"),
    LogCase("400 digits in a Keras log", _paths(lambda t: dl.keras_with(t, 2, f"2,0.6,{HUGE},0.6,0.4")),
            "loss '999999999999...(400 characters)' at epoch 3: beyond the float range, read as non-finite"),
    LogCase("inf in a Lightning log", _paths(lambda t: dl.lightning(t, rows=["0,9,2.0,inf,0.5", "1,19,1.0,0.9,0.6"])),
            "val_loss 'inf' at epoch 1: read as non-finite"),
    LogCase("400 digits in a Lightning log", _paths(lambda t: dl.lightning(t, rows=["0,9,2.0,1.0,0.5", f"1,19,{HUGE},0.9,0.6"])),
            "train_loss '999999999999...(400 characters)' at epoch 2: beyond the float range"),
    LogCase("inf in a timm summary.csv", _paths(lambda t: dl.timm(t, ["0,2.0,1.9,30,60,0.1", "1,inf,1.5,40,70,0.1"])),
            "train_loss 'inf' at epoch 2: read as non-finite"),
    LogCase("400 digits in a timm summary.csv", _paths(lambda t: dl.timm(t, ["0,2.0,1.9,30,60,0.1", f"1,1.0,1.5,{HUGE},70,0.1"])),
            "eval_top1 '999999999999...(400 characters)' at epoch 2: beyond the float range"),
    LogCase("Infinity in a trainer_state.json", _paths(lambda t: dl.hf(t, dl.hf_rows("Infinity"))),
            "loss 'inf' at epoch 1: read as non-finite"),
    LogCase("400 digits in a trainer_state.json", _paths(lambda t: dl.hf(t, dl.hf_rows(loss2=HUGE))),
            "loss '999999999999...(400 characters)' at epoch 2: beyond the float range"),
    LogCase("an epoch of 400 digits in a Keras log", _paths(lambda t: dl.keras_with(t, 2, f"{HUGE},0.6,0.3,0.6,0.4")),
            "1 row(s) without an epoch number (from line 4): skipped"),
    LogCase("an epoch of 400 digits in a trainer_state.json",
            _paths(lambda t: dl.hf(t, '[{"epoch": ' + HUGE + ', "loss": 1.0}, {"epoch": 1.0, "loss": 0.5, "step": 1}]')),
            "1 log_history row(s) whose epoch is no epoch number: skipped"),
    # ── damage that was read silently, and wrongly ──
    LogCase("a duplicated column name", _paths(lambda t: dl.keras(t, ["epoch,accuracy,loss,accuracy,val_loss", *_KERAS_ROWS])),
            "column 'accuracy' appears 2 times (columns 2, 4): the last one is read"),
    LogCase("an unterminated quote", _paths(lambda t: dl.keras_with(t, 2, '2,"0.6,0.3,0.6,0.4')),
            "not a CSV file (unexpected end of data, an unterminated quote?)", code=2),
    LogCase("NUL bytes in a CSV log", _paths(lambda t: dl.keras_with(t, 2, "2,0.6\0\0\0\0,0.3,0.6,0.4")),
            "NUL bytes in line 4 (a file cut by a crash, or not text): skipped"),
    LogCase("a TensorBoard record with a bad CRC", _paths(dl.bad_crc),
            "1 record(s) with a bad checksum (a damaged file): skipped"),
    LogCase("a TensorBoard record header with a bad CRC", _paths(_bad_header_crc), "bad checksum in the record header at byte"),
    LogCase("a TensorBoard file cut mid-record", _paths(_cut_events), "its last record is cut off at byte"),
    LogCase("an accuracy of 2.5 among fractions", _paths(lambda t: dl.keras(t, [dl.KERAS_HEADER, *_KERAS_ROWS[:2],
                                                                             "2,0.6,0.3,2.5,0.4", *_KERAS_ROWS[3:]])),
            "val_accuracy 2.5 at epoch 3: not an accuracy (a fraction in [0, 1] or a percentage up to 100), read as missing"),
    LogCase("an accuracy of 250 %", _paths(lambda t: dl.keras(t, [dl.KERAS_HEADER, "0,50,1.0,40,1.1", "1,60,0.5,250,0.6",
                                                                 "2,70,0.3,60,0.4"])),
            "val_accuracy 250 (read as a percentage) at epoch 2: not an accuracy"),
    # ── the command line ──
    LogCase("an empty path", lambda logs: [""], "argument paths: an empty path (Path('') is the current directory)", code=2),
    LogCase("an unknown option", _with_args(lambda t: dl.keras(t, [dl.KERAS_HEADER, *_KERAS_ROWS]), "--formt", "json"),
            "unknown option --formt; did you mean --format?", code=2),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in LOG_CASES])
def test_other_tools_logs_are_read_named_or_refused_in_one_line_and_change_nothing(case, tmp_path, capsys, monkeypatch):
    from analysis.__main__ import main

    logs, cwd = tmp_path / "logs", tmp_path / "cwd"
    logs.mkdir()
    cwd.mkdir()
    args = case.build(logs)
    before = snapshot(logs)
    monkeypatch.chdir(cwd)
    with no_hang(CASE_TIMEOUT_S):
        try:
            code = main(args)
        except SystemExit as e:  # argparse's own exit
            code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and INTERNAL_ERROR not in err, err
    assert code == case.code, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and case.message in lines[0], err
    elif case.stream == "stderr":
        assert any(line.startswith("warning: ") and case.message in line for line in err.splitlines()), err
    else:
        assert case.message in out, out[:2000]
    assert not case.quiet or err == "", err
    assert digest(snapshot(logs)) == digest(before)
    assert list(cwd.iterdir()) == [], "written into the working directory without --out"


def test_catalog_is_at_least_25_cases_and_documented_with_its_count():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)
    assert len({c.id for c in LOG_CASES}) == len(LOG_CASES)
    count = len(CASES) + len(LOG_CASES)
    assert f"`tests/test_bad_input_catalog.py`: {count} bad inputs" in (ROOT / "docs" / "reliability.md").read_text()
