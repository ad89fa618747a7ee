"""TensorBoard event files (`events.out.tfevents.*`) -> Source, read with the `tensorboard` package's
protos (no TensorFlow, no torch). Records are framed and checksummed here (`_records`): a record whose
CRC fails is skipped and named, never the silent end of the file TensorBoard's own loader makes of it.
Keras's layout (train/ and validation/ folders, tags epoch_loss, epoch_accuracy) is one run whose folder
names the stage; the trainer's own tags (`train/mean_grad_norm`, rundir.format.LOGGER_TAG) are its fields.

Scalars are read by tag, from every event file of the directory (Lightning writes one per fit, validate
and test). Their steps become epochs by, in this order of trust:
1. an `epoch` tag (Lightning logs one with every metric): each step takes the epoch logged at or after it;
2. `--steps-per-epoch N`: epoch = step // N + 1 (steps counted from 0);
3. validation tags logged once per epoch, evenly spaced k steps apart, while training tags are logged
   more often: k steps per epoch, the epoch boundaries at the validation steps (said in a note);
4. otherwise the steps are epochs (add_scalar(tag, value, epoch)), counted from 1 (shifted when the tags
   read as fields start at 0; a summary written once at step 0, like an hparams one, does not count).
"""

from __future__ import annotations

import bisect
import math
import struct
from pathlib import Path
from typing import Iterator, Optional

from rundir.read import RunError
from rundir.safe import in_mib, read_capped

from .build import Source
from .names import epoch_level, has_stage, split_stage, target
from .textfile import MAX_LOG_BYTES

PATTERN = "events.out.tfevents.*"
EXTRA = "traindx[tensorboard]"


def looks_like(path: Path) -> bool:
    return path.is_file() and path.name.startswith("events.out.tfevents.")


# Keras's TensorBoard callback writes one run as two folders, train/ and validation/, with the same tags
# in both (epoch_loss, epoch_accuracy; step = the 0-based epoch): the folder names the stage.
VALIDATION_FOLDER = "validation"
STAGE_FOLDERS = ("train", VALIDATION_FOLDER)
# TensorFlow's custom-loop tutorials write train/ and test/, the test set evaluated after every epoch: with no
# validation/ folder, a test/ folder evaluated at several steps is the run's held-out curve, read as the
# validation stage (said in a note); evaluated once, it is a final test pass, left out like test_* names.
TEST_FOLDER = "test"


def _has_events(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() for p in path.glob(PATTERN))


def _stage_folders(path: Path) -> list[Path]:
    found = [path / name for name in STAGE_FOLDERS if _has_events(path / name)]
    if found and path / VALIDATION_FOLDER not in found and _has_events(path / TEST_FOLDER):
        found.append(path / TEST_FOLDER)
    return found


def _test_folder_as_validation(scalars: dict, src: Source) -> None:
    """The test/ folder's tags (test/<tag>, prefixed by their folder) renamed validation/<tag> when the test set
    was evaluated at several steps: the held-out curve of a run that keeps no validation set."""
    prefix = TEST_FOLDER + "/"
    tags = [t for t in scalars if t.startswith(prefix)]
    steps = {step for t in tags for step, _, _ in scalars[t]}
    if len(steps) < 2:
        return
    renamed = []
    for t in sorted(tags):
        inner = t[len(prefix):]
        stage, metric = split_stage(inner)  # v_loss, test_accuracy: the folder's stage, not the word's
        new = f"{VALIDATION_FOLDER}/" + (metric if stage is not None else inner)
        scalars[new] = scalars.pop(t)
        renamed.append(f"{t} as {new}")
    shown = ", ".join(renamed[:4]) + (f" and {len(renamed) - 4} more" if len(renamed) > 4 else "")
    src.notes.append(f"test/ read as the validation stage ({shown}): there is no validation/ folder, and the test "
                     f"set was evaluated {len(steps)} times, after each epoch (a test set watched during training "
                     f"is the run's validation set)")


def find(path: Path) -> list[Path]:
    """Directories holding event files: the directory itself (or, Keras's layout, its train/ and validation/
    folders), else tensorboard/version_*/, lightning_logs/version_*/, version_*/ or any one level down;
    several directories are several runs."""
    if path.is_file():
        return [path]
    if any(path.glob(PATTERN)) or _stage_folders(path):
        return [path]
    for pattern in ("tensorboard/version_*", "tensorboard", "lightning_logs/version_*", "version_*", "*",
                    "*/version_*"):
        hits = sorted({p for p in path.glob(pattern) if _has_events(p) or (p.is_dir() and _stage_folders(p))})
        if hits:
            return hits
    return []


