"""Other tools' logs, whole and damaged, built in a test's temporary directory (issue 21 §4): each builder
writes one log and returns the path `python -m analysis` is given. Shared by tests/test_importer_damage.py
(what is read) and the bad-input catalogue's analysis rows (the line printed, the files unchanged)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_logs  # noqa: E402 - the log fuzzer's event-file writer (the tensorboard package's EventFileWriter)

KERAS_HEADER = "epoch,accuracy,loss,val_accuracy,val_loss"
EPOCHS = 5


def keras_rows(first: int = 0, epochs: int = EPOCHS) -> list[str]:
    return [f"{e},{0.5 + 0.05 * i:.2f},{1 / (i + 1):.4f},{0.45 + 0.05 * i:.2f},{1.1 / (i + 1):.4f}"
            for i, e in enumerate(range(first, first + epochs))]


def keras(tmp: Path, lines: list[str], name: str = "training.log", prefix: str = "") -> Path:
    """A Keras CSVLogger file (header and rows as given) in tmp/keras/."""
    d = tmp / "keras"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes((prefix + "\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return d / name


def keras_with(tmp: Path, row: int, text: str) -> Path:
    """The 5-epoch Keras log with its row `row` (0-based, after the header) replaced by text."""
    rows = keras_rows()
    rows[row] = text
    return keras(tmp, [KERAS_HEADER, *rows])


def lightning(tmp: Path, hparams: str | None = None, extra: dict | None = None, acc: float | None = None,
              loss: float | None = None, rows: list[str] | None = None, epochs: int = 10) -> Path:
    """A Lightning CSVLogger version directory: metrics.csv (epoch, step, train_loss, val_loss, val_acc and the
    extra columns: name -> value per 0-based epoch) and, when given, hparams.yaml."""
    d = tmp / "lightning_logs" / "version_0"
    d.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    header = ["epoch", "step", "train_loss", "val_loss", "val_acc", *extra]
    if rows is None:
        rows = [",".join([str(e), str(10 * e + 9), f"{loss if loss is not None else 2.0 / (e + 1):.4f}",
                          f"{loss if loss is not None else 2.1 / (e + 1):.4f}",
                          f"{acc if acc is not None else 0.3 + 0.05 * e:.4f}", *(str(f(e)) for f in extra.values())])
                for e in range(epochs)]
    (d / "metrics.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    if hparams is not None:
        (d / "hparams.yaml").write_text(hparams)
    return d


def at_chance(tmp: Path, hparams: str | None = None, extra: dict | None = None) -> Path:
    """A 10-class Lightning run stuck at chance: val accuracy 0.1, losses at ln 10."""
    return lightning(tmp, hparams, extra, acc=0.1, loss=2.3026)


def timm(tmp: Path, rows: list[str]) -> Path:
    d = tmp / "timm"
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.csv").write_text("epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n" + "\n".join(rows) + "\n")
    return d


def hf(tmp: Path, history_json: str, extra: str = "") -> Path:
    """A trainer_state.json whose log_history is the given JSON text (so that it may hold Infinity or 400 digits)."""
    d = tmp / "hf"
    d.mkdir(parents=True, exist_ok=True)
    (d / "trainer_state.json").write_text('{"log_history": ' + history_json + extra + ', "global_step": 20}')
    return d


def hf_rows(loss1: str = "0.9", loss2: str = "0.7") -> str:
    return ('[{"epoch": 1.0, "loss": ' + loss1 + ', "step": 10}, {"epoch": 1.0, "eval_loss": 1.0, "eval_accuracy": 0.5, '
            '"step": 10}, {"epoch": 2.0, "loss": ' + loss2 + ', "step": 20}, {"epoch": 2.0, "eval_loss": 0.8, '
            '"eval_accuracy": 0.6, "step": 20}]')


def hf_big(tmp: Path, megabytes: float = 21) -> Path:
    """A legitimate trainer_state.json of `megabytes` MB: a long run logged every step (loss, grad_norm, LR)."""
    d = tmp / "hf"
    d.mkdir(parents=True, exist_ok=True)
    row = '{{"epoch": {e:.6f}, "grad_norm": 1.2345678901234, "learning_rate": 9.87654321e-05, "loss": {l:.6f}, "step": {s}}}'
    target = int(megabytes * 1e6)
    parts, size, s = [], 0, 0
    steps = 230_000  # about 95 bytes a row: 21 MB
    while size < target:
        text = row.format(e=3 * (s + 1) / steps, l=2.0 / (1 + 3 * s / steps), s=s + 1)
        parts.append(text)
        size += len(text) + 2
        s += 1
    (d / "trainer_state.json").write_text('{"log_history": [' + ", ".join(parts) + '], "global_step": %d, '
                                          '"max_steps": %d, "num_train_epochs": 3}' % (s, s))
    return d


def traindx_events_dir(tmp: Path, epochs: int = EPOCHS) -> Path:
    """tmp/tensorboard/ with one event file as the trainer's logger=tensorboard writes it (fuzz_logs.traindx_events)."""
    d = tmp / "tensorboard"
    d.mkdir(parents=True, exist_ok=True)
    (d / "events.out.tfevents.1.traindx").write_bytes(fuzz_logs.traindx_events(epochs))
    return d


def record_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, payload length) of each TFRecord of an event file."""
    out, off = [], 0
    while off + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[off:off + 8])
        out.append((off, length))
        off += 16 + length
    return out


def bad_crc(tmp: Path, record: int = 3) -> Path:
    """The trainer's 5-epoch event file with one byte of record `record`'s payload CRC flipped."""
    d = traindx_events_dir(tmp)
    f = next(d.iterdir())
    data = bytearray(f.read_bytes())
    off, length = record_offsets(bytes(data))[record]
    data[off + 12 + length] ^= 0xFF
    f.write_bytes(bytes(data))
    return d


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path
