"""The import rule of docs/architecture.md, checked on the source: no cycles, no upward imports.

Every ``import`` and ``from ... import`` in every module under ``sureid/`` counts, those
inside functions included (they run the moment the function does). ``LAYERS`` is the rule
itself; docs/architecture.md shows the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sureid"

# Bottom to top. A module may import modules of its own part (a package or a top-level
# module) and of any part in a lower layer; parts of one layer never import each other.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("helpers", ("sureid.version", "sureid._checks", "sureid._amp", "sureid._optional",
                 "sureid._atomic", "sureid._image_files", "sureid._progress")),
    ("file I/O", ("sureid._checkpoint",)),
    ("core", ("sureid.models", "sureid.losses", "sureid.transforms", "sureid.data",
              "sureid.metrics")),
    ("engine", ("sureid.engine",)),
    ("model files, export, drawing", ("sureid.hub", "sureid.export", "sureid.viz")),
    ("inference and tools", ("sureid.inference", "sureid.flops", "sureid.viz_rank")),
    ("reproduction", ("sureid.ablation",)),
    ("training runs", ("sureid.train",)),
    ("command line", ("sureid.cli",)),
    ("public API", ("sureid", "sureid.__main__")),
]


def _module_names() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is a package __init__)}`` for every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        names[".".join(parts)] = (path, is_package)
    return names


MODULES = _module_names()


def _owner(name: str) -> str:
    """The nearest module that exists for a dotted import target (a name imported from a
    module resolves to that module)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> set[str]:
    """The sureid modules ``module`` imports, at any depth of its code."""
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin
                       for a in node.names]
        else:
            continue
        found.update(_owner(t) for t in targets if t == "sureid" or t.startswith("sureid."))
    found.discard(module)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _part(module: str) -> str:
    """The part of ``LAYERS`` that ``module`` belongs to (its longest listed prefix)."""
    parts = [p for _, layer in LAYERS for p in layer
             if module == p or (p != "sureid" and module.startswith(p + "."))]
    if not parts:
        raise AssertionError(f"{module} is in no layer of LAYERS; add it to the rule")
    return max(parts, key=len)


LAYER_OF = {p: i for i, (_, layer) in enumerate(LAYERS) for p in layer}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


def test_the_graph_sees_function_level_and_relative_imports():
    # hub imports the model file format; cli imports most things inside its commands
    assert "sureid.models.model_file" in GRAPH["sureid.hub"]
    assert "sureid.train" in GRAPH["sureid.cli"]
    assert "sureid.data.records" in GRAPH["sureid.data.folder"]


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _part(module)


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_a_cycle_is_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    part = _part(module)
    wrong = []
    for target in sorted(GRAPH[module]):
        other = _part(target)
        if other != part and LAYER_OF[other] >= LAYER_OF[part]:
            wrong.append(f"{target} ({LAYERS[LAYER_OF[other]][0]})")
    assert not wrong, (
        f"{module} ({LAYERS[LAYER_OF[part]][0]}) imports {', '.join(wrong)}: a part may import "
        "its own modules and lower layers only (docs/architecture.md)"
    )


def test_the_docs_show_these_layers():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name, parts in LAYERS:
        shown = ", ".join(p.removeprefix("sureid.") or "sureid" for p in parts)
        assert f"| {name} | {shown} |" in text, f"docs/architecture.md lacks the row {name}"
