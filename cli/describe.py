"""One line of plain English per event, for the "what" column of ``log`` and ``audit``.

Every event kind has its own wording; a kind this module does not know (a later
format version) falls back to its payload as compact JSON, so nothing is hidden.
"""

from __future__ import annotations

import json
from typing import Any


def describe_action(action: Any) -> str:
    """Return an agent's submitted action as ``name key=value ...`` (the raw value when it is not an object)."""
    if not isinstance(action, dict):
        return json.dumps(action)
    name = action.get("action", "?")
    fields = " ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}"
                      for k, v in sorted(action.items()) if k != "action")
    return f"{name} {fields}".strip()


def describe_contract_event(kind: str, p: dict[str, Any]) -> str | None:
    """Return a contract event's reading, or None when ``kind`` is not a contract event."""
    match kind:
        case "contract_proposed":
            o = p["offer"]
            t, c = o["terms"], o["collateral"]
            return (f"{p['proposer']} proposes {o['contract_type']} to {o['counterparty']}, arbitrator "
                    f"{o['arbitrator']}: price {t['price']}, delivery turn {t['delivery_turn']}, "
                    f"penalty {o['penalty']}, arbitrator fee {o['arbitrator_fee']}, collateral "
                    f"{c['proposer_locked']}/{c['counterparty_locked']}/{c['arbitrator_locked']}")
        case "contract_signed":
            return f"{p['signer']} signs as {p['role']} -> {p['status']}"
        case "collateral_locked" | "collateral_released" | "collateral_slashed":
            return f"{p['agent']} collateral {kind.split('_')[1]}: {p['amount']}"
        case "contract_activated":
            return "active"
        case "delivery_confirmed":
            return f"{p['agent']} confirms delivery"
        case "delivery_disputed":
            return f"{p['agent']} disputes delivery"
        case "arbitrator_ruled":
            return f"{p['arbitrator']} rules for {p['ruling_for']}"
        case "contract_payment":
            return f"{p['purpose']}: {p['payer']} pays {p['payee']} {p['amount']}"
        case "contract_settled":
            return f"settled ({p['outcome']})"
        case "contract_defaulted":
            return f"defaulted ({p['reason']})"
        case "contract_expired":
            return "expired: never fully signed"
    return None


def describe_event(kind: str, p: dict[str, Any]) -> str:
    """Return a one-line reading of any event's payload."""
    contract = describe_contract_event(kind, p)
    if contract is not None:
        return contract
    match kind:
        case "run_genesis":
            return (f"run {p['run_id']}: {len(p['agents'])} agents, seed {p['seed']}, keys from {p['key_source']}, "
                    f"simledger {p['library_version']}")
        case "turn_sealed":
            return (f"turn {p['turn']} sealed: {p['event_count']} events, merkle root {p['merkle_root'][:12]}…, "
                    f"state {p['state_digest'][:12]}…")
        case "action_submitted":
            return f"{p['agent']} submits {describe_action(p['action'])}"
        case "action_rejected":
            return f"{p['agent']}'s {p['action']} rejected ({p['reason']}): {p['detail']}"
        case "mining_entered":
            return f"{p['agent']} enters the block lottery"
        case "stake_locked":
            warm = f", pending until turn {p['activates_turn']}" if "activates_turn" in p else ""
            return f"{p['agent']} stakes {p['amount']}{warm}"
        case "stake_activated":
            return f"{p['agent']}'s pending stake of {p['amount']} is staked: it weighs in the lottery"
        case "stake_rewarmed":
            return f"{p['agent']}'s stake of {p['amount']} won a block: pending again until turn {p['activates_turn']}"
        case "burns_spent":
            return f"{p['agent']}'s burns of {p['amount']} matured by turn {p['matured_by']} won a block: spent"
        case "unstake_requested":
            return f"{p['agent']} unstakes {p['amount']}, released in turn {p['release_turn']}"
        case "unstake_released":
            return f"{p['agent']} gets {p['amount']} of unstaked tokens back"
        case "tokens_burned":
            return f"{p['agent']} burns {p['amount']} (matures in turn {p['matures_turn']})"
        case "tokens_transferred":
            return f"{p['sender']} sends {p['recipient']} {p['amount']} (fee {p['fee']})"
        case "job_paid":
            return f"{p['agent']} is paid {p['amount']} for a job"
        case "study_completed":
            return f"{p['agent']} studies for {p['cost']}: cheaper inference until turn {p['discount_until_turn']}"
        case "core_bid_placed":
            return f"{p['agent']} bids {p['amount']} for {p['core_id']}"
        case "core_auction_resolved":
            return "cores: " + ", ".join(f"{a['core_id']} to {a['owner']} for {a['price']}" for a in p["awards"])
        case "inference_fee_charged":
            return (f"{p['agent']} pays {p['fee']} for {p['thinking_units']} thinking + "
                    f"{p['output_units']} output units" + (" (discounted)" if p["discounted"] else ""))
        case "dividend_paid":
            return f"{p['owner']} earns {p['amount']} from {p['core_id']}"
        case "fees_retained":
            return f"{p['amount']} of this turn's fees paid to no core: they leave the supply"
        case "interest_charged":
            return f"{p['agent']} is charged {p['amount']} interest on a negative balance"
        case "interest_paid":
            return f"{p['owner']} earns {p['amount']} interest via {p['core_id']}"
        case "block_produced":
            return (f"block {p['height']}: {p['winner']} wins among {len(p['entrants'])} entrants, "
                    f"reward {p['reward']}")
        case "block_not_produced":
            return f"no block: {len(p['entrants'])} entrants below the threshold"
    return json.dumps({k: v for k, v in p.items() if k != "type"}, sort_keys=True)


__all__ = ["describe_event", "describe_action"]
