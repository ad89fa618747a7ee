"""An image folder (data=imagefolder) as the user really has it: scanned once at start-up, decoded safely.

`scan(root, ...)` lists `<root>/<class>/**/<image>` once, before anything trains:

- only regular files are images: a FIFO, a socket or a device named like an image is a bad image and is
  never opened for reading (stat first, then a non-blocking open whose own stat is checked again);
- links are followed once: a folder or a file reached a second time (the same device and inode, through a
  link to itself, to its parent or to another class) is counted once, so a folder that links to itself
  cannot loop, count a class forty times, or put one image on both sides of the train/val split;
- every image is decoded once, bounded: at most `MAX_IMAGE_BYTES` read and at most Pillow's
  `Image.MAX_IMAGE_PIXELS` pixels (larger is a decompression bomb), JPEGs at the reduced scale that their
  DCT allows, so a CIFAR-sized folder takes seconds. A corrupt, truncated, empty, unreadable or oversized
  file, or one whose text chunks inflate past Pillow's caps (a zTXt bomb), is a bad image.

Bad images are refused in one line naming the first few (`DataError`), or left out with a count in the
log when `data.skip_bad_images=true`. `ScannedFolder` then serves the listed images through the same
bounded decoder, so an image replaced after the scan is a `DataError` naming it, not a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from .errors import DataError

log = logging.getLogger("trainer")

# The file names torchvision's ImageFolder takes as images (torchvision.datasets.folder.IMG_EXTENSIONS),
# compared case-insensitively; other files in a class folder are ignored, as ImageFolder ignores them.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# Bytes an image file may have. Pillow's MAX_IMAGE_PIXELS default is 256 MiB of RGB pixels
# (1024**3 // 4 // 3), so no image within that limit needs a larger file, even uncompressed.
MAX_IMAGE_BYTES = 256 << 20
SHOWN_BAD = 5  # bad images named in the error line (the count says how many more)


@dataclass
class BadImage:
    path: str
    reason: str


@dataclass
class FolderScan:
    """What the scan found: classes (sorted folder names), (path, class index) samples, the bad images."""

    root: str
    classes: list[str]
    samples: list[tuple[str, int]]
    bad: list[BadImage] = field(default_factory=list)
    repeated: int = 0  # folders and files reached a second time through a link: counted once

    def skipped(self) -> dict:
        """run_info.json's record of the bad images left out (rundir/format.py SKIPPED_IMAGES)."""
        return {"count": len(self.bad), "of": len(self.samples) + len(self.bad),
                "examples": [{"path": os.path.relpath(b.path, self.root), "reason": b.reason}
                             for b in self.bad[:SHOWN_BAD]]}


class BadImageError(Exception):
    """An image file that cannot be used; the message is the reason."""


def scan(root: str, skip_bad: bool = False, decode_size: int = 32) -> FolderScan:
    """The images under root, each checked by a bounded decode (see the module docstring).

    skip_bad: leave bad images out (logged with a count) instead of raising DataError.
    decode_size: the side the images will be resized to; JPEGs decode at the smallest scale that covers it.
    """
    found = _walk(root)
    total = len(found.samples) + len(found.bad)  # image files found, the unreadable ones included
    good = []
    for path, label in found.samples:
        try:
            decode(path, decode_size)
        except BadImageError as e:
            found.bad.append(BadImage(path, str(e)))
        else:
            good.append((path, label))
    found.samples = good
    found.bad.sort(key=lambda b: b.path)
    if found.repeated:
        log.info("data.root=%s: %d folders or files reached again through links were counted once",
                 root, found.repeated)
    if found.bad:
        listed = "; ".join(f"{os.path.relpath(b.path, root)} ({b.reason})" for b in found.bad[:SHOWN_BAD])
        more = f"; and {len(found.bad) - SHOWN_BAD} more" if len(found.bad) > SHOWN_BAD else ""
        if not skip_bad:
            raise DataError(f"data.root={root}: {len(found.bad)} of {total} images cannot be used: {listed}{more}; "
                            f"fix or remove them, or set data.skip_bad_images=true to train without them")
        log.warning("data.root=%s: skipped %d of %d images that cannot be used (data.skip_bad_images=true): %s%s",
                    root, len(found.bad), total, listed, more)
    labelled = {label for _, label in good}
    empty = [c for i, c in enumerate(found.classes) if i not in labelled]
    if empty:
        raise DataError(f"data.root={root}: no usable image in the class folder(s) {', '.join(empty[:SHOWN_BAD])}"
                        f"{' ...' if len(empty) > SHOWN_BAD else ''} (image files end in "
                        f"{', '.join(IMAGE_EXTENSIONS)})")
    return found


