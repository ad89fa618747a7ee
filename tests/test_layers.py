"""The import graph of the project's own modules: no cycles, and the analysis in six layers, each importing only
the layers below it (analysis.LAYERS). Imports inside functions count: one that dodges a cycle is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from analysis import LAYERS, layer_of

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("trainer", "analysis", "rundir")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its source (top level, functions, branches)."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`, the module mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:  # `import a.b.c` of a name inside a module: the module
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_in_a_circle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle_through_a_function_local_import(tmp_path):
    """The check above can fail: a circle closed by an import inside a function is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    real = import_graph()
    assert "analysis.rules.catalog" in real["analysis.rules.causes"]  # parsed from the real sources
    assert "analysis.dispatch" in real["analysis.hydra_callback"]  # an import inside a method counts


def test_every_analysis_module_has_a_layer():
    unplaced = [m for m in modules() if m.split(".")[0] in ("analysis", "rundir") and m != "analysis"
                and layer_of(m) is None]
    assert not unplaced, f"add these to analysis.LAYERS: {unplaced}"


def test_each_analysis_layer_imports_only_the_layers_below():
    upward = []
    for module, imported in import_graph().items():
        mine = layer_of(module)
        if mine is None:
            continue
        for other in imported:
            theirs = layer_of(other)
            if theirs is not None and theirs > mine:
                upward.append(f"{module} (layer {mine} {LAYERS[mine][0]}) imports {other} "
                              f"(layer {theirs} {LAYERS[theirs][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_renderers_get_plain_data_never_a_model_class():
    """render/ turns report dicts into text: it imports neither the Run reader nor the Sweep loader."""
    models = ("rundir.read", "analysis.sweep", "analysis.importers")
    bad = [(m, o) for m, imported in import_graph().items() if m.startswith("analysis.render")
           for o in imported if o.startswith(models)]
    assert not bad, bad


def test_readme_shows_every_layer_with_its_modules():
    readme = (ROOT / "README.md").read_text()
    for number, (name, _, members) in LAYERS.items():
        assert f"{number} {name}" in readme, f"README's picture lacks layer {number} {name}"
        for m in members:
            shown = m.replace(".", "/").replace("analysis/__main__", "__main__")
            assert shown.split("/")[-1] in readme, f"README's picture lacks {m} in layer {number}"
