"""`python -m trainer`: the Hydra entry point, a thin adapter over `trainer.app.run`.

Nothing here imports torch, so `--help` and config errors answer at once. Under torchrun every
process runs this; `ranks.hydra_args_for_rank` keeps Hydra from creating anything for ranks > 0.
"""

import contextlib
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from . import config as _schemas  # noqa: F401 - registers the structured-config schemas with Hydra


def config_dir() -> str:
    """conf/ ships inside the wheel as trainer/conf and sits beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit(f"traindx: no conf/config.yaml next to {here}; reinstall the package")


def config_groups() -> str:
    """`--help`'s list of groups and options, `*` on the defaults (Hydra's own list also shows the
    `schema/*` groups the YAML files extend, which are no choice for a user)."""
    import yaml

    conf = Path(config_dir())
    defaults = {}
    for entry in yaml.safe_load((conf / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            defaults.update(entry)
    lines = []
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and p.name != "hydra"):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"{group.name}: " + ", ".join(o + ("*" if o == defaults.get(group.name) else "")
                                                     for o in options))
    return "\n".join(lines)


OmegaConf.register_new_resolver("traindx_groups", config_groups, replace=True)  # conf/config.yaml: hydra.help


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .app import run
    from .hydra_errors import JobFailed
    from .job import Job

    hc = HydraConfig.get()
    run_dir, multirun = Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN
    # Inside the job too: Hydra would print its own line about a job that raised before the error line. A
    # sweep job's JobFailed (bad input, one line already) goes on to Hydra, which reports it at the end.
    with _defence(let_through=(JobFailed,)):
        return run(cfg, run_dir, multirun=multirun, job=Job.from_hydra(hc, run_dir, multirun))


_RAW_TRACEBACKS = os.environ.get("HYDRA_FULL_ERROR") == "1"  # as the user set it, before one_line_errors does


def _defence(let_through: tuple = ()) -> contextlib.AbstractContextManager:
    """Anything unexpected ends as one line naming a saved traceback, exit 1 (rundir/errorline.py);
    HYDRA_FULL_ERROR=1 shows the raw traceback instead."""
    from rundir.errorline import last_line_of_defence

    return contextlib.nullcontext() if _RAW_TRACEBACKS else last_line_of_defence(let_through)


def entry() -> None:
    """The console entry, behind the last line of defence."""
    with _defence():
        _entry()


def _entry() -> None:
    """Adapt the command line to this process's rank, then run Hydra."""
    from .errors import ConfigError
    from .hydra_errors import one_line_errors
    from .ranks import Ranks, hydra_args_for_rank, is_multirun

    try:
        ranks = Ranks.from_env()
    except ConfigError as e:  # a malformed RANK / WORLD_SIZE environment
        _refuse(str(e), print_it=True)
    if ranks.distributed and is_multirun(sys.argv[1:]):
        # Every rank would run the whole sweep and create sweep directories of its own.
        _refuse("torchrun runs one training job; sweep with a launcher instead "
                "(hydra/launcher=submitit_slurm with hydra.launcher.tasks_per_node=N), or call torchrun "
                "once per job with its own hydra.run.dir", print_it=ranks.is_main)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if ranks.distributed and not os.environ.get(name)]
    if missing:  # torch.distributed's env:// rendezvous would fail after Hydra created the run directory
        _refuse(f"WORLD_SIZE={ranks.world_size} asks for a distributed run but {missing[0]} is not set: start it "
                f"with torchrun, or unset RANK, WORLD_SIZE and LOCAL_RANK left over in this shell",
                print_it=ranks.is_main)
    empty = _empty_output_dir(sys.argv[1:])
    if empty:  # Hydra reads "" as the working directory: .hydra/, checkpoints/ and diagnostics/ would land there
        _refuse(f"{empty} is empty: the run would be written into the current directory; name a directory "
                f"({empty}=outputs/exp1)", print_it=ranks.is_main)
    sys.argv[1:] = hydra_args_for_rank(sys.argv[1:], ranks)
    with one_line_errors(print_it=ranks.is_main):
        main()


OUTPUT_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir")


def _empty_output_dir(args: list[str]) -> str:
    """The output-directory key given an empty value (`hydra.run.dir=`, `hydra.run.dir=''`), or ""."""
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if sep and key in OUTPUT_DIR_KEYS and value.strip().strip("'\"").strip() == "":
            return key
    return ""


def _refuse(message: str, print_it: bool) -> None:
    if print_it:  # the same message from every rank would say it N times
        print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    entry()
