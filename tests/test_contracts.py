"""R14-R21: a contract's every path, from proposal to settlement, default or lapse, and every rejection.

Tests of a path the rule revision changed (early arbitrator signatures, repeats, lapse,
attestation) pin the variants old logs play with (``rules=LEGACY``); the current variants
are pinned in tests/test_contract_rules.py.

The standard contract (unless a test changes one thing): a proposes at turn 2 to b
(counterparty) with c as arbitrator; price 100, delivery at turn 4, collateral
a 30 / b 20 / c 10, penalty 40, arbitrator fee 15. Signing bonus 50, confirmation
window 3 (so an active contract defaults at turn 4 + 3 = 7). Genesis 1,000 each,
zero units (no fees), so every balance below is worked by hand.

Two guards cannot fire through a run, so they have no test here: ``sign_contract``
``wrong_status`` (a contract leaves proposed/countersigned only through its
signatures, which the ``duplicate`` guard catches first, or by lapsing at its
delivery turn, which ``too_late`` catches first) and ``arbitrator_ruling``
``duplicate`` (a ruled contract settles in the same turn's settlement step, and
one agent has one input a turn, so a second ruling meets ``wrong_status``).
"""

from __future__ import annotations


import msgspec
import pytest

from _engine_kit import (
    act, assert_accounting, balances, make_run, offer, rejected, step,
)

from simledger.events import types as ev
from simledger.events.actions import ContractOffer

from simledger.events.config import LEGACY_RULES  # noqa: E402

C1 = "contract_1"
LEGACY = dict(LEGACY_RULES)  # the contract rules of logs written before the current defaults


def standard(**changes) -> dict:
    return offer(**changes)


def propose(run, **changes):
    """Turn 2: a proposes the standard contract (with ``changes``)."""
    return step(run, act("a", "propose_contract", contract=standard(**changes)))


def sign(agent: str, role: str, contract_id: str = C1) -> dict:
    return act(agent, "sign_contract", contract_id=contract_id, role=role)


def confirm(agent: str, contract_id: str = C1) -> dict:
    return act(agent, "confirm_delivery", contract_id=contract_id)


def dispute(agent: str, contract_id: str = C1) -> dict:
    return act(agent, "dispute_delivery", contract_id=contract_id)


def ruling(agent: str, ruling_for: str, contract_id: str = C1) -> dict:
    return act(agent, "arbitrator_ruling", contract_id=contract_id, ruling_for=ruling_for)


def active(tmp_path, **config):
    """Return a run whose standard contract was proposed at turn 2 and activated at turn 3."""
    run = make_run(tmp_path, **config)
    propose(run)
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert status(run) == "active"
    return run


def status(run, contract_id: str = C1) -> str:
    return run.state.contracts[contract_id].status


def paid(payer, payee, amount, purpose) -> ev.ContractPayment:
    return ev.ContractPayment(contract_id=C1, payer=payer, payee=payee, amount=amount, purpose=purpose)


def released(agent, amount) -> ev.CollateralReleased:
    return ev.CollateralReleased(contract_id=C1, agent=agent, amount=amount)


def slashed(agent, amount) -> ev.CollateralSlashed:
    return ev.CollateralSlashed(contract_id=C1, agent=agent, amount=amount)


RELEASE_ALL = [released("a", 30), released("b", 20), released("c", 10)]


# --- R14: proposal ----------------------------------------------------------------------------------


def test_propose_contract_locks_proposer_collateral(tmp_path):
    run = make_run(tmp_path)
    log = propose(run)
    assert log.effects == [
        ev.ContractProposed(contract_id=C1, proposer="a", offer=msgspec.convert(standard(), ContractOffer),
                            input_seq=log.inputs[0]),
        ev.CollateralLocked(contract_id=C1, agent="a", amount=30),
    ]
    contract = run.state.contracts[C1]
    assert (contract.status, contract.locked, contract.created_turn) == ("proposed", {"a": 30}, 2)
    assert (run.state.accounts["a"].balance, run.state.accounts["a"].locked) == (970, 30)
    assert_accounting(run)


