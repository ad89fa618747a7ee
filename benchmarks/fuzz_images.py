"""Fuzz the image-folder loader (data=imagefolder): seeded folders of real PNG and JPEG files, made with
Pillow, some mutated (random bytes, truncations, bit flips, header fields rewritten with or without a valid
CRC, chunks added or dropped, zTXt bombs, splices of two files, FIFOs and links to folders above), each
loaded through `trainer.data.build_datasets` and then read image by image as training would read it.

    python benchmarks/fuzz_images.py --cases 100000 --workers 2 --seed 0

A case passes when build_datasets either refuses the folder (or its split) with a one-line DataError, or
returns datasets whose every image loads as a finite (3, size, size) tensor: an image the start-up scan
accepted must never fail later, mid-epoch. Anything else (another exception, a hang past CASE_TIMEOUT_S,
more memory than fuzz_analysis.MEMORY_LIMIT_BYTES) fails, printed with its seed, so `--replay SEED` reproduces it.
tests/test_fuzz_images.py runs a few hundred cases in the default suite and 100,000 as a slow test
(docs/reliability.md has the figure).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import struct
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from fuzz_analysis import memory_limit, run_chunks  # noqa: E402 - the same memory cap and chunked runner

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SIZE = 16  # data.image_size of every case: small, so a case costs milliseconds
CASE_TIMEOUT_S = 20  # a case that hangs (a FIFO read, a loop through links) fails instead of stalling the run


# ───────────────────────────── real files, made with Pillow ─────────────────────────────


def png_chunk(kind: bytes, data: bytes, crc: bool = True) -> bytes:
    """One PNG chunk: length, type, data and its CRC (a wrong CRC when crc=False)."""
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum if crc else checksum ^ 1)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a well-formed PNG."""
    out, i = [], len(PNG_SIGNATURE)
    while i + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[i:i + 4]), data[i + 4:i + 8]
        out.append((kind, data[i + 8:i + 8 + length]))
        i += 12 + length
    return out


def png_from_chunks(chunks: list[tuple[bytes, bytes]], bad_crc: frozenset = frozenset()) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(k, d, crc=i not in bad_crc) for i, (k, d) in enumerate(chunks))


def has_ihdr(data: bytes) -> bool:
    """A PNG signature followed by a whole IHDR chunk (earlier mutations may have broken either)."""
    chunks = png_chunks(data) if data.startswith(PNG_SIGNATURE) else []
    return bool(chunks) and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (CRC recomputed: Pillow trusts it; the pixels stay the old ones)."""
    chunks = png_chunks(data)
    kind, ihdr = chunks[0]
    chunks[0] = (kind, struct.pack(">II", width, height) + ihdr[8:])
    return png_from_chunks(chunks)


def ztxt_bomb_chunk(inflated_mib: int = 64) -> bytes:
    """A zTXt chunk of a few KB that inflates to inflated_mib MiB of text."""
    text = zlib.compress(b"A" * (inflated_mib << 20), 9)
    return png_chunk(b"zTXt", b"Comment\x00\x00" + text)


def with_chunk_after_header(data: bytes, chunk: bytes) -> bytes:
    """data (a PNG) with chunk inserted right after IHDR."""
    at = len(PNG_SIGNATURE) + 25  # signature, then IHDR: 4 length + 4 type + 13 data + 4 CRC
    return data[:at] + chunk + data[at:]


def image_bytes(fmt: str, mode: str, size: tuple[int, int], seed: int = 0, **save) -> bytes:
    """A real image file of random pixels, written by Pillow."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}.get(mode)
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert("P")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (size[1], size[0]), dtype=np.uint16))
    else:
        shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
        pixels = rng.integers(0, 255, shape, dtype=np.uint8)
        image = Image.fromarray(pixels, mode="RGBA" if mode == "CMYK" else None)
        if mode == "CMYK":
            image = image.convert("RGB").convert("CMYK")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def template_images() -> dict[str, bytes]:
    """The good files mutated from: PNGs of each colour type (with text chunks, interlaced), JPEGs
    (baseline, progressive, grey, CMYK, with EXIF)."""
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "traindx fuzz")
    text.add_text("Zipped", "x" * 300, zip=True)
    return {
        "rgb.png": image_bytes("PNG", "RGB", (20, 12), 1, pnginfo=text),
        "grey.png": image_bytes("PNG", "L", (9, 17), 2),
        "rgba.png": image_bytes("PNG", "RGBA", (16, 16), 3),
        "palette.png": image_bytes("PNG", "P", (24, 10), 4),
        "deep.png": image_bytes("PNG", "I;16", (8, 8), 5),
        "interlaced.png": image_bytes("PNG", "RGB", (33, 21), 6, optimize=False, interlace=1),
        "rgb.jpg": image_bytes("JPEG", "RGB", (40, 24), 7, quality=80),
        "progressive.jpg": image_bytes("JPEG", "RGB", (64, 48), 8, progressive=True),
        "grey.jpg": image_bytes("JPEG", "L", (17, 31), 9),
        "cmyk.jpg": image_bytes("JPEG", "CMYK", (16, 16), 10),
        "exif.jpg": image_bytes("JPEG", "RGB", (24, 24), 11, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"),
    }


# ───────────────────────────── mutations of one file ─────────────────────────────

EXTREME_SIDES = [0, 1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 16, 100_000, 9_460, 46_341]


def m_random_bytes(data, rng, t):
    return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 7, 8, 64, 500, 3000])))


