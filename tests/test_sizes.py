"""Sizes as smells, held as limits: no module of the package over 600 lines, no function over 100
(a longer one usually holds two ideas; split it into named parts)."""

from __future__ import annotations

import ast
from pathlib import Path

import airhockey

PACKAGE = Path(airhockey.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULE_LINES = 600
FUNCTION_LINES = 100


def test_no_module_is_over_600_lines() -> None:
    assert len(SOURCES) > 50
    long = {
        str(p.relative_to(PACKAGE)): n for p in SOURCES if (n := p.read_text().count("\n")) > MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_100_lines() -> None:
    long = {
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}": node.end_lineno - node.lineno + 1
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
    }
    assert long == {}
