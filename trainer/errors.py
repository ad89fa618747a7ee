"""Errors that mean "the input is wrong", not "the code is wrong".

Each is reported as one line naming the problem and a non-zero exit, never a traceback; the run's
status.json records it when the run directory is this run's own. So is a run file that cannot be
read or written (`rundir.files.RunFileError`, an OSError naming the file): USER_ERRORS holds both.
"""

from rundir.files import RunFileError


class UserError(Exception):
    """Bad input: the message alone tells the user what to change."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the key."""


class DataError(UserError):
    """The data cannot be loaded as configured."""


class RunDirError(UserError):
    """The run or diagnostics directory holds something that is not this run's."""


USER_ERRORS = (UserError, RunFileError)


class CheckpointError(UserError):
    """A checkpoint that is corrupt, foreign or holds more than tensors and plain values."""


class StopRun(Exception):
    """A live finding listed in trainer.stop_on fired: the run ends early as failed."""

    def __init__(self, finding_id: str, message: str):
        super().__init__(f"{finding_id}: {message}")
        self.finding_id = finding_id