def m_signature_then_random(data, rng, t):
    """A right signature in front of random bytes: the decoders get past the first check."""
    head = PNG_SIGNATURE if data.startswith(PNG_SIGNATURE) else b"\xff\xd8\xff\xe0"
    return head + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))


def m_truncate(data, rng, t):
    return data[: rng.randrange(len(data) + 1)]


def m_flip(data, rng, t):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def m_header_bytes(data, rng, t):
    """Random bytes written over the first 64 bytes: signatures, IHDR, SOI/APP0/DQT."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if b:
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
    return bytes(b)


def m_png_header_field(data, rng, t):
    """One IHDR field (size, bit depth, colour type, compression, filter, interlace) set to a hostile
    value, its CRC recomputed or not."""
    if not has_ihdr(data):
        return m_jpeg_frame(data, rng, t)
    chunks = png_chunks(data)
    kind, ihdr = chunks[0]
    fields = list(struct.unpack(">IIBBBBB", ihdr[:13]))
    i = rng.randrange(7)
    fields[i] = rng.choice(EXTREME_SIDES) if i < 2 else rng.choice([0, 1, 2, 3, 4, 6, 7, 8, 16, 32, 255])
    chunks[0] = (kind, struct.pack(">IIBBBBB", *fields))
    return png_from_chunks(chunks, bad_crc=frozenset() if rng.random() < 0.8 else frozenset({0}))


def m_png_claims_size(data, rng, t):
    """IHDR claims another size with a valid CRC: from 1x1 to a decompression bomb."""
    if not has_ihdr(data):
        return m_jpeg_frame(data, rng, t)
    return with_png_size(data, rng.choice(EXTREME_SIDES[1:]), rng.choice(EXTREME_SIDES[1:]))


def m_png_chunks(data, rng, t):
    """Chunks dropped, duplicated, reordered, given a wrong CRC or a huge length field."""
    chunks = png_chunks(data) if data.startswith(PNG_SIGNATURE) else []
    if not chunks:
        return m_jpeg_markers(data, rng, t)
    op = rng.choice(["drop", "duplicate", "swap", "crc", "length"])
    i = rng.randrange(len(chunks))
    if op == "drop":
        del chunks[i]
    elif op == "duplicate":
        chunks.insert(i, chunks[i])
    elif op == "swap":
        j = rng.randrange(len(chunks))
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif op == "crc":
        return png_from_chunks(chunks, bad_crc=frozenset({i}))
    else:
        out = bytearray(png_from_chunks(chunks))
        at = len(PNG_SIGNATURE) + sum(12 + len(d) for _, d in chunks[:i])
        out[at:at + 4] = struct.pack(">I", rng.choice([0, 0x7FFFFFFF, 0xFFFFFFFF, len(chunks[i][1]) + 1]))
        return bytes(out)
    return png_from_chunks(chunks)


def m_text_bomb(data, rng, t):
    """A zTXt (or iTXt) chunk that inflates to 64 MiB, or many text chunks that together pass Pillow's cap."""
    if not data.startswith(PNG_SIGNATURE):
        return m_jpeg_markers(data, rng, t)
    if rng.random() < 0.7:
        return with_chunk_after_header(data, t["ztxt_bomb"])
    many = b"".join(png_chunk(b"tEXt", b"k%d\x00" % i + b"v" * 60_000) for i in range(rng.randint(2, 40)))
    return with_chunk_after_header(data, many)


