"""The image-folder loader on fuzzed folders (benchmarks/fuzz_images.py): real PNG and JPEG files made with
Pillow, mutated by random bytes, truncations and header rewrites, each folder refused in one line or every
image it accepted loading as training loads it. An exception of any other kind, or a hang, is a failure."""

from __future__ import annotations

import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_images as fz  # noqa: E402

TEMPLATES = fz.templates()


def test_every_template_is_a_good_image_and_every_mutation_changes_it(tmp_path):
    """The fuzzer starts from files that load (else every case would be a refusal), and each mutation acts."""
    import random

    from trainer.image_folder import decode

    for name, data in TEMPLATES["images"].items():
        (tmp_path / name).write_bytes(data)
        assert decode(str(tmp_path / name)).mode == "RGB", name
    rng = random.Random(0)
    for mutation in fz.MUTATIONS:
        changed = sum(mutation(data, rng, TEMPLATES) != data for data in TEMPLATES["images"].values())
        assert changed >= len(TEMPLATES["images"]) - 2, mutation.__name__


# About 20 ms a case on a quiet core (a few files written, scanned, and each image loaded), in chunks that xdist
# spreads over its workers: the budget stays under 10 s.
DEFAULT_CASES = int(os.environ.get("FUZZ_IMAGE_CASES", 300))
CHUNK = 150


@pytest.mark.parametrize("first", range(0, DEFAULT_CASES, CHUNK))
def test_fuzzed_image_folders_are_refused_in_one_line_or_load_every_image(first):
    _all_pass(range(first, min(first + CHUNK, DEFAULT_CASES)))


def _all_pass(seeds: range) -> None:
    fz.warm_up(TEMPLATES)
    with fz.memory_limit():
        count, failures = fz.run_cases(seeds, TEMPLATES)
    assert count == len(seeds) and not failures, "\n".join(failures[:20])


# The slow run: `python benchmarks/fuzz_images.py --seed 100000 --cases 100000`, in chunks of 5,000 (about two
# minutes each); docs/reliability.md has the figure.
SLOW_FIRST_SEED = 100_000
SLOW_CASES = int(os.environ.get("FUZZ_IMAGE_SLOW_CASES", 100_000))
SLOW_CHUNK = 5_000


@pytest.mark.slow
@pytest.mark.parametrize("first", range(SLOW_FIRST_SEED, SLOW_FIRST_SEED + SLOW_CASES, SLOW_CHUNK))
def test_fuzz_images_slow_run(first):
    _all_pass(range(first, min(first + SLOW_CHUNK, SLOW_FIRST_SEED + SLOW_CASES)))
