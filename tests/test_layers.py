"""The layers show in the imports, never upward:
events <- projections <- ledger <- study / api <- orchestrator / workbench <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"events": 0, "projections": 1, "ledger": 2, "study": 3, "api": 3, "orchestrator": 4, "workbench": 4,
          "cli": 5}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """Return (line, top-level simledger package) of every import in ``path``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = parts[:len(parts) - node.level]
            target = [*base, *(node.module or "").split(".")][0]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("simledger."):
            target = node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.startswith("simledger.")]
            found += [(node.lineno, name[1]) for name in names]
            continue
        else:
            continue
        found.append((node.lineno, target))
    return found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_module_imports_a_higher_or_sibling_layer(package):
    level = LAYERS[package]
    bad = [f"{path.relative_to(ROOT)}:{line} imports {target}"
           for path in sorted((ROOT / package).rglob("*.py"))
           for line, target in imported_packages(path)
           if target in LAYERS and target != package and LAYERS[target] >= level]
    assert not bad, bad
