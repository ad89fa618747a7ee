"""The config keys the readers and the analysis read (rundir/config_keys.py) exist in the trainer's config: renaming one
in trainer/config.py fails here instead of silently turning a finding or a recommendation off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rundir import config_keys
from conftest import ROOT, compose
from trainer.config import SCHEMAS

KEY_LITERAL = re.compile(r"""(["'])((?:%s)\.[a-z_]+)\1""" % "|".join(SCHEMAS))
SPELLED_OUT = {"config_keys.py"}  # the table itself
# Other tools' config keys (a lightning-hydra-template's trainer.max_epochs) mapped onto ours: not our keys.
OTHER_TOOLS = {"config_map.py"}


OWNERS = sorted({config_keys.OPTION_OF.get(key, "") for key in config_keys.KEYS})


@pytest.mark.parametrize("owner", OWNERS)
def test_every_key_the_analysis_reads_exists_in_the_composed_config(owner):
    cfg = compose([owner] if owner else [])  # one composition per owning option: composing takes a second
    missing = object()
    absent = [key for key in config_keys.KEYS if config_keys.OPTION_OF.get(key, "") == owner
              and OmegaConf.select(cfg, key, default=missing, throw_on_missing=False) is missing]
    assert not absent, f"{absent} not in the config composed with {owner or 'the defaults'}"


def test_the_table_names_each_key_once():
    assert len(set(config_keys.KEYS)) == len(config_keys.KEYS) >= 20
    assert set(config_keys.OPTION_OF) <= set(config_keys.KEYS)


def analysis_sources() -> list[Path]:
    return sorted(p for d in ("analysis", "rundir") for p in (ROOT / d).rglob("*.py"))


def test_the_analysis_names_config_keys_through_the_table():
    spelled, unknown = [], []
    for path in analysis_sources():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("  # ")[0]
            if code.lstrip().startswith(("#", '"""', "'")) or code.rstrip().endswith('"""'):
                continue  # comments and docstrings may show keys to the reader
            for match in KEY_LITERAL.finditer(code):
                where = f"{path.relative_to(ROOT)}:{number} {match.group(2)}"
                if path.name in OTHER_TOOLS:
                    continue
                if match.group(2) not in config_keys.KEYS:
                    unknown.append(where)
                elif path.name not in SPELLED_OUT:
                    spelled.append(where)
    assert not unknown, f"config keys missing from rundir/config_keys.py: {unknown}"
    assert not spelled, f"use the names of rundir/config_keys.py: {spelled}"
