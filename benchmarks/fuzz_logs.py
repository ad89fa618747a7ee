"""Fuzz the importers of other tools' logs: seeded mutations of real logs in every format the analysis
imports (Keras CSVLogger, Lightning CSVLogger with hparams.yaml, Lightning and traindx TensorBoard event
files, Keras's TensorBoard train/ + validation/ layout, Hugging Face trainer_state.json, timm summary.csv),
each analysed through `python -m analysis`'s main() in-process, in a random format.

    python benchmarks/fuzz_logs.py --cases 100000 --workers 2 --seed 100000

The templates are the committed fixtures (tests/data/importers/, tests/data/real_curves/raw/) plus event
files written here with the tensorboard package's own writer (EventFileWriter). Each case applies 1 to 4
mutations: bits flipped, a cut, junk bytes or a junk line inserted, a number replaced by inf, NaN, 1e999,
400 digits, -1e308, 250 or a word, a whole column of them, a CSV column name duplicated, the header
renamed, NUL bytes, a byte-order mark, an unterminated quote, lines duplicated or shuffled, a TensorBoard
record's length, payload or CRC damaged, a record cut off, a file deleted, hostile hparams.yaml values.

A case passes when main() returns 0, 1 or 2, stderr has no `error: internal error` line (rundir/errorline.py's
last line of defence: reaching it is a bug), an exit 2 printed exactly one `error:` line, and nothing was
written into the working directory. An exception, a hang past CASE_TIMEOUT_S or more than
fuzz_analysis.MEMORY_LIMIT_BYTES fails, printed with its seed: `--replay SEED` reproduces it.
tests/test_fuzz_logs.py runs 150 cases in the default suite and 100,000 as a slow test
(docs/reliability.md has the figure).
"""

from __future__ import annotations

import argparse
import random
import re
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# the same streams, working directory, PNG switch, memory cap and chunked runner as the analysis fuzzer
from fuzz_analysis import FORMATS, _working_directory, call_main, memory_limit, png_drawn, run_chunks  # noqa: E402

DATA = ROOT / "tests" / "data"
CASE_TIMEOUT_S = 30  # a case that hangs fails instead of stalling the run

# ───────────────────────────── templates ─────────────────────────────


def event_file(rows: list[tuple[int, str, float]], tensor: bool = False) -> bytes:
    """The bytes of an event file holding scalar rows (step, tag, value), written by the tensorboard package's
    EventFileWriter: simple_value summaries (torch's SummaryWriter, the trainer's logger) or, tensor=True,
    scalar tensors of the `scalars` plugin (what TensorFlow 2 / Keras write)."""
    import numpy as np
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    with tempfile.TemporaryDirectory(prefix="fuzz-logs-tb-") as tmp:
        w = EventFileWriter(tmp)
        for step, tag, value in rows:
            v = (Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)), metadata=meta)
                 if tensor else Summary.Value(tag=tag, simple_value=value))
            w.add_event(Event(wall_time=1.7e9 + step, step=step, summary=Summary(value=[v])))
        w.close()
        (f,) = Path(tmp).glob("events.out.tfevents.*")
        return f.read_bytes()


def traindx_events(epochs: int = 5) -> bytes:
    """What the trainer's logger=tensorboard writes (rundir.format.LOGGER_TAG tags, step = the 1-based epoch,
    the HParams metric at step 0)."""
    rows = [(0, "hparam/best_val_accuracy", 0.5 + 0.05 * epochs)]
    for e in range(1, epochs + 1):
        rows += [(e, "train/loss", 2.0 / e), (e, "train/accuracy", 0.2 * e - 0.1), (e, "train/learning_rate", 0.1 / e),
                 (e, "train/mean_grad_norm", 1.0 / e), (e, "train/max_grad_norm", 3.0 / e),
                 (e, "train_layer_grad_norms/fc", 0.5 / e), (e, "val/loss", 2.1 / e), (e, "val/accuracy", 0.18 * e)]
    return event_file(rows)