def _walk(root: str) -> FolderScan:
    """Classes and candidate image files, each folder and file once (by device and inode), in ImageFolder's
    order: classes sorted, then within a class by folder path, then by file name."""
    root_stat = _stat_dir(root, root)
    seen_dirs = {(root_stat.st_dev, root_stat.st_ino)}  # a class folder linking back to root is not walked again
    seen_files: set[tuple[int, int]] = set()
    classes = sorted(e.name for e in _entries(root) if _is_dir(e))
    if not classes:
        raise DataError(f"data.root={root} has no class folders (it needs one subfolder per class)")
    result = FolderScan(root, classes, [])
    for label, name in enumerate(classes):
        folders: list[tuple[str, list[str]]] = []  # (folder path, its image files) of this class
        pending = [os.path.join(root, name)]
        while pending:
            folder = pending.pop()
            st = _stat_dir(folder, root)
            if (st.st_dev, st.st_ino) in seen_dirs:
                result.repeated += 1
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            files = []
            for entry in _entries(folder):
                path = os.path.join(folder, entry.name)
                is_image = entry.name.lower().endswith(IMAGE_EXTENSIONS)
                try:
                    entry_stat = os.stat(path)  # follows a link, once; a loop or a dangling link raises
                except OSError as e:
                    if is_image:
                        result.bad.append(BadImage(path, _os_reason(e, path)))
                    continue
                if stat.S_ISDIR(entry_stat.st_mode):
                    pending.append(path)
                elif is_image:
                    key = (entry_stat.st_dev, entry_stat.st_ino)
                    if not stat.S_ISREG(entry_stat.st_mode):
                        result.bad.append(BadImage(path, _not_regular(entry_stat.st_mode)))
                    elif key in seen_files:
                        result.repeated += 1
                    else:
                        seen_files.add(key)
                        files.append(entry.name)
            folders.append((folder, sorted(files)))
        for folder, files in sorted(folders):
            result.samples += [(os.path.join(folder, f), label) for f in files]
    return result


def _stat_dir(path: str, root: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"data.root={root}: cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"data.root={path} is not a directory")
    return st


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"cannot read the image folder {folder}: {e.strerror or e}") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link
    except OSError:
        return False


def _os_reason(e: OSError, path: str) -> str:
    if os.path.islink(path) and isinstance(e, FileNotFoundError):
        return "a link to nothing"
    return str(e.strerror or e)


def _not_regular(mode: int) -> str:
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
    return f"{kind}, not a regular file"


# ───────────────────────────── one image, bounded ─────────────────────────────


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow's warnings silenced while decoding: between MAX_IMAGE_PIXELS and twice that it warns where
    check_pixels refuses anyway, and a corrupt EXIF block (common in camera files, harmless to the pixels)
    would print a warning per image per epoch."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def decode(path: str, draft_size: Optional[int] = None):
    """The image at path as an RGB PIL image, or BadImageError saying why it cannot be used.

    draft_size: decode a JPEG at the smallest DCT scale whose sides stay >= draft_size (a check, not the
    image trained on). Pillow raises many exception types on hostile bytes (OSError, SyntaxError,
    ValueError, struct.error, ...): each means this file cannot be decoded, so each is a BadImageError.
    """
    from PIL import Image, UnidentifiedImageError

    with _open_regular(path) as f, _quiet_pillow():
        try:
            with Image.open(f) as image:
                check_pixels(image.size)
                if draft_size:
                    image.draft(None, (draft_size, draft_size))
                return image.convert("RGB")  # decodes every pixel (a truncated file fails here)
        except BadImageError:
            raise
        except UnidentifiedImageError:
            raise BadImageError("not an image Pillow can read") from None
        except Image.DecompressionBombError:
            raise BadImageError(_too_many_pixels()) from None
        except MemoryError:
            raise BadImageError("too large to decode in memory") from None
        except Exception as e:  # noqa: BLE001 - see the docstring: any decoder failure is this file's
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BadImageError(f"{type(e).__name__}: {message[:120]}" if message else type(e).__name__) from None


def check_pixels(size: tuple[int, int]) -> None:
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > limit:
        raise BadImageError(_too_many_pixels(size))


def _too_many_pixels(size: Optional[tuple[int, int]] = None) -> str:
    from PIL import Image

    dims = f"{size[0]}x{size[1]} pixels, " if size else ""
    return f"{dims}more than Pillow's Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS} (a decompression bomb?)"


def _open_regular(path: str):
    """path opened for reading when it is a regular file of at most MAX_IMAGE_BYTES, else BadImageError.
    The open is non-blocking (a FIFO put in the image's place since the scan cannot make it wait) and
    the open file itself is checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise BadImageError(_os_reason(e, path)) from None
    f = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadImageError(_not_regular(st.st_mode))
        if st.st_size == 0:
            raise BadImageError("an empty file")
        if st.st_size > MAX_IMAGE_BYTES:
            raise BadImageError(f"{st.st_size} bytes, more than the {MAX_IMAGE_BYTES >> 20} MiB an image may have")
    except BaseException:
        f.close()
        raise
    return f


# ───────────────────────────── the dataset ─────────────────────────────


class ScannedFolder:
    """The scanned images as a dataset of (transformed image, class index), with ImageFolder's attributes
    (classes, samples, targets, transform)."""

    def __init__(self, found: FolderScan, transform: Optional[Callable] = None):
        self.root = found.root
        self.classes = found.classes
        self.samples = found.samples
        self.targets = [label for _, label in found.samples]
        self.transform = transform
        self.skipped = found.skipped()  # the bad images the scan left out (data.skip_bad_images=true)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            image = decode(path)
        except BadImageError as e:  # changed since the scan
            raise DataError(f"{path}: {e} (it changed after the start-up scan of data.root={self.root})") from None
        return (self.transform(image) if self.transform is not None else image), label
