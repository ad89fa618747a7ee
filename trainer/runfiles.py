"""The files a run writes, written so that a crash at any instant leaves them readable.

- JSON files (`run_info.json`, `status.json`) and checkpoints are replaced atomically: temporary
  file in the same directory, flush and fsync, `os.replace`, fsync of the directory.
- JSONL lines are written whole in one `write()` call and flushed; the file is fsynced at each
  epoch's end. A writer that finds a last line without a newline (a torn write) cuts it off before
  appending, so a fragment never glues onto the next record.
- A file that cannot be read or written (a directory in its place, no permission, a full disk)
  raises RunFileError naming it: one clear line for the user, not a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import RunFileError

log = logging.getLogger("trainer")


def _file_error(verb: str, path: Path, e: OSError) -> RunFileError:
    return RunFileError(f"cannot {verb} {path}: {e.strerror or e}")


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


# The process umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

TEMP_SUFFIX = ".tmp"  # atomic_write's temporary files: .<name>.<random>.tmp next to the target


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call write(file) on a temporary file next to path, then move it into place atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise _file_error("write", path, e) from None
    try:
        with os.fdopen(fd, mode) as f:
            # mkstemp creates the file 0600; give it the mode a plain open() would, so status.json and
            # checkpoints are as readable as the JSONL files beside them (teammates, analysis jobs).
            with contextlib.suppress(OSError):  # some network filesystems refuse chmod
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and not isinstance(e, RunFileError):
            raise _file_error("write", path, e) from None
        raise
    fsync_dir(path.parent)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files of atomic writes that a killed process left in directory.

    Only one process writes a run's files, so at start-up any such file is a leftover: never read,
    but a checkpoint's can be as large as the model. Returns what was removed.
    """
    removed = []
    for tmp in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text), mode="w")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class JsonlWriter:
    """Appends one JSON object per line; each line is one write() and is flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        repair_tail(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise _file_error("append to", self.path, e) from None

    def write(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False, separators=(", ", ": ")) + "\n"
        try:
            self.f.write(line)
            self.f.flush()
        except OSError as e:
            raise _file_error("append to", self.path, e) from None

    def sync(self) -> None:
        try:
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as e:
            raise _file_error("append to", self.path, e) from None

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
            log.warning("%s: cut off an unterminated last line of %d bytes (a torn write)", path, size - keep)
            return True
    except FileNotFoundError:
        return False
    except OSError as e:
        raise _file_error("read", Path(path), e) from None


def truncate_jsonl(path: Path, last_epoch: int) -> int:
    """Keep only records with epoch <= last_epoch (resuming from a checkpoint); returns lines kept."""
    path = Path(path)
    if not path.exists():
        return 0
    repair_tail(path)
    kept: list[str] = []
    unreadable = 0
    try:
        # errors="replace": a corrupt byte spoils its own line only (dropped below), not the whole file
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        raise _file_error("read", path, e) from None
    for line in lines:
        try:
            epoch = json.loads(line).get("epoch")
        except (json.JSONDecodeError, AttributeError):
            unreadable += bool(line.strip())
            continue
        if isinstance(epoch, int) and epoch <= last_epoch:
            kept.append(line if line.endswith("\n") else line + "\n")
    if unreadable:
        log.warning("%s: dropped %d unreadable line(s) while resuming", path, unreadable)
    if len(kept) < len(lines):  # rewrite only when something goes: a resume that cuts nothing writes nothing
        atomic_write(path, lambda f: f.write("".join(kept)), mode="w")
    return len(kept)


class Status:
    """status.json: running, completed, failed or preempted, with progress; replaced atomically."""

    def __init__(self, path: Path, epochs: int, resumed: bool = False):
        """resumed: the run continues from a checkpoint; it keeps its first started_at, and resumed_at says
        when it continued (the latest time)."""
        self.path = Path(path)
        self.state: dict[str, Any] = {
            "status": "running", "epoch": 0, "epochs": epochs,
            "best_val_accuracy": None, "best_epoch": None, "error": None, "finding": None,
            "started_at": now(), "updated_at": now(),
        }
        if resumed:
            try:
                first = json.loads(self.path.read_text()).get("started_at")
            except (OSError, ValueError, AttributeError):  # gone or damaged: this start is all we know
                first = None
            self.state.update(started_at=first if isinstance(first, str) else self.state["started_at"],
                              resumed_at=now())

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
