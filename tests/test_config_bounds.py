"""The bounds of every number come from the schema: each float field refuses NaN and infinity, each int
field refuses a value past its ceiling, whichever option of whichever group it belongs to. The fields are
walked here as validate() walks them, so a field added later is covered without a new test."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import typing

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from conftest import CONF, compose
from trainer import config
from trainer.config import INT_LIMITS, INT_MAX, SCHEMAS, validate
from trainer.errors import ConfigError

# What an option needs to validate at all (as in test_config.py).
NEEDS = {("data", "imagefolder"): ["data.root=/some/folder"],
         ("fault", "clip_before_unscale"): ["trainer.amp=fp16", "regularization.grad_clip=1.0"],
         ("fault", "shared_transforms"): ["augmentation=basic"]}
INTERPOLATED = {("model", "num_classes"), ("model", "in_channels")}  # set from data.*, checked there


def _numeric_fields(kind: type) -> list[tuple[str, str, str, bool]]:
    """(group, option, field, is_list) for every field of that number type, one option per schema class."""
    seen, out = set(), []
    for group, options in SCHEMAS.items():
        for option, schema in options.items():
            hints = typing.get_type_hints(schema)
            for f in dataclasses.fields(schema):
                hint = hints[f.name]
                args = typing.get_args(hint)
                is_list = typing.get_origin(hint) in (list, typing.List)
                base = args[0] if is_list else next((a for a in args if a is not type(None)), hint)
                key = (schema, f.name)
                if base is kind and key not in seen and (group, f.name) not in INTERPOLATED:
                    seen.add(key)
                    out.append((group, option, f.name, is_list))
    return out


@functools.lru_cache(maxsize=None)
def _default_tree() -> dict:
    return OmegaConf.to_container(compose(), resolve=False)


def _composed(group: str, option: str) -> DictConfig:
    """What composing `group=option` gives validate(), built from the option's YAML file: composing each
    of the options through Hydra would take a second apiece."""
    tree = copy.deepcopy(_default_tree())
    if len(SCHEMAS[group]) == 1 or tree[group].get("name") == option:  # the default config has it already
        return _set_needs(OmegaConf.create(tree), group, option)
    values = {k: v for k, v in yaml.safe_load((CONF / group / f"{option}.yaml").read_text()).items()
              if k != "defaults"}
    tree[group] = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(SCHEMAS[group][option]), values))
    return _set_needs(OmegaConf.create(tree), group, option)


def _set_needs(cfg: DictConfig, group: str, option: str) -> DictConfig:
    for override in NEEDS.get((group, option), []):
        key, _, value = override.partition("=")
        OmegaConf.update(cfg, key, yaml.safe_load(value))
    return cfg


def _with(group: str, option: str, name: str, value) -> "DictConfig":
    """The composed config of that option with one value replaced (composing once per option keeps it fast)."""
    cfg = _composed(group, option)
    OmegaConf.update(cfg, f"{group}.{name}", value)
    return cfg


FLOATS = _numeric_fields(float)
INTS = _numeric_fields(int)


def test_the_walk_finds_the_fields_the_issue_named():
    floats = {f"{g}.{f}" for g, _, f, _ in FLOATS}
    ints = {f"{g}.{f}" for g, _, f, _ in INTS}
    assert {"optimizer.eps", "scheduler.min_lr", "regularization.weight_decay", "data.mean", "data.std"} <= floats
    assert {"trainer.seed", "trainer.epochs", "data.image_size", "diagnostics.update_every"} <= ints


@pytest.mark.parametrize("group,option,name,is_list", FLOATS, ids=[f"{g}.{f}@{o}" for g, o, f, _ in FLOATS])
def test_every_float_refuses_nan_and_infinity(group, option, name, is_list):
    length = len(getattr(getattr(validate(_composed(group, option)), group), name)) if is_list else 0
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError) as e:  # the schema's own range check may name it first
            validate(_with(group, option, name, [value] * length if is_list else value))
        assert name in str(e.value) and "\n" not in str(e.value), value


@pytest.mark.parametrize("group,option,name,is_list", INTS, ids=[f"{g}.{f}@{o}" for g, o, f, _ in INTS])
def test_every_int_has_a_ceiling(group, option, name, is_list):
    ceiling = INT_LIMITS.get(f"{group}.{name}", (0, INT_MAX, ""))[1]
    with pytest.raises(ConfigError) as e:  # the schema's own check may name it first (in_channels: mean, std)
        validate(_with(group, option, name, ceiling + 1))
    assert name in str(e.value)


def test_seeds_stop_at_32_bits_and_the_last_one_is_valid():
    assert validate(compose(["trainer.seed=4294967295"])).trainer.seed == 2**32 - 1


def test_every_bound_names_a_field_of_a_schema():
    fields = {f"{g}.{f.name}" for g, options in SCHEMAS.items() for s in options.values()
              for f in dataclasses.fields(s)}
    assert set(INT_LIMITS) <= fields
    assert all(low <= high and why for low, high, why in INT_LIMITS.values())


def test_a_field_may_allow_nonfinite_values_through_its_metadata():
    @dataclasses.dataclass
    class Loose:
        limit: float = dataclasses.field(default=float("inf"), metadata={config.ALLOW_NONFINITE: True})
        other: float = 1.0

    config.check_numbers("x", Loose())  # allowed
    with pytest.raises(ConfigError, match="x.other must be finite"):
        config.check_numbers("x", Loose(other=float("nan")))
