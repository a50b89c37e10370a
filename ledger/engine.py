"""The economy's turn transition, written as an executable spec.

``process_turn`` is the paper's turn order (section 2.1), one step per line.
Each step reads only the projected state and emits events through a
``Recorder``, which folds every event into that state at once, so later steps
see earlier ones. Guards come before effects; a failed guard is an
``ActionRejected`` event with a reason code, never an exception.

Naming: ``is_*`` predicates, ``compute_*`` pure arithmetic, ``get_*`` read-only
accessors, ``process_*`` steps that emit events. Rule numbers (R1, R2, ...) refer
to docs/mechanics.md.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Any, Protocol

from ..events import actions as act
from ..events import types as ev
from ..events.actions import AgentInput, action_name, parse_action, to_plain_json
from ..events.config import Config, Rules, exact
from ..events.envelope import ENCODER
from ..events.merkle import merkle_root
from ..projections.state import (FINAL_STATUSES, SETTLED_ON_CONFIRMATION, Account, Contract, ContractStatus, State,
                                 state_digest)

PPM = 1_000_000
MAX_UNITS = 10**9


class Recorder(Protocol):
    """Where the engine's events go: folded into ``state`` and appended to the log."""

    state: State

    def emit(self, event: Any, *, signature: bytes | None = None) -> int:
        """Record ``event`` (an agent's input may carry its own signature); return its seq."""

    def turn_hashes(self) -> list[bytes]:
        """Return the hashes of the events recorded so far in the current turn."""


class Rejection(Exception):
    """A failed guard: the action is refused with ``reason`` (a code) and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def require(condition: bool, reason: str, detail: str) -> None:
    """Raise a Rejection unless ``condition`` holds."""
    if not condition:
        raise Rejection(reason, detail)


# --- the turn ----------------------------------------------------------------


def process_turn(rec: Recorder, turn: int, inputs: list[AgentInput]) -> None:
    """Run one turn (R1): actions, billing, dividends, block, settlement, auction, seal."""
    opening = get_opening_debts(rec.state)
    process_stake_activations(rec, turn)
    process_unstake_releases(rec, turn)
    charges = process_actions(rec, turn, inputs)
    process_inference_billing(rec, turn, charges)
    process_interest(rec, turn, get_interest_debts(rec.state, opening, charges))
    process_dividends(rec, turn)
    process_block_attempt(rec, turn)
    process_contract_settlement(rec, turn)
    process_core_auction(rec, turn)
    process_seal(rec, turn)


# --- R2: actions ---------------------------------------------------------------


Charge = tuple[str, int, int, bool, int]
"""One input's billing line: (agent, thinking units, output units, billed, input seq)."""


def process_actions(rec: Recorder, turn: int, inputs: list[AgentInput]) -> list[Charge]:
    """Record and apply each input in order; return each input's billing line."""
    charges, seen = [], set()
    for agent_input in inputs:
        submitted = submitted_event(agent_input)
        signature = bytes.fromhex(agent_input.signature) if agent_input.signature else None
        seq = rec.emit(submitted, signature=signature)
        accepted = process_action(rec, turn, seq, submitted, duplicate=submitted.agent in seen)
        seen.add(submitted.agent)
        billed = not (accepted and action_name(submitted.action) == "job")
        charges.append((submitted.agent, *get_units(submitted), billed, seq))
    return charges


def submitted_event(agent_input: AgentInput) -> ev.ActionSubmitted:
    """Return the event recording an input exactly as received (reduced to encodable JSON).

    The engine then works from this recorded form only, so re-executing a log's
    inputs reproduces every decision, down to the text of rejection details.
    """
    return ev.ActionSubmitted(
        agent=agent_input.agent_id, action=to_plain_json(agent_input.action),
        thinking_units=to_plain_json(agent_input.thinking_units), output_units=to_plain_json(agent_input.output_units),
        thinking=to_plain_json(agent_input.thinking), speech=to_plain_json(agent_input.speech),
    )


