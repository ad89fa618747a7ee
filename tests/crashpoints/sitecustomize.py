"""Test-only crash points for the resume tests: signal the trainer at an exact moment.

Python imports `sitecustomize` at start-up from the first directory on sys.path that has one. The
tests put this directory on PYTHONPATH for the trainer subprocess and set

    TRAINDX_TEST_CRASH=<event>:<n>:<signal>     e.g. step:15:KILL, val:3:TERM, last.pt:1:KILL

so `python -m trainer ...` (the very command a user reruns) gets `signal` at the n-th `event` of that
process. Nothing in trainer/ knows about this: outside the tests the directory is not on the path,
and with the variable unset this file returns at once, so it costs nothing.

Events (counted from 1 within one process):
  step    inside a training step: after backward, before the optimizer update (Collector.grad_norm)
  val     inside validation, after a validation batch was computed (diagnostics.evaluate)
  jsonl   while a diagnostics record is appended to either JSONL file: with KILL, half of the line
          is written first (a torn tail)
  <name>  while the file of that name is replaced atomically: last.pt, best.pt, status.json,
          run_info.json, or a JSONL file that resume cuts back to the checkpointed epoch. With
          KILL, half of the bytes reach the temporary file first (a torn file beside the good one)
With TERM or USR2 the signal is delivered at that point and the process goes on (its handler asks
the loop to stop after the step); with KILL it dies there.
"""

import os

_SPEC = os.environ.get("TRAINDX_TEST_CRASH")


def _install(spec: str) -> None:
    import signal
    import sys

    event, n, signame = spec.rsplit(":", 2)
    target, signum = int(n), getattr(signal, "SIG" + signame)
    counts: dict = {}

    def hit(name: str) -> bool:
        """Count one `name` event; True when this is the one to crash at."""
        if name != event:
            return False
        counts[name] = counts.get(name, 0) + 1
        return counts[name] == target

    def fire() -> None:
        sys.stderr.write(f"crashpoints: {signame} at {event} #{target}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signum)  # KILL ends the process inside this call

    from rundir import files as runfiles
    from trainer import checkpoint, diagnostics

    # ── training steps ──
    grad_norm = diagnostics.Collector.grad_norm

    def grad_norm_hooked(self):
        norm = grad_norm(self)
        if hit("step"):
            fire()
        return norm

    diagnostics.Collector.grad_norm = grad_norm_hooked

    # ── validation ── (loop.py binds `evaluate` at import, after this module patched it)
    evaluate = diagnostics.evaluate

    def evaluate_hooked(model, loader, *args, **kwargs):
        def batches():
            for batch in loader:
                yield batch  # evaluate computes this batch before asking for the next one
                if hit("val"):
                    fire()

        return evaluate(model, batches(), *args, **kwargs)

    diagnostics.evaluate = evaluate_hooked

    # ── atomic file writes: checkpoints, JSON files, JSONL rewrites ──
    class Capture:
        def __init__(self):
            self.parts = []

        def write(self, data):
            self.parts.append(data)

    def hooked_atomic_write(original):
        def atomic_write(path, write, mode="wb"):
            if not hit(os.path.basename(str(path))):
                return original(path, write, mode)
            if signum != signal.SIGKILL:
                fire()
                return original(path, write, mode)

            def torn(f):
                capture = Capture()
                write(capture)
                data = capture.parts[0][:0].join(capture.parts)
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                fire()

            return original(path, torn, mode)

        return atomic_write

    runfiles.atomic_write = hooked_atomic_write(runfiles.atomic_write)  # write_json, truncate_jsonl
    checkpoint.atomic_write = hooked_atomic_write(checkpoint.atomic_write)  # checkpoint.save

    # ── JSONL appends ──
    jsonl_write = runfiles.JsonlWriter.write

    def jsonl_write_hooked(self, record):
        if hit("jsonl"):
            if signum == signal.SIGKILL:
                import json

                line = json.dumps(record) + "\n"
                self.f.write(line[: len(line) // 2])
                self.f.flush()
            fire()
        return jsonl_write(self, record)

    runfiles.JsonlWriter.write = jsonl_write_hooked


if _SPEC:
    _install(_SPEC)
