"""Hydra's refusals of a command line, said in one line like every other piece of bad input.

Hydra reports a typo in an override over several lines (the available options, the config search
path, advice about HYDRA_FULL_ERROR) and exits 1. `entry()` lets Hydra raise instead (the documented
HYDRA_FULL_ERROR=1 switch) and prints `one_line(exception)`: the problem, the closest valid name when
there is one, and exit 2. A user who sets HYDRA_FULL_ERROR=1 still gets Hydra's full traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import sysconfig
import traceback
from typing import Iterable, Iterator, Optional

from hydra.errors import CompactHydraException, HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from rundir.errorline import single_line

from .config import SCHEMAS, unknown_key_hint

EXIT_BAD_INPUT = 2  # a config, data or file problem named in one line
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C

# Plugin configs that exist only once an extra is installed: the missing config names the fix.
PLUGIN_EXTRAS = {
    "hydra/launcher/joblib": "sweeps",
    "hydra/sweeper/optuna": "sweeps",
    "hydra/launcher/submitit_local": "slurm",
    "hydra/launcher/submitit_slurm": "slurm",
}
GRAMMAR_URL = "https://hydra.cc/docs/advanced/override_grammar/basic/"


class JobFailed(CompactHydraException):
    """A sweep job that failed on bad input or was stopped: its one line and the exit code it means."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # travels back from joblib and submitit workers pickled
        return type(self), (str(self), self.code)


@contextlib.contextmanager
def one_line_errors(print_it: bool = True) -> Iterator[None]:
    """Run a Hydra app so that a bad command line ends in one line on stderr and exit 2.

    `print_it=False` keeps quiet (torchrun's ranks > 0: rank 0 says it once).
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for Hydra's traceback
        yield
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except KeyboardInterrupt:  # a second Ctrl-C while training (the first stops with a checkpoint)
        _say("interrupted", print_it)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:  # `python -m trainer --help | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise SystemExit(128 + 13) from None  # as a shell reports SIGPIPE
    except JobFailed as e:  # already one line, from the job that failed
        _say(str(e), print_it)
        raise SystemExit(e.code) from None
    except (HydraException, OmegaConfBaseException) as e:
        _say(f"error: {one_line(e)}", print_it)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except (OSError, ValueError) as e:
        # OSError: Hydra creating the run directory or writing its .hydra/ files; ValueError: logging's
        # dictConfig, called by Hydra, wraps the OSError of opening train.log (a read-only file system).
        os_error = e if isinstance(e, OSError) else e.__cause__
        if not isinstance(os_error, OSError) or not _raised_by_hydra(e):
            raise  # the trainer's own: its RunFileErrors never get here, and anything else is a bug
        where = os_error.filename if os_error.filename is not None else _first_line(str(os_error))
        verb = "write" if os.path.lexists(str(where)) else "create"
        _say(f"error: cannot {verb} {where}: {os_error.strerror or os_error}; hydra.run.dir (hydra.sweep.dir in a "
             f"sweep) must name a directory that can be created and written", print_it)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except Exception as e:  # noqa: BLE001 - only a launcher plugin's refusal is reported here
        plugin = _raising_plugin(e)
        if plugin is None:
            raise  # the trainer's own failure: its traceback is the report
        hint = " (off a cluster, hydra/launcher=local runs the same jobs on this machine)" if "srun" in str(e) else ""
        _say(f"error: the {plugin} launcher refused: {_first_line(str(e))}{hint}", print_it)
        raise SystemExit(EXIT_BAD_INPUT) from None
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


def _raised_by_hydra(exc: BaseException) -> bool:
    """True when Hydra itself failed to create the run directory or write into it (a file in the way, a
    read-only file system, a name too long): the innermost frame outside the standard library (pathlib,
    os, logging's configuration) is Hydra's own code."""
    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
    own = [f.replace("\\", "/") for f in frames if not _in_stdlib(f)]
    return bool(own) and "/hydra/" in own[-1] and "/hydra_plugins/" not in own[-1]


def _in_stdlib(filename: str) -> bool:
    """Under the standard library's directory and not in its site-packages (where a Python without a venv
    installs Hydra)."""
    paths = sysconfig.get_paths()
    stdlib, installed = (os.path.normcase(paths[k]) + os.sep for k in ("stdlib", "purelib"))
    name = os.path.normcase(filename)
    return name.startswith(stdlib) and not name.startswith(installed)


def _raising_plugin(exc: BaseException) -> Optional[str]:
    """'submitit' or 'joblib' when the exception was raised inside a launcher library (no srun on this
    machine, a bad executor parameter): the environment or the launcher config is wrong, not a job."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    path = tb.tb_frame.f_code.co_filename.replace("\\", "/") if tb is not None else ""
    for library in ("submitit", "joblib", "hydra_plugins"):
        if f"/{library}/" in path:
            return "submitit" if "submitit" in path else library
    return None


