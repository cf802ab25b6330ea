"""The learning stage's layers: imports run one way, protocol -> downstream -> pretext -> methods -> nn.

Read from the source with ``ast`` (nothing is imported), every ``import`` counted, those inside
functions too: a lazy import that runs upward is still a dependency upward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airhockey

PACKAGE = Path(airhockey.__file__).parent
LAYERS = ("nn", "methods", "pretext", "downstream", "protocol")
"""Lowest first: a module may import its own layer and those before it, never those after."""
SHARED = ("config", "data", "device")
"""Modules of ``airhockey.learn`` itself, below every layer: they import no layer."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in SOURCES}


def imports(path: Path, top_level_only: bool = False) -> list[str]:
    """Every module the file imports (``from a import b`` counts as ``a`` and, where b is a
    submodule, ``a.b``); with ``top_level_only``, only the statements at module level."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    return found


def private_names(path: Path) -> list[str]:
    """``module.name`` for every private name the file takes from another airhockey module."""
    return [
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airhockey")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def layer(module: str) -> int | None:
    """The index of ``module``'s layer in LAYERS; -1 for the shared modules; None outside learn."""
    parts = module.split(".")
    if parts[:2] != ["airhockey", "learn"] or len(parts) < 3:
        return None
    if parts[2] in SHARED:
        return -1
    return LAYERS.index(parts[2]) if parts[2] in LAYERS else None


LEARN = [p for p in SOURCES if module_name(p).startswith("airhockey.learn.")]


def test_every_learn_module_is_in_a_layer() -> None:
    assert len(LEARN) > 20
    assert [module_name(p) for p in LEARN if layer(module_name(p)) is None] == []


@pytest.mark.parametrize("path", LEARN, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path: Path) -> None:
    own = layer(module_name(path))
    upward = sorted(
        {target for target in imports(path) if (other := layer(target)) is not None and other > own}
    )
    assert upward == [], f"{module_name(path)} (layer {own}) imports upward: {upward}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_modules(path: Path) -> None:
    assert private_names(path) == [], f"{module_name(path)} imports private names"


def test_no_import_cycles() -> None:
    """Module-level imports between airhockey's modules form no cycle (Tarjan's strongly connected
    components of the import graph, each of size one)."""
    graph = {
        module_name(p): {t for t in imports(p, top_level_only=True) if t in MODULES} - {module_name(p)}
        for p in SOURCES
    }
    assert [c for c in strongly_connected(graph) if len(c) > 1] == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

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
            components.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return components