def keras_events(epochs: int = 6) -> dict[str, bytes]:
    train = [r for e in range(epochs) for r in ((e, "epoch_loss", 1.5 / (e + 1)), (e, "epoch_accuracy", 0.5 + 0.07 * e),
                                                 (e, "epoch_learning_rate", 0.001))]
    val = [r for e in range(epochs) for r in ((e, "epoch_loss", 1.6 / (e + 1)), (e, "epoch_accuracy", 0.45 + 0.07 * e),
                                               ((e + 1) * 20, "evaluation_loss_vs_iterations", 1.6 / (e + 1)))]
    return {"train/events.out.tfevents.1.keras": event_file(train, tensor=True),
            "validation/events.out.tfevents.2.keras": event_file(val, tensor=True)}


def _files(base: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


TIMM = (b"epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
        + b"".join(b"%d,%.4f,%.4f,%.2f,%.2f,0.1\n" % (e, 2.0 / (e + 1), 2.1 / (e + 1), 30 + 8 * e, 60 + 5 * e)
                   for e in range(6)))
TIMM_ARGS = b"model: resnet18\nlr: 0.1\nopt: sgd\nmomentum: 0.9\nepochs: 6\nbatch_size: 64\nnum_classes: 10\n"
HPARAMS_NESTED = b"cfg:\n  optimizer:\n    lr: 0.1\n    momentum: 0.9\n  num_classes: 10\n  max_epochs: 4\n"


def templates() -> list[tuple[str, dict[str, bytes], str]]:
    """(name, relative path -> bytes, the relative path analysed: '' for the case's directory)."""
    out = []
    raw = DATA / "real_curves" / "raw"
    for f in sorted(raw.iterdir()):
        if f.is_file():
            out.append((f"raw/{f.name}", {f.name: f.read_bytes()}, f.name))
    imp = DATA / "importers"
    out.append(("lightning csv", _files(imp / "lightning" / "csv" / "version_0"), ""))
    out.append(("lightning csv, nested hparams", {**_files(imp / "lightning" / "csv" / "version_0"),
                                                 "hparams.yaml": HPARAMS_NESTED}, ""))
    out.append(("lightning tensorboard", _files(imp / "lightning" / "tb" / "version_0"), ""))
    out.append(("lightning-hydra-template job", _files(imp / "lht" / "0"), ""))
    out.append(("lightning-hydra-template tensorboard job", _files(imp / "lht" / "1"), ""))
    out.append(("traindx tensorboard", {"tensorboard/events.out.tfevents.1.traindx": traindx_events()}, "tensorboard"))
    keras = keras_events()
    out.append(("keras tensorboard", keras, ""))
    out.append(("keras tensorboard, train/ alone", {k: v for k, v in keras.items() if k.startswith("train/")}, "train"))
    out.append(("timm", {"summary.csv": TIMM, "args.yaml": TIMM_ARGS}, ""))
    out.append(("hf checkpoint", {"checkpoint-100/trainer_state.json": (imp / "hf_trainer_state.json").read_bytes()}, ""))
    return out


# ───────────────────────────── mutations ─────────────────────────────
EXTREME = [b"inf", b"-inf", b"nan", b"NaN", b"Infinity", b"1e999", b"9" * 400, b"-" + b"9" * 400, b"-1e308",
           b"1e308", b"5e-324", b"250", b"-3", b"", b"x", b"0x10", b"1_000", b"\xff"]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
NAMES = [b"epoch", b"step", b"loss", b"val_loss", b"accuracy", b"val_accuracy", b"val_acc", b"train_loss", b"lr",
         b"learning_rate", b"num_classes", b"eval_top1", b"grad_norm", b"val_acc_0", b"test_acc", b""]
TB = b"events.out.tfevents."


def _pick(files: dict[str, bytes], rng: random.Random, tb: bool | None = None) -> str | None:
    names = [n for n in sorted(files) if tb is None or (TB.decode() in n) == tb]
    return rng.choice(names) if names else None


def m_flip(files, rng):
    f = _pick(files, rng)
    if f and files[f]:
        b = bytearray(files[f])
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        files[f] = bytes(b)


def m_truncate(files, rng):
    f = _pick(files, rng)
    if f:
        files[f] = files[f][: rng.randrange(len(files[f]) + 1)]


def m_junk(files, rng):
    f = _pick(files, rng)
    if f:
        i = rng.randrange(len(files[f]) + 1)
        junk = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))), b"\n,,,,\n",
                           b"\nthis is not a row\n", b"\n" + b"," * 300 + b"\n", b"\r\n", b"\n\"", b"{", b"\x00" * 8])
        files[f] = files[f][:i] + junk + files[f][i:]


