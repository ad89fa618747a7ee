"""Small images as PNG bytes, with the standard library's zlib alone (no imaging library, no torch)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png(image: np.ndarray) -> bytes:
    """A (C, H, W) uint8 image, C = 1 or 3, as PNG bytes: grayscale when C = 1 or all channels are equal."""
    image = np.asarray(image, dtype=np.uint8)
    gray = image.shape[0] == 1 or bool((image == image[:1]).all())
    pixels = image[0][:, :, None] if gray else image.transpose(1, 2, 0)  # (H, W, 1 or 3)
    h, w, c = pixels.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, w * c)], axis=1)  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if gray else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + chunk(b"IEND", b""))


def png_base64(image: np.ndarray) -> str:
    """png(image) as base64 text, for a data: URI or a JSON report."""
    return base64.b64encode(png(image)).decode("ascii")
