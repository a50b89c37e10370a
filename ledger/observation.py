"""What every agent can see at the start of a turn, as plain JSON (a view of the projected state).

``observe`` reads only the projected state, so a run driven in-process, a run
driven over HTTP (the server answers ``GET /observation`` with the same
function) and a re-execution all build the same prompts from the same state.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .readmodels import contract_data
from ..projections.state import OPEN_STATUSES, State


def observe(state: State, turn: int, max_turns: int) -> dict[str, Any]:
    """Return the start-of-turn observation of every agent (JSON-ready, deterministic order)."""
    last = state.turns[-1] if state.turns and state.turns[-1].turn == turn - 1 else None
    return {
        "turn": turn,
        "max_turns": max_turns,
        "economy": {"config": msgspec.to_builtins(state.config), "rules": msgspec.to_builtins(state.rules)},
        "agents": [observed_account(state, agent) for agent in state.agents],
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


def observed_account(state: State, agent: str) -> dict[str, Any]:
    account = state.accounts[agent]
    return {"agent_id": agent, "balance": account.balance, "staked": account.staked, "locked": account.locked,
            "pending_unstake": account.pending, "study_until_turn": account.study_until,
            "last_job_turn": max(account.last_job_turn, -1)}


__all__ = ["observe", "observed_account"]
