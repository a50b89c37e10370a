"""Per-turn tables of a run, folded from its events in one pass: accounts, turns, contracts.

A row of ``accounts`` or ``turns`` describes the state at the end of a turn (its
seal) plus what that turn's events moved; ``contracts`` has one row per contract
with the turns of its lifecycle. Pure: rows are computed from the projection and
the events, never read from a database. The writer stores the per-turn rows in
each turn's transaction (``ledger.readmodels``), ``verify`` checks them against
this fold, and the notebook API and ``simledger export`` build their frames from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ..events import types as ev
from ..projections.metrics import GINI_SHIFT, gini
from ..projections.reducers import apply_event
from ..projections.state import ContractStatus, State

CONTRACT_STATUSES = tuple(ContractStatus)

ACCOUNT_COLUMNS = ("turn", "agent_id", "balance", "staked", "locked", "wealth", "owns_core",
                   "fees_paid", "dividends", "interest")
TURN_COLUMNS = ("turn", "events", "fees", "dividends", "interest", "block_winner", "settled", "defaulted",
                "errors", "errors_by_reason", "gini_balance", "gini_wealth", "token_supply",
                *(f"contracts_{status}" for status in CONTRACT_STATUSES))
CONTRACT_COLUMNS = ("contract_id", "rank", "contract_type", "proposer", "counterparty", "arbitrator", "price",
                    "delivery_turn", "penalty", "arbitrator_fee", "proposer_collateral", "counterparty_collateral",
                    "arbitrator_collateral", "status", "outcome", "proposed_turn", "countersigned_turn",
                    "activated_turn", "disputed_turn", "closed_turn", "events")

# The lifecycle column each contract event sets to the turn it happened in.
LIFECYCLE_TURN = {
    ev.ContractSigned: "countersigned_turn", ev.ContractActivated: "activated_turn",
    ev.DeliveryDisputed: "disputed_turn",
}


@dataclass
class TurnTally:
    """What one turn's events moved, beside the projection: per-agent flows and rejections."""

    events: int = 0
    flows: dict[str, list[int]] = field(default_factory=dict)  # agent -> [fees paid, dividends, interest]
    errors: dict[str, int] = field(default_factory=dict)  # "action/reason" -> n

    def add(self, event: Any) -> None:
        self.events += 1
        match event:
            case ev.InferenceFeeCharged(agent=agent, fee=amount):
                self._flow(agent, 0, amount)
            case ev.DividendPaid(owner=agent, amount=amount):
                self._flow(agent, 1, amount)
            case ev.InterestCharged(agent=agent, amount=amount):
                self._flow(agent, 2, amount)
            case ev.ActionRejected(action=action, reason=reason):
                key = f"{action}/{reason}"
                self.errors[key] = self.errors.get(key, 0) + 1

    def _flow(self, agent: str, column: int, amount: int) -> None:
        self.flows.setdefault(agent, [0, 0, 0])[column] += amount


def account_rows(state: State, tally: TurnTally) -> list[tuple]:
    """Return one ``ACCOUNT_COLUMNS`` row per agent (genesis order) for the turn just sealed."""
    owners = {owner for owner, _ in state.cores.values()}
    rows = []
    for agent in state.agents:
        account = state.accounts[agent]
        fees, dividends, interest = tally.flows.get(agent, (0, 0, 0))
        rows.append((state.sealed_turn, agent, account.balance, account.staked, account.locked, account.wealth,
                     int(agent in owners), fees, dividends, interest))
    return rows


