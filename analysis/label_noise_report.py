"""The run report's Label Noise section: both estimates (training dynamics on the training labels, confident
learning on the validation labels), how they compare, and the highest-loss training images, as plain data.

The images are the trainer's thumbnails (rundir/format.py TOP_LOSSES), each with its given label, the class
the model predicted, its loss and its area under the margin; `table` and `images` are rendered as a table
(text, Markdown) and an image grid (HTML) by analysis/render/.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rundir.per_sample import read_top_losses
from rundir.read import Run
from .label_noise import confident_learning, estimate, per_sample, signals, val_predictions
from .thumbnails import png_base64

COLUMNS = ["train index", "given label", "predicted", "loss", "area under the margin"]


def class_name(names, c: int) -> str:
    return f"{c} ({names[c]})" if 0 <= c < len(names) else str(c)


def label_noise_section(run: Run) -> Optional[dict]:
    if run.diagnostics_dir is None or (per_sample(run) is None and val_predictions(run) is None):
        return None
    lines, data = [], {}
    e = estimate(run)  # None without per-sample records
    if e is None and per_sample(run) is not None:
        lines.append("no estimate: too few epochs recorded, or the model's predictions are too unreliable "
                     "(best val accuracy not halfway from chance to 1)")
    elif e is not None:
        lo, hi = e["interval"]
        lines.append(f"training labels that look wrong by their dynamics (area under the margin): about {e['share']:.1%} (95 % interval {lo:.1%} to {hi:.1%}) of "
                     f"{e['images']} training images, judged in epochs {e['window_epochs'][0]}-{e['window_epochs'][1]} "
                     f"(before memorization: val loss best at epoch {e['memorization_epoch']})")
        lines.append(f"contradicted by the model in every one of those epochs: {e['share_contradicted_always']:.1%}; "
                     f"in most of them: {e['share_contradicted_mostly']:.1%}; median area under the margin "
                     f"{e['aum_median_suspected']} for those vs {e['aum_median_others']} for the rest")
        if e["flips"]:
            lines.append("most frequent label -> predicted class: " + ", ".join(
                f"{f['label']} -> {f['looks_like']} ({f['images']})" for f in e["flips"]))
        data["estimate"] = e
    lines += confident_learning_lines(run, data)
    top = read_top_losses(run.diagnostics_dir, run.warnings) if per_sample(run) is not None else None
    section = {"title": "Label Noise", "lines": lines, "data": data}
    if top is None:
        return section
    ps = per_sample(run)
    n = ps.margin.shape[1]
    names = [str(n) for n in top["class_names"]]
    table, images = [], []
    for i, (index, image, label, predicted, loss) in enumerate(zip(top["index"], top["image"], top["label"],
                                                                     top["predicted"], top["loss"])):
        aum = per_sample_aum(ps, int(index)) if 0 <= index < n else None
        cells = [int(index), class_name(names, int(label)), class_name(names, int(predicted)), round(float(loss), 3),
                 None if aum is None else round(aum, 3)]
        table.append(cells)
        images.append({"png_base64": png_base64(image), "index": cells[0], "label": cells[1], "predicted": cells[2],
                       "loss": cells[3]})
    lines.append(f"the {len(table)} highest-loss training images of the last epoch:")
    section.update(table={"columns": COLUMNS, "rows": table}, images=images)
    return section


def confident_learning_lines(run: Run, data: dict) -> list[str]:
    """The second signal's lines (and data["val_confident_learning"], data["signals"]): confident learning on
    the best validation pass, and how it compares with the training-dynamics estimate."""
    if val_predictions(run) is None:
        return []
    cl = confident_learning(run)
    if cl is None:
        return ["confident learning on the validation predictions: no estimate (the model's predictions are too "
                "unreliable: best val accuracy not halfway from chance to 1)"]
    lo, hi = cl["interval"]
    lines = [f"validation labels that look wrong by confident learning (Northcutt et al. 2021, on the best "
             f"validation pass, epoch {cl['epoch']}): {cl['share']:.1%} (95 % interval {lo:.1%} to {hi:.1%}) of "
             f"the {cl['images']} validation images counted (of {cl['validated']}: those with some class at or "
             f"above its threshold); calibrated {cl['share_calibrated']:.1%}. Its floor on right labels is the "
             f"model's confident mistakes, at most about the validation error ({cl['val_error']:.1%} at that epoch)"]
    if cl["flips"]:
        lines.append("most frequent validation label -> looks like: " + ", ".join(
            f"{f['label']} -> {f['looks_like']} ({f['images']})" for f in cl["flips"]))
    data["val_confident_learning"] = cl
    both = signals(run)
    if both is not None:
        lines.append(f"the two signals compared (training labels {both['train']['share']:.1%}, validation labels "
                     f"{both['val']['share']:.1%}): {both['says']}")
        data["signals"] = both
    return lines


def per_sample_aum(ps, index: int) -> float:
    """Area under the margin of one image over every recorded epoch (Pleiss et al. 2020)."""
    column = ps.margin[:, index]
    column = column[np.isfinite(column)]
    return float(column.mean()) if len(column) else float("nan")
