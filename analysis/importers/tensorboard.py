"""TensorBoard event files (`events.out.tfevents.*`) -> Source, read with the `tensorboard` package's
event-file reader (no TensorFlow, no torch).

Scalars are read by tag, from every event file of the directory (Lightning writes one per fit, validate
and test). Their steps become epochs by, in this order of trust:
1. an `epoch` tag (Lightning logs one with every metric): each step takes the epoch logged at or after it;
2. `--steps-per-epoch N`: epoch = step // N + 1 (steps counted from 0);
3. validation tags logged once per epoch, evenly spaced k steps apart, while training tags are logged
   more often: k steps per epoch, the epoch boundaries at the validation steps (said in a note);
4. otherwise the steps are epochs (add_scalar(tag, value, epoch)), counted from 1 (shifted when from 0).
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Optional

from rundir.read import RunError

from .build import Source
from .names import target

PATTERN = "events.out.tfevents.*"
EXTRA = "traindx[tensorboard]"


def looks_like(path: Path) -> bool:
    return path.is_file() and path.name.startswith("events.out.tfevents.")


def find(path: Path) -> list[Path]:
    """Directories holding event files: the directory itself, else tensorboard/version_*/,
    lightning_logs/version_*/, version_*/ or any one level down; several directories are several runs."""
    if path.is_file():
        return [path]
    if any(path.glob(PATTERN)):
        return [path]
    for pattern in ("tensorboard/version_*", "tensorboard", "lightning_logs/version_*", "version_*", "*",
                    "*/version_*"):
        hits = sorted({p for p in path.glob(pattern) if p.is_dir() and any(p.glob(PATTERN))})
        if hits:
            return hits
    return []


def _scalars(files: list[Path]) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, wall_time, value)] over all files."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        from tensorboard.util import tensor_util
    except ImportError:
        raise RunError(f"reading TensorBoard event files needs the tensorboard package: pip install {EXTRA}") from None
    out: dict[str, list[tuple[int, float, float]]] = {}
    for f in files:
        try:
            events = list(EventFileLoader(str(f)).Load())
        except Exception as e:  # a truncated or foreign file: the reader raises its own error types
            raise RunError(f"{f}: not a readable TensorBoard event file ({type(e).__name__})") from None
        for ev in events:
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
                    value = float(arr.reshape(-1)[0])
                else:
                    continue
                out.setdefault(v.tag, []).append((int(ev.step), float(ev.wall_time), value))
    return out


def read(path: Path, steps_per_epoch: Optional[int] = None) -> Source:
    files = [path] if path.is_file() else sorted(p for p in path.glob(PATTERN) if p.is_file())  # never a FIFO
    if not files:
        raise RunError(f"{path}: no TensorBoard event files ({PATTERN})")
    run_dir = path.parent if path.is_file() else path
    src = Source("TensorBoard event files", "tensorboard", files, run_dir.name, run_dir)
    scalars = _scalars(files)
    scalars = {t: sorted(v, key=lambda x: (x[1], x[0])) for t, v in scalars.items() if not t.startswith("_hparams_")
               and t != "hp_metric"}
    if not scalars:
        raise RunError(f"{path}: no scalar in its TensorBoard event files")
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