def m_number(files, rng):
    f = _pick(files, rng, tb=False)
    if f:
        hits = list(_NUMBER.finditer(files[f]))
        for m in sorted(rng.sample(hits, min(len(hits), rng.randint(1, 3))), key=lambda m: -m.start()):
            files[f] = files[f][: m.start()] + rng.choice(EXTREME) + files[f][m.end():]


def m_column(files, rng):
    """One CSV column (or every number of a JSON file, at random) becomes the same extreme token."""
    f = _pick(files, rng, tb=False)
    if not f:
        return
    token = rng.choice(EXTREME)
    lines = files[f].split(b"\n")
    if f.endswith(".json") or len(lines) < 2:
        files[f] = _NUMBER.sub(lambda m: token if rng.random() < 0.5 else m.group(0), files[f])
        return
    col = rng.randrange(max(1, lines[0].count(b",") + 1))
    for i in range(1, len(lines)):
        cells = lines[i].split(b",")
        if col < len(cells) and rng.random() < 0.8:
            cells[col] = token
            lines[i] = b",".join(cells)
    files[f] = b"\n".join(lines)


def m_header(files, rng):
    """The CSV header with a column name duplicated, renamed or dropped."""
    f = _pick(files, rng, tb=False)
    if not f:
        return
    head, sep, rest = files[f].partition(b"\n")
    names = head.split(b",")
    i = rng.randrange(len(names))
    op = rng.choice(["duplicate", "rename", "drop"])
    if op == "duplicate" and len(names) > 1:
        names[i] = names[(i + 1) % len(names)]
    elif op == "rename":
        names[i] = rng.choice(NAMES)
    else:
        del names[i]
    files[f] = b",".join(names) + sep + rest


def m_nul(files, rng):
    f = _pick(files, rng)
    if f:
        i = rng.randrange(len(files[f]) + 1)
        files[f] = files[f][:i] + b"\x00" * rng.choice([1, 4, 512]) + files[f][i:]


def m_bom(files, rng):
    f = _pick(files, rng, tb=False)
    if f:
        files[f] = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb\xbf\xef\xbb\xbf"]) + files[f]


def m_quote(files, rng):
    f = _pick(files, rng, tb=False)
    if f:
        lines = files[f].split(b"\n")
        i = rng.randrange(len(lines))
        lines[i] = b'"' + lines[i] if rng.random() < 0.5 else lines[i] + b',"unterminated'
        files[f] = b"\n".join(lines)


def m_lines(files, rng):
    f = _pick(files, rng, tb=False)
    if f:
        lines = files[f].splitlines(keepends=True)
        if lines:
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.randint(1, 3)
            if rng.random() < 0.3:
                rng.shuffle(lines)
            files[f] = b"".join(lines)


def _records(data: bytes) -> list[int]:
    """Offsets of the TFRecord frames of an event file (as far as its length fields hold)."""
    out, off = [], 0
    while off + 12 <= len(data):
        out.append(off)
        (length,) = struct.unpack("<Q", data[off:off + 8])
        off += 16 + length
    return out


