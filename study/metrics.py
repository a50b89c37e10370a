"""Regime means of run summaries, one column per registry metric (``projections.metrics``)."""

from __future__ import annotations

from typing import Any

from ..projections.metrics import regime_metrics


def regime_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row of means per regime, sorted by regime name (the driver's order)."""
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["regime"], []).append(run)
    out = []
    for regime in sorted(grouped):
        rs = grouped[regime]
        row: dict[str, Any] = {"regime": regime, "n_runs": len(rs)}
        for metric in regime_metrics():
            row[metric.regime] = sum(metric.value(r) for r in rs) / len(rs)
        out.append(row)
    return out
