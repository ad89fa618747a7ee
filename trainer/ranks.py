"""Which process of a multi-process run this is, and what Hydra may write for it (no torch import).

torchrun starts N copies of `python -m trainer ...`; each runs `@hydra.main` and would resolve its
own `${now:}` run directory, write its own `.hydra/` and open its own log. The rule here: **rank 0
owns the run directory**. Before Hydra starts, a process whose rank is not 0 gets overrides that make
Hydra create nothing (`hydra.run.dir=.` is the existing working directory, no `.hydra/`, logging
reduced to errors on stderr); once the process group is up, rank 0 broadcasts the directory its
Hydra chose (`distributed.share`), so a default `${now:}` directory and an explicit
`hydra.run.dir` both give one directory for the whole run.

Under SLURM with submitit (`hydra.launcher.tasks_per_node=N`), every task already shares one job
directory (the sweep is composed once, in the launching process); `Ranks.from_env` exports the
rank layout from submitit's job environment so the same code path joins the process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import ConfigError

# Overrides that keep Hydra from creating anything for a rank other than 0 (see the module doc).
NON_ZERO_RANK_OVERRIDES = ("hydra.run.dir=.", "hydra.output_subdir=null",
                           "hydra/job_logging=disabled", "hydra/hydra_logging=disabled")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: global rank, number of processes, rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and logs."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Ranks":
        """Read RANK / WORLD_SIZE / LOCAL_RANK (set by torchrun, or exported from submitit here)."""
        env = os.environ if env is None else env
        if "WORLD_SIZE" not in env and env is os.environ:
            _export_submitit_layout()
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise ConfigError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r} and "
                              f"LOCAL_RANK={env.get('LOCAL_RANK')!r} must be integers") from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise ConfigError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process of the run")
        return cls(rank, world, local)

    def share_of_batch(self, batch_size: int) -> int:
        """Images per rank per step: data.batch_size is the global batch (images per optimizer step)."""
        if batch_size % self.world_size:
            raise ConfigError(f"data.batch_size={batch_size} is the global batch and must divide evenly over "
                              f"the {self.world_size} processes (e.g. data.batch_size="
                              f"{max(1, batch_size // self.world_size) * self.world_size})")
        return batch_size // self.world_size


def _export_submitit_layout() -> None:
    """In a submitit job with several tasks, put the torch.distributed variables into the environment."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    try:
        import submitit
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:
        return
    try:
        if submitit.JobEnvironment().num_tasks <= 1:
            return
        # One process per task; CUDA_VISIBLE_DEVICES stays as SLURM set it and LOCAL_RANK picks the GPU.
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    except (RuntimeError, KeyError, ValueError) as e:  # an environment submitit cannot read
        raise ConfigError(f"SUBMITIT_EXECUTOR is set but submitit's job environment is unreadable: {e}") from None


def hydra_args_for_rank(argv: list[str], ranks: Ranks) -> list[str]:
    """The command-line arguments Hydra should see in this process (only ranks > 0 change)."""
    if ranks.is_main:
        return argv
    keys = tuple(o.split("=", 1)[0] + "=" for o in NON_ZERO_RANK_OVERRIDES)
    kept = [a for a in argv if not a.lstrip("+").startswith(keys)]
    return kept + list(NON_ZERO_RANK_OVERRIDES)


def is_multirun(argv: list[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in argv)