def _say(message: str, print_it: bool) -> None:
    if print_it:
        print(single_line(message), file=sys.stderr)  # an override's value may hold a newline


def one_line(exc: BaseException) -> str:
    """The message for a Hydra composition error (or the OmegaConf error under it), without newlines."""
    if isinstance(exc, MissingConfigException):
        return _missing_config(exc)
    if isinstance(exc, OverrideParseException):
        return f"cannot parse the override '{exc.override}': {_first_line(exc.message)} (grammar: {GRAMMAR_URL})"
    cause = exc.__cause__ or getattr(exc, "cause", None)
    if cause is not None and getattr(cause, "full_key", None):
        return _bad_value(cause)
    if str(exc).startswith("Ambiguous value"):  # a sweep's a,b without -m: Hydra's hint is on its later lines
        return (f"{_first_line(str(exc))}: to sweep over it add -m (--multirun); a list is key=[a,b], "
                "a string key='a,b'")
    return _first_line(str(exc)).rstrip(".")


def _missing_config(exc: MissingConfigException) -> str:
    missing = exc.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    extra = PLUGIN_EXTRAS.get(missing)
    if extra:
        return f"{group}={option} needs its Hydra plugin: pip install \"traindx[{extra}]\""
    if not group or exc.options is None:
        return _first_line(str(exc))
    options = sorted(exc.options)
    return (f"no option '{option}' in config group '{group}'{_did_you_mean(option, options, group + '=')}"
            f" (options: {', '.join(options)})")


def _bad_value(cause) -> str:
    """An unknown key or a value of the wrong type: OmegaConf's first line, prefixed by the full key."""
    key, message = cause.full_key, _first_line(str(cause))
    if type(cause).__name__ in ("ConfigAttributeError", "ConfigKeyError") and cause.parent_node is not None:
        siblings = [k for k in cause.parent_node.keys() if k != "hydra"]
        parent = key.rpartition(".")[0]
        prefix = f"{parent}." if parent else ""
        option = cause.parent_node.get("name") if parent in SCHEMAS else None
        # A key of another option (scheduler.patience under scheduler=cosine) says which option has it.
        hint = unknown_key_hint(parent, str(cause.key)) or _did_you_mean(str(cause.key), siblings, prefix)
        owner = f"{parent}={option}" if option else parent
        return f"unknown key {key}{hint} (keys{' of ' + owner if owner else ''}: {', '.join(map(str, siblings))})"
    return f"{key}: {message}"


def _did_you_mean(name: str, candidates: Iterable[str], prefix: str) -> str:
    """The closest candidates (all that tie for closest: resnt is as near resnet18 as resnet34)."""
    scored = [(difflib.SequenceMatcher(None, name, c).ratio(), c) for c in map(str, candidates)]
    best = max((score for score, _ in scored), default=0.0)
    if best < 0.6:
        return ""
    return f"; did you mean {' or '.join(prefix + c for score, c in scored if score == best)}?"


def _first_line(text: Optional[str]) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "invalid command line"
