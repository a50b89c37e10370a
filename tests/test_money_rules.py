"""The money rules of new runs (R4 interest with the bill, left to the supply; R11 a job paid its compute's price),
their variants in older logs, and the version-3 genesis that predates them.

Default knobs unless a test says otherwise: rate 1.0, thinking discount 0.1, commons
threshold 100, interest 0.01. Expected numbers are worked by hand in the comments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

from _engine_kit import NO_BLOCK, account, act, assert_accounting, balances, make_run, step

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V4, RULES_BEFORE_V5, Rules
from simledger.events.envelope import decode_payload, get_written_version
from simledger.ledger.reexecute import reexecute
from simledger.ledger.verify import verify_log

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
import logtools as lt  # noqa: E402

V3_LOG = Path(__file__).parent / "fixtures" / "genesis_v3.db"


def indebted(tmp_path, rules: dict | None = None, **config):
    """Return a run (two cores, owned by a and b) where d ends turn 2 at -250 (fee 100 + 250 on genesis 100)."""
    run = make_run(tmp_path, genesis=100, num_cores=2, rules=rules, **config)
    step(run, act("d", "mine", output=450))
    assert balances(run)["d"] == -250
    return run


# --- R11: a job is paid the price of its compute --------------------------------------------------


@pytest.mark.parametrize("config, thinking, output, pay", [
    ({}, 2000, 500, 600),  # 0.1 x 2000 + 500 - 100
    ({"base_inference_rate": 3.0}, 500, 200, 450),  # 3 x (50 + 200 - 100): the pay follows the price
    ({"base_inference_rate": 3.0, "commons_threshold_per_turn": 60}, 0, 100, 120),  # 3 x (100 - 60)
    ({}, 100, 50, 0),  # within the commons allowance: the compute cost nothing, the job pays nothing
])
def test_job_pays_the_price_of_its_compute(tmp_path, config, thinking, output, pay):
    run = make_run(tmp_path, **config)
    log = step(run, act("a", "job", thinking=thinking, output=output))
    # paid in the billing step, instead of the bill
    assert log.events[1:] == [ev.JobPaid(agent="a", amount=pay, input_seq=log.inputs[0]), NO_BLOCK]
    assert balances(run)["a"] == 1000 + pay and run.state.minted == pay
    assert_accounting(run)


def test_job_pay_is_the_undiscounted_price(tmp_path):
    run = make_run(tmp_path)
    step(run, act("a", "study"))  # fees halved through turn 7
    log = step(run, act("a", "job", output=300))
    assert log.of(ev.JobPaid)[0].amount == 200  # 300 - 100, not halved: the discount is on the bill


def test_job_pays_units_in_older_logs(tmp_path):
    run = make_run(tmp_path, rules=RULES_BEFORE_V4)
    log = step(run, act("a", "job", thinking=2000, output=500))
    # 28 units at rate 1, paid in the action step; the 600 units of compute are still not billed
    assert log.events[1:] == [ev.JobPaid(agent="a", amount=28, input_seq=log.inputs[0]), NO_BLOCK]


# --- R4: interest comes with the bill and leaves the supply -----------------------------------------


def test_interest_is_charged_with_the_bill_and_leaves_the_supply(tmp_path):
    run = indebted(tmp_path)
    sunk = run.state.sunk
    log = step(run, act("d", "mine"))  # billed (fee 0): floor(0.01 x 250) = 2
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]
    assert log.of(ev.InterestPaid) == []
    assert balances(run)["d"] == -252 and run.state.sunk == sunk + 2
    assert_accounting(run)


def test_no_interest_in_a_job_turn(tmp_path):
    run = indebted(tmp_path)
    log = step(run, act("d", "job", output=150))
    # the job is not billed, so it carries no interest; it is paid 50 for its compute
    assert log.of(ev.InterestCharged) == []
    assert balances(run)["d"] == -250 + 50
    log = step(run, act("d", "mine"))  # next turn billed again: floor(0.01 x 200) = 2
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]
    assert account(run, "d").interest_paid == 2


def test_no_interest_without_an_input(tmp_path):
    run = indebted(tmp_path)
    assert step(run, act("a", "mine")).of(ev.InterestCharged) == []


def test_rejected_job_carries_interest(tmp_path):
    run = indebted(tmp_path, rules={"job_cooldown_turns": 1})
    step(run, act("d", "job"))
    log = step(run, act("d", "job"))  # refused (cooldown): billed, so interest is charged
    assert [e.reason for e in log.of(ev.ActionRejected)] == ["too_early"]
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]


def test_older_logs_charge_every_debtor_and_pay_the_owners(tmp_path):
    run = indebted(tmp_path, rules=RULES_BEFORE_V4)
    log = step(run, act("d", "job"))
    # every debtor pays on its opening debt, job or not; 2 over two owned cores: 1 each to a and b
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]
    assert log.of(ev.InterestPaid) == [ev.InterestPaid(owner="a", core_id="core_0", amount=1),
                                       ev.InterestPaid(owner="b", core_id="core_1", amount=1)]


# --- the version-3 genesis -----------------------------------------------------------------------


def as_version_3(genesis: ev.RunGenesis) -> dict:
    """Return the genesis as a version-3 writer stored it: rules without the money rules."""
    data = msgspec.to_builtins(genesis)
    data["rules"] = {k: v for k, v in data["rules"].items() if k not in {**RULES_BEFORE_V4, **RULES_BEFORE_V5}}
    return data


def test_version_3_genesis_upcasts_to_the_money_rules_it_was_played_with():
    genesis = ev.RunGenesis(run_id="r", seed=1, agents=["a"], config=msgspec.convert({}, ev.Config),
                            rules=Rules(job_pay_units=33), engine_key="", agent_keys={}, key_source="seed",
                            library_version="x")
    decoded = decode_payload("run_genesis", 3, msgspec.msgpack.encode(as_version_3(genesis)))
    assert {name: getattr(decoded.rules, name) for name in RULES_BEFORE_V4} == RULES_BEFORE_V4
    assert decoded.rules.job_pay_units == 33  # what the log recorded stays
    assert get_written_version(decoded, 3) == 3 and get_written_version(decoded, 4) == 4


def test_a_version_3_log_verifies_and_reexecutes_exactly():
    """genesis_v3.db was written by the last version-3 writer (commit 00c0c32: high compute cost with 200
    genesis tokens, seed 11, 8 agents, 6 turns); it replays with the money rules it was played with."""
    assert verify_log(V3_LOG).ok
    (genesis_row, *rows) = lt.read_rows(V3_LOG)
    assert genesis_row["payload_version"] == 3
    assert {name: getattr(lt.decoded(genesis_row).rules, name) for name in RULES_BEFORE_V4} == RULES_BEFORE_V4
    kinds = {(r["turn"], r["kind"], r["actor"]) for r in rows}
    # debtors worked and still paid interest, and the owners were paid it: the old rules are in force
    assert any((t, "interest_charged", a) in kinds for t, k, a in kinds if k == "job_paid")
    assert any(k == "interest_paid" for _, k, _ in kinds)
    result = reexecute(V3_LOG)
    assert result.ok, result.divergence
