"""The files a run writes, written so that a crash at any instant leaves them readable.

- JSON files (`run_info.json`, `status.json`) and checkpoints are replaced atomically: temporary
  file in the same directory, flush and fsync, `os.replace`, fsync of the directory.
- JSONL lines are written whole in one `write()` call and flushed; the file is fsynced at each
  epoch's end. A writer that finds a last line without a newline (a torn write) cuts it off before
  appending, so a fragment never glues onto the next record.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call write(file) on a temporary file next to path, then move it into place atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text), mode="w")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class JsonlWriter:
    """Appends one JSON object per line; each line is one write() and is flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self.f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, allow_nan=False, separators=(", ", ": ")) + "\n")
        self.f.flush()

    def sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            self.sync()
            self.f.close()


def repair_tail(path: Path) -> bool:
    """Cut an unterminated last line (a torn write) off the file; True when something was cut."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return False
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return False
            # Find the end of the last complete line.
            pos, block = size, 4096
            keep = 0
            while pos > 0:
                start = max(0, pos - block)
                f.seek(start)
                chunk = f.read(pos - start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                pos = start
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
            return True
    except FileNotFoundError:
        return False


def truncate_jsonl(path: Path, last_epoch: int) -> int:
    """Keep only records with epoch <= last_epoch (resuming from a checkpoint); returns lines kept."""
    path = Path(path)
    if not path.exists():
        return 0
    repair_tail(path)
    kept: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                epoch = json.loads(line).get("epoch")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(epoch, int) and epoch <= last_epoch:
                kept.append(line if line.endswith("\n") else line + "\n")
    atomic_write(path, lambda f: f.write("".join(kept)), mode="w")
    return len(kept)


def read_records(path: Path) -> list[dict]:
    """The records of a JSONL file this run wrote (complete lines only), e.g. to resume live findings."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            records.append(obj)
    return records


class Status:
    """status.json: running, completed, failed or preempted, with progress; replaced atomically."""

    def __init__(self, path: Path, epochs: int):
        self.path = Path(path)
        self.state: dict[str, Any] = {
            "status": "running", "epoch": 0, "epochs": epochs,
            "best_val_accuracy": None, "best_epoch": None, "error": None, "finding": None,
            "started_at": now(), "updated_at": now(),
        }

    def update(self, **fields: Any) -> None:
        self.state.update(fields)
        self.state["updated_at"] = now()
        write_json(self.path, self.state)

    def fail(self, error: str, finding: Optional[str] = None) -> None:
        self.update(status="failed", error=error, finding=finding)


class _Nowhere:
    """Stands in for a writer (Status, JsonlWriter) on DDP ranks other than 0: every call does nothing."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


NOWHERE = _Nowhere()
