"""Checkpoints load with weights_only=True only, refuse anything else in one line, and restore the random
state exactly; nothing in the code base reads run files with an unsafe loader."""

from __future__ import annotations

import ast
import hashlib
import io
import os
import random

import numpy as np
import pytest
import torch

from conftest import ROOT
from trainer import checkpoint
from trainer.errors import CheckpointError


class _Payload:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):  # what a malicious checkpoint does: run a command while being unpickled
        return (os.system, (self.command,))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "model": {}, "x": _Payload(f"touch {marker}")}, buffer)
    (tmp_path / "last.pt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(tmp_path / "last.pt")
    assert "refused, it holds a pickled posix.system" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_a_checkpoint_holding_an_unlisted_class_is_refused(tmp_path):
    import argparse

    torch.save({"format": checkpoint.FORMAT, "args": argparse.Namespace(lr=0.1)}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="refused, it holds a pickled argparse.Namespace"):
        checkpoint.load(tmp_path / "last.pt")


def test_random_state_round_trips_through_a_saved_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.normal()  # a cached gaussian is part of numpy's state
    checkpoint.save(tmp_path / "last.pt", {"rng": checkpoint.rng_state()})
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "last.pt")["rng"])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# ───────────────────────────── checksums ─────────────────────────────


def test_every_save_writes_a_checksum_that_load_verifies(tmp_path):
    path = tmp_path / checkpoint.LAST
    checkpoint.save(path, {"epoch": 1})
    checkpoint.save(path, {"epoch": 2})
    digests = checkpoint.checksum_path(path).read_text().split()
    assert digests[0] == hashlib.sha256(path.read_bytes()).hexdigest() and len(digests) == 2
    for epoch in (3, 4):
        checkpoint.save(path, {"epoch": epoch})
    assert len(checkpoint.checksum_path(path).read_text().split()) == checkpoint.KEPT_CHECKSUMS
    assert checkpoint.load(path)["epoch"] == 4
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch.*best.pt.*trainer.resume=false"):
        checkpoint.load(path)


def test_a_crash_between_the_checksum_and_the_checkpoint_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / checkpoint.LAST
    checkpoint.save(path, {"epoch": 1})
    real_write = checkpoint.atomic_write

    def dies_on_the_checkpoint(target, write, mode="wb"):
        if target == path:
            raise KeyboardInterrupt  # killed after the new checksum went in, before the checkpoint did
        real_write(target, write, mode)

    monkeypatch.setattr(checkpoint, "atomic_write", dies_on_the_checkpoint)
    for epoch in (2, 3):  # twice in a row
        with pytest.raises(KeyboardInterrupt):
            checkpoint.save(path, {"epoch": epoch})
    assert checkpoint.load(path)["epoch"] == 1  # the checkpoint that is there, whose digest is still listed


def test_starting_over_removes_checkpoints_and_their_checksums(tmp_path):
    for name in (checkpoint.LAST, checkpoint.BEST):
        checkpoint.save(tmp_path / name, {"epoch": 1})
    checkpoint.discard(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    """Written before checksums existed: nothing to verify against, loaded as before."""
    torch.save({"format": checkpoint.FORMAT, "epoch": 4}, tmp_path / "last.pt")
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 4


# ───────────────────────────── no unsafe loaders anywhere ─────────────────────────────

UNSAFE_CALLS = {("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"), ("pickle", "load"),
                ("pickle", "loads"), ("marshal", "loads"), ("dill", "load"), ("dill", "loads")}


SAFE_LOADERS = {"SafeLoader", "CSafeLoader"}


def _names_only_safe_loaders(value: ast.AST) -> bool:
    """`yaml.SafeLoader`, or an expression (e.g. `getattr(yaml, "CSafeLoader", yaml.SafeLoader)`) whose
    every attribute and string names a safe loader."""
    named = [n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)]
    named += [n.value for n in ast.walk(value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return bool(named) and all(name in SAFE_LOADERS for name in named)


def unsafe_calls(source: str) -> list[str]:
    """Calls that could execute what a file holds: pickle, unsafe YAML, torch.load without weights_only=True."""
    found = []
    tree = ast.parse(source)
    assigned: dict[str, list[ast.AST]] = {}  # name -> every value assigned to it in the module
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
            found.append(f"{func.id}() at line {node.lineno}")
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            continue
        owner, name = func.value.id, func.attr
        keywords = {k.arg: k.value for k in node.keywords}
        if (owner, name) in UNSAFE_CALLS:
            found.append(f"{owner}.{name} at line {node.lineno}")
        elif (owner, name) == ("yaml", "load"):
            loader = keywords.get("Loader")
            values = assigned.get(loader.id, []) if isinstance(loader, ast.Name) else [loader] if loader else []
            if not (values and all(_names_only_safe_loaders(v) for v in values)):
                found.append(f"yaml.load without SafeLoader at line {node.lineno}")
        elif (owner, name) == ("torch", "load"):
            weights_only = keywords.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"torch.load without weights_only=True at line {node.lineno}")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = ("import yaml, torch, pickle\nyaml.load(s)\ntorch.load(p)\npickle.loads(b)\neval(x)\n"
           "L = yaml.Loader\nyaml.load(s, Loader=L)\nyaml.load(s, Loader=yaml.FullLoader)\n")
    assert len(unsafe_calls(bad)) == 6
    good = ("yaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\ntorch.load(p, weights_only=True)\n"
            "model.eval()\nloader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\nyaml.load(s, Loader=loader)\n")
    assert unsafe_calls(good) == []


@pytest.mark.parametrize("package", ["trainer", "analysis"])
def test_no_unsafe_loader_in_the_code(package):
    problems = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        found = unsafe_calls(path.read_text())
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}


def test_checkpoint_of_another_normalization_is_foreign(tmp_path):
    from trainer.checkpoint import check_identity
    from trainer.errors import CheckpointError

    saved = {"config": {"model": {"name": "small_cnn", "norm": "batch"}, "data": {"name": "digits"}}}
    config = {"model": {"name": "small_cnn", "norm": "group"}, "data": {"name": "digits"}}
    with pytest.raises(CheckpointError, match="model.norm='batch', this run has 'group'"):
        check_identity(saved, config, tmp_path / "last.pt")
    check_identity(saved, saved["config"], tmp_path / "last.pt")  # the same model resumes