def _scalars(files: list[Path], warnings: list[str], stages: Optional[dict] = None
             ) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, wall_time, value)] over all files; stages: file -> the stage folder it lies in, whose
    name prefixes its tags that name no stage themselves (validation/ + epoch_loss -> validation/epoch_loss)."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.util import tensor_util
    except ImportError:
        raise RunError(f"reading TensorBoard event files needs the tensorboard package: pip install {EXTRA}") from None
    stages = stages or {}
    out: dict[str, list[tuple[int, float, float]]] = {}
    for f in files:
        for payload in _records(f, warnings):
            try:
                ev = Event.FromString(payload)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError and kin: a record that is no event
                warnings.append(f"{f}: a record that is no TensorBoard event: skipped")
                continue
            if not ev.HasField("summary"):
                continue
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    value = float(v.simple_value)
                elif kind == "tensor" and v.metadata.plugin_data.plugin_name in ("scalars", ""):
                    try:
                        arr = tensor_util.make_ndarray(v.tensor)
                    except Exception:  # a tensor of another kind (text, histogram)
                        continue
                    if arr.size != 1:
                        continue
                    try:
                        value = float(arr.reshape(-1)[0])
                    except (TypeError, ValueError):  # a string tensor
                        continue
                else:
                    continue
                # A test/ folder's tags all keep their folder (v_loss there is the test set's): whether it is the
                # validation stage is decided once all of it is read (_test_folder_as_validation).
                keep = f not in stages or (has_stage(v.tag) and stages[f] != TEST_FOLDER)
                tag = v.tag if keep else f"{stages[f]}/{v.tag}"
                out.setdefault(tag, []).append((int(ev.step), float(ev.wall_time), value))
    return out


