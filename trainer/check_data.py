"""`python -m trainer.check_data [overrides]`: check the data pipeline a run would use, without training.

The seed's check_transforms, for any config: it builds the same datasets as `python -m trainer`
(same overrides, faults included) and runs the analysis' data rules on the facts the trainer
records in run_info.json: train and val pipelines separated and validation deterministic, train
and val index sets disjoint, no image in both splits by content (trainer/duplicates.py: exact and
near copies, with examples), labels in [0, C), class balance, the mean and std of a transformed batch. It writes a PNG grid of a train batch and a val batch into its output directory: random
images, seeded by trainer.seed (the first ones of a class-sorted folder would all be one class).
With `losses_from=<run dir>` it also lists that trained run's highest-loss training images (given
label, predicted class, loss) and writes them as top_losses.png, in the table's order.
Exit status: 0 when no critical finding fired, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from . import config as _schemas  # noqa: F401 - registers the structured-config schemas with Hydra
from .__main__ import config_dir
from .hydra_errors import one_line_errors
from .errors import UserError

GRID_IMAGES = 32  # images per split in the PNG grid, drawn at random (seeded by trainer.seed)


def check(cfg: DictConfig, out_dir: Path) -> int:
    import torch
    from omegaconf import open_dict
    from torchvision.utils import make_grid, save_image

    from rundir.read import run_from_records
    from analysis.render.text import finding_lines
    from analysis.rules import CATALOG, diagnose

    from .config import plain, validate
    from rundir.format import DUPLICATE_IMAGES

    from . import duplicates
    from .data import batch_stats, build_datasets, normalizes
    from .faults import break_data

    with open_dict(cfg):
        losses_from = cfg.pop("losses_from", None)  # conf/check_data.yaml's own key, no part of a run's config
    typed = validate(cfg)
    seed = typed.trainer.seed
    data = break_data(typed.fault, build_datasets(typed.data, typed.augmentation, seed), seed)
    info = {**data.facts, **batch_stats(data.val, 256, seed), DUPLICATE_IMAGES: duplicates.check(data, seed)}
    run = run_from_records([], [], name="check_data", info=info, config=plain(typed))
    data_rules = [r.id for r in CATALOG.values() if r.section == "Data"]
    findings = [f.to_dict() for f in diagnose(run, ids=data_rules)]

    print(f"{info['dataset']}: {info['train_size']} train / {info['val_size']} val images, {info['num_classes']} classes")
    print(f"  train pipeline: {' '.join(info['train_transform'].split())}")
    print(f"  val pipeline:   {' '.join(info['val_transform'].split())}")
    print(f"  separate pipeline objects: {not info['transforms_shared']}; "
          f"val deterministic: {info['val_transform_deterministic']}")
    print(f"  train/val index overlap: {info['train_val_overlap']}; labels in {info['label_range']}")
    for line in duplicates.lines(info[DUPLICATE_IMAGES]):
        print(f"  {line}")
    counts = info["class_counts"]
    print(f"  class counts (train): min {min(counts)}, max {max(counts)}")
    print(f"  un-augmented batch (the validation pipeline): mean {[round(m, 3) for m in info['input_mean']]}, "
          f"std {[round(s, 3) for s in info['input_std']]}")
    for f in findings:
        print("\n".join(finding_lines(f, "  ")))
    if not findings:
        print(f"  all {len(data_rules)} data checks passed ({', '.join(data_rules)})")

    mean = torch.tensor(typed.data.mean).view(-1, 1, 1)
    std = torch.tensor(typed.data.std).view(-1, 1, 1)
    normalized = normalizes(data.train.transform)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, ds in (("train", data.train), ("val", data.val)):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            images = torch.stack([ds[i][0] for i in grid_indices(len(ds), seed)])
        if normalized:
            images = images * std + mean
        path = out_dir / f"{split}_batch.png"
        save_image(make_grid(images.clamp(0, 1), nrow=8, padding=2), path)
        print(f"  wrote {path}")
    if losses_from is not None:
        show_top_losses(Path(str(losses_from)), out_dir)
    return 1 if any(f["severity"] == "critical" for f in findings) else 0


def show_top_losses(run_dir: Path, out_dir: Path) -> None:
    """A trained run's highest-loss training images (rundir/format.py TOP_LOSSES): a table and a PNG grid."""
    import torch
    from torchvision.utils import make_grid, save_image

    from rundir.per_sample import read_top_losses
    from rundir.read import RunError, load_run

    from .errors import DataError

    try:
        run = load_run(run_dir)
    except RunError as e:
        raise DataError(f"losses_from={run_dir}: {e}") from None
    top = read_top_losses(run.diagnostics_dir, run.warnings) if run.diagnostics_dir is not None else None
    if top is None:
        raise DataError(f"losses_from={run_dir}: no top-loss images recorded (a run that completed with "
                        f"diagnostics.enabled=true writes them)" + (f"; {run.warnings[0]}" if run.warnings else ""))
    names = [str(n) for n in top["class_names"]]

    def name(c: int) -> str:
        return f"{c} ({names[c]})" if 0 <= c < len(names) else str(c)

    print(f"  the {len(top['index'])} highest-loss training images of {run_dir}'s last epoch (grid order):")
    print(f"    {'train index':>11}  {'given label':<14}{'predicted':<14}loss")
    for i, y, p, loss in zip(top["index"], top["label"], top["predicted"], top["loss"]):
        print(f"    {int(i):>11}  {name(int(y)):<14}{name(int(p)):<14}{float(loss):.3f}")
    if len(top["index"]):
        path = out_dir / "top_losses.png"
        save_image(make_grid(torch.from_numpy(top["image"]).float() / 255, nrow=8, padding=2), path)
        print(f"  wrote {path}")


def grid_indices(size: int, seed: int) -> list[int]:
    """GRID_IMAGES indices drawn without replacement, the same for the same seed."""
    import torch

    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:GRID_IMAGES].tolist()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="check_data")
def _main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        code = check(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(code)


def main() -> None:
    with one_line_errors():
        _main()


if __name__ == "__main__":
    main()
