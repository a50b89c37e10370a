"""Pure reducers: ``apply_event(state, event, seq, turn) -> state``.

No I/O, no clock, no randomness: the state after an event depends only on the
state before it and the event. The engine folds the events it emits through
these same functions, so the live state and a replay of the log cannot drift.
For speed the reducers update the state they are given and return it; use
``State.copy()`` first when the previous state must survive.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import msgspec

from ..events import types as ev
from ..events.envelope import ENCODER
from ..events.actions import action_name
from .state import SETTLED_ON_CONFIRMATION, Account, Contract, ContractStatus, State, TurnMetrics


def _bump(counter: dict[str, int], key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


def _metrics(state: State, turn: int) -> TurnMetrics:
    if not state.turns or state.turns[-1].turn != turn:
        if state.turns:
            state.turns[-1].compact()
        state.turns.append(TurnMetrics(turn=turn))
    return state.turns[-1]


def _contract_event(state: State, contract_id: str, seq: int) -> Contract:
    contract = state.contracts[contract_id]
    contract.history.append(seq)
    return contract


# --- run ---------------------------------------------------------------------


def apply_run_genesis(state: State, e: ev.RunGenesis, seq: int, turn: int) -> None:
    state.run_id, state.seed, state.config, state.rules = e.run_id, e.seed, e.config, e.rules
    state.agents = list(e.agents)
    # Maps in the order a stored payload decodes to (sorted keys), so the live state equals the fold of the log.
    state.agent_keys, state.engine_key = dict(sorted(e.agent_keys.items())), e.engine_key
    state.identity = msgspec.msgpack.decode(ENCODER.encode(e.identity))
    for agent in e.agents:
        state.accounts[agent] = Account(balance=e.config.genesis_tokens_per_agent)
    state.genesis_supply = e.config.genesis_tokens_per_agent * len(e.agents)


def apply_turn_sealed(state: State, e: ev.TurnSealed, seq: int, turn: int) -> None:
    state.sealed_turn = e.turn
    state.last_seal = {"turn": e.turn, "seq": seq, "merkle_root": e.merkle_root, "state_digest": e.state_digest,
                       "event_count": e.event_count}
    state.miners = []


# --- actions -----------------------------------------------------------------


def apply_action_submitted(state: State, e: ev.ActionSubmitted, seq: int, turn: int) -> None:
    _metrics(state, turn)
    _bump(state.action_counts, action_name(e.action))


def apply_action_rejected(state: State, e: ev.ActionRejected, seq: int, turn: int) -> None:
    metrics = _metrics(state, turn)
    metrics.errors.append({"agent": e.agent, "action": e.action, "reason": e.reason, "detail": e.detail})
    metrics.error_count += 1
    _bump(state.rejection_counts, f"{e.action}/{e.reason}")


def apply_mining_entered(state: State, e: ev.MiningEntered, seq: int, turn: int) -> None:
    state.miners.append(e.agent)


def remove_due_entry(entries: list[tuple[int, int]], turn: int, amount: int) -> None:
    """Remove the first (due turn, amount) entry due by ``turn`` with this amount.

    The engine moves each due entry of a pending list with its own event, oldest first.
    """
    due = next((i for i, (due_turn, entry_amount) in enumerate(entries)
                if due_turn <= turn and entry_amount == amount), None)
    if due is not None:
        del entries[due]


def apply_stake_locked(state: State, e: ev.StakeLocked, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.balance -= e.amount
    if e.activates_turn is msgspec.UNSET:
        account.staked += e.amount
    else:
        account.pending_stakes.append((e.activates_turn, e.amount))


def apply_stake_activated(state: State, e: ev.StakeActivated, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    remove_due_entry(account.pending_stakes, turn, e.amount)
    account.staked += e.amount


def apply_stake_rewarmed(state: State, e: ev.StakeRewarmed, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.staked -= e.amount
    account.pending_stakes.append((e.activates_turn, e.amount))


def apply_burns_spent(state: State, e: ev.BurnsSpent, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.burns = [(matures, amount) for matures, amount in account.burns if matures > e.matured_by]


def apply_unstake_requested(state: State, e: ev.UnstakeRequested, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.staked -= e.amount
    account.pending_unstakes.append((e.release_turn, e.amount))


def apply_unstake_released(state: State, e: ev.UnstakeReleased, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    remove_due_entry(account.pending_unstakes, turn, e.amount)
    account.balance += e.amount


def apply_tokens_burned(state: State, e: ev.TokensBurned, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.balance -= e.amount
    account.burns.append((e.matures_turn, e.amount))
    state.sunk += e.amount


def apply_tokens_transferred(state: State, e: ev.TokensTransferred, seq: int, turn: int) -> None:
    state.accounts[e.sender].balance -= e.amount + e.fee
    state.accounts[e.recipient].balance += e.amount
    state.sunk += e.fee


def apply_job_paid(state: State, e: ev.JobPaid, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.balance += e.amount
    account.last_job_turn = turn
    state.minted += e.amount


def apply_study_completed(state: State, e: ev.StudyCompleted, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.balance -= e.cost
    account.study_until = max(account.study_until, e.discount_until_turn)
    state.sunk += e.cost


def apply_core_bid_placed(state: State, e: ev.CoreBidPlaced, seq: int, turn: int) -> None:
    state.core_bids.append((e.core_id, e.agent, e.amount, seq))
    state.accounts[e.agent].balance -= e.amount  # all-pay: every bid is spent when placed
    state.sunk += e.amount


def apply_core_auction_resolved(state: State, e: ev.CoreAuctionResolved, seq: int, turn: int) -> None:
    for award in e.awards:
        state.cores[award.core_id] = (award.owner, award.proportion_ppm)
    state.core_bids = []


# --- billing -----------------------------------------------------------------


def apply_inference_fee_charged(state: State, e: ev.InferenceFeeCharged, seq: int, turn: int) -> None:
    state.accounts[e.agent].balance -= e.fee
    state.fee_pool += e.fee
    _metrics(state, turn).fees += e.fee


def apply_dividend_paid(state: State, e: ev.DividendPaid, seq: int, turn: int) -> None:
    state.accounts[e.owner].balance += e.amount
    state.fee_pool -= e.amount
    metrics = _metrics(state, turn)
    _bump(metrics.dividends, e.owner, e.amount)
    metrics.dividends_total += e.amount


def apply_fees_retained(state: State, e: ev.FeesRetained, seq: int, turn: int) -> None:
    state.fee_pool -= e.amount
    state.sunk += e.amount


def apply_interest_charged(state: State, e: ev.InterestCharged, seq: int, turn: int) -> None:
    account = state.accounts[e.agent]
    account.balance -= e.amount
    account.interest_paid += e.amount
    state.sunk += e.amount
    metrics = _metrics(state, turn)
    _bump(metrics.interest, e.agent, e.amount)
    metrics.interest_total += e.amount


def apply_interest_paid(state: State, e: ev.InterestPaid, seq: int, turn: int) -> None:
    state.accounts[e.owner].balance += e.amount
    state.minted += e.amount


# --- contracts ---------------------------------------------------------------


def apply_contract_proposed(state: State, e: ev.ContractProposed, seq: int, turn: int) -> None:
    state.contracts[e.contract_id] = Contract(
        contract_id=e.contract_id, proposer=e.proposer, offer=e.offer, created_turn=turn, history=[seq]
    )


def apply_contract_signed(state: State, e: ev.ContractSigned, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.signed_by[e.role] = e.signer
    contract.status = e.status


def apply_collateral_locked(state: State, e: ev.CollateralLocked, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.locked[e.agent] = contract.locked.get(e.agent, 0) + e.amount
    account = state.accounts[e.agent]
    account.balance -= e.amount
    account.locked += e.amount


def apply_contract_activated(state: State, e: ev.ContractActivated, seq: int, turn: int) -> None:
    _contract_event(state, e.contract_id, seq).status = ContractStatus.ACTIVE


def apply_delivery_confirmed(state: State, e: ev.DeliveryConfirmed, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    if e.agent not in contract.confirmed_by:
        contract.confirmed_by.append(e.agent)


def apply_delivery_disputed(state: State, e: ev.DeliveryDisputed, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.disputed_by = e.agent
    contract.status = ContractStatus.DISPUTED


def apply_arbitrator_ruled(state: State, e: ev.ArbitratorRuled, seq: int, turn: int) -> None:
    _contract_event(state, e.contract_id, seq).ruling_for = e.ruling_for


def apply_contract_payment(state: State, e: ev.ContractPayment, seq: int, turn: int) -> None:
    _contract_event(state, e.contract_id, seq)
    state.accounts[e.payer].balance -= e.amount
    state.accounts[e.payee].balance += e.amount


def _unlock(state: State, contract: Contract, agent: str, amount: int) -> None:
    contract.locked[agent] -= amount
    if not contract.locked[agent]:
        del contract.locked[agent]
    state.accounts[agent].locked -= amount


def apply_collateral_released(state: State, e: ev.CollateralReleased, seq: int, turn: int) -> None:
    _unlock(state, _contract_event(state, e.contract_id, seq), e.agent, e.amount)
    state.accounts[e.agent].balance += e.amount


def apply_collateral_slashed(state: State, e: ev.CollateralSlashed, seq: int, turn: int) -> None:
    _unlock(state, _contract_event(state, e.contract_id, seq), e.agent, e.amount)
    state.sunk += e.amount


def apply_contract_settled(state: State, e: ev.ContractSettled, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.status, contract.outcome, contract.closed_turn = ContractStatus.SETTLED, e.outcome, turn
    if e.outcome == SETTLED_ON_CONFIRMATION:
        return  # settled by an action, not by the settlement step: not in the turn's contracts_settled
    metrics = _metrics(state, turn)
    metrics.settled.append(e.contract_id)
    metrics.settled_count += 1


def apply_contract_defaulted(state: State, e: ev.ContractDefaulted, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.status, contract.outcome, contract.closed_turn = ContractStatus.DEFAULTED, e.reason, turn
    metrics = _metrics(state, turn)
    metrics.defaulted.append(e.contract_id)
    metrics.defaulted_count += 1


def apply_contract_expired(state: State, e: ev.ContractExpired, seq: int, turn: int) -> None:
    contract = _contract_event(state, e.contract_id, seq)
    contract.status, contract.outcome, contract.closed_turn = ContractStatus.EXPIRED, "expired", turn


# --- blocks ------------------------------------------------------------------


def apply_block_produced(state: State, e: ev.BlockProduced, seq: int, turn: int) -> None:
    state.block_height = e.height
    state.accounts[e.winner].balance += e.reward
    state.minted += e.reward
    _bump(state.winner_counts, e.winner)
    state.last_block = {"height": e.height, "turn": turn, "seq": seq, "winner": e.winner, "reward": e.reward,
                        "entrants": len(e.entrants), "randomness": e.randomness}
    _metrics(state, turn).block_winner = e.winner


def apply_block_not_produced(state: State, e: ev.BlockNotProduced, seq: int, turn: int) -> None:
    _metrics(state, turn)


def apply_model_called(state: State, e: ev.ModelCalled, seq: int, turn: int) -> None:
    """A model call changes no balance: the engine bills the tokens from the agent's input (R3)."""


