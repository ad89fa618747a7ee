"""The class count of another tool's run, where its logs allow, and where it came from (said in the report):

1. a key of the tool's config (hparams.yaml's `num_classes` or the model's `net.output_size`, timm's
   args.yaml, Hugging Face's config.json `id2label`), mapped by config_map.py;
2. a logged `num_classes` metric (constant over the run);
3. per-class accuracies logged as their own metrics (`val_acc_0` ... `val_acc_9`, torchmetrics'
   `average=None` as Lightning logs it): the number of classes is the number of indices, 0 to C-1 all there.

Otherwise it is unknown, and the report says so: chance-level checks (accuracy at 1/C, loss at ln C) stay
silent rather than assume a count.
"""

from __future__ import annotations

import math
import re
from typing import Optional

from rundir.config_keys import DATA_NUM_CLASSES
from rundir.read import INT_MAX, get

_PER_CLASS = re.compile(r"^(?P<stem>.*?acc[a-z]*)[_/\-.](?:class[_\-]?)?(?P<index>\d{1,5})$", re.IGNORECASE)
LOGGED = ("num_classes", "n_classes")


def class_count(src) -> tuple[Optional[int], str]:
    """(the count, where it came from) or (None, why it is unknown) for a build.Source."""
    stated = get(src.config, DATA_NUM_CLASSES)
    if _valid(stated):
        return stated, f"{src.origin.get(DATA_NUM_CLASSES, 'num_classes')} in the tool's config"
    for name in LOGGED:
        values = {v for vs in src.series.get(name, {}).values() for v in vs if math.isfinite(v)}
        if len(values) == 1 and _valid(n := int(next(iter(values)))) and n == next(iter(values)):
            return n, f"the logged {name}"
    stems: dict[str, set[int]] = {}
    for name in src.series:
        m = _PER_CLASS.match(name)
        if m:
            stems.setdefault(m.group("stem"), set()).add(int(m.group("index")))
    for stem, indices in sorted(stems.items()):
        if len(indices) >= 2 and indices == set(range(len(indices))):
            return len(indices), f"{len(indices)} per-class accuracies logged ({stem}_0 ... {stem}_{len(indices) - 1})"
    return None, ("unknown: the log states no num_classes or model output size and logs no per-class accuracy "
                  "(chance-level checks stay silent)")


def _valid(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= INT_MAX
