"""Summary metrics of a run, computed from its projection, in the seed's schema."""

from __future__ import annotations

from typing import Any

from ..projections.state import State

RUN_CSV_FIELDS = [
    "run_id", "seed", "regime", "contracts_total", "contracts_settled_total", "contracts_defaulted_total",
    "inference_fees_total", "interest_total", "dividends_total", "token_supply_final", "gini_balance",
    "gini_wealth", "negative_balance_agents", "winner_hhi", "blocks_produced", "total_errors",
]
REGIME_FIELDS = [
    "regime", "n_runs", "contracts_total_mean", "contracts_settled_mean", "contracts_defaulted_mean",
    "fees_total_mean", "interest_total_mean", "dividends_total_mean", "token_supply_final_mean",
    "gini_balance_mean", "gini_wealth_mean", "neg_balance_agents_mean", "winner_hhi_mean",
    "blocks_produced_mean", "errors_mean",
]
# regime column -> run column it averages
REGIME_MEANS = dict(zip(REGIME_FIELDS[2:], RUN_CSV_FIELDS[3:]))
GINI_SHIFT = 2000


def gini(values: list[int]) -> float:
    """Return the Gini coefficient (the study's formula: sorted, rank-weighted)."""
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum(i * x for i, x in enumerate(xs, start=1))
    return (2 * weighted) / (n * total) - (n + 1) / n


def turn_rows(state: State) -> list[dict[str, Any]]:
    """Return the driver's per-turn rows (turn 1 onward)."""
    return [
        {"turn": m.turn, "block_winner": m.block_winner or "", "inference_fees": m.fees,
         "contracts_settled": m.settled_count, "contracts_defaulted": m.defaulted_count, "errors": m.error_count,
         "dividends_total": m.dividends_total, "interest_total": m.interest_total}
        for m in state.turns if m.turn >= 1
    ]


def run_summary(state: State) -> dict[str, Any]:
    """Return the run's summary row, as the study driver computed it, from the projection."""
    ident = state.identity
    rows = turn_rows(state)
    balances = [state.accounts[a].balance for a in state.agents]
    staked = [state.accounts[a].staked for a in state.agents]
    wealth = [b + s for b, s in zip(balances, staked)]
    wins = sum(state.winner_counts.values())
    # Sorted: a float sum must not depend on dict order (live fold vs checkpoint restore differ).
    hhi = sum((count / wins) ** 2 for _, count in sorted(state.winner_counts.items())) if wins else 0.0
    statuses: dict[str, int] = {}
    for contract in state.contracts.values():
        statuses[contract.status] = statuses.get(contract.status, 0) + 1
    return {
        "run_id": ident.get("run_name", state.run_id), "seed": state.seed, "regime": ident.get("regime", ""),
        "turns": len(rows), "agents": len(state.agents),
        "contracts_total": len(state.contracts),
        "contracts_settled_total": sum(r["contracts_settled"] for r in rows),
        "contracts_defaulted_total": sum(r["contracts_defaulted"] for r in rows),
        "contracts_final_status": dict(sorted(statuses.items())),
        "inference_fees_total": sum(r["inference_fees"] for r in rows),
        "interest_total": sum(r["interest_total"] for r in rows),
        "dividends_total": sum(r["dividends_total"] for r in rows),
        "token_supply_final": state.token_supply(),
        "mean_balance": sum(balances) / len(balances),
        "median_balance": sorted(balances)[len(balances) // 2],
        "mean_wealth": sum(wealth) / len(wealth),
        "gini_balance": gini([max(0, b + GINI_SHIFT) for b in balances]),
        "gini_wealth": gini([max(0, w + GINI_SHIFT) for w in wealth]),
        "negative_balance_agents": sum(1 for b in balances if b < 0),
        "winner_hhi": hhi,
        "blocks_produced": sum(1 for r in rows if r["block_winner"]),
        "action_counts": dict(sorted(state.action_counts.items())),
        "winner_counts": dict(sorted(state.winner_counts.items())),
        "total_errors": sum(r["errors"] for r in rows),
        "errors_by_reason": dict(sorted(state.rejection_counts.items())),
        "balances_final": dict(zip(state.agents, balances)),
        "staked_final": dict(zip(state.agents, staked)),
        "turn_rows": rows,
    }


def regime_summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row of means per regime, sorted by regime name (the driver's order)."""
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["regime"], []).append(run)
    out = []
    for regime in sorted(grouped):
        rs = grouped[regime]
        row: dict[str, Any] = {"regime": regime, "n_runs": len(rs)}
        for column, source in REGIME_MEANS.items():
            row[column] = sum(r[source] for r in rs) / len(rs)
        out.append(row)
    return out
