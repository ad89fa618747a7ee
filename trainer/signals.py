"""Stop signals: SIGTERM / SIGUSR2 / Ctrl-C ask the loop to stop after the current step, with a checkpoint.

`StopSignal` installs the handlers for the run and turns a received signal into `Preempted`, which the
loop raises once the checkpoint is written; `trainer.app` maps it to exit 128 + n, and the loggers
record a preempted run as killed. Its own module, so that the loop and the loggers both import it and
not each other.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Optional

INTERRUPTED = "interrupted by Ctrl-C without a checkpoint; rerun to resume from the last one"


class Preempted(Exception):
    """The run stopped on a signal after writing a checkpoint; rerunning the command resumes it."""

    def __init__(self, signum: int, previous_handler: object = None):
        super().__init__(f"stopped by signal {signal.Signals(signum).name}; checkpoint written, rerun to resume")
        self.signum = signum
        self.previous_handler = previous_handler  # submitit's handler requeues the job


class StopSignal:
    """SIGTERM / SIGUSR2 (SLURM and submitit before preemption) and Ctrl-C (SIGINT) ask the loop to stop
    after the current step, with a checkpoint. A second Ctrl-C stops at once (KeyboardInterrupt)."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR2", "SIGINT") if hasattr(signal, name))

    def __init__(self):
        self.received: Optional[int] = None
        self.previous: dict[int, object] = {}

    def install(self) -> None:
        if threading_is_main():
            for s in self.SIGNALS:
                if signal.getsignal(s) is not signal.SIG_IGN:  # ignored on purpose (`nohup`, a background job)
                    self.previous[s] = signal.signal(s, self._handle)

    def _handle(self, signum, _frame) -> None:
        if signum == signal.SIGINT:
            if self.received == signal.SIGINT:
                raise KeyboardInterrupt  # the user insists: no checkpoint, the last one stands
            # Written directly: logging from a signal handler could re-enter a handler mid-write.
            sys.stderr.write("\nCtrl-C: stopping after this step with a checkpoint (Ctrl-C again: stop now)\n")
        self.received = signum

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def preempted(self) -> Preempted:
        return Preempted(self.received, self.previous.get(self.received))


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()
