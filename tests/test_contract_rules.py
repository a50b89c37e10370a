"""R15, R17, R20, R23 as new runs play them: order-free signatures, harmless repeats, offers that
stay open, settlement by the principals' confirmations, and a supply without escrowed collateral.

Same standard contract as tests/test_contracts.py (a proposes at turn 2 to b, arbitrator c;
price 100, delivery turn 4, collateral a 30 / b 20 / c 10, signing bonus 50). The rules are
spelled out, so these tests keep pinning these variants if the defaults move again; one
test checks they are today's defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/_engine_kit.py (importlib mode adds nothing to sys.path)
from _engine_kit import act, assert_accounting, balances, make_run, offer, rejected, step  # noqa: E402

from simledger.events import types as ev  # noqa: E402
from simledger.events.config import LEGACY_RULES, RULES_BEFORE_V4, RULES_BEFORE_V5, RULES_BEFORE_V6, Rules  # noqa: E402
from simledger.events.envelope import (  # noqa: E402
    decode_payload, encode_payload, get_written_version, payload_version,
)

C1 = "contract_1"
CURRENT = {"sign_repeat": "accept", "early_arbitrator_signature": "count", "offer_deadline": "none",
           "attestation": "principals", "supply_counts_collateral": False}


def sign(agent: str, role: str) -> dict:
    return act(agent, "sign_contract", contract_id=C1, role=role)


def confirm(agent: str) -> dict:
    return act(agent, "confirm_delivery", contract_id=C1)


def proposed(tmp_path, rules=CURRENT):
    run = make_run(tmp_path, rules=rules)
    step(run, act("a", "propose_contract", contract=offer()))
    return run


def status(run) -> str:
    return run.state.contracts[C1].status


def test_these_variants_are_the_defaults_of_new_runs():
    assert {name: getattr(Rules(), name) for name in CURRENT} == CURRENT


def test_arbitrator_may_sign_first_and_the_counterparty_activates(tmp_path):
    run = proposed(tmp_path)
    step(run, sign("c", "arbitrator"))  # turn 3: the arbitrator signs the bare proposal
    assert status(run) == "proposed"
    log = step(run, sign("b", "counterparty"))  # turn 4: the counterparty's signature completes it
    assert log.effects == [
        ev.ContractSigned(contract_id=C1, signer="b", role="counterparty", status="active", input_seq=log.inputs[0]),
        ev.CollateralLocked(contract_id=C1, agent="b", amount=20),
        ev.ContractActivated(contract_id=C1),
        ev.ContractPayment(contract_id=C1, payer="a", payee="b", amount=50, purpose="signing_bonus"),
    ]
    assert status(run) == "active"
    assert_accounting(run)


def test_repeat_signature_is_accepted_and_changes_nothing(tmp_path):
    run = proposed(tmp_path)
    step(run, sign("c", "arbitrator"))
    log = step(run, sign("c", "arbitrator"))
    assert log.effects == [] and balances(run) == {"a": 970, "b": 1000, "c": 990, "d": 1000}


def test_repeat_signature_on_an_activated_contract_is_a_duplicate(tmp_path):
    run = proposed(tmp_path)
    step(run, sign("c", "arbitrator"))
    step(run, sign("b", "counterparty"))
    assert rejected(step(run, sign("c", "arbitrator"))) == ("sign_contract", "duplicate")


def test_offer_stays_open_after_its_delivery_turn(tmp_path):
    run = proposed(tmp_path)
    step(run), step(run), step(run)  # turns 3-5: the delivery turn (4) passes unsigned
    assert status(run) == "proposed"
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))  # turn 6
    assert status(run) == "active"


def test_principals_confirmations_settle_at_once_outside_the_settlement_step(tmp_path):
    run = proposed(tmp_path)
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))  # turn 3: active
    step(run, confirm("a"))  # turn 4
    assert status(run) == "active"
    log = step(run, confirm("b"))  # turn 5: the second principal's confirmation settles it
    assert log.effects == [
        ev.DeliveryConfirmed(contract_id=C1, agent="b", input_seq=log.inputs[0]),
        ev.ContractPayment(contract_id=C1, payer="a", payee="b", amount=100, purpose="price"),
        ev.CollateralReleased(contract_id=C1, agent="a", amount=30),
        ev.CollateralReleased(contract_id=C1, agent="b", amount=20),
        ev.CollateralReleased(contract_id=C1, agent="c", amount=10),
        ev.ContractSettled(contract_id=C1, outcome="confirmed"),
    ]
    assert status(run) == "settled" and balances(run) == {"a": 850, "b": 1150, "c": 1000, "d": 1000}
    metrics = run.state.turns[-1]
    assert metrics.settled == [] and metrics.settled_count == 0  # the turn's contracts_settled does not list it
    assert_accounting(run)


def test_unconfirmed_contract_still_defaults_at_its_deadline(tmp_path):
    run = proposed(tmp_path)
    step(run, sign("b", "counterparty"), sign("c", "arbitrator"))
    step(run, confirm("a"))  # turn 4: only one principal confirms
    step(run), step(run)
    log = step(run)  # turn 7 = delivery 4 + window 3
    assert log.of(ev.ContractDefaulted) == [ev.ContractDefaulted(contract_id=C1, reason="confirmation_window_closed")]
    assert run.state.turns[-1].defaulted_count == 1


def test_supply_leaves_out_escrowed_collateral_unless_the_rules_count_it(tmp_path):
    new = proposed(tmp_path)
    old = proposed(tmp_path, rules={**CURRENT, "supply_counts_collateral": True})
    assert new.state.token_supply() == 4000 - 30 == old.state.token_supply() - 30


@pytest.mark.parametrize("version, nonce", [(1, None), (2, "ab" * 16)])
def test_older_genesis_upcasts_to_the_rules_it_was_played_with(version, nonce):
    newer = {**LEGACY_RULES, **RULES_BEFORE_V4, **RULES_BEFORE_V5, **RULES_BEFORE_V6}
    rules = {name: getattr(Rules(), name) for name in Rules.__struct_fields__ if name not in newer}
    genesis = ev.RunGenesis(run_id="r", seed=1, agents=["a"], config=msgspec.convert({}, ev.Config),
                            rules=Rules(), engine_key="", agent_keys={}, key_source="seed", library_version="x")
    data = msgspec.to_builtins(genesis)
    data["rules"] = rules  # what a version-1 or version-2 genesis held
    if nonce:
        data["nonce"] = nonce
    decoded = decode_payload("run_genesis", version, msgspec.msgpack.encode(data))
    assert {name: getattr(decoded.rules, name) for name in newer} == newer
    assert decoded.nonce == (nonce or msgspec.UNSET)
    other = 3 - version  # a v2 without a nonce, or a v1 with one, is not what that version wrote
    assert get_written_version(decoded, version) == version and get_written_version(decoded, other) != other


def test_new_genesis_is_written_as_version_6_and_decodes_as_is():
    genesis = ev.RunGenesis(run_id="r", seed=1, agents=["a"], config=msgspec.convert({}, ev.Config),
                            rules=Rules(), engine_key="", agent_keys={}, key_source="seed", library_version="x")
    assert payload_version(genesis) == 6
    assert decode_payload("run_genesis", 5, encode_payload(genesis)) == genesis