def test_contract_ids_follow_creation_order(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "propose_contract", contract=standard()),
               act("b", "propose_contract", contract=standard(counterparty="zed")),  # refused: takes no id
               act("d", "propose_contract", contract=standard(counterparty="a")))
    assert [e.contract_id for e in log.of(ev.ContractProposed)] == ["contract_1", "contract_2"]
    assert run.state.contracts["contract_2"].proposer == "d"


def test_propose_without_collateral_locks_nothing(tmp_path):
    run = make_run(tmp_path)
    log = propose(run, proposer_locked=0, price=0)
    assert [type(e) for e in log.effects] == [ev.ContractProposed]


@pytest.mark.parametrize("changes, reason", [
    ({"counterparty": "zed"}, "unknown_agent"),  # counterparty not in the run
    ({"arbitrator": "zed"}, "unknown_agent"),  # arbitrator not in the run
    ({"counterparty": "a"}, "self_dealing"),  # proposer is its own counterparty
    ({"arbitrator": "a"}, "self_dealing"),  # proposer is its own arbitrator
    ({"arbitrator": "b"}, "self_dealing"),  # counterparty is also the arbitrator
    ({"delivery_turn": 2}, "too_late"),  # delivery in the current turn
    ({"delivery_turn": 1}, "too_late"),  # delivery in the past
    ({"price": -1}, "invalid_amount"),  # negative price
    ({"penalty": -1}, "invalid_amount"),  # negative penalty
    ({"arbitrator_fee": -1}, "invalid_amount"),  # negative arbitrator fee
    ({"proposer_locked": -1}, "invalid_amount"),  # negative proposer collateral
    ({"counterparty_locked": -1}, "invalid_amount"),  # negative counterparty collateral
    ({"arbitrator_locked": -1}, "invalid_amount"),  # negative arbitrator collateral
    ({"proposer_locked": 1001}, "insufficient_funds"),  # collateral one above the balance
    ({"contract_type": "gift"}, "malformed"),  # not a contract type
    ({"settlement_type": "escrow"}, "malformed"),  # not a settlement type
])
def test_invalid_propose_contract(tmp_path, changes, reason):
    run = make_run(tmp_path)
    log = propose(run, **changes)
    assert rejected(log) == ("propose_contract", reason) and len(log.effects) == 1
    assert run.state.contracts == {} and balances(run)["a"] == 1000


def test_invalid_propose_contract_detail(tmp_path):
    run = make_run(tmp_path)
    log = propose(run, delivery_turn=2)
    assert log.effects == [ev.ActionRejected(agent="a", action="propose_contract", reason="too_late",
                                             detail="delivery_turn 2 is not after turn 2", input_seq=log.inputs[0])]


def test_propose_with_whole_balance_as_collateral(tmp_path):
    run = make_run(tmp_path)
    propose(run, proposer_locked=1000)
    assert balances(run)["a"] == 0 and run.state.accounts["a"].locked == 1000


# --- R15-R16: signatures and activation ------------------------------------------------------------------


def test_counterparty_sign_countersigns(tmp_path):
    run = make_run(tmp_path)
    propose(run)
    log = step(run, sign("b", "counterparty"))
    assert log.effects == [
        ev.ContractSigned(contract_id=C1, signer="b", role="counterparty", status="countersigned",
                          input_seq=log.inputs[0]),
        ev.CollateralLocked(contract_id=C1, agent="b", amount=20),
    ]
    assert status(run) == "countersigned" and run.state.contracts[C1].locked == {"a": 30, "b": 20}