def _records(path: Path, warnings: list[str]) -> Iterator[bytes]:
    """The payloads of an event file's records (TFRecord framing: a length, its CRC-32C, the data, its
    CRC-32C), read through rundir's safe reader. TensorBoard's own loader stops without a word at the first
    bad checksum; here a damaged record is skipped and named, and damaged framing ends the file with a warning."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = read_capped(path, MAX_LOG_BYTES, warnings)
    if data is None:
        return
    if len(data) > MAX_LOG_BYTES:
        data = data[:MAX_LOG_BYTES]
        warnings.append(f"{path}: larger than {in_mib(MAX_LOG_BYTES)}: only its first {in_mib(MAX_LOG_BYTES)} read")
    off, damaged = 0, 0
    while off < len(data):
        if len(data) - off < 12:
            warnings.append(f"{path}: its last record is cut off at byte {off} (a writer stopped mid-record): skipped")
            break
        header = data[off:off + 8]
        (length,), (header_crc,) = struct.unpack("<Q", header), struct.unpack("<I", data[off + 8:off + 12])
        if masked_crc32c(header) != header_crc:
            warnings.append(f"{path}: bad checksum in the record header at byte {off} (a damaged file): the rest, "
                            f"{len(data) - off} bytes, not read")
            break
        end = off + 12 + length + 4
        if end > len(data):
            warnings.append(f"{path}: its last record is cut off at byte {off} (a writer stopped mid-record): skipped")
            break
        payload = data[off + 12:off + 12 + length]
        if masked_crc32c(payload) != struct.unpack("<I", data[end - 4:end])[0]:
            damaged += 1
        else:
            yield payload
        off = end
    if damaged:
        warnings.append(f"{path}: {damaged} record(s) with a bad checksum (a damaged file): skipped")


def _events(path: Path) -> list[Path]:
    return sorted(p for p in path.glob(PATTERN) if p.is_file())  # never a FIFO


def read(path: Path, steps_per_epoch: Optional[int] = None) -> Source:
    files = [path] if path.is_file() else _events(path)
    stages: dict[Path, str] = {}
    folder = path.parent if path.is_file() else path
    if folder.name in STAGE_FOLDERS:  # Keras's train/ or validation/ given alone
        stages = {f: folder.name for f in files}
    for sub in ([] if path.is_file() else _stage_folders(path)):  # Keras's layout: both folders, one run
        stages.update({f: sub.name for f in _events(sub)})
        files += _events(sub)
    if not files:
        raise RunError(f"{path}: no TensorBoard event files ({PATTERN})")
    run_dir = path.parent if path.is_file() else path
    src = Source("TensorBoard event files", "tensorboard", files, run_dir.name, run_dir)
    scalars = _scalars(files, src.warnings, stages)
    scalars = {t: sorted(v, key=lambda x: (x[1], x[0])) for t, v in scalars.items() if not t.startswith("_hparams_")
               and t != "hp_metric"}
    if any(stage == TEST_FOLDER for stage in stages.values()):
        _test_folder_as_validation(scalars, src)
    if not scalars:
        raise RunError(f"{path}: no scalar in its TensorBoard event files")
    if stages and any(epoch_level(t) for t in scalars):  # Keras: epoch_* tags step by epoch, batch_* by iteration
        per_batch = sorted(t for t in scalars if not epoch_level(t) and target(t) is not None)
        for t in per_batch:
            del scalars[t]
        if per_batch:
            src.notes.append(f"Keras per-batch tags left out ({', '.join(per_batch[:4])}): their steps are "
                             f"iterations, the epoch_* tags' are epochs")
        src.notes.append(f"Keras TensorBoard layout: {', '.join(sorted(set(stages.values())))} folder(s) read as "
                         f"one run")
    to_epoch = _epoch_map(scalars, steps_per_epoch, src)
    for tag, points in scalars.items():
        if tag == "epoch":
            continue
        for step, _, value in points:
            src.add(tag, to_epoch(step), value)
    if any(t.lower().startswith("test") for t in scalars):
        src.completed = True
        src.notes.append("a test pass follows training: the run ended")
    return src


def _epoch_map(scalars, steps_per_epoch, src: Source):
    if "epoch" in scalars:
        pairs = sorted({(s, int(round(v))) for s, _, v in scalars["epoch"] if math.isfinite(v)})
        steps = [s for s, _ in pairs]
        epochs = [e for _, e in pairs]
        src.notes.append("steps mapped to epochs by the log's epoch tag")

        def by_tag(step: int) -> int:
            i = min(bisect.bisect_left(steps, step), len(steps) - 1)
            return epochs[i] + 1
        return by_tag
    if steps_per_epoch:
        src.notes.append(f"steps mapped to epochs with --steps-per-epoch {steps_per_epoch}")
        return lambda step: step // steps_per_epoch + 1
    val_steps = _val_steps(scalars)
    train_points = max((len(p) for t, p in scalars.items() if _kind(t) == ("train", "metric")), default=0)
    if len(val_steps) >= 2 and train_points > len(val_steps):
        gaps = {b - a for a, b in zip(val_steps, val_steps[1:])}
        if len(gaps) == 1 and min(gaps) > 1:
            k, first = gaps.pop(), val_steps[0]
            src.notes.append(f"{k} steps per epoch, read from the validation tags (logged every {k} steps); "
                             f"give --steps-per-epoch N if that is wrong")
            return lambda step: max(1, math.ceil((step - first) / k) + 1)
        if min(gaps) > 1:  # consecutive validation steps somewhere: logged per epoch, one point missing
            src.warnings.append("training tags are logged per step and validation tags at uneven steps: steps are "
                                "read as epochs; give --steps-per-epoch N")
    # Only the tags read as fields tell how steps are numbered: a summary written once with step 0 (the
    # trainer's hparam/best_val_accuracy, an hparams plugin's) would shift every epoch by one.
    read = [p for t, p in scalars.items() if target(t) is not None] or list(scalars.values())
    first = min(s for p in read for s, _, _ in p)
    shift = 1 if first == 0 else 0
    src.notes.append("steps read as epochs" + (" (counted from 0, shifted by 1)" if shift else ""))
    return lambda step: step + shift


def _kind(tag: str) -> tuple[Optional[str], str]:
    """(stage, 'metric' or 'optimizer') of a tag: the learning rate and gradient norm are logged per step
    even by a run that logs its metrics per epoch, so they say nothing about the logging rhythm."""
    t = target(tag)
    if t is None:
        return None, ""
    return t.stage, "optimizer" if t.field in ("learning_rate", "mean_grad_norm") else "metric"


def _val_steps(scalars) -> list[int]:
    for tag, points in scalars.items():
        if _kind(tag)[0] == "val":
            return sorted({s for s, _, _ in points})
    return []
