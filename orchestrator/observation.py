"""The part of a turn's observation (``ledger.observation.observe``) one agent's prompt shows."""

from __future__ import annotations

from typing import Any


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
