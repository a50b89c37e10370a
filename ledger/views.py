"""The views of a run: one plain-data shape per thing, with one name per field.

Accounts, contracts, cores, blocks, seals, turns and events are turned into
JSON-ready dicts here and nowhere else: the CLI renders these views (tables, or
``--json`` as they are) and the HTTP API returns them, so a field is called the
same everywhere (a contract's events are ``event_seqs`` in both).
"""

from __future__ import annotations

import json
from typing import Any

from ..projections.state import OPEN_STATUSES, Contract, State, TurnMetrics
from .authenticity import input_signed_by
from .readmodels import contract_data

PPM = 1_000_000


def account_view(state: State, agent: str) -> dict[str, Any]:
    """Return one agent's account (the original engine's ``/state`` fields first)."""
    account = state.accounts[agent]
    return {
        "agent_id": agent, "balance": account.balance, "staked": account.staked, "locked": account.locked,
        "pending_unstake": account.pending, "pending_stake": account.pending_stake, "burned": sum(amount for _, amount in account.burns),
        "wealth": account.wealth, "study_until": account.study_until,
    }


def core_views(state: State) -> list[dict[str, Any]]:
    """Return the core shares by core id: the original's float ``proportion`` and the exact ``proportion_ppm``."""
    return [{"core_id": core, "owner": owner, "proportion": ppm / PPM, "proportion_ppm": ppm}
            for core, (owner, ppm) in sorted(state.cores.items())]


def contract_view(contract: Contract) -> dict[str, Any]:
    """Return a contract as proposed (the original's ``data`` shape) plus where it stands now."""
    return {
        **contract_data(contract), "status": contract.status, "created_turn": contract.created_turn,
        "signed_by": dict(contract.signed_by), "confirmed_by": list(contract.confirmed_by),
        "disputed_by": contract.disputed_by, "ruling_for": contract.ruling_for, "locked": dict(contract.locked),
        "outcome": contract.outcome, "closed_turn": contract.closed_turn, "event_seqs": list(contract.history),
    }


def block_view(state: State) -> dict[str, Any] | None:
    """Return the last block produced (height, turn, seq, winner, reward, entrants), or None."""
    return dict(state.last_block) if state.last_block else None


def seal_view(state: State) -> dict[str, Any] | None:
    """Return the last turn seal (turn, seq, event count, Merkle root, state digest), or None."""
    return dict(state.last_seal) if state.last_seal else None


def turn_view(metrics: TurnMetrics) -> dict[str, Any]:
    """Return the original engine's ``/turn`` data from a turn's metrics."""
    return {
        "turn": metrics.turn,
        "block_winner": metrics.block_winner,
        "inference_fees_collected": metrics.fees,
        "contracts_settled": list(metrics.settled),
        "contracts_defaulted": list(metrics.defaulted),
        "errors": [dict(error) for error in metrics.errors],
        "dividends_paid": dict(metrics.dividends),
        "interest_charged": dict(metrics.interest),
    }


def event_view(row, *, key_source: str | None = None) -> dict[str, Any]:
    """Return a stored event (an ``EventRow``): position, readable payload, chain link and signature.

    A payload copy that is not JSON (a damaged file) is shown as the text it holds.
    Given the genesis' ``key_source``, the view also says who signed the event
    (``signed_by``: the engine, the agent, the server for the agent, or a seed key).
    """
    try:
        payload = json.loads(row.payload_json) if row.payload_json else None
    except (TypeError, ValueError):
        payload = row.payload_json
    view = {
        "seq": row.seq, "turn": row.turn, "kind": row.kind, "actor": row.actor, "contract_id": row.contract_id,
        "payload_version": row.payload_version, "payload": payload, "prev_hash": row.prev_hash, "hash": row.hash,
        "signer": row.signer, "signature": row.signature, "format_version": row.format_version,
    }
    if key_source is not None:
        view["signed_by"] = "engine"
        if row.kind == "action_submitted":
            view["signed_by"] = input_signed_by(key_source, isinstance(payload, dict) and payload.get("custodial") is True)
    return view


def state_view(state: State) -> dict[str, Any]:
    """Return the run's state at its last sealed turn (the ``GET /state`` document)."""
    return {
        "run_id": state.run_id,
        "turn": state.sealed_turn,
        "next_turn": state.sealed_turn + 1,
        "agents": [account_view(state, agent) for agent in state.agents],
        "token_supply": state.token_supply(),
        "block_height": state.block_height,
        "cores": core_views(state),
        "contracts_total": len(state.contracts),
        "contracts_open": sum(1 for c in state.contracts.values() if c.status in OPEN_STATUSES),
        "events": state.events,
        "last_block": block_view(state),
        "last_seal": seal_view(state),
    }