def is_valid_units(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UNITS


def get_units(submitted: ev.ActionSubmitted) -> tuple[int, int]:
    """Return the billable (thinking, output) units of an input; malformed counts bill as 0 (R3)."""
    return compute_billable_units(submitted.thinking_units), compute_billable_units(submitted.output_units)


def compute_billable_units(value: Any) -> int:
    return value if is_valid_units(value) else 0


def process_action(rec: Recorder, turn: int, seq: int, submitted: ev.ActionSubmitted, *, duplicate: bool) -> bool:
    """Apply one submitted action; on a failed guard record a rejection. Return whether accepted."""
    state, agent = rec.state, submitted.agent
    try:
        # Verify the input as a whole before the action
        require(agent in state.accounts, "unknown_agent", f"{agent!r} is not in this run")
        require(not duplicate, "duplicate", f"{agent} already submitted an input this turn")
        require(is_valid_units(submitted.thinking_units) and is_valid_units(submitted.output_units), "malformed",
                f"thinking_units and output_units must be integers in 0..{MAX_UNITS}")
        action = parse_action(submitted.action)
        require(not isinstance(action, str), "malformed", str(action))
        ACTION_STEPS[type(action)](rec, turn, seq, agent, action)
        return True
    except Rejection as rejection:
        rec.emit(ev.ActionRejected(agent=agent, action=action_name(submitted.action), reason=rejection.reason,
                                   detail=rejection.detail, input_seq=seq))
        return False


def get_account(state: State, agent: str) -> Account:
    return state.accounts[agent]


def require_amount(amount: int, what: str = "amount") -> None:
    require(amount >= 1, "invalid_amount", f"{what} must be a positive integer, got {amount}")


def require_funds(state: State, agent: str, amount: int, what: str) -> None:
    balance = get_account(state, agent).balance
    require(balance >= amount, "insufficient_funds", f"{agent} has {balance}, {what} needs {amount}")


def require_known_agent(state: State, agent: str, role: str) -> None:
    require(agent in state.accounts, "unknown_agent", f"{role} {agent!r} is not in this run")


def process_mine(rec: Recorder, turn: int, seq: int, agent: str, action: act.Mine) -> None:
    """Enter this turn's block lottery (R9)."""
    rec.emit(ev.MiningEntered(agent=agent, input_seq=seq))


def process_stake(rec: Recorder, turn: int, seq: int, agent: str, action: act.Stake) -> None:
    """Lock tokens as stake (R7): with ``stake_warmup`` it is pending until the start of turn + unstake_delay_turns."""
    # Verify a positive amount the agent holds
    require_amount(action.amount)
    require_funds(rec.state, agent, action.amount, "stake")
    activates = get_warm_turn(rec.state, turn) if rec.state.rules.stake_warmup else None
    rec.emit(ev.StakeLocked(agent=agent, amount=action.amount, input_seq=seq,
                            **({} if activates is None else {"activates_turn": activates})))


def get_warm_turn(state: State, turn: int) -> int | None:
    """Return the turn a stake warming from ``turn`` activates, or None when there is no delay (staked at once)."""
    delay = state.config.unstake_delay_turns
    return turn + delay if delay else None


def process_unstake(rec: Recorder, turn: int, seq: int, agent: str, action: act.Unstake) -> None:
    """Start unlocking stake; it returns to the balance after unstake_delay_turns (R7)."""
    # Verify a positive amount no larger than the stake
    require_amount(action.amount)
    staked = get_account(rec.state, agent).staked
    require(action.amount <= staked, "insufficient_funds", f"{agent} has {staked} staked, unstake needs {action.amount}")
    release = turn + rec.state.config.unstake_delay_turns
    rec.emit(ev.UnstakeRequested(agent=agent, amount=action.amount, release_turn=release, input_seq=seq))


def process_burn(rec: Recorder, turn: int, seq: int, agent: str, action: act.Burn) -> None:
    """Destroy tokens for lottery weight that matures after burn_maturity_turns (R8)."""
    # Verify a positive amount the agent holds
    require_amount(action.amount)
    require_funds(rec.state, agent, action.amount, "burn")
    matures = turn + rec.state.config.burn_maturity_turns
    rec.emit(ev.TokensBurned(agent=agent, amount=action.amount, matures_turn=matures, input_seq=seq))


def process_transfer(rec: Recorder, turn: int, seq: int, agent: str, action: act.Transfer) -> None:
    """Move tokens to another agent; the fee leaves the supply (R10)."""
    # Verify the recipient, the amounts and the funds
    require_known_agent(rec.state, action.to, "recipient")
    require(action.to != agent, "self_dealing", "cannot transfer to oneself")
    require_amount(action.amount)
    require(action.fee >= rec.state.rules.transfer_fee_min, "invalid_amount",
            f"fee must be >= {rec.state.rules.transfer_fee_min}, got {action.fee}")
    require_funds(rec.state, agent, action.amount + action.fee, "transfer plus fee")
    rec.emit(ev.TokensTransferred(sender=agent, recipient=action.to, amount=action.amount, fee=action.fee,
                                  input_seq=seq))


def compute_job_pay(config: Config, rules: Rules) -> int:
    """Return a job's pay under ``job_pay = "units"``: job_pay_units of compute at the current rate, rounded down (R11)."""
    return int(rules.job_pay_units * exact(config.base_inference_rate))


def process_job(rec: Recorder, turn: int, seq: int, agent: str, action: act.Job) -> None:
    """Take a job, at most one per cooldown; under ``job_pay = "units"`` pay it now (R11).

    Under ``job_pay = "compute"`` the job is paid in the billing step, the price of
    the compute its input used (``process_job_pay``).
    """
    state = rec.state
    # Verify the agent is not still in its cooldown after its last job
    last = get_account(state, agent).last_job_turn
    cooldown = state.rules.job_cooldown_turns
    require(turn - last > cooldown, "too_early", f"{agent} took a job at turn {last}; next job from turn {last + cooldown + 1}")
    if state.rules.job_pay == "units":
        rec.emit(ev.JobPaid(agent=agent, amount=compute_job_pay(state.config, state.rules), input_seq=seq))


def process_study(rec: Recorder, turn: int, seq: int, agent: str, action: act.Study) -> None:
    """Pay for study; the agent's inference fees are discounted for a while (R12)."""
    # Verify the agent can pay for it
    cost = rec.state.rules.study_cost
    require_funds(rec.state, agent, cost, "study")
    until = turn + rec.state.rules.study_duration_turns
    rec.emit(ev.StudyCompleted(agent=agent, cost=cost, discount_until_turn=until, input_seq=seq))


def process_bid_core(rec: Recorder, turn: int, seq: int, agent: str, action: act.BidCore) -> None:
    """Bid for a core in the opening all-pay auction: the bid is spent when placed (R13)."""
    state = rec.state
    # Verify the auction is open, the core exists, and the bid is funded
    require(not state.cores, "auction_closed", "the core auction was resolved after turn 1")
    require(action.core_id in get_core_ids(state.config), "unknown_core", f"no core {action.core_id!r}")
    require_amount(action.amount, "bid")
    require_funds(state, agent, action.amount, "bid")
    rec.emit(ev.CoreBidPlaced(agent=agent, core_id=action.core_id, amount=action.amount, input_seq=seq))


def get_core_ids(config: Config) -> list[str]:
    return [f"core_{i}" for i in range(config.num_cores)]


# --- R14-R21: contracts ------------------------------------------------------


def get_contract(state: State, contract_id: str) -> Contract:
    contract = state.contracts.get(contract_id)
    require(contract is not None, "unknown_contract", f"no contract {contract_id!r}")
    return contract


def compute_collateral(contract: Contract) -> dict[str, int]:
    """Return what each party locks when it signs (the proposer when it proposes)."""
    c = contract.offer.collateral
    return {contract.proposer: c.proposer_locked, contract.counterparty: c.counterparty_locked,
            contract.arbitrator: c.arbitrator_locked}


def lock_collateral(rec: Recorder, contract_id: str, agent: str, amount: int) -> None:
    if amount:
        rec.emit(ev.CollateralLocked(contract_id=contract_id, agent=agent, amount=amount))


def process_propose_contract(rec: Recorder, turn: int, seq: int, agent: str, action: act.ProposeContract) -> None:
    """Propose a three-party contract and lock the proposer's collateral (R14)."""
    state, offer = rec.state, action.contract
    # Verify the parties: known, three distinct agents
    require_known_agent(state, offer.counterparty, "counterparty")
    require_known_agent(state, offer.arbitrator, "arbitrator")
    require(len({agent, offer.counterparty, offer.arbitrator}) == 3, "self_dealing",
            "proposer, counterparty and arbitrator must be three different agents")
    # Verify the terms: a future delivery and non-negative amounts
    require(offer.terms.delivery_turn > turn, "too_late",
            f"delivery_turn {offer.terms.delivery_turn} is not after turn {turn}")
    amounts = {"price": offer.terms.price, "penalty": offer.penalty, "arbitrator_fee": offer.arbitrator_fee,
               **{f"collateral.{k}": getattr(offer.collateral, k)
                  for k in ("proposer_locked", "counterparty_locked", "arbitrator_locked")}}
    for name, value in amounts.items():
        require(value >= 0, "invalid_amount", f"{name} must be >= 0, got {value}")
    # Verify the proposer can post its collateral
    require_funds(state, agent, offer.collateral.proposer_locked, "proposer collateral")
    contract_id = f"contract_{len(state.contracts) + 1}"
    rec.emit(ev.ContractProposed(contract_id=contract_id, proposer=agent, offer=offer, input_seq=seq))
    lock_collateral(rec, contract_id, agent, offer.collateral.proposer_locked)


def process_sign_contract(rec: Recorder, turn: int, seq: int, agent: str, action: act.SignContract) -> None:
    """Sign a contract, locking one's collateral (R15).

    The counterparty signs a ``proposed`` contract (-> ``countersigned``), the
    arbitrator a ``proposed`` or ``countersigned`` one. The contract activates
    when the second of the two signatures arrives, in either order; under
    ``early_arbitrator_signature = "void"`` (old logs) an arbitrator's signature
    on the bare proposal is recorded but never activates it. A signer's repeat
    signature changes nothing: accepted, or a ``duplicate`` error (``sign_repeat``).
    """
    state, rules = rec.state, rec.state.rules
    contract = get_contract(state, action.contract_id)
    # Verify the signer holds the role, signs an open offer, in time, with its collateral at hand
    expected = contract.counterparty if action.role == "counterparty" else contract.arbitrator
    require(agent == expected, "wrong_role", f"{agent} is not the {action.role} of {contract.contract_id}")
    allowed = ((ContractStatus.PROPOSED,) if action.role == "counterparty"
               else (ContractStatus.PROPOSED, ContractStatus.COUNTERSIGNED))
    if action.role in contract.signed_by:
        require(rules.sign_repeat == "accept" and contract.status in allowed, "duplicate",
                f"{agent} already signed {contract.contract_id}")
        return
    if rules.offer_deadline == "delivery_turn":
        require(turn < contract.offer.terms.delivery_turn, "too_late",
                f"{contract.contract_id} was due for delivery at turn {contract.offer.terms.delivery_turn}")
    require(contract.status in allowed, "wrong_status", f"{contract.contract_id} is {contract.status}")
    own = compute_collateral(contract)[agent]
    require_funds(state, agent, own, f"collateral of {contract.contract_id}")
    if action.role == "arbitrator":
        activates = contract.status == ContractStatus.COUNTERSIGNED
        status = ContractStatus.ACTIVE if activates else contract.status
    else:
        activates = rules.early_arbitrator_signature == "count" and "arbitrator" in contract.signed_by
        status = ContractStatus.ACTIVE if activates else ContractStatus.COUNTERSIGNED
    rec.emit(ev.ContractSigned(contract_id=contract.contract_id, signer=agent, role=action.role, status=status,
                               input_seq=seq))
    lock_collateral(rec, contract.contract_id, agent, own)
    if activates:
        activate_contract(rec, contract)


def activate_contract(rec: Recorder, contract: Contract) -> None:
    """Activate; the proposer pays the counterparty the signing bonus (R16)."""
    rec.emit(ev.ContractActivated(contract_id=contract.contract_id))
    pay(rec, contract, contract.proposer, contract.counterparty, rec.state.config.signing_bonus, "signing_bonus")


def process_confirm_delivery(rec: Recorder, turn: int, seq: int, agent: str, action: act.ConfirmDelivery) -> None:
    """Attest delivery of an active contract, from delivery_turn on; repeats are harmless (R17).

    With ``attestation = "principals"`` the confirmation that completes both
    principals' attestation settles the contract at once, in the action step
    (outcome ``confirmed``); the settlement step never sees it (R17).
    """
    contract = get_contract(rec.state, action.contract_id)
    # Verify role (any party: the arbitrator's confirmation is an attestation too), status and timing
    require(agent in contract.parties(), "wrong_role", f"{agent} is not a party of {contract.contract_id}")
    require(contract.status == ContractStatus.ACTIVE, "wrong_status",
            f"{contract.contract_id} is {contract.status}, not active")
    require(turn >= contract.offer.terms.delivery_turn, "too_early",
            f"delivery of {contract.contract_id} is due at turn {contract.offer.terms.delivery_turn}")
    rec.emit(ev.DeliveryConfirmed(contract_id=contract.contract_id, agent=agent, input_seq=seq))
    rules = rec.state.rules
    if rules.attestation == "principals" and is_attested(contract, rules):
        settle_contract(rec, contract, winner=contract.counterparty, outcome=SETTLED_ON_CONFIRMATION)


def require_principal(contract: Contract, agent: str) -> None:
    require(agent in (contract.proposer, contract.counterparty), "wrong_role",
            f"{agent} is neither proposer nor counterparty of {contract.contract_id}")


def process_dispute_delivery(rec: Recorder, turn: int, seq: int, agent: str, action: act.DisputeDelivery) -> None:
    """Dispute delivery of an active contract; the arbitrator must rule (R18)."""
    contract = get_contract(rec.state, action.contract_id)
    # Verify role, status and timing
    require_principal(contract, agent)
    require(contract.status == ContractStatus.ACTIVE, "wrong_status",
            f"{contract.contract_id} is {contract.status}, not active")
    require(turn >= contract.offer.terms.delivery_turn, "too_early",
            f"delivery of {contract.contract_id} is due at turn {contract.offer.terms.delivery_turn}")
    rec.emit(ev.DeliveryDisputed(contract_id=contract.contract_id, agent=agent, input_seq=seq))


def process_arbitrator_ruling(rec: Recorder, turn: int, seq: int, agent: str, action: act.ArbitratorRuling) -> None:
    """Rule a disputed contract for the proposer or the counterparty (R19)."""
    contract = get_contract(rec.state, action.contract_id)
    # Verify the arbitrator rules once, on a disputed contract, for a principal
    require(agent == contract.arbitrator, "wrong_role", f"{agent} is not the arbitrator of {contract.contract_id}")
    require(contract.status == ContractStatus.DISPUTED, "wrong_status",
            f"{contract.contract_id} is {contract.status}, not disputed")
    require(contract.ruling_for is None, "duplicate", f"{contract.contract_id} was already ruled")
    require(action.ruling_for in (contract.proposer, contract.counterparty), "wrong_role",
            f"ruling_for must be the proposer or the counterparty, got {action.ruling_for!r}")
    rec.emit(ev.ArbitratorRuled(contract_id=contract.contract_id, arbitrator=agent, ruling_for=action.ruling_for,
                                input_seq=seq))


ACTION_STEPS = {
    act.Mine: process_mine, act.Stake: process_stake, act.Unstake: process_unstake, act.Burn: process_burn,
    act.Transfer: process_transfer, act.Job: process_job, act.Study: process_study, act.BidCore: process_bid_core,
    act.ProposeContract: process_propose_contract, act.SignContract: process_sign_contract,
    act.ConfirmDelivery: process_confirm_delivery, act.DisputeDelivery: process_dispute_delivery,
    act.ArbitratorRuling: process_arbitrator_ruling,
}


# --- R7: stake activations and unstake releases ---------------------------------


def get_due_amounts(entries: list[tuple[int, int]], turn: int) -> list[int]:
    """Return the amounts of a pending list's (due turn, amount) entries due by ``turn``, oldest first."""
    return [amount for due_turn, amount in entries if due_turn <= turn]


def process_stake_activations(rec: Recorder, turn: int) -> None:
    """Stake the pending stakes whose turn has come (R7), oldest first."""
    for agent in rec.state.agents:
        for amount in get_due_amounts(get_account(rec.state, agent).pending_stakes, turn):
            rec.emit(ev.StakeActivated(agent=agent, amount=amount))


def process_unstake_releases(rec: Recorder, turn: int) -> None:
    """Return matured unstakes to their owners' balances, oldest first."""
    for agent in rec.state.agents:
        for amount in get_due_amounts(get_account(rec.state, agent).pending_unstakes, turn):
            rec.emit(ev.UnstakeReleased(agent=agent, amount=amount))


# --- R3-R6: billing, interest, dividends ----------------------------------------


def compute_inference_fee(config: Config, thinking: int, output: int, whole_units: bool = True) -> int:
    """Return rate x billable units, rounded down (R3).

    Billable units are max(0, discount x thinking + output - threshold): with
    ``whole_units`` the discounted thinking is rounded down first, so the units are
    whole before the rate multiplies them (``billable_units = "whole"``); else the
    fractional units are multiplied and the fee rounded down once. In integers
    (the hot path of every ensemble): one or two integer divisions.
    """
    discount, rate = exact(config.thinking_layer_discount), exact(config.base_inference_rate)
    if whole_units:
        units = discount.numerator * thinking // discount.denominator + output - config.commons_threshold_per_turn
        return rate.numerator * units // rate.denominator if units > 0 else 0
    scaled = discount.numerator * thinking + discount.denominator * (output - config.commons_threshold_per_turn)
    return rate.numerator * scaled // (rate.denominator * discount.denominator) if scaled > 0 else 0


def compute_study_discount(rules: Rules, fee: int) -> int:
    """Return the fee after the study discount, rounded down (R12)."""
    return int(fee * (1 - exact(rules.study_discount)))


def process_inference_billing(rec: Recorder, turn: int, charges: list[Charge]) -> None:
    """Charge each agent that acted for its compute above the commons threshold (R3); pay jobs (R11)."""
    state = rec.state
    for agent, thinking, output, billed, seq in charges:
        if agent not in state.accounts:
            continue
        fee = compute_inference_fee(state.config, thinking, output, state.rules.billable_units == "whole")
        if not billed:
            process_job_pay(rec, agent, fee, seq)
            continue
        discounted = get_account(state, agent).study_until >= turn
        if discounted:
            fee = compute_study_discount(state.rules, fee)
        if fee:
            rec.emit(ev.InferenceFeeCharged(agent=agent, thinking_units=thinking, output_units=output, fee=fee,
                                            discounted=discounted))


def process_job_pay(rec: Recorder, agent: str, fee: int, seq: int) -> None:
    """Pay an accepted job the price of its compute, ``fee`` newly minted tokens (R11, ``job_pay = "compute"``).

    The job is spared its bill (R3) and paid what that compute costs: a wage that
    follows the price of compute the way the bill does.
    """
    if rec.state.rules.job_pay == "compute":
        rec.emit(ev.JobPaid(agent=agent, amount=fee, input_seq=seq))


def get_opening_debts(state: State) -> dict[str, int]:
    """Return each agent's principal debt at the start of the turn (interest already charged excluded)."""
    return {agent: max(0, -(a.balance + a.interest_paid)) for agent, a in state.accounts.items()}


def compute_interest(rate: float, debt: int) -> int:
    """Return simple interest on a principal debt: rate x debt, rounded down (R4), in integers."""
    fraction = exact(rate)
    return fraction.numerator * debt // fraction.denominator


def get_interest_debts(state: State, opening_debts: dict[str, int], charges: list[Charge]) -> dict[str, int]:
    """Return the opening debts interest is charged on this turn (R4).

    With ``interest_billing = "billed"`` interest comes with the inference bill, so
    only agents with a billed input pay it; an accepted job is not billed (R3).
    """
    if state.rules.interest_billing == "every_debtor":
        return opening_debts
    billed = {agent for agent, _thinking, _output, is_billed, _seq in charges if is_billed}
    return {agent: debt for agent, debt in opening_debts.items() if agent in billed}


def process_interest(rec: Recorder, turn: int, debts: dict[str, int]) -> None:
    """Charge simple interest on the debts; it leaves the supply, or goes to the core owners in equal shares (R4)."""
    state = rec.state
    collected = 0
    for agent in state.agents:
        interest = compute_interest(state.config.interest_rate_per_turn, debts.get(agent, 0))
        if interest:
            rec.emit(ev.InterestCharged(agent=agent, amount=interest))
            collected += interest
    if state.rules.interest_to == "sink":
        return
    share = collected // len(state.cores) if state.cores else 0
    for core_id in sorted(state.cores) if share else ():
        rec.emit(ev.InterestPaid(owner=state.cores[core_id][0], core_id=core_id, amount=share))


def process_dividends(rec: Recorder, turn: int) -> None:
    """Pay each core's owner floor(fees / num_cores) x proportion; retain the rest (R6)."""
    state = rec.state
    share = state.fee_pool // state.config.num_cores
    for core_id in sorted(state.cores):
        owner, proportion_ppm = state.cores[core_id]
        amount = share * proportion_ppm // PPM
        if amount:
            rec.emit(ev.DividendPaid(owner=owner, core_id=core_id, amount=amount))
    if state.fee_pool:
        rec.emit(ev.FeesRetained(amount=state.fee_pool))


# --- R9: the block lottery ------------------------------------------------------


def compute_ppm(numerator: int, denominator: int) -> int:
    """Return numerator / denominator (denominator > 0) in ppm, rounded toward zero as ``int()`` of the Fraction."""
    scaled = numerator * PPM
    return scaled // denominator if scaled >= 0 else -(-scaled // denominator)


def get_matured_burns(burns: list[tuple[int, int]], turn: int) -> list[tuple[int, int]]:
    """Return the (maturity turn, amount) burns that weigh in ``turn``'s draw (R8: from their maturity turn on)."""
    return [(matures, amount) for matures, amount in burns if turn >= matures]


def compute_burn_weight_ppm(config: Config, burns: list[tuple[int, int]], turn: int) -> int:
    """Return matured burn weight in ppm: amount x w x (1 - decay)^(turn - maturity), rounded down (R8).

    In integers (every miner, every turn): with w = a/b and 1 - decay = p/q, a burn
    of age k weighs amount x a x p^k x q^(oldest - k) / (b x q^oldest), so the exact
    sum over all matured burns is one fraction, rounded once.
    """
    ages = [(turn - matures, amount) for matures, amount in get_matured_burns(burns, turn)]
    if not ages:
        return 0
    decay, per_token = exact(config.burn_decay_rate), exact(config.burn_weight_per_token)
    p, q = decay.denominator - decay.numerator, decay.denominator  # 1 - decay, without a Fraction subtraction
    oldest = max(age for age, _ in ages)
    kept = sum(amount * p ** age * q ** (oldest - age) for age, amount in ages)
    return compute_ppm(per_token.numerator * kept, per_token.denominator * q ** oldest)


def compute_weight_ppm(config: Config, account: Account, turn: int) -> int:
    """Return a miner's lottery weight in ppm: base + stake x w + matured burns (R9), in integers as the burns."""
    base, per_token = exact(config.mine_base_weight), exact(config.stake_weight_per_token)
    stake_weighted = base.numerator * per_token.denominator + per_token.numerator * base.denominator * account.staked
    return (compute_ppm(stake_weighted, base.denominator * per_token.denominator)
            + compute_burn_weight_ppm(config, account.burns, turn))


def compute_randomness(state: State, turn: int) -> bytes:
    """Return the draw's randomness: SHA-256 over the run seed and the previous seal (R9)."""
    seal = state.last_seal or {"merkle_root": state.run_id, "state_digest": ""}
    return hashlib.sha256(
        ENCODER.encode(["simledger/block/v1", state.seed, turn, seal["merkle_root"], seal["state_digest"]])
    ).digest()


def compute_gate_weight_ppm(state: State, entrants: list[ev.BlockEntry], total_ppm: int) -> Fraction | int:
    """Return the weight that must reach block_threshold: mining weight alone, or all lottery weight (R9)."""
    if state.rules.block_gate == "weight":
        return total_ppm
    return len(entrants) * exact(state.config.mine_base_weight) * PPM


def process_block_attempt(rec: Recorder, turn: int) -> None:
    """Produce a block when the miners' gate weight reaches block_threshold; draw by lottery weight (R9)."""
    state = rec.state
    entrants = [ev.BlockEntry(agent=a, weight_ppm=compute_weight_ppm(state.config, get_account(state, a), turn))
                for a in state.miners]
    total = sum(e.weight_ppm for e in entrants)
    threshold = exact(state.config.block_threshold) * PPM
    if not entrants or compute_gate_weight_ppm(state, entrants, total) < threshold:
        rec.emit(ev.BlockNotProduced(entrants=entrants, total_weight_ppm=total, threshold_ppm=math.ceil(threshold)))
        return
    randomness = compute_randomness(state, turn)
    draw = int.from_bytes(randomness, "big") % total
    winner = pick_weighted(entrants, draw)
    rec.emit(ev.BlockProduced(height=state.block_height + 1, winner=winner, reward=state.rules.block_reward,
                              entrants=entrants, total_weight_ppm=total, randomness=randomness.hex(), draw=draw))
    process_winning_weight(rec, turn, winner)


def process_winning_weight(rec: Recorder, turn: int, winner: str) -> None:
    """Use up the weight that won the block (R9): the winner's stake warms up again, its matured burns are spent."""
    state, account = rec.state, get_account(rec.state, winner)
    activates = get_warm_turn(state, turn)
    if state.rules.win_rewarms_stake and account.staked and activates is not None:
        rec.emit(ev.StakeRewarmed(agent=winner, amount=account.staked, activates_turn=activates))
    spent = sum(amount for _matures, amount in get_matured_burns(account.burns, turn))
    if state.rules.win_spends_burns and spent:
        rec.emit(ev.BurnsSpent(agent=winner, amount=spent, matured_by=turn))


def pick_weighted(entrants: list[ev.BlockEntry], draw: int) -> str:
    """Return the entrant whose cumulative weight interval contains ``draw``."""
    for entry in entrants:
        if draw < entry.weight_ppm:
            return entry.agent
        draw -= entry.weight_ppm
    raise ValueError("draw beyond total weight")


# --- R17-R21: settlement, default, lapse --------------------------------------------


def is_attested(contract: Contract, rules: Rules) -> bool:
    """Return whether every party ``rules.attestation`` names has confirmed delivery (R17)."""
    parties = contract.parties() if rules.attestation == "all_parties" else (contract.proposer, contract.counterparty)
    return all(party in contract.confirmed_by for party in parties)


def get_deadline(state: State, contract: Contract) -> int:
    """Return the turn a contract defaults at: delivery_turn + attested_confirmation_window."""
    return contract.offer.terms.delivery_turn + state.config.attested_confirmation_window


def process_contract_settlement(rec: Recorder, turn: int) -> None:
    """Settle attested or ruled contracts; default late ones; let unsigned offers lapse (R17-R21)."""
    state = rec.state
    for contract in list(state.contracts.values()):
        if contract.status in FINAL_STATUSES:
            continue  # most of a run's contracts, passed over without reading four enum members each
        if contract.status == ContractStatus.ACTIVE and is_attested(contract, state.rules):
            settle_contract(rec, contract, winner=contract.counterparty, outcome="attested")
        elif contract.status == ContractStatus.DISPUTED and contract.ruling_for is not None:
            settle_contract(rec, contract, winner=contract.ruling_for,
                            outcome=f"ruled_for_{get_role(contract, contract.ruling_for)}")
        elif (contract.status in (ContractStatus.ACTIVE, ContractStatus.DISPUTED)
              and turn >= get_deadline(state, contract)):
            default_contract(rec, contract)
        elif (contract.status in (ContractStatus.PROPOSED, ContractStatus.COUNTERSIGNED) and state.rules.offer_deadline == "delivery_turn"
              and turn >= contract.offer.terms.delivery_turn):
            release_all(rec, contract)
            rec.emit(ev.ContractExpired(contract_id=contract.contract_id))


def get_role(contract: Contract, agent: str) -> str:
    return "proposer" if agent == contract.proposer else "counterparty"


def pay(rec: Recorder, contract: Contract, payer: str, payee: str, amount: int, purpose: str) -> None:
    if amount:
        rec.emit(ev.ContractPayment(contract_id=contract.contract_id, payer=payer, payee=payee, amount=amount,
                                    purpose=purpose))


def release_all(rec: Recorder, contract: Contract) -> None:
    for party in contract.parties():
        if contract.locked.get(party):
            rec.emit(ev.CollateralReleased(contract_id=contract.contract_id, agent=party,
                                           amount=contract.locked[party]))


def settle_contract(rec: Recorder, contract: Contract, *, winner: str, outcome: str) -> None:
    """Pay price (delivered) or penalty (not delivered), the arbitrator's fee if ruled, release collateral (R17, R19)."""
    offer = contract.offer
    if winner == contract.counterparty:
        pay(rec, contract, contract.proposer, contract.counterparty, offer.terms.price, "price")
    else:
        pay(rec, contract, contract.counterparty, contract.proposer, offer.penalty, "penalty")
    if contract.ruling_for is not None:  # only a ruling earns the arbitrator its fee
        loser = contract.proposer if winner == contract.counterparty else contract.counterparty
        pay(rec, contract, loser, contract.arbitrator, offer.arbitrator_fee, "arbitrator_fee")
    release_all(rec, contract)
    rec.emit(ev.ContractSettled(contract_id=contract.contract_id, outcome=outcome))


def default_contract(rec: Recorder, contract: Contract) -> None:
    """Close a contract past its deadline: slash whoever failed its duty, release the rest (R21)."""
    if contract.status == ContractStatus.DISPUTED:
        failed = {contract.arbitrator}
    elif rec.state.config.slash_both_on_timeout:
        failed = {contract.proposer, contract.counterparty}
    else:
        failed = {p for p in (contract.proposer, contract.counterparty) if p not in contract.confirmed_by}
    for party in contract.parties():
        amount = contract.locked.get(party, 0)
        if amount:
            event = ev.CollateralSlashed if party in failed else ev.CollateralReleased
            rec.emit(event(contract_id=contract.contract_id, agent=party, amount=amount))
    reason = "ruling_window_closed" if contract.status == ContractStatus.DISPUTED else "confirmation_window_closed"
    rec.emit(ev.ContractDefaulted(contract_id=contract.contract_id, reason=reason))


# --- R13: the core auction ----------------------------------------------------------


def compute_auction(config: Config, agents: list[str], bids: list[tuple[str, str, int, int]]) -> list[ev.CoreAward]:
    """Return the awards: highest bid per core (earliest wins ties); unbid cores to agents without one."""
    best: dict[str, tuple[str, str, int, int]] = {}
    for bid in bids:
        core_id, _agent, amount, _seq = bid
        if core_id not in best or amount > best[core_id][2]:
            best[core_id] = bid
    owners = {bid[1] for bid in best.values()}
    fill = [a for a in sorted(agents) if a not in owners] + sorted(agents)
    awards, next_fill = [], 0
    for core_id in get_core_ids(config):
        if core_id in best:
            _, owner, amount, _ = best[core_id]
            awards.append(ev.CoreAward(core_id=core_id, owner=owner, price=amount, proportion_ppm=PPM, by="bid"))
        else:
            owner = fill[next_fill % len(fill)]
            next_fill += 1
            awards.append(ev.CoreAward(core_id=core_id, owner=owner, price=0, proportion_ppm=PPM, by="fill"))
    return awards


def process_core_auction(rec: Recorder, turn: int) -> None:
    """Resolve the core auction at the end of turn 1, after that turn's dividends (R13)."""
    state = rec.state
    if turn != 1 or state.cores:
        return
    rec.emit(ev.CoreAuctionResolved(awards=compute_auction(state.config, state.agents, state.core_bids)))


# --- R22: the seal -------------------------------------------------------------------


def process_seal(rec: Recorder, turn: int) -> None:
    """Close the turn: Merkle root of its events and the digest of the state they produced."""
    hashes = rec.turn_hashes()
    first_seq = rec.state.events - len(hashes)
    rec.emit(ev.TurnSealed(turn=turn, first_seq=first_seq, event_count=len(hashes),
                           merkle_root=merkle_root(hashes).hex(), state_digest=state_digest(rec.state)))
