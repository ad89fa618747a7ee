"""Fuzz the whole analysis path: seeded mutations of a template run directory and of a template 2x2 sweep,
each analysed through `python -m analysis`'s main() in-process, in a random format, with or without --out.

    python benchmarks/fuzz_analysis.py --cases 100000 --workers 2 --seed 0

A case passes when main() returns 0, 1 or 2 (or argparse/SystemExit with one of those) and stderr has no
`error: internal error` line (rundir/errorline.py's last line of defence: reaching it is a bug). Failures
are printed with their seed, so `--replay SEED` reproduces one. tests/test_fuzz_cli.py runs a few thousand
cases in the default suite and this script's full count as a slow test (docs/reliability.md has the figure).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rundir.errorline import INTERNAL_ERROR  # noqa: E402
from rundir.format import FIELDS, TRAIN, VAL  # noqa: E402

FORMATS = ("text", "markdown", "json", "html", "csv")
EPOCHS = 4

# Extreme tokens that replace a number in a JSON/YAML file.
EXTREME = ["1e308", "-1e308", "5e-324", "-0.0", "NaN", "Infinity", "-Infinity", "1e999", "0", "-1",
           "9" * 400, "-" + "9" * 40, '"x"', "null", "true", "[]", "{}", '"\\udcff"', "1.7976931348623157e308"]
# Strings put in place of a JSON string.
STRINGS = ['"\\ud800"', '"\\udcff\\n\\u0000"', '"' + "a" * 5000 + '"', '"<script>x</script>"', "1e308", "null",
           '"range(0,10000)"', '"\\u202e"']


def _value(kind: str, name: str, epoch: int) -> object:
    if kind == "integer":
        return epoch if name == "epoch" else 11 * epoch
    if kind == "mapping":
        return {"conv1": 0.1 * epoch, "fc": 0.2}
    if name == "accuracy" or name.endswith("fraction") or name == "top5_accuracy":
        return round(0.2 * epoch, 3)
    if name.startswith("learning_rate"):
        return 0.1 / epoch
    return round(2.0 / epoch, 4)


def template_run(overrides: tuple[str, ...] = ("optimizer.lr=0.1",), lr: float = 0.1) -> dict[str, bytes]:
    """A complete small run directory as relative path -> bytes (every field of rundir/format.py)."""
    recs = {f: [{fl.name: _value(fl.kind, fl.name, e) for fl in FIELDS if fl.file == f} for e in range(1, EPOCHS + 1)]
            for f in (TRAIN, VAL)}
    jl = lambda rs: "".join(json.dumps(r) + "\n" for r in rs).encode()  # noqa: E731
    info = {"num_classes": 10, "dataset": "digits", "model": "small_cnn", "num_params": 12345,
            "train_samples": 1438, "val_samples": 359, "device": "cpu", "run_dir": "x",
            "config": {"data": {"num_classes": 10, "batch_size": 128}, "optimizer": {"name": "sgd", "lr": lr},
                       "trainer": {"epochs": EPOCHS}}}
    status = {"status": "completed", "epoch": EPOCHS, "epochs": EPOCHS, "error": None}
    config = (f"data:\n  num_classes: 10\n  batch_size: 128\noptimizer:\n  name: sgd\n  lr: {lr}\n"
              f"trainer:\n  epochs: {EPOCHS}\nscheduler:\n  name: cosine\n").encode()
    return {
        "diagnostics/train_diagnostics.jsonl": jl(recs[TRAIN]),
        "diagnostics/val_diagnostics.jsonl": jl(recs[VAL]),
        "diagnostics/run_info.json": json.dumps(info).encode(),
        "diagnostics/status.json": json.dumps(status).encode(),
        ".hydra/config.yaml": config,
        ".hydra/overrides.yaml": "".join(f"- {o}\n" for o in overrides).encode(),
    }


def template_sweep() -> dict[str, bytes]:
    """A 2x2 multirun (optimizer.lr x trainer.seed) as relative path -> bytes."""
    files = {"multirun.yaml": (b"hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
                               b"  overrides:\n    task:\n    - optimizer.lr=0.1,0.01\n    - trainer.seed=1,2\n")}
    for num, (lr, seed) in enumerate([(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)]):
        for rel, data in template_run((f"optimizer.lr={lr}", f"trainer.seed={seed}"), lr).items():
            files[f"{num}/{rel}"] = data
    return files


# ───────────────────────────── mutations ─────────────────────────────
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STRING = re.compile(rb'"[^"\\\n]{0,40}"')


def _pick_file(files: dict[str, bytes], rng: random.Random) -> str | None:
    return rng.choice(sorted(files)) if files else None


def m_truncate(files, rng):
    f = _pick_file(files, rng)
    if f:
        files[f] = files[f][: rng.randrange(len(files[f]) + 1)]


def m_flip(files, rng):
    f = _pick_file(files, rng)
    if f and files[f]:
        b = bytearray(files[f])
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        files[f] = bytes(b)


def m_number(files, rng):
    f = _pick_file(files, rng)
    if f:
        hits = list(_NUMBER.finditer(files[f]))
        for m in rng.sample(hits, min(len(hits), rng.randint(1, 3))):
            pass
        if hits:
            m = rng.choice(hits)
            token = rng.choice(EXTREME).encode()
            files[f] = files[f][: m.start()] + token + files[f][m.end():]


def m_all_numbers(files, rng):
    """Every number of one file becomes the same extreme token (a whole column at 1e308, NaN, ...)."""
    f = _pick_file(files, rng)
    if f:
        token = rng.choice(EXTREME).encode()
        files[f] = _NUMBER.sub(lambda m: token if rng.random() < 0.7 else m.group(0), files[f])


def m_string(files, rng):
    f = _pick_file(files, rng)
    if f:
        hits = list(_STRING.finditer(files[f]))
        if hits:
            m = rng.choice(hits)
            files[f] = files[f][: m.start()] + rng.choice(STRINGS).encode() + files[f][m.end():]


def m_non_utf8(files, rng):
    f = _pick_file(files, rng)
    if f:
        i = rng.randrange(len(files[f]) + 1)
        files[f] = files[f][:i] + rng.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\x00", b"\xc3"]) + files[f][i:]


def m_delete(files, rng):
    f = _pick_file(files, rng)
    if f:
        del files[f]


def m_duplicate_lines(files, rng):
    f = _pick_file(files, rng)
    if f:
        lines = files[f].splitlines(keepends=True)
        if lines:
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.randint(1, 3)
            rng.shuffle(lines) if rng.random() < 0.3 else None
            files[f] = b"".join(lines)


def m_status(files, rng):
    """A status.json with a hostile error, state or progress."""
    f = next((k for k in files if k.endswith("status.json")), None)
    if f:
        files[f] = json.dumps({"status": rng.choice(["failed", "running", "preempted", "x", 3, None]),
                               "error": rng.choice(["\ud800 boom", "a\nb", "x" * 3000, 1e308, None, ["x"]]),
                               "epoch": rng.choice([1, -5, 10 ** 20, 1e308, "x", None]),
                               "epochs": rng.choice([4, 0, 10 ** 400, 5e-324, None]),
                               "updated": rng.choice([0, 1e308, -1e308, "x", None])}).encode()


def m_wrong_type(files, rng):
    """One record field becomes another JSON type."""
    f = next((k for k in files if k.endswith(".jsonl") and rng.random() < 0.5), None) or _pick_file(files, rng)
    if f:
        field = rng.choice([fl.name for fl in FIELDS]).encode()
        rep = rng.choice([b'"x"', b"[1,2]", b'{"a":1e308}', b"null", b"true", b"1e308", b"5e-324", b"9" * 400])
        files[f] = re.sub(rb'"' + field + rb'": [^,}]+', b'"' + field + b'": ' + rep, files[f], count=1)


def m_huge_sweep(files, rng):
    """multirun.yaml sweeping huge ranges (the jobs it implies must be counted, not enumerated)."""
    if "multirun.yaml" in files:
        keys = rng.sample(["optimizer.lr", "trainer.seed", "model.width", "data.batch_size"], rng.randint(1, 3))
        task = "".join(f"    - {k}=range(0,{rng.choice([10000, 10 ** 9, 3])})\n" for k in keys)
        files["multirun.yaml"] = b"hydra:\n  overrides:\n    task:\n" + task.encode()


def m_config(files, rng):
    """A hostile resolved config value (num_classes with 400 digits, an LR of 1e308, ...)."""
    f = next((k for k in files if k.endswith("config.yaml") and rng.random() < 0.7), None) or _pick_file(files, rng)
    if f:
        token = rng.choice(["9" * 400, "1e308", "-1e308", ".nan", ".inf", "-.inf", "5e-324", "'x'", "[1, 2]", "{a: 1}"])
        files[f] = _NUMBER.sub(lambda m: token.encode() if rng.random() < 0.5 else m.group(0), files[f])


MUTATIONS = [m_truncate, m_flip, m_number, m_all_numbers, m_string, m_non_utf8, m_delete, m_duplicate_lines,
             m_status, m_wrong_type, m_huge_sweep, m_config]


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


# ───────────────────────────── one case ─────────────────────────────
class _Stream(io.TextIOWrapper):
    """stdout/stderr as a real encoding stream (UTF-8, strict until main() reconfigures it)."""

    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", "replace")


def case_args(seed: int, workdir: Path, templates: dict[str, dict[str, bytes]]) -> list[str]:
    """Write case `seed`'s mutated inputs under workdir; the CLI arguments that analyse them."""
    rng = random.Random(seed)
    shape = rng.choice(["run", "run", "sweep", "sweep", "runs", "sweeps", "file"])
    trees = {"run": ["run"], "runs": ["run", "run"], "sweep": ["sweep"], "sweeps": ["sweep", "sweep"],
             "file": ["run"]}[shape]
    paths = []
    for i, kind in enumerate(trees):
        files = dict(templates[kind])
        for _ in range(rng.randint(1, 4)):
            rng.choice(MUTATIONS)(files, rng)
        root = workdir / f"{kind}{i}"
        write_tree(root, files)
        paths.append(str(root / "diagnostics" / "train_diagnostics.jsonl") if shape == "file" else str(root))
    args = (["--file", paths[0]] if shape == "file" else paths) + ["--format", rng.choice(FORMATS)]
    if rng.random() < 0.4:
        args += ["--out", str(workdir / "out")]
    if rng.random() < 0.1:
        args += ["--fail-on", rng.choice(["info", "warning", "critical"])]
    return args


