"""How both entry points (`python -m trainer`, `python -m analysis`) end in an error: one line on stderr.

Bad input is the caller's `error: ...` line; `single_line` keeps it one line whatever the user typed (a
newline inside an override value or a path would otherwise be echoed raw). Anything unexpected, a bug,
reaches `last_line_of_defence`: its traceback is saved to a file and the user sees one line naming it,

    error: internal error: <type>: <message>; please report it with /tmp/traindx-traceback-XXXX.txt

and exit status 1. The tests count that line as a failure: bad input must never reach it.

Here in rundir/, the torch-free package both entry points import (the analysis never imports the trainer).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback
from typing import Iterator

EXIT_INTERNAL_ERROR = 1
INTERNAL_ERROR = "internal error"  # the marker the tests look for
TRACEBACK_PREFIX = "traindx-traceback-"


def single_line(text: str) -> str:
    """text with line breaks and other control characters escaped (`\\n`), so it prints as one line."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in str(text))


def save_traceback(exc: BaseException) -> str:
    """Write exc's traceback to a new temporary file; its path, or why it could not be written."""
    try:
        fd, path = tempfile.mkstemp(prefix=TRACEBACK_PREFIX, suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{' '.join(sys.argv)}\n\n")
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return path
    except OSError as e:  # a full or read-only /tmp: the line still goes out
        return f"(no traceback saved: {e.strerror or e})"


def internal_error_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    return single_line(f"error: {INTERNAL_ERROR}: {type(exc).__name__}: {message}; "
                       f"please report it with {save_traceback(exc)}")


@contextlib.contextmanager
def last_line_of_defence(let_through: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn any exception (not SystemExit, not Ctrl-C, none of let_through) into one line on stderr and exit 1."""
    try:
        yield
    except let_through:
        raise
    except Exception as e:  # noqa: BLE001 - this is the one place meant to catch everything
        try:
            print(internal_error_line(e), file=sys.stderr)
        except Exception:  # noqa: BLE001 - stderr itself is gone (a closed pipe): the exit status remains
            pass
        raise SystemExit(EXIT_INTERNAL_ERROR) from None
