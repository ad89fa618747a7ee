"""Opening files that come from other people and other machines, safely.

Only regular files are opened: each is checked first (a FIFO, a device, a socket in its place is named in
one warning and never opened for reading), then opened non-blocking (should it be swapped for a FIFO in
between, the read returns at once). Every read stops at a cap, whatever size the file claims. JSON is read
with json, YAML with the safe loader only, its aliases, expansion and nesting bounded before anything is
built: nothing read is executed or unpickled, and nothing read can hang the reader or exhaust its memory.
A missing file reads as None without a word; every other problem is one warning naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Optional

from .format import LOG_SUFFIX

# What one read takes at most (bytes). Generous for real runs: a ResNet-18 train record is ~3.5 KB, so a
# JSONL file of 256 MiB holds ~75,000 of its epochs; run_info.json is a few KB (class counts of 21,000
# classes: ~0.5 MB); Hydra's YAML files are a few KB. Beyond the cap a JSONL file is read up to it (with a
# warning), a JSON or YAML file is ignored (with a warning): /dev/zero behind a symlink is refused anyway
# (not a regular file), and a huge regular file costs at most the cap.
MAX_JSONL_BYTES = 256 * 2**20
MAX_JSON_BYTES = 16 * 2**20
# Another tool's log kept as one JSON document (Hugging Face's trainer_state.json: ~150 bytes a logged step,
# so a run logging every step for 100,000 steps writes ~15-25 MB): 64 MiB holds ~400,000 logged steps, and
# json builds ~10x its size in objects (~0.7 GB), the most one read should cost.
MAX_JSON_LOG_BYTES = 64 * 2**20
MAX_YAML_BYTES = 4 * 2**20
MAX_LOG_TAIL_BYTES = 64 * 2**10  # a log is read from its end: the last error line
# YAML: Hydra writes no aliases at all; a file with more, or that expands past these many nodes or
# nests deeper, is refused before it is built (a 500-byte "billion laughs" expands to 10^9 nodes).
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def exists(path: Path) -> bool:
    """True when something is at path; False for any path that cannot be looked at (too long, no access)."""
    return os.path.lexists(path)


def is_dir(path: Path) -> bool:
    return os.path.isdir(path)  # os.path: False, not an exception, for a name too long or unreadable


def read_capped(path: Path, cap: int, warnings: list[str], tail: bool = False) -> Optional[bytes]:
    """The bytes of a regular file, at most cap + 1 of them (so a caller sees it was longer); None, with a
    warning, when it is no regular file or cannot be read; None, silently, when it does not exist.

    The file is checked before it is opened (a FIFO is never opened for reading) and opened non-blocking
    (should it be swapped for one in between, the read returns at once); the size is never trusted
    (/proc files say 0, a growing file says less): reading stops at the cap. tail: the last cap bytes.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as e:  # ENAMETOOLONG, EACCES, ELOOP; ValueError: a NUL in the name
        warnings.append(f"{path}: cannot read ({os_reason(e) if isinstance(e, OSError) else 'bad name'})")
        return None
    if not stat.S_ISREG(mode):
        warnings.append(f"{path}: {file_kind(mode)}, not a regular file: not read")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        warnings.append(f"{path}: cannot read ({os_reason(e)})")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            warnings.append(f"{path}: {file_kind(st.st_mode)}, not a regular file: not read")
            return None
        if tail and st.st_size > cap:
            os.lseek(fd, st.st_size - cap, os.SEEK_SET)
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, min(2**20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    except OSError as e:
        warnings.append(f"{path}: cannot read ({os_reason(e)})")
        return None
    finally:
        os.close(fd)


def printable(name: str) -> str:
    """A file name for display: bytes that are not UTF-8 (surrogate escapes) as \\xff, so every renderer
    (text, HTML, a plot's title) can take it."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file system gave (a name from JSON): escaped as text
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def in_mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def read_log_tail(path: Path, warnings: list[str]) -> str:
    """The last MAX_LOG_TAIL_BYTES of a log file as text ("" when absent or unreadable)."""
    data = read_capped(path, MAX_LOG_TAIL_BYTES, warnings, tail=True)
    return data[-MAX_LOG_TAIL_BYTES:].decode("utf-8", errors="replace") if data else ""


def log_files(run_dir: Path) -> list[Path]:
    """The run's log files (Hydra's job log, `<job name>.log`), sorted; [] when the directory cannot be listed."""
    try:
        return sorted(p for p in Path(run_dir).iterdir() if p.name.endswith(LOG_SUFFIX))
    except OSError:
        return []


def read_whole(path: Path, cap: int, warnings: list[str]) -> Optional[bytes]:
    """All of a regular file's bytes when it holds at most cap of them; None when absent, and None with a
    warning when it is unreadable or larger (a file read whole, unlike a JSONL file, is no use cut short)."""
    data = read_capped(path, cap, warnings)
    if data is not None and len(data) > cap:
        warnings.append(f"{path}: larger than {in_mib(cap)}, ignored")
        return None
    return data


def read_json(path: Path, warnings: list[str], cap: Optional[int] = None) -> Optional[dict]:
    """A JSON file holding an object (run_info.json, status.json, diagnostics_dir.json); None when absent,
    and None with a warning when it is unreadable, larger than cap (default MAX_JSON_BYTES, read at the call so
    a caller may lower it), or holds something else."""
    path = Path(path)
    data = read_whole(path, MAX_JSON_BYTES if cap is None else cap, warnings)
    if data is None:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        warnings.append(f"{path}: unreadable JSON ({type(e).__name__}), ignored")
        return None
    if not isinstance(obj, dict):
        warnings.append(f"{path}: not a JSON object, ignored")
        return None
    return obj


class YamlRefused(ValueError):
    """A YAML file whose aliases or nesting would expand beyond what any Hydra file holds."""


def _check_yaml_events(text: str, loader) -> None:
    """Walk the parser's events (no objects built): count aliases, the nodes the document expands to
    (an alias counts as the size of what it names), and the nesting depth; raise YamlRefused past a limit."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_nodes: list[tuple[Optional[str], int]] = []  # (anchor, node count when it opened)
    nodes = aliases = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise YamlRefused(f"more than {MAX_YAML_ALIASES} aliases")
            nodes += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append((event.anchor, nodes))
            nodes += 1
            if len(open_nodes) > MAX_YAML_DEPTH:
                raise YamlRefused(f"nested deeper than {MAX_YAML_DEPTH}")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, start = open_nodes.pop()
            if anchor:
                sizes[anchor] = nodes - start
        if nodes > MAX_YAML_NODES:
            raise YamlRefused(f"expands to more than {MAX_YAML_NODES} nodes" + (" through aliases" if aliases else ""))