REDUCERS: dict[type, Callable[[State, Any, int, int], None]] = {
    ev.RunGenesis: apply_run_genesis, ev.TurnSealed: apply_turn_sealed,
    ev.ActionSubmitted: apply_action_submitted, ev.ActionRejected: apply_action_rejected,
    ev.MiningEntered: apply_mining_entered, ev.StakeLocked: apply_stake_locked,
    ev.StakeActivated: apply_stake_activated, ev.StakeRewarmed: apply_stake_rewarmed, ev.BurnsSpent: apply_burns_spent,
    ev.UnstakeRequested: apply_unstake_requested, ev.UnstakeReleased: apply_unstake_released,
    ev.TokensBurned: apply_tokens_burned, ev.TokensTransferred: apply_tokens_transferred,
    ev.JobPaid: apply_job_paid, ev.StudyCompleted: apply_study_completed,
    ev.CoreBidPlaced: apply_core_bid_placed, ev.CoreAuctionResolved: apply_core_auction_resolved,
    ev.InferenceFeeCharged: apply_inference_fee_charged, ev.DividendPaid: apply_dividend_paid,
    ev.FeesRetained: apply_fees_retained, ev.InterestCharged: apply_interest_charged,
    ev.InterestPaid: apply_interest_paid,
    ev.ContractProposed: apply_contract_proposed, ev.ContractSigned: apply_contract_signed,
    ev.CollateralLocked: apply_collateral_locked, ev.ContractActivated: apply_contract_activated,
    ev.DeliveryConfirmed: apply_delivery_confirmed,
    ev.DeliveryDisputed: apply_delivery_disputed, ev.ArbitratorRuled: apply_arbitrator_ruled,
    ev.ContractPayment: apply_contract_payment, ev.CollateralReleased: apply_collateral_released,
    ev.CollateralSlashed: apply_collateral_slashed, ev.ContractSettled: apply_contract_settled,
    ev.ContractDefaulted: apply_contract_defaulted, ev.ContractExpired: apply_contract_expired, ev.BlockProduced: apply_block_produced,
    ev.BlockNotProduced: apply_block_not_produced, ev.ModelCalled: apply_model_called,
}


def apply_event(state: State, event: Any, seq: int, turn: int) -> State:
    """Return the state after ``event`` (at position ``seq`` in turn ``turn``)."""
    REDUCERS[type(event)](state, event, seq, turn)
    state.events = seq + 1
    if turn > state.turn:
        state.turn = turn
    return state


def fold(positioned: Iterable[tuple[int, int, Any]], state: State | None = None) -> State:
    """Return the state folded from ``(seq, turn, event)`` triples, starting from ``state``."""
    state = state if state is not None else State()
    for seq, turn, event in positioned:
        apply_event(state, event, seq, turn)
    return state
