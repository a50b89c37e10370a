"""The metrics of a run: one registry row per metric, and the run summary they are read from.

``METRICS`` is the one list of summary metrics. Each row says where the metric
lives (its run-summary key, its regime-summary column), how it reads (label,
integer or float), and where it is used (compared with the paper, a headline of
sweep tables). The run summary, the CSV/JSON columns, the paper loader, the
comparison, the report and the sweep tables all derive from it, so adding a
metric is one row here plus its computation: a line in ``run_summary`` (a value
folded from the state), or a ``derive`` function of the run summary.

The run summary is a pure function of the projected ``State`` (the study
driver's ``run_summary``, in the seed's schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .state import State

RUN_ID_FIELDS = ("run_id", "seed", "regime")
REGIME_ID_FIELDS = ("regime", "n_runs")


@dataclass(frozen=True)
class Metric:
    """One summary metric."""

    run: str
    """Its key in a run summary (and, unless derived, its run_summaries.csv column)."""
    label: str
    integer: bool
    """Whole numbers in a run row (counts and token totals); else a float."""
    regime: str = ""
    """Its regime_summary column (the mean over the regime's runs); "" when not in the regime summary."""
    paper: bool = False
    """The paper publishes it (Table 4.1 and its per-run rows): compared with the paper, required in its files."""
    table2: bool = False
    """One of the paper's Table 2 deltas from baseline."""
    headline: str = ""
    """Its short title in sweep tables and summaries; "" when not a headline metric."""
    derive: Callable[[dict[str, Any]], float] | None = None
    """Computed from a run summary when read (never stored in it); None: ``run_summary`` stores it."""

    def value(self, run: dict[str, Any]) -> float:
        """Return this metric of one run summary."""
        return self.derive(run) if self.derive is not None else run[self.run]


def settlement_rate(run: dict[str, Any]) -> float:
    """Return settled / proposed contracts (0.0 for a run without contracts)."""
    total = run["contracts_total"]
    return run["contracts_settled_total"] / total if total else 0.0


METRICS: list[Metric] = [
    Metric("contracts_total", "Contracts total", True, "contracts_total_mean", paper=True, table2=True),
    Metric("contracts_settled_total", "Contracts settled", True, "contracts_settled_mean", paper=True, table2=True),
    Metric("contracts_defaulted_total", "Contracts defaulted", True, "contracts_defaulted_mean", paper=True,
           table2=True),
    Metric("inference_fees_total", "Inference fees total", True, "fees_total_mean", paper=True, table2=True,
           headline="fees"),
    Metric("interest_total", "Interest total", True, "interest_total_mean", paper=True, table2=True,
           headline="interest"),
    Metric("dividends_total", "Dividends total", True, "dividends_total_mean", paper=True),
    Metric("token_supply_final", "Final token supply", True, "token_supply_final_mean", paper=True),
    Metric("gini_balance", "Balance Gini", False, "gini_balance_mean", paper=True),
    Metric("gini_wealth", "Wealth Gini", False, "gini_wealth_mean", paper=True, table2=True, headline="gini_wealth"),
    Metric("negative_balance_agents", "Negative-balance agents", True, "neg_balance_agents_mean", paper=True),
    Metric("winner_hhi", "Winner HHI", False, "winner_hhi_mean", paper=True),
    Metric("blocks_produced", "Blocks produced", True, "blocks_produced_mean", paper=True, table2=True),
    Metric("total_errors", "Engine errors", True, "errors_mean", paper=True, table2=True, headline="errors"),
    Metric("settlement_rate", "Settled / contracts", False, headline="settled/contracts", derive=settlement_rate),
]


def stored_metrics() -> list[Metric]:
    """Return the metrics ``run_summary`` stores (the run_summaries.csv metric columns)."""
    return [m for m in METRICS if m.derive is None]


def regime_metrics() -> list[Metric]:
    """Return the metrics with a regime_summary column, in registry order."""
    return [m for m in METRICS if m.regime]


def headline_metrics() -> list[Metric]:
    return [m for m in METRICS if m.headline]


def run_csv_fields() -> list[str]:
    return [*RUN_ID_FIELDS, *(m.run for m in stored_metrics())]


def regime_fields() -> list[str]:
    return [*REGIME_ID_FIELDS, *(m.regime for m in regime_metrics())]


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