def read_yaml(path: Path, warnings: list[str]) -> Any:
    """YAML with the safe loader only: plain data, never objects (libyaml's when present: 10x faster).
    Aliases and nesting are bounded (_check_yaml_events) before anything is built."""
    import yaml

    path = Path(path)
    data = read_whole(path, MAX_YAML_BYTES, warnings)
    if data is None:
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = data.decode("utf-8", errors="replace")
    try:
        _check_yaml_events(text, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - safe loader
    except YamlRefused as e:
        warnings.append(f"{path}: YAML refused ({e}), ignored")
        return None
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or type(e).__name__
        warnings.append(f"{where}: unreadable YAML ({problem}), ignored")
        return None


def read_yaml_mapping(path: Path, warnings: list[str]) -> Optional[dict]:
    """A YAML file that must hold a mapping (Hydra's config.yaml, hydra.yaml); anything else is named."""
    obj = read_yaml(path, warnings)
    if obj is None:
        return None
    if not isinstance(obj, dict):
        warnings.append(f"{path}: not a YAML mapping ({type(obj).__name__}), ignored")
        return None
    return obj


def read_yaml_list(path: Path, warnings: list[str]) -> list[str]:
    """Hydra's overrides.yaml: a list of override strings (an empty file is no overrides)."""
    obj = read_yaml(path, warnings)
    if obj is None:
        return []
    if not isinstance(obj, list):
        warnings.append(f"{path}: not a YAML list of overrides ({type(obj).__name__}), ignored")
        return []
    return [str(o) for o in obj]
