"""One writer per directory: an exclusive `fcntl.flock` on `<directory>/.traindx.lock` (rundir.format.LOCK).

The trainer holds it on its run directory (and on a diagnostics directory outside it) for the whole run;
`python -m analysis RUN --verify` holds it on the run's verify/ folder while its sweep runs. A second
process is refused at once, in one line naming the holder (`pid 123 on host h since <UTC time>`), which
the holder writes into the lock file and empties again when it lets go. The kernel releases a flock
when its process dies however it dies (SIGKILL, out of memory), so a lock is never stale; what a killed
holder left written in the file is replaced by the next holder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import socket
import stat
from pathlib import Path
from typing import Iterator, Optional

from .files import RunFileError
from .format import LOCK

HOLDER_BYTES = 400  # what is read of a holder's line (it writes one short line)


class Locked(RunFileError):
    """Another process holds the directory's lock. str(): one line naming the directory and the holder."""


class DirectoryLock:
    """The lock of one directory; `acquire()` raises Locked or RunFileError, `release()` lets go."""

    def __init__(self, directory: Path, hint: str):
        """hint: what the refused user can do, e.g. 'wait for it to end, or choose another hydra.run.dir'."""
        self.directory, self.hint = Path(directory), hint
        self.path = self.directory / LOCK
        self.fd: Optional[int] = None

    def acquire(self) -> "DirectoryLock":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a link in the lock's place is refused (never a flock on a file elsewhere);
            # O_NONBLOCK: a FIFO there cannot hang the open.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as e:
            reason = "it is a link; remove it" if e.errno == errno.ELOOP else str(e.strerror or e)
            raise RunFileError("write", self.path, reason) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunFileError("write", self.path, "it is not a regular file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace").strip().splitlines()
                who = holder[0] if holder else "a process that is just starting"
                raise Locked("write", self.directory, f"another process is writing it ({who}); {self.hint}") from None
            os.ftruncate(fd, 0)
            since = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            if isinstance(e, RunFileError):
                raise
            raise RunFileError("write", self.path, str(e.strerror or e)) from None
        self.fd = fd
        return self

    def release(self) -> None:
        """Empty the holder's line and let go (an emptied file: a finished run leaves its directory as it was)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with contextlib.suppress(OSError):  # a full or vanished disk: the kernel lets go at close anyway
            os.ftruncate(fd, 0)
        os.close(fd)


@contextlib.contextmanager
def hold(directory: Path, hint: str) -> Iterator[DirectoryLock]:
    """Hold directory's lock for the block (created, with the directory, when missing)."""
    lock = DirectoryLock(directory, hint).acquire()
    try:
        yield lock
    finally:
        lock.release()