CASE_TIMEOUT_S = 60  # a case that hangs (an endless loop on huge input) fails instead of stalling the run


class CaseTimeout(BaseException):
    pass


def call_main(seed: int, args: list[str], timeout_s: int = CASE_TIMEOUT_S) -> tuple[str | None, object, str]:
    """`python -m analysis args` in this process, its output captured, under a timeout: (failure, exit code,
    stderr). failure is the seed's one line when main raised, hung, printed the internal-error line or exited
    with a status the command never uses; None otherwise (the caller may judge more)."""
    from analysis.__main__ import main

    def expire(_signum, _frame):
        raise CaseTimeout(f"no result after {timeout_s} s")

    out, err = _Stream(), _Stream()
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as e:
                code = e.code
    except BaseException as e:  # noqa: BLE001 - an exception escaping main() is the failure we look for
        return f"seed {seed}: raised {type(e).__name__}: {str(e)[:200]}", None, err.text()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    stderr = err.text()
    if INTERNAL_ERROR in stderr:
        line = next(l for l in stderr.splitlines() if INTERNAL_ERROR in l)
        return f"seed {seed}: {line[:300]}", code, stderr
    if code not in (0, 1, 2, None):
        return f"seed {seed}: exit status {code!r}", code, stderr
    return None, code, stderr


