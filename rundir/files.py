"""Writing run files so that a crash at any instant leaves them readable (the trainer's files, and the
analysis' report files).

- JSON files (`run_info.json`, `status.json`) and checkpoints are replaced atomically: temporary
  file in the same directory, flush and fsync, `os.replace`, fsync of the directory.
- JSONL lines are written whole in one `write()` call and flushed; the file is fsynced at each
  epoch's end. A writer that finds a last line without a newline (a torn write) cuts it off before
  appending, so a fragment never glues onto the next record.
- A file that cannot be read or written (a directory in its place, no permission, a full disk)
  raises RunFileError naming it: one clear line for the user, not a traceback.
- A JSONL file is parsed line by line by `rundir.jsonl.parse_line`, the same parser the analysis uses.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from .format import FAILED, RUNNING, STATUS_FIELDS
from .jsonl import parse_line

log = logging.getLogger("trainer")  # the trainer's log: these warnings belong to its run


class RunFileError(OSError):
    """A run file that cannot be read or written: a directory in its place, no permission, a full disk.

    An OSError, so code that tolerates a failed write (recording a failure on the way out) still does;
    str() is one line naming the file and the reason."""

    def __init__(self, verb: str, path: Path, reason: str):
        super().__init__(f"cannot {verb} {path}: {reason}")
        self.verb, self.path, self.reason = verb, Path(path), reason

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # pickled across processes (joblib, submitit) as it was made
        return type(self), (self.verb, self.path, self.reason)


def _file_error(verb: str, path: Path, e: OSError) -> RunFileError:
    return RunFileError(verb, path, str(e.strerror or e))


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


def _umask() -> int:
    """The process umask, read when a file is written (a user may change it between runs or reports).
    Reading it means setting it: it is put straight back."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

TEMP_SUFFIX = ".tmp"  # atomic_write's temporary files: .<name>.<random>.tmp next to the target


def _surrogates(error: UnicodeError) -> tuple[bytes, int]:
    """A path's undecodable bytes (U+DC80..U+DCFF) go back as those bytes; any other lone surrogate (a
    `\\ud800` escape in a hostile JSON string) is written as the text `\\ud800`, never an exception."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for ch in error.object[error.start:error.end]:
        out += bytes([ord(ch) - 0xDC00]) if 0xDC80 <= ord(ch) <= 0xDCFF else ch.encode("ascii", "backslashreplace")
    return bytes(out), error.end


SURROGATES = "traindx-surrogates"
codecs.register_error(SURROGATES, _surrogates)


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call write(file) on a temporary file next to path, then move it into place atomically.

    Text modes write UTF-8; a path's undecodable bytes (surrogate escapes) are written back as they were."""
    text = "b" not in mode

    def fill(fd: int, _tmp: str) -> None:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "errors": SURROGATES} if text else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())

    _replace_atomically(Path(path), fill)


def atomic_write_path(path: Path, write: Callable[[Path], object]) -> None:
    """atomic_write for writers that take a file name (matplotlib's savefig): write(temporary path). The
    temporary name ends in the target's suffix (.tmp.png), since such writers choose the format by it."""
    def fill(fd: int, tmp: str) -> None:
        os.close(fd)
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())

    path = Path(path)
    _replace_atomically(path, fill, suffix=TEMP_SUFFIX + path.suffix)


def _replace_atomically(path: Path, fill: Callable[[int, str], None], suffix: str = TEMP_SUFFIX) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise _file_error("write", path, e) from None
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would, so status.json and
        # checkpoints are as readable as the JSONL files beside them (teammates, analysis jobs).
        with contextlib.suppress(OSError):  # some network filesystems refuse chmod
            os.fchmod(fd, 0o666 & ~_umask())
        fill(fd, tmp)
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


