"""Every config composes and validates; bad values fail before training with a message naming the key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from conftest import CONF, compose
from trainer.config import SCHEMAS, Amp, PlateauConf, RegularizationConf, SGDConf, register_schemas, validate
from trainer.errors import ConfigError

GROUP_OPTIONS = [(g, p.stem) for g in SCHEMAS for p in sorted((CONF / g).glob("*.yaml"))]


def test_every_schema_option_has_a_yaml_and_back():
    for group, options in SCHEMAS.items():
        yamls = {p.stem for p in (CONF / group).glob("*.yaml")}
        assert yamls == set(options), group


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    # What an option needs to mean anything (check_combinations refuses it otherwise).
    overrides += {("data", "imagefolder"): ["data.root=/some/folder"],
                  ("fault", "clip_before_unscale"): ["trainer.amp=fp16", "regularization.grad_clip=1.0"],
                  ("fault", "shared_transforms"): ["augmentation=basic"]}.get((group, option), [])
    typed = validate(compose(overrides))
    node = getattr(typed, group)
    if hasattr(node, "name") and group not in ("regularization", "trainer", "diagnostics"):
        assert node.name == option


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_no_option_yaml_restates_a_schema_default(group, option):
    """The schema owns every default: a YAML that repeats one would win over it, so changing the
    default in trainer/config.py would change nothing a user runs."""
    schema = OmegaConf.structured(SCHEMAS[group][option])
    own = OmegaConf.load(CONF / group / f"{option}.yaml")
    restated = []
    for key in own:
        if key == "defaults" or OmegaConf.is_missing(schema, key):
            continue
        # Merged into the schema, the YAML's value takes the schema's type (1.0e-03 == 0.001, "auto" -> Device.auto).
        merged = OmegaConf.merge(schema, {key: own[key]})
        if OmegaConf.to_container(merged)[key] == OmegaConf.to_container(schema)[key]:
            restated.append(key)
    assert not restated, f"conf/{group}/{option}.yaml restates its schema's default of {restated}"


def test_a_schema_default_is_what_users_run():
    from dataclasses import dataclass

    from hydra.core.config_store import ConfigStore

    @dataclass
    class Patient(PlateauConf):  # a changed default, as an edit of trainer/config.py would make it
        patience: int = 7

    ConfigStore.instance().store(group="schema/scheduler", name="plateau", node=Patient)
    try:
        assert validate(compose(["scheduler=plateau"])).scheduler.patience == 7
    finally:
        register_schemas()
    assert validate(compose(["scheduler=plateau"])).scheduler.patience == PlateauConf.patience


def test_the_analysis_usual_values_are_the_trainer_defaults():
    """The analysis judges steps against each optimizer's usual LR and SGD's usual momentum, and tells users to
    restore them: they are the schema defaults (trainer/config.py owns them; the analysis imports no trainer)."""
    from analysis.overrides import USUAL_LR
    from analysis.rules.causes import USUAL_MOMENTUM

    assert USUAL_LR == {name: schema.lr for name, schema in SCHEMAS["optimizer"].items()}
    assert USUAL_MOMENTUM == SGDConf.momentum


def test_model_takes_classes_and_channels_from_data():
    typed = validate(compose(["data=cifar100", "model=resnet18"]))
    assert typed.model.num_classes == 100 and typed.model.in_channels == 3


def test_experiment_preset_is_the_seed_recipe():
    t = validate(compose(["experiment=cifar100_resnet18"]))
    assert (t.data.name, t.model.name, t.data.batch_size, t.trainer.epochs) == ("cifar100", "resnet18", 512, 120)
    assert isinstance(t.optimizer, SGDConf) and t.optimizer.momentum == 0.9
    assert (t.scheduler.name, t.scheduler.patience) == ("plateau", 3)
    assert t.regularization == RegularizationConf(label_smoothing=0.1, weight_decay=5e-4, grad_clip=1.0)
    assert (t.augmentation.name, t.augmentation.magnitude) == ("randaugment", 11)
    assert t.trainer.amp is Amp.bf16 and t.trainer.device.value == "cuda"


def test_sweep_keys_of_the_readme_exist():
    t = validate(compose(["scheduler=plateau", "scheduler.patience=5", "regularization.label_smoothing=0.05"]))
    assert t.scheduler.patience == 5 and t.regularization.label_smoothing == 0.05


@pytest.mark.parametrize("overrides,needle", [
    (["optimizer.lr=0"], "optimizer.lr must be > 0"),
    (["optimizer.lr=-0.1"], "optimizer.lr must be > 0"),
    (["regularization.label_smoothing=1.0"], "regularization.label_smoothing must lie in [0, 1)"),
    (["regularization.label_smoothing=-0.1"], "regularization.label_smoothing"),
    (["data=imagefolder"], "data.root"),
    (["+scheduler.patiance=3"], "unknown key scheduler.patiance"),
    (["+bogus=1"], "unknown top-level key 'bogus'"),
    (["trainer.epochs=0"], "trainer.epochs must be >= 1"),
    (["regularization.grad_clip=0"], "regularization.grad_clip must be > 0"),
    (["data.val_fraction=1.5"], "data.val_fraction"),
    (["optimizer.momentum=0", "optimizer.nesterov=true"], "nesterov"),
])
def test_out_of_range_values_name_the_key(overrides, needle):
    with pytest.raises(ConfigError) as err:
        validate(compose(overrides))
    assert needle in str(err.value)


@pytest.mark.parametrize("overrides,needle", [
    (["scheduler=plateau", "scheduler.patiance=3"], "patiance"),
    (["scheduler=plateau", "scheduler.patience=abc"], "patience"),
    (["optimizer=sgdd"], "sgdd"),
    (["trainer.amp=off"], "amp"),
    (["optimizer=adamw", "optimizer.momentum=0.9"], "momentum"),
])
def test_typos_and_wrong_types_fail_while_composing(overrides, needle):
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as err:
        compose(overrides)
    assert needle in str(err.value) + str(err.value.__cause__)


def test_help_lists_the_groups_users_choose_from_and_the_chosen_options_keys():
    from conftest import run_trainer

    proc = run_trainer(["scheduler=plateau", "--help"])
    assert proc.returncode == 0, proc.stderr
    groups = proc.stdout.split("* marks the default) ==")[1].split("\n==")[0]
    assert "scheduler: constant, cosine*, onecycle, plateau, step" in groups  # * marks the default
    assert "schema/" not in proc.stdout  # the schemas the YAML files extend are no user choice
    assert {line.split(":")[0] for line in groups.strip().splitlines() if ":" in line} >= set(SCHEMAS)
    config = proc.stdout.split("== Config (this command line's) ==")[1]
    assert "  patience: 3" in config and "  threshold: 0.0001" in config  # the chosen option's own keys