def _jpeg_segments(data: bytes) -> list[int]:
    """Offsets of the JPEG markers before the scan data."""
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        out.append(i)
        if data[i + 1] == 0xDA:
            break
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return out


def m_jpeg_frame(data, rng, t):
    """The SOF segment's height, width, precision or component count set to a hostile value."""
    b = bytearray(data)
    sof = next((i for i in _jpeg_segments(data) if data[i + 1] in (0xC0, 0xC1, 0xC2) and i + 10 <= len(data)), None)
    if sof is None:
        return m_header_bytes(data, rng, t)
    field = rng.choice(["height", "width", "precision", "components"])
    if field in ("height", "width"):
        at = sof + (5 if field == "height" else 7)
        b[at:at + 2] = struct.pack(">H", rng.choice([0, 1, 2, 0xFFFF, 9_460, 30_000]))
    elif field == "precision":
        b[sof + 4] = rng.choice([0, 1, 12, 16, 255])
    else:
        b[sof + 9] = rng.choice([0, 2, 5, 255])
    return bytes(b)


def m_jpeg_markers(data, rng, t):
    """A marker segment's length field rewritten, a segment dropped, or an EOI in the middle."""
    segments = _jpeg_segments(data)
    if not segments:
        return m_truncate(data, rng, t)
    i = rng.choice(segments)
    b = bytearray(data)
    op = rng.choice(["length", "drop", "eoi"])
    if op == "length":
        b[i + 2:i + 4] = struct.pack(">H", rng.choice([0, 1, 2, 0xFFFF]))
    elif op == "drop":
        length = 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        del b[i:i + length]
    else:
        at = rng.randrange(i, len(b))
        b[at:at] = b"\xff\xd9"
    return bytes(b)


def m_splice(data, rng, t):
    """The head of this file and the tail of another."""
    other = t["images"][rng.choice(sorted(t["images"]))]
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


MUTATIONS = [m_random_bytes, m_signature_then_random, m_truncate, m_flip, m_header_bytes, m_png_header_field,
             m_png_claims_size, m_png_chunks, m_text_bomb, m_jpeg_frame, m_jpeg_markers, m_splice]
EXTENSIONS = [".png", ".jpg", ".jpeg", ".PNG", ".webp", ".bmp"]


# ───────────────────────────── one case ─────────────────────────────


def templates() -> dict:
    return {"images": template_images(), "ztxt_bomb": ztxt_bomb_chunk()}


