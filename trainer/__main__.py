"""`python -m trainer`: the Hydra entry point, a thin adapter over `trainer.app.run`.

Nothing here imports torch, so `--help` and config errors answer at once.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from . import config as _schemas  # noqa: F401 - registers the structured-config schemas with Hydra


def config_dir() -> str:
    """conf/ ships inside the wheel as trainer/conf and sits beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit(f"traindx: no conf/config.yaml next to {here}; reinstall the package")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .app import run

    hc = HydraConfig.get()
    return run(cfg, Path(hc.runtime.output_dir), multirun=hc.mode == RunMode.MULTIRUN)


if __name__ == "__main__":
    main()
