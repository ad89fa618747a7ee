"""The run directory has one home, rundir/: the import graph around it, its field table against what the
trainer really writes, and the field docs generated from that table."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, read_jsonl, train_here
from rundir import format as fmt

# trainer -> rundir <- analysis; the trainer's only other edge into analysis is the rule catalog.
TRAINER_MAY_IMPORT = {
    "analysis.rules": "the rule catalog: live findings, trainer.stop_on, check_data's data rules",
    "analysis.render.text": "check_data prints its findings in the analysis' words (finding_lines)",
}
FORBIDDEN = {
    "rundir": {"trainer", "analysis", "torch", "torchvision", "hydra", "omegaconf"},
    "analysis": {"trainer", "torch", "torchvision"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: str) -> list[tuple[str, str]]:
    """(module, imported name) for every import in the package's files, relative ones made absolute;
    `from a import b` yields a.b too (b may be a module)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        here = module_name(path)
        pkg = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(here, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                found.append((here, base))
                found += [(here, f"{base}.{a.name}") for a in node.names]
    return found


def test_import_graph_is_trainer_to_rundir_from_analysis():
    for package, forbidden in FORBIDDEN.items():
        bad = [(m, n) for m, n in imports(package) if n.split(".")[0] in forbidden]
        assert not bad, f"{package} must not import {sorted(forbidden)}: {bad}"
    into_analysis = {(m, n) for m, n in imports("trainer") if n.split(".")[0] == "analysis"}
    edges = {n for _, n in into_analysis}
    # `from analysis.rules import X` also yields analysis.rules.X: judge each import by its module
    bad = [(m, n) for m, n in into_analysis
           if not any(n == ok or n.startswith(ok + ".") for ok in TRAINER_MAY_IMPORT) and n != "analysis"]
    assert not bad, f"the trainer reaches into analysis beyond {sorted(TRAINER_MAY_IMPORT)}: {bad}"
    assert "analysis.rules" in edges  # the graph parsed is the real one (live findings use the catalog)
    assert any(n.startswith("rundir.") for _, n in imports("trainer"))
    assert any(n.startswith("rundir.") for _, n in imports("analysis"))


def test_file_names_are_spelled_only_in_rundir():
    """`dir / "status.json"` outside rundir/ would be a second definition of a file name."""
    names = {fmt.TRAIN_JSONL, fmt.VAL_JSONL, fmt.RUN_INFO, fmt.STATUS, fmt.DIAGNOSTICS_POINTER, fmt.MULTIRUN_YAML,
             fmt.HYDRA_DIR, fmt.HYDRA_OVERRIDES}
    spelled = []
    for package in ("trainer", "analysis"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and \
                        isinstance(node.right, ast.Constant) and node.right.value in names:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.right.value}")
    assert not spelled, spelled


def test_rundir_imports_neither_torch_nor_the_packages_around_it():
    code = ("import sys, rundir.files, rundir.read, rundir.format, rundir.fields_doc; "
            "print(sorted(m for m in ('torch', 'trainer', 'analysis', 'hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def expected_keys(file: str, *conditions: str) -> set[str]:
    return {f.name for f in fmt.fields(file) if f.when in conditions}


def check_types(records: list[dict], file: str) -> None:
    kinds = {f.name: f.kind for f in fmt.fields(file)}
    for r in records:
        for key, value in r.items():
            if kinds[key] == "integer":
                assert type(value) is int, (key, value)
            elif kinds[key] == "number":
                assert value is None or type(value) in (int, float), (key, value)
            elif kinds[key] == "matrix":
                assert isinstance(value, list) and all(len(row) == len(value) for row in value), (key, value)
                assert all(type(v) is int and v >= 0 for row in value for v in row), (key, value)
            else:
                assert isinstance(value, dict) and value, (key, value)
                assert all(v is None or type(v) is float for v in value.values()), (key, value)


def test_the_field_table_is_what_the_trainer_writes(digits_run):
    """A real default run (digits, 10 classes, CPU, no AMP, one process): exactly the table's fields."""
    assert all(f.when in fmt.WHEN and f.kind in ("integer", "number", "mapping", "matrix") for f in fmt.FIELDS)
    diag = digits_run / fmt.DIAGNOSTICS
    train, val = read_jsonl(diag / fmt.TRAIN_JSONL), read_jsonl(diag / fmt.VAL_JSONL)
    assert len(train) == len(val) == 2
    for r in train:
        assert set(r) == expected_keys(fmt.TRAIN, "always", "diagnostics", "probe")
    for r in val:
        assert set(r) == expected_keys(fmt.VAL, "always", "top5", "confusion")  # 10 classes: top-5, matrix inline
    check_types(train, fmt.TRAIN)
    check_types(val, fmt.VAL)
    status = json.loads((diag / fmt.STATUS).read_text())
    assert set(status) == set(fmt.STATUS_FIELDS) and status["status"] in fmt.STATES


def test_without_diagnostics_only_the_always_fields_are_written(tmp_path, one_thread):
    _, train, val = train_here(tmp_path, ["trainer.epochs=1", "diagnostics.enabled=false", "model.width=4",
                                          "data.image_size=16", "data.batch_size=256"])
    assert set(train[0]) == expected_keys(fmt.TRAIN, "always")
    assert set(val[0]) == expected_keys(fmt.VAL, "always", "top5")


def test_field_docs_are_generated_from_the_table():
    from rundir.fields_doc import DOC, fields_markdown

    assert DOC == ROOT / "docs" / "diagnostics-fields.md"
    assert DOC.read_text(encoding="utf-8") == fields_markdown(), "run: python -m rundir.fields_doc"
    for f in fmt.FIELDS:
        assert f"| `{f.name}` |" in fields_markdown()