def test_arbitrator_sign_activates_and_pays_signing_bonus(tmp_path):
    run = make_run(tmp_path)
    propose(run)
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert log.effects == [
        ev.ContractSigned(contract_id=C1, signer="b", role="counterparty", status="countersigned",
                          input_seq=log.inputs[0]),
        ev.CollateralLocked(contract_id=C1, agent="b", amount=20),
        ev.ContractSigned(contract_id=C1, signer="c", role="arbitrator", status="active", input_seq=log.inputs[1]),
        ev.CollateralLocked(contract_id=C1, agent="c", amount=10),
        ev.ContractActivated(contract_id=C1),
        paid("a", "b", 50, "signing_bonus"),
    ]
    # a: 1000 - 30 - 50; b: 1000 - 20 + 50; c: 1000 - 10
    assert balances(run) == {"a": 920, "b": 1030, "c": 990, "d": 1000}
    assert status(run) == "active" and run.state.contracts[C1].locked == {"a": 30, "b": 20, "c": 10}
    assert run.state.minted == 0  # the bonus moves tokens, it does not mint them
    assert_accounting(run)


def test_arbitrator_signs_in_a_later_turn(tmp_path):
    run = make_run(tmp_path, genesis=1000)
    propose(run, delivery_turn=5)
    step(run, sign("b", "counterparty"))  # turn 3
    log = step(run, sign("c", "arbitrator"))  # turn 4
    assert [type(e) for e in log.effects] == [ev.ContractSigned, ev.CollateralLocked, ev.ContractActivated,
                                              ev.ContractPayment]


def test_signing_bonus_may_overdraw_proposer(tmp_path):
    run = make_run(tmp_path, genesis=40)
    propose(run, proposer_locked=0, counterparty_locked=0, arbitrator_locked=0)
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert balances(run)["a"] == 40 - 50 and balances(run)["b"] == 90


def test_no_bonus_payment_when_bonus_zero(tmp_path):
    run = make_run(tmp_path, signing_bonus=0)
    propose(run)
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert log.effects[-1] == ev.ContractActivated(contract_id=C1)