PNG_SHARE = 0.05  # cases whose --out draws the PNG for real: matplotlib takes ~2 s a plot, 10x a whole case


@contextlib.contextmanager
def png_drawn(draw: bool):
    """Without draw, the PNG writer is replaced by one that writes an empty file."""
    from analysis.render import png

    real = png.run_curves
    if not draw:
        png.run_curves = lambda run, path: Path(path).write_bytes(b"")
    try:
        yield
    finally:
        png.run_curves = real


@contextlib.contextmanager
def _working_directory(path: str):
    """contextlib.chdir (Python 3.11+) for 3.10 too."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_case(seed: int, templates: dict[str, dict[str, bytes]]) -> str | None:
    """None when the case passed, else a one-line failure naming the seed and what happened."""
    draw = random.Random(-seed - 1).random() < PNG_SHARE
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp, png_drawn(draw), _working_directory(tmp):
        # in the case's directory: runs or sweeps compared write their report into the current directory
        failure, _code, _stderr = call_main(seed, case_args(seed, Path(tmp), templates))
    return failure


def templates() -> dict[str, dict[str, bytes]]:
    return {"run": template_run(), "sweep": template_sweep()}


def run_cases(seeds: range) -> tuple[int, list[str]]:
    t = templates()
    failures = []
    for s in seeds:
        f = run_case(s, t)
        if f:
            failures.append(f)
    return len(seeds), failures


MEMORY_LIMIT_BYTES = 3 << 30  # per process: a case that exhausts memory fails with MemoryError, not the OOM killer


@contextlib.contextmanager
def memory_limit():
    """At most MEMORY_LIMIT_BYTES more address space than the process holds now (a test worker that imported
    torch already holds gigabytes of it), for the cases run inside; the limit before is restored after."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/status") as f:
            held = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        held = 0
    limit = held + MEMORY_LIMIT_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _worker(chunk: tuple[int, int]) -> tuple[int, list[str]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with memory_limit():
        return run_cases(range(*chunk))


def run_chunks(worker, seed: int, cases: int, workers: int, time_limit: float = 0.0, chunk: int = 250) -> int:
    """Cases seed .. seed + cases in chunks of `chunk`, through worker(chunk) -> (count, failure lines), in a pool of
    `workers` forked processes (1: in this one); failures printed as they come, then the totals. Exit status 1
    on any failure. time_limit (s, 0: none) stops starting chunks. Both fuzzers (this one, fuzz_images.py) use it."""
    start = time.perf_counter()
    chunks = [(s, min(s + chunk, seed + cases)) for s in range(seed, seed + cases, chunk)]
    done, failures = 0, []

    def take(n: int, f: list[str]) -> bool:
        nonlocal done, failures
        done, failures = done + n, failures + f
        for line in f:
            print(line, flush=True)
        return bool(time_limit) and time.perf_counter() - start > time_limit

    if workers > 1:
        import multiprocessing as mp  # only a pooled run forks

        with mp.get_context("fork").Pool(workers) as pool:
            for n, f in pool.imap_unordered(worker, chunks):
                if take(n, f):
                    pool.terminate()
                    break
    else:
        for c in chunks:
            if take(*worker(c)):
                break
    elapsed = time.perf_counter() - start
    print(f"cases: {done}  failures: {len(failures)}  time: {elapsed:.0f} s  ({1000 * elapsed / max(done, 1):.1f} ms "
          f"per case, {workers} workers, {os.cpu_count()} CPUs)")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="first case seed")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--replay", type=int, help="run one case and print its arguments and output")
    ap.add_argument("--time-limit", type=float, default=0, help="stop starting chunks after this many seconds")
    a = ap.parse_args(argv)
    if a.replay is not None:
        tmp = Path(tempfile.mkdtemp(prefix="fuzz-replay-"))
        print("args:", case_args(a.replay, tmp, templates()))
        shutil.rmtree(tmp)
        with memory_limit():
            print(run_case(a.replay, templates()) or "passed")
        return 0
    return run_chunks(_worker, a.seed, a.cases, a.workers, a.time_limit)


if __name__ == "__main__":
    sys.exit(main())