def write_all_or_nothing(target: Path, files: dict[str, "str | Callable[[Path], object]"],
                         follow_link: bool = True) -> list[Path]:
    """Write a set of files into target all or nothing (the analysis' report files): each is written into a
    temporary directory first (beside target when target does not exist yet, inside it otherwise, so that
    every move stays on one file system), and only once all are written completely do they move into place:
    the temporary directory renamed to target, or each file moved with os.replace. A failure while writing
    (a full disk, a directory in the way) leaves target as it was, and the temporary directory is removed.
    A link in place of a file is replaced, never written through; follow_link=False refuses a target that is
    itself a link (a folder the analysis chose, such as a sweep's analysis/, may not lead elsewhere).

    A value is the file's text, or a writer of a path (matplotlib's savefig); RunFileError names what failed."""
    target = Path(target)
    if os.path.islink(target) and not follow_link:
        raise RunFileError("write", target, f"it is a link (to {os.readlink(target)}), not followed")
    exists = os.path.lexists(target)
    if exists and not target.is_dir():
        raise RunFileError("write", target, "it is a file, not a directory")
    for name in files:  # checked first: a directory in the way is found before anything moves
        if (target / name).is_dir() and not (target / name).is_symlink():
            raise RunFileError("write", target / name, "Is a directory")
    try:
        if not exists:
            target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                        dir=target if exists else target.parent))
    except OSError as e:
        raise _file_error("write", target, e) from None
    try:
        with contextlib.suppress(OSError):  # mkdtemp makes it 0700: renamed into place it must be readable
            os.chmod(staging, 0o777 & ~_umask())
        for name, content in files.items():
            try:
                if callable(content):
                    content(staging / name)
                else:
                    with open(staging / name, "w", encoding="utf-8", errors=SURROGATES) as f:
                        f.write(content)
                with open(staging / name, "rb+") as f:
                    os.fchmod(f.fileno(), 0o666 & ~_umask())
                    os.fsync(f.fileno())
            except OSError as e:  # named as the file in target it was to become
                raise _file_error("write", target / name, e) from None
        if not exists:
            try:
                os.rename(staging, target)
                fsync_dir(target.parent)
                return [target / name for name in files]
            except OSError:  # another process made target meanwhile: move the files in one by one
                target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(staging / name, target / name)
        fsync_dir(target)
    except RunFileError:
        raise
    except OSError as e:
        where = Path(e.filename) if getattr(e, "filename", None) else target
        if where.parent == staging:  # the file's name in target, not in the temporary directory
            where = target / where.name
        raise _file_error("write", where, e) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [target / name for name in files]


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
    text = json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n"  # ASCII: any path survives
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
    kept: list[bytes] = []
    unreadable = 0
    try:
        lines = path.read_bytes().splitlines(keepends=True)  # the trainer's own file: no size cap
    except OSError as e:
        raise _file_error("read", path, e) from None
    for line in lines:
        obj = parse_line(line)[0]
        if not isinstance(obj, dict):
            unreadable += bool(line.strip())  # a corrupt line: dropped
            continue
        epoch = obj.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch <= last_epoch:
            kept.append(line)
    if unreadable:
        log.warning("%s: dropped %d unreadable line(s) while resuming", path, unreadable)
    if len(kept) < len(lines):  # rewrite only when something goes: a resume that cuts nothing writes nothing
        atomic_write(path, lambda f: f.write(b"".join(kept)))
    return len(kept)


def _previous_start(path: Path) -> Optional[str]:
    """started_at of the status.json a resumed run left, or None when it is gone or damaged."""
    try:
        first = json.loads(path.read_text()).get("started_at")
    except (OSError, ValueError, AttributeError):  # gone or damaged: this start is all we know
        return None
    return first if isinstance(first, str) else None


class Status:
    """status.json: running, completed, failed or preempted, with progress; replaced atomically."""

    def __init__(self, path: Path, epochs: int, resumed: bool = False):
        """resumed: the run continues from a checkpoint; it keeps its first started_at, and resumed_at says
        when it continued (the latest time)."""
        self.path = Path(path)
        self.state: dict[str, Any] = dict.fromkeys(STATUS_FIELDS)  # the fields of rundir.format, in order
        self.state.update(status=RUNNING, epoch=0, epochs=epochs, started_at=now(), updated_at=now())
        if resumed:
            first = _previous_start(self.path)
            self.state.update(started_at=first or self.state["started_at"], resumed_at=now())

    def update(self, **fields: Any) -> None:
        self.state.update(fields)
        self.state["updated_at"] = now()
        write_json(self.path, self.state)

    def fail(self, error: str, finding: Optional[str] = None) -> None:
        self.update(status=FAILED, error=error, finding=finding)


class _Nowhere:
    """Stands in for a writer (Status, JsonlWriter) on DDP ranks other than 0: every call does nothing."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


NOWHERE = _Nowhere()


def write_arrays(path: Path, arrays: dict) -> None:
    """A NumPy .npz of plain arrays (no object arrays: np.load reads it with allow_pickle=False), atomically."""
    import numpy as np

    atomic_write(path, lambda f: np.savez(f, **arrays))