def test_early_arbitrator_signature_recorded_then_contract_lapses(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    # turn 2: c signs the bare proposal, right after a proposed it
    log = step(run, act("a", "propose_contract", contract=standard()), sign("c", "arbitrator"))
    assert log.effects[2:] == [
        ev.ContractSigned(contract_id=C1, signer="c", role="arbitrator", status="proposed", input_seq=log.inputs[1]),
        ev.CollateralLocked(contract_id=C1, agent="c", amount=10),
    ]
    assert status(run) == "proposed" and run.state.contracts[C1].signed_by == {"arbitrator": "c"}
    # turn 3: b countersigns; c cannot sign again
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert status(run) == "countersigned"
    assert log.effects[2] == ev.ActionRejected(agent="c", action="sign_contract", reason="duplicate",
                                               detail="c already signed contract_1", input_seq=log.inputs[1])
    # turn 4 (delivery): never activated, it lapses, everyone's collateral comes back, no bonus was paid
    log = step(run)
    assert log.effects == [*RELEASE_ALL, ev.ContractExpired(contract_id=C1)]
    assert status(run) == "expired" and balances(run) == {"a": 1000, "b": 1000, "c": 1000, "d": 1000}
    assert_accounting(run)


@pytest.mark.parametrize("inputs, reason", [
    ([sign("b", "counterparty", "contract_9")], "unknown_contract"),  # no such contract
    ([sign("d", "counterparty")], "wrong_role"),  # d is not the counterparty
    ([sign("a", "counterparty")], "wrong_role"),  # the proposer does not sign
    ([sign("b", "arbitrator")], "wrong_role"),  # b is the counterparty, not the arbitrator
    ([sign("d", "arbitrator")], "wrong_role"),  # d is not the arbitrator
])
def test_invalid_sign_contract(tmp_path, inputs, reason):
    run = make_run(tmp_path)
    propose(run)
    log = step(run, *inputs)
    assert rejected(log) == ("sign_contract", reason) and len(log.effects) == 1
    assert status(run) == "proposed" and run.state.contracts[C1].locked == {"a": 30}


def test_invalid_sign_contract_twice(tmp_path):
    run = make_run(tmp_path)
    propose(run)
    step(run, sign("b", "counterparty"))  # turn 3
    log = step(run, sign("b", "counterparty"))  # turn 4: the same signature again
    assert log.effects[0] == ev.ActionRejected(agent="b", action="sign_contract", reason="duplicate",
                                               detail="b already signed contract_1", input_seq=log.inputs[0])


def test_invalid_sign_contract_at_delivery_turn(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    propose(run)
    step(run)  # turn 3: nobody signs
    log = step(run, sign("b", "counterparty"))  # turn 4 = delivery turn
    assert log.effects[0] == ev.ActionRejected(agent="b", action="sign_contract", reason="too_late",
                                               detail="contract_1 was due for delivery at turn 4",
                                               input_seq=log.inputs[0])
    assert log.effects[1:] == [released("a", 30), ev.ContractExpired(contract_id=C1)]


def test_invalid_sign_contract_without_collateral(tmp_path):
    run = make_run(tmp_path)
    propose(run, counterparty_locked=1001)
    # b holds 1,000: one short of its collateral
    log = step(run, sign("b", "counterparty"))
    assert log.effects == [ev.ActionRejected(agent="b", action="sign_contract", reason="insufficient_funds",
                                             detail="b has 1000, collateral of contract_1 needs 1001",
                                             input_seq=log.inputs[0])]


def test_invalid_arbitrator_sign_without_collateral(tmp_path):
    run = make_run(tmp_path)
    propose(run, arbitrator_locked=1001)
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    assert rejected(log) == ("sign_contract", "insufficient_funds")
    assert status(run) == "countersigned"


# --- R20: lapse --------------------------------------------------------------------------------------


def test_unsigned_offer_lapses_at_delivery_turn(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    propose(run)
    assert step(run).effects == []  # turn 3: still open
    log = step(run)  # turn 4
    assert log.effects == [released("a", 30), ev.ContractExpired(contract_id=C1)]
    assert status(run) == "expired" and run.state.contracts[C1].locked == {}
    assert balances(run)["a"] == 1000 and run.state.accounts["a"].locked == 0
    assert_accounting(run)


def test_countersigned_offer_lapses_at_delivery_turn(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    propose(run)
    step(run, sign("b", "counterparty"))
    log = step(run)  # turn 4: the arbitrator never signed
    assert log.effects == [released("a", 30), released("b", 20), ev.ContractExpired(contract_id=C1)]
    assert balances(run) == {"a": 1000, "b": 1000, "c": 1000, "d": 1000}


def test_lapse_without_collateral(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    propose(run, proposer_locked=0)
    step(run)
    assert step(run).effects == [ev.ContractExpired(contract_id=C1)]


# --- R17: confirmation and attested settlement ----------------------------------------------------------


def test_attested_settlement_needs_all_three_confirmations(tmp_path):
    run = active(tmp_path, rules=LEGACY)
    log = step(run, confirm("a"), confirm("b"))  # turn 4: the principals confirm
    assert log.effects == [ev.DeliveryConfirmed(contract_id=C1, agent="a", input_seq=log.inputs[0]),
                           ev.DeliveryConfirmed(contract_id=C1, agent="b", input_seq=log.inputs[1])]
    assert status(run) == "active" and run.state.contracts[C1].confirmed_by == ["a", "b"]
    log = step(run, confirm("c"))  # turn 5: the arbitrator attests
    assert log.effects == [ev.DeliveryConfirmed(contract_id=C1, agent="c", input_seq=log.inputs[0]),
                           paid("a", "b", 100, "price"), *RELEASE_ALL,
                           ev.ContractSettled(contract_id=C1, outcome="attested")]
    # a: 920 - 100 + 30; b: 1030 + 100 + 20; c: 990 + 10 (no arbitrator fee without a ruling)
    assert balances(run) == {"a": 850, "b": 1150, "c": 1000, "d": 1000}
    contract = run.state.contracts[C1]
    assert (contract.status, contract.outcome, contract.closed_turn, contract.locked) == ("settled", "attested", 5, {})
    assert_accounting(run)


def test_attested_settlement_in_one_turn(tmp_path):
    run = active(tmp_path, rules=LEGACY)
    log = step(run, confirm("c"), confirm("b"), confirm("a"))
    assert log.effects[-1] == ev.ContractSettled(contract_id=C1, outcome="attested")


def test_repeated_confirmation_changes_nothing(tmp_path):
    run = active(tmp_path)
    step(run, confirm("a"))
    log = step(run, confirm("a"))
    # accepted (recorded) but a is counted once
    assert log.effects == [ev.DeliveryConfirmed(contract_id=C1, agent="a", input_seq=log.inputs[0])]
    assert run.state.contracts[C1].confirmed_by == ["a"] and status(run) == "active"


@pytest.mark.parametrize("who, reason", [
    ("d", "wrong_role"),  # d is not a party
])
def test_invalid_confirm_not_a_party(tmp_path, who, reason):
    run = active(tmp_path)
    log = step(run, confirm(who))
    assert rejected(log) == ("confirm_delivery", reason)


def test_invalid_confirm_before_delivery(tmp_path):
    run = make_run(tmp_path)
    propose(run)
    # turn 3: activated by b and c, then a confirms one turn early
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"), confirm("a"))
    assert log.effects[-1] == ev.ActionRejected(agent="a", action="confirm_delivery", reason="too_early",
                                                detail="delivery of contract_1 is due at turn 4",
                                                input_seq=log.inputs[2])


def test_invalid_confirm_not_active(tmp_path):
    run = make_run(tmp_path, rules=LEGACY)
    propose(run)
    step(run)  # turn 3: nobody signs
    # turn 4, the delivery turn: the offer is still only proposed
    log = step(run, confirm("a"))
    assert log.effects[0] == ev.ActionRejected(agent="a", action="confirm_delivery", reason="wrong_status",
                                               detail="contract_1 is proposed, not active", input_seq=log.inputs[0])
    assert log.effects[1:] == [released("a", 30), ev.ContractExpired(contract_id=C1)]  # then it lapses


@pytest.mark.parametrize("action", [
    confirm("a", "contract_9"), dispute("a", "contract_9"), ruling("c", "b", "contract_9"),
    sign("b", "counterparty", "nope"),
])
def test_invalid_contract_action_unknown_contract(tmp_path, action):
    run = active(tmp_path)
    log = step(run, action)
    assert rejected(log)[1] == "unknown_contract"


# --- R18-R19: dispute and ruling ---------------------------------------------------------------------------


def test_dispute_delivery_marks_disputed(tmp_path):
    run = active(tmp_path)
    log = step(run, dispute("b"))
    assert log.effects == [ev.DeliveryDisputed(contract_id=C1, agent="b", input_seq=log.inputs[0])]
    assert status(run) == "disputed" and run.state.contracts[C1].disputed_by == "b"


def test_ruling_for_counterparty_pays_price_and_fee(tmp_path):
    run = active(tmp_path)
    log = step(run, dispute("b"), ruling("c", "b"))  # turn 4
    assert log.effects == [
        ev.DeliveryDisputed(contract_id=C1, agent="b", input_seq=log.inputs[0]),
        ev.ArbitratorRuled(contract_id=C1, arbitrator="c", ruling_for="b", input_seq=log.inputs[1]),
        paid("a", "b", 100, "price"),
        paid("a", "c", 15, "arbitrator_fee"),  # the loser (a) pays the arbitrator
        *RELEASE_ALL,
        ev.ContractSettled(contract_id=C1, outcome="ruled_for_counterparty"),
    ]
    # a: 920 - 100 - 15 + 30; b: 1030 + 100 + 20; c: 990 + 15 + 10
    assert balances(run) == {"a": 835, "b": 1150, "c": 1015, "d": 1000}
    assert_accounting(run)


def test_ruling_for_proposer_pays_penalty_and_fee(tmp_path):
    run = active(tmp_path)
    step(run, dispute("a"))  # turn 4
    log = step(run, ruling("c", "a"))  # turn 5
    assert log.effects == [
        ev.ArbitratorRuled(contract_id=C1, arbitrator="c", ruling_for="a", input_seq=log.inputs[0]),
        paid("b", "a", 40, "penalty"),
        paid("b", "c", 15, "arbitrator_fee"),  # the loser (b) pays the arbitrator
        *RELEASE_ALL,
        ev.ContractSettled(contract_id=C1, outcome="ruled_for_proposer"),
    ]
    # a: 920 + 40 + 30; b: 1030 - 40 - 15 + 20; c: 990 + 15 + 10
    assert balances(run) == {"a": 990, "b": 995, "c": 1015, "d": 1000}
    assert_accounting(run)


def test_ruling_with_zero_amounts_pays_nothing(tmp_path):
    run = make_run(tmp_path)
    propose(run, penalty=0, arbitrator_fee=0)
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    log = step(run, dispute("b"), ruling("c", "a"))
    assert log.effects[2:] == [*RELEASE_ALL, ev.ContractSettled(contract_id=C1, outcome="ruled_for_proposer")]


@pytest.mark.parametrize("who, reason", [
    ("c", "wrong_role"),  # the arbitrator cannot dispute
    ("d", "wrong_role"),  # not a party
])
def test_invalid_dispute_role(tmp_path, who, reason):
    run = active(tmp_path)
    log = step(run, dispute(who))
    assert rejected(log) == ("dispute_delivery", reason) and status(run) == "active"


def test_invalid_dispute_before_delivery(tmp_path):
    run = make_run(tmp_path)
    propose(run)
    log = step(run, sign("b", "counterparty"), sign("c", "arbitrator"), dispute("a"))  # turn 3 < 4
    assert rejected(log) == ("dispute_delivery", "too_early") and status(run) == "active"


def test_invalid_dispute_twice(tmp_path):
    run = active(tmp_path)
    log = step(run, dispute("a"), dispute("b"))
    # b disputes a contract a already disputed
    assert log.effects[1] == ev.ActionRejected(agent="b", action="dispute_delivery", reason="wrong_status",
                                               detail="contract_1 is disputed, not active", input_seq=log.inputs[1])


def test_invalid_confirm_disputed(tmp_path):
    run = active(tmp_path)
    log = step(run, dispute("a"), confirm("b"))
    assert rejected(log) == ("confirm_delivery", "wrong_status")


@pytest.mark.parametrize("inputs, reason", [
    ([ruling("c", "b")], "wrong_status"),  # nothing disputed: the contract is active
    ([dispute("a"), ruling("b", "b")], "wrong_role"),  # b is not the arbitrator
    ([dispute("a"), ruling("d", "a")], "wrong_role"),  # d is not the arbitrator
    ([dispute("a"), ruling("c", "c")], "wrong_role"),  # ruling for the arbitrator itself
    ([dispute("a"), ruling("c", "d")], "wrong_role"),  # ruling for an outsider
])
def test_invalid_arbitrator_ruling(tmp_path, inputs, reason):
    run = active(tmp_path)
    log = step(run, *inputs)
    assert rejected(log) == ("arbitrator_ruling", reason)
    assert run.state.contracts[C1].ruling_for is None


# --- R21: default on timeout ------------------------------------------------------------------------------


def test_timeout_default_slashes_both_principals(tmp_path):
    run = active(tmp_path)
    for turn in (4, 5, 6):
        assert step(run).effects == [], turn  # within the confirmation window
    log = step(run)  # turn 7 = delivery 4 + window 3
    assert log.effects == [slashed("a", 30), slashed("b", 20), released("c", 10),
                           ev.ContractDefaulted(contract_id=C1, reason="confirmation_window_closed")]
    # a: 920, b: 1030 (their collateral is gone), c: 990 + 10
    assert balances(run) == {"a": 920, "b": 1030, "c": 1000, "d": 1000}
    assert run.state.sunk == 50 and status(run) == "defaulted"
    assert_accounting(run)


def test_timeout_slashes_both_even_if_one_confirmed(tmp_path):
    run = active(tmp_path, rules=LEGACY)
    step(run, confirm("a"), confirm("b"))  # the arbitrator never attests
    step(run), step(run)
    log = step(run)
    assert log.effects[:3] == [slashed("a", 30), slashed("b", 20), released("c", 10)]


@pytest.mark.parametrize("confirmers, expected", [
    (["a"], [released("a", 30), slashed("b", 20), released("c", 10)]),  # only b failed to confirm
    (["b"], [slashed("a", 30), released("b", 20), released("c", 10)]),  # only a failed to confirm
    ([], [slashed("a", 30), slashed("b", 20), released("c", 10)]),  # neither confirmed
    (["a", "b"], RELEASE_ALL),  # both confirmed: only the arbitrator's attestation is missing
    (["c"], [slashed("a", 30), slashed("b", 20), released("c", 10)]),  # the arbitrator's confirmation is not theirs
])
def test_timeout_without_slash_both(tmp_path, confirmers, expected):
    run = active(tmp_path, rules=LEGACY, slash_both_on_timeout=False)
    step(run, *[confirm(p) for p in confirmers])
    step(run), step(run)
    log = step(run)
    assert log.effects == [*expected, ev.ContractDefaulted(contract_id=C1, reason="confirmation_window_closed")]
    assert_accounting(run)


def test_disputed_timeout_slashes_arbitrator(tmp_path):
    run = active(tmp_path)
    step(run, dispute("b"))  # turn 4; c never rules
    assert step(run).effects == [] and step(run).effects == []  # turns 5, 6
    log = step(run)  # turn 7
    assert log.effects == [released("a", 30), released("b", 20), slashed("c", 10),
                           ev.ContractDefaulted(contract_id=C1, reason="ruling_window_closed")]
    assert balances(run) == {"a": 950, "b": 1050, "c": 990, "d": 1000}
    assert_accounting(run)


def test_window_follows_config(tmp_path):
    run = active(tmp_path, attested_confirmation_window=0)
    log = step(run)  # turn 4: delivery + 0
    assert log.effects[-1] == ev.ContractDefaulted(contract_id=C1, reason="confirmation_window_closed")


def test_ruling_in_last_turn_of_window_settles(tmp_path):
    run = active(tmp_path)
    step(run, dispute("b"))
    step(run), step(run)
    log = step(run, ruling("c", "b"))  # turn 7: the ruling comes before the settlement step
    assert log.effects[-1] == ev.ContractSettled(contract_id=C1, outcome="ruled_for_counterparty")


# --- closed contracts never change -----------------------------------------------------------------------


@pytest.mark.parametrize("close", ["settled", "defaulted", "expired"])
def test_closed_contract_never_changes(tmp_path, close):
    run = active(tmp_path, rules=LEGACY) if close != "expired" else make_run(tmp_path, rules=LEGACY)
    if close == "settled":
        step(run, confirm("a"), confirm("b"), confirm("c"))
    elif close == "defaulted":
        for _ in range(4):
            step(run)
    else:
        propose(run)
        step(run), step(run)
    assert status(run) == close
    frozen = run.state.contracts[C1]
    snapshot = (frozen.status, dict(frozen.locked), list(frozen.confirmed_by), frozen.ruling_for, list(frozen.history))
    log = step(run, confirm("a"), dispute("b"), ruling("c", "a"), sign("d", "counterparty"))
    assert [e.reason for e in log.of(ev.ActionRejected)] == ["wrong_status", "wrong_status", "wrong_status",
                                                             "wrong_role"]
    for _ in range(4):
        log = step(run)
        assert [e for e in log.all if getattr(e, "contract_id", None) == C1] == []
    frozen = run.state.contracts[C1]
    assert (frozen.status, frozen.locked, frozen.confirmed_by, frozen.ruling_for, frozen.history) == snapshot


# --- amounts the ledger cannot hold ---------------------------------------------------------------


def test_huge_contract_price_is_malformed_and_the_run_goes_on(tmp_path):
    run = make_run(tmp_path)
    # a price of 2**63 - 1 would, once paid, drive a balance beyond int64; amounts above 10**12 are refused
    propose(run, price=2**63 - 1)
    assert run.state.contracts == {}
    rejection = run.state.turns[-1].errors[-1]
    assert (rejection["action"], rejection["reason"]) == ("propose_contract", "malformed")
    for _ in range(3):
        step(run)
    assert run.next_turn == run.state.sealed_turn + 1 and run.state.sealed_turn >= 4