def write_case(seed: int, root: Path, t: dict) -> dict:
    """Write case `seed`'s folder (two classes, good and mutated files) under root; the settings to load it."""
    rng = random.Random(seed)
    names = sorted(t["images"])
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(rng.randint(2, 3)):  # with val_fraction=0.5, at least one image per class in each split
            name = rng.choice(names)
            (root / label / f"good{i}{Path(name).suffix}").write_bytes(t["images"][name])
    for i in range(rng.randint(1, 3)):
        name = rng.choice(names)
        data = t["images"][name]
        for _ in range(rng.randint(1, 3)):
            data = rng.choice(MUTATIONS)(data, rng, t)
        ext = Path(name).suffix if rng.random() < 0.8 else rng.choice(EXTENSIONS)
        (root / rng.choice("ab") / f"bad{i}{ext}").write_bytes(data)
    extra = rng.random()
    if extra < 0.03:
        os.mkfifo(root / "a" / "fifo.png")  # never opened: its stat says FIFO
    elif extra < 0.06:
        (root / "b" / "self").symlink_to(".")  # a folder that links to itself, twice
        (root / "b" / "parent").symlink_to("..")
    elif extra < 0.08:
        (root / "a" / "loop.png").symlink_to("loop.png")
    return {"skip_bad": rng.random() < 0.5, "augment": rng.random() < 0.5, "seed": rng.randrange(1000)}


class CaseTimeout(BaseException):
    pass


def _expire(_signum, _frame):
    raise CaseTimeout(f"no result after {CASE_TIMEOUT_S} s")


def load_case(root: Path, settings: dict) -> str | None:
    """None when the folder was refused in one DataError line or every image loads; else what went wrong."""
    import torch

    from trainer.config import BasicAugmentationConf, DataConf, NoAugmentationConf
    from trainer.data import build_datasets
    from trainer.errors import DataError

    data = DataConf(name="imagefolder", root=str(root), num_classes=2, image_size=IMAGE_SIZE, val_fraction=0.5,
                    skip_bad_images=settings["skip_bad"])
    aug = BasicAugmentationConf() if settings["augment"] else NoAugmentationConf()
    try:
        d = build_datasets(data, aug, settings["seed"])
    except DataError as e:
        lines = str(e).splitlines()
        return None if len(lines) == 1 else f"DataError of {len(lines)} lines: {e!s:.200}"
    for split in (d.train, d.val):
        for i in range(len(split)):
            x, y = split[i]
            if tuple(x.shape) != (3, IMAGE_SIZE, IMAGE_SIZE) or not torch.isfinite(x).all() or int(y) not in (0, 1):
                return f"image {i} loaded as {tuple(x.shape)} with label {int(y)}"
    return None


def run_case(seed: int, t: dict) -> str | None:
    """None when the case passed, else a one-line failure naming the seed and what happened."""
    with tempfile.TemporaryDirectory(prefix="fuzz-img-") as tmp:
        old = signal.signal(signal.SIGALRM, _expire)
        signal.alarm(CASE_TIMEOUT_S)
        try:
            root = Path(tmp) / "folder"
            failure = load_case(root, write_case(seed, root, t))
        except BaseException as e:  # noqa: BLE001 - an exception escaping the loader is what we look for
            return f"seed {seed}: raised {type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return f"seed {seed}: {failure}" if failure else None


def run_cases(seeds: range, t: dict | None = None) -> tuple[int, list[str]]:
    t = t or templates()
    failures = [f for f in (run_case(s, t) for s in seeds) if f]
    return len(seeds), failures


def warm_up(t: dict) -> None:
    """One case before the memory limit: the first import of torchvision's transforms maps far more address
    space than a case may use."""
    run_case(0, t)


def _worker(chunk: tuple[int, int]) -> tuple[int, list[str]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    t = templates()
    warm_up(t)
    with memory_limit():
        return run_cases(range(*chunk), t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="first case seed")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--replay", type=int, help="run one case, keep its folder and print where it is")
    a = ap.parse_args(argv)
    if a.replay is not None:
        tmp = Path(tempfile.mkdtemp(prefix="fuzz-img-replay-")) / "folder"
        t = templates()
        warm_up(t)
        settings = write_case(a.replay, tmp, t)
        print("folder:", tmp, "settings:", settings)
        with memory_limit():
            print(load_case(tmp, settings) or "passed")
        return 0
    return run_chunks(_worker, a.seed, a.cases, a.workers)


if __name__ == "__main__":
    sys.exit(main())