def m_record(files, rng):
    """One TensorBoard record's length, length CRC, payload or payload CRC damaged, or the file cut at a record."""
    f = _pick(files, rng, tb=True)
    if not f:
        return m_flip(files, rng)
    data = bytearray(files[f])
    starts = _records(bytes(data))
    if not starts:
        return
    at = rng.choice(starts)
    (length,) = struct.unpack("<Q", data[at:at + 8])
    part = rng.choice(["length", "length_crc", "payload", "payload_crc", "cut", "huge"])
    if part == "cut":
        data = data[:at + rng.randrange(12 + length + 4)]
    elif part == "huge":
        data[at:at + 8] = struct.pack("<Q", rng.choice([2**63, 2**40, length + 1]))
    else:
        where = {"length": at, "length_crc": at + 8, "payload": at + 12, "payload_crc": at + 12 + length}[part]
        span = {"length": 8, "length_crc": 4, "payload": max(length, 1), "payload_crc": 4}[part]
        i = where + rng.randrange(span)
        if i < len(data):
            data[i] ^= 1 << rng.randrange(8)
    files[f] = bytes(data)


def m_delete(files, rng):
    f = _pick(files, rng)
    if f and len(files) > 1:
        del files[f]


def m_yaml(files, rng):
    """A hostile hparams.yaml / args.yaml value (400 digits, .inf, a list, a mapping, a YAML tag)."""
    f = next((k for k in sorted(files) if k.endswith((".yaml", "config.yaml"))), None)
    if f:
        token = rng.choice([b"9" * 400, b".inf", b"-.inf", b".nan", b"[1, 2]", b"{a: 1}", b"'x'", b"!!binary AA==",
                            b"&a [*a]", b"null", b"true", b"0"])
        files[f] = _NUMBER.sub(lambda m: token if rng.random() < 0.5 else m.group(0), files[f])


MUTATIONS = [m_flip, m_truncate, m_junk, m_number, m_column, m_header, m_nul, m_bom, m_quote, m_lines, m_record,
             m_record, m_delete, m_yaml]

# ───────────────────────────── one case ─────────────────────────────


def case_args(seed: int, workdir: Path, t: list) -> list[str]:
    """Write case `seed`'s mutated log under workdir/log; the CLI arguments that analyse it."""
    rng = random.Random(seed)
    _, files, target = t[rng.randrange(len(t))]
    files = dict(files)
    for _ in range(rng.randint(1, 4)):
        rng.choice(MUTATIONS)(files, rng)
    root = workdir / "log"
    root.mkdir()
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    path = root / target if target and (root / target).exists() else root
    args = [str(path), "--format", rng.choice(FORMATS)]
    if rng.random() < 0.1:
        args += ["--out", str(workdir / "out")]
    return args


def run_case(seed: int, t: list) -> str | None:
    """None when the case passed, else a one-line failure naming the seed and what happened."""
    with tempfile.TemporaryDirectory(prefix="fuzz-logs-") as tmp, png_drawn(False):
        args = case_args(seed, Path(tmp), t)
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        with _working_directory(str(cwd)):
            failure, code, stderr = call_main(seed, args, CASE_TIMEOUT_S)
        if failure is not None:
            return failure
        errors = [l for l in stderr.splitlines() if l.startswith("error:")]
        if code == 2 and len(errors) != 1:
            return f"seed {seed}: exit 2 with {len(errors)} error lines: {stderr[:200]!r}"
        if any(cwd.iterdir()):
            return f"seed {seed}: wrote {sorted(p.name for p in cwd.iterdir())} into the working directory"
    return None


def run_cases(seeds: range, t: list | None = None) -> tuple[int, list[str]]:
    t = t or templates()
    return len(seeds), [f for f in (run_case(s, t) for s in seeds) if f]


def _worker(chunk: tuple[int, int]) -> tuple[int, list[str]]:
    t = templates()
    with memory_limit():
        return run_cases(range(*chunk), t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="first case seed")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--replay", type=int, help="run one case, keep its files and print where they are")
    ap.add_argument("--time-limit", type=float, default=0, help="stop starting chunks after this many seconds")
    a = ap.parse_args(argv)
    if a.replay is not None:
        t = templates()
        tmp = Path(tempfile.mkdtemp(prefix="fuzz-logs-replay-"))
        print("args:", case_args(a.replay, tmp, t), "files kept in", tmp)
        print(run_case(a.replay, t) or "passed")
        return 0
    return run_chunks(_worker, a.seed, a.cases, a.workers, a.time_limit)


if __name__ == "__main__":
    sys.exit(main())
