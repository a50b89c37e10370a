"""Contract statuses are compared as ``ContractStatus`` members, never as loose string literals."""

from __future__ import annotations

import ast
from pathlib import Path

from simledger.projections.state import ContractStatus

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("events", "projections", "ledger", "study", "api", "orchestrator", "workbench", "cli")
STATUSES = {status.value for status in ContractStatus}


def literal_statuses(node: ast.expr) -> list[str]:
    """Return the status names written as string literals in a comparison operand (a constant or a tuple)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and i.value in STATUSES]


def test_no_comparison_with_a_status_literal():
    found = [f"{path.relative_to(ROOT)}:{node.lineno} compares with {names}"
             for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Compare)
             for names in [sum((literal_statuses(o) for o in [node.left, *node.comparators]), [])] if names]
    assert not found, found


def test_the_check_sees_a_literal():
    tree = ast.parse('if contract.status in ("proposed", "active"): pass')
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert literal_statuses(compare.comparators[0]) == ["proposed", "active"]
