"""docs/diagnostics-fields.md from the field table in rundir/format.py (a test checks the committed file).

    python -m rundir.fields_doc            # rewrite docs/diagnostics-fields.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from .format import (LR_FIND_FIELDS, LR_FIND_JSON, LR_FIND_SETUP, LR_FIND_SETUP_IGNORED, PER_SAMPLE_DIR,
                     PER_SAMPLE_EPOCH, PER_SAMPLE_FIELDS, PER_SAMPLE_LABELS, RUN_INFO, RUN_INFO_FIELDS, STATUS,
                     STATUS_FIELDS, TOP_LOSS_FIELDS, TOP_LOSSES, TRAIN, TRAIN_JSONL, VAL, VAL_JSONL,
                     VAL_PREDICTION_FIELDS, VAL_PREDICTION_TOP_K, VAL_PREDICTIONS, WHEN, fields)

DOC = Path(__file__).resolve().parents[1] / "docs" / "diagnostics-fields.md"
KINDS = {"integer": "integer", "number": "number or null", "mapping": "{name: number or null}",
         "matrix": "[[integer, ...], ...]"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def fields_markdown() -> str:
    out = ["# Diagnostics record fields", "",
           "Generated from the field table in `rundir/format.py` by `python -m rundir.fields_doc`; "
           "do not edit by hand. A test trains a tiny run and checks that the trainer writes exactly these fields.",
           "", "One JSON object per line per epoch. Field names are public and stable: fields are added, never "
           "renamed. A non-finite value is written as `null` (strict JSON). Fractions lie in [0, 1]; "
           "norms are L2 norms, without unit.", ""]
    for file, name in ((TRAIN, TRAIN_JSONL), (VAL, VAL_JSONL)):
        out += [f"## `{name}`", "", "| field | type | unit | meaning | written |", "|---|---|---|---|---|"]
        for f in fields(file):
            when = "always" if f.when == "always" else WHEN[f.when]
            timing = " (wall time: differs between identical runs)" if f.timing else ""
            out.append(f"| `{f.name}` | {KINDS[f.kind]} | {f.unit or '-'} | {_cell(f.meaning)}{timing} | "
                       f"{_cell(when)} |")
        out.append("")
    out += [f"## `{STATUS}`", "", "Replaced atomically at start, after every epoch and at the end.", "",
            "| field | meaning |", "|---|---|"]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in STATUS_FIELDS.items()]
    out += ["", f"## `{PER_SAMPLE_DIR}/`", "",
            f"NumPy `.npz` files of plain arrays (read them with `np.load(path, allow_pickle=False)`), indexed by "
            f"each image's position in the training set. `{PER_SAMPLE_LABELS}`: `labels` (int32), the training "
            f"labels as trained, written at start. `{PER_SAMPLE_EPOCH.format(epoch=1)}`, ... one per epoch, when "
            f"{_cell(WHEN['diagnostics'])}: about 5 bytes per training image.", "",
            "| array | dtype | unit | meaning |", "|---|---|---|---|"]
    out += [f"| `{n}` | {d} | {u or '-'} | {_cell(m)} |" for n, d, u, m in PER_SAMPLE_FIELDS]
    out += ["", f"`{TOP_LOSSES}`, written when training completes: the highest-loss training images of the last "
                "epoch, highest first.", "", "| array | dtype | unit | meaning |", "|---|---|---|---|"]
    out += [f"| `{n}` | {d} | {u or '-'} | {_cell(m)} |" for n, d, u, m in TOP_LOSS_FIELDS]
    out += ["", f"`{VAL_PREDICTIONS}`, when {_cell(WHEN['diagnostics'])}: the validation pass of the best epoch so "
                "far (replaced whenever the validation accuracy improves, so at most once an epoch), indexed by each "
                "image's position in the validation set; N validation images, K = min("
                f"{VAL_PREDICTION_TOP_K}, classes) most probable classes each. The analysis runs confident learning "
                "(Northcutt et al. 2021) on it.", "", "| array | dtype | unit | meaning |", "|---|---|---|---|"]
    out += [f"| `{n}` | {d} | {u or '-'} | {_cell(m)} |" for n, d, u, m in VAL_PREDICTION_FIELDS]
    out += ["", f"`{RUN_INFO}` (written at start) holds facts about the data, the model and the machine, "
                "and the resolved config. Among them:", "", "| field | meaning |", "|---|---|"]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in RUN_INFO_FIELDS.items()]
    out.append("")
    out += [f"## `{LR_FIND_JSON}`", "", "Written once by `python -m trainer.lr_find` (the LR range test) into its own run "
            "directory. The analysis of a run cites the newest one whose `setup` equals the run's config groups "
            f"{', '.join(LR_FIND_SETUP)} (less {', '.join(LR_FIND_SETUP_IGNORED)}).", "",
            "| field | meaning |", "|---|---|"]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in LR_FIND_FIELDS.items()]
    out.append("")
    return "\n".join(out)


def main() -> int:
    DOC.write_text(fields_markdown(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
