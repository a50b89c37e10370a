"""What an agent can see at the start of a turn, as plain JSON.

``observe`` reads only the projected state, so a run driven in-process, a run
driven over HTTP (the server answers ``GET /observation`` with the same
function) and a re-execution all build the same prompts from the same state.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..ledger.readmodels import contract_data
from ..projections.state import OPEN_STATUSES, State


def observe(state: State, turn: int, max_turns: int) -> dict[str, Any]:
    """Return the start-of-turn observation of every agent (JSON-ready, deterministic order)."""
    last = state.turns[-1] if state.turns and state.turns[-1].turn == turn - 1 else None
    return {
        "turn": turn,
        "max_turns": max_turns,
        "economy": {"config": msgspec.to_builtins(state.config), "rules": msgspec.to_builtins(state.rules)},
        "agents": [account_view(state, agent) for agent in state.agents],
        "cores": [{"core_id": core, "owner": owner, "proportion_ppm": ppm} for core, (owner, ppm) in sorted(state.cores.items())],
        "contracts": [{**contract_data(c), "status": c.status, "signed_by": dict(sorted(c.signed_by.items())),
                       "confirmed_by": list(c.confirmed_by), "deadline_turn": c.offer.terms.delivery_turn
                       + state.config.attested_confirmation_window}
                      for c in state.contracts.values() if c.status in OPEN_STATUSES],
        "last_turn": None if last is None else {
            "turn": last.turn, "block_winner": last.block_winner, "inference_fees_collected": last.fees,
            "dividends_paid": dict(sorted(last.dividends.items())), "interest_charged": dict(sorted(last.interest.items())),
            "contracts_settled": list(last.settled), "contracts_defaulted": list(last.defaulted),
            "errors": [dict(e) for e in last.errors],
        },
    }


def account_view(state: State, agent: str) -> dict[str, Any]:
    account = state.accounts[agent]
    return {"agent_id": agent, "balance": account.balance, "staked": account.staked, "locked": account.locked,
            "pending_unstake": account.pending, "study_until_turn": account.study_until,
            "last_job_turn": max(account.last_job_turn, -1)}


def agent_observation(observation: dict[str, Any], agent: str) -> dict[str, Any]:
    """Return the part of an observation one agent's prompt shows: itself, its contracts, the others."""
    me = next(a for a in observation["agents"] if a["agent_id"] == agent)
    last = observation["last_turn"]
    mine = [c for c in observation["contracts"] if agent in (c["proposer"], c["counterparty"], c["arbitrator"])]
    return {
        "agent_id": agent,
        "turn": observation["turn"],
        "max_turns": observation["max_turns"],
        "you": me,
        "cores_owned": [c["core_id"] for c in observation["cores"] if c["owner"] == agent],
        "contracts": mine,
        "others": [{"agent_id": a["agent_id"], "balance": a["balance"], "staked": a["staked"]}
                   for a in observation["agents"] if a["agent_id"] != agent],
        "economy": observation["economy"],
        "last_turn": None if last is None else {
            "turn": last["turn"], "block_winner": last["block_winner"],
            "your_errors": [e for e in last["errors"] if e.get("agent") == agent],
            "your_dividends": last["dividends_paid"].get(agent, 0),
            "your_interest": last["interest_charged"].get(agent, 0),
            "contracts_settled": last["contracts_settled"], "contracts_defaulted": last["contracts_defaulted"],
        },
    }