def turn_row(state: State, tally: TurnTally) -> tuple:
    """Return the ``TURN_COLUMNS`` row of the turn just sealed."""
    metrics = state.turns[-1] if state.turns and state.turns[-1].turn == state.sealed_turn else None
    balances = [state.accounts[a].balance for a in state.agents]
    wealth = [state.accounts[a].wealth for a in state.agents]
    statuses = dict.fromkeys(CONTRACT_STATUSES, 0)
    for contract in state.contracts.values():
        statuses[contract.status] += 1
    fees, dividends, interest = (sum(flow[i] for flow in tally.flows.values()) for i in range(3))
    return (
        state.sealed_turn, tally.events, fees, dividends, interest, metrics.block_winner if metrics else None,
        metrics.settled_count if metrics else 0, metrics.defaulted_count if metrics else 0,
        sum(tally.errors.values()), json.dumps(dict(sorted(tally.errors.items()))),
        gini([max(0, b + GINI_SHIFT) for b in balances]), gini([max(0, w + GINI_SHIFT) for w in wealth]),
        state.token_supply(), *statuses.values(),
    )


def contract_rows(state: State, lifecycle: dict[str, dict[str, int]]) -> list[tuple]:
    """Return one ``CONTRACT_COLUMNS`` row per contract, in creation order (``rank``)."""
    rows = []
    for rank, (cid, c) in enumerate(state.contracts.items()):
        offer, turns = c.offer, lifecycle.get(cid, {})
        rows.append((
            cid, rank, offer.contract_type, c.proposer, offer.counterparty, offer.arbitrator, offer.terms.price,
            offer.terms.delivery_turn, offer.penalty, offer.arbitrator_fee, offer.collateral.proposer_locked,
            offer.collateral.counterparty_locked, offer.collateral.arbitrator_locked, c.status, c.outcome,
            c.created_turn, turns.get("countersigned_turn"), turns.get("activated_turn"),
            turns.get("disputed_turn"), c.closed_turn, len(c.history),
        ))
    return rows


def note_lifecycle(lifecycle: dict[str, dict[str, int]], event: Any, turn: int) -> None:
    """Record the turn a contract was countersigned, activated or disputed (the first time)."""
    column = LIFECYCLE_TURN.get(type(event))
    if column is None or (column == "countersigned_turn" and event.status != ContractStatus.COUNTERSIGNED):
        return
    lifecycle.setdefault(event.contract_id, {}).setdefault(column, turn)


@dataclass
class RunTables:
    """The three tables of one run and the final projection they were folded with."""

    state: State
    accounts: list[tuple]
    turns: list[tuple]
    contracts: list[tuple]


class TableFold:
    """Folds a log's events into the projection and hands back each sealed turn's rows."""

    def __init__(self) -> None:
        self.state, self.tally, self.lifecycle = State(), TurnTally(), {}

    def add(self, seq: int, turn: int, event: Any) -> tuple[list[tuple], tuple] | None:
        """Fold one event; return (account rows, turn row) when it seals a turn, else None."""
        apply_event(self.state, event, seq, turn)
        self.tally.add(event)
        note_lifecycle(self.lifecycle, event, turn)
        if not isinstance(event, ev.TurnSealed):
            return None
        rows = account_rows(self.state, self.tally), turn_row(self.state, self.tally)
        self.tally = TurnTally()
        return rows


def per_turn_rows(positioned: Iterable[tuple[int, int, Any]],
                  fold: TableFold | None = None) -> Iterator[tuple[list[tuple], tuple]]:
    """Yield (account rows, turn row) for each sealed turn, holding one turn's rows at a time."""
    fold = fold or TableFold()
    for seq, turn, event in positioned:
        if rows := fold.add(seq, turn, event):
            yield rows


def fold_tables(positioned: Iterable[tuple[int, int, Any]]) -> RunTables:
    """Return the run's tables from ``(seq, turn, event)`` triples in one fold of the log."""
    fold = TableFold()
    accounts: list[tuple] = []
    turns: list[tuple] = []
    for turn_accounts, turn in per_turn_rows(positioned, fold):
        accounts.extend(turn_accounts)
        turns.append(turn)
    return RunTables(state=fold.state, accounts=accounts, turns=turns,
                     contracts=contract_rows(fold.state, fold.lifecycle))


def tally_turn(events: Iterable[Any]) -> TurnTally:
    """Return the tally of one turn's events (what the writer has in hand when it commits)."""
    tally = TurnTally()
    for event in events:
        tally.add(event)
    return tally
