"""R2 and the simple actions (R7, R8, R10, R11, R12): each action's effect, and every rejection.

Pre/post: a 4-agent run (a, b, c, d; 1,000 tokens each; turn 1 played idle, so the
cores are owned), one turn of hand-written inputs with zero units (no fees), then the
exact events of that turn and the state after it.
"""

from __future__ import annotations


import pytest

from _engine_kit import NO_BLOCK, PPM, account, act, assert_accounting, balances, make_run, rejected, step

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V5 as STAKED_AT_ONCE
from simledger.ledger.errors import BadInput
from simledger.ledger.reexecute import reexecute


# --- recording ---------------------------------------------------------------------


def test_input_is_recorded_exactly_as_received(tmp_path):
    run = make_run(tmp_path)
    inp = {"agent_id": "a", "action": {"action": "mine", "note": "extra fields are kept"}, "thinking": "hmm",
           "speech": "hello", "thinking_units": 7, "output_units": 9}
    log = step(run, inp)
    assert log.events[0] == ev.ActionSubmitted(agent="a", action={"action": "mine", "note": "extra fields are kept"},
                                               thinking_units=7, output_units=9, thinking="hmm", speech="hello")


def test_every_turn_ends_with_one_seal_over_its_events(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine"), act("b", "stake", amount=1))
    assert [type(e) for e in log.all].count(ev.TurnSealed) == 1
    assert log.seal.turn == 2 and log.seal.first_seq == log.seqs[0] and log.seal.event_count == len(log.events)


def test_inputs_apply_in_submission_order(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    # b's transfer comes first, so a can stake 1,500 of its 2,000
    log = step(run, act("b", "transfer", to="a", amount=1000), act("a", "stake", amount=1500))
    assert log.effects == [ev.TokensTransferred(sender="b", recipient="a", amount=1000, fee=0, input_seq=log.inputs[0]),
                           ev.StakeLocked(agent="a", amount=1500, input_seq=log.inputs[1])]


def test_inputs_apply_in_submission_order_reversed(tmp_path):
    run = make_run(tmp_path)
    # the same two inputs the other way round: a has only 1,000 when it stakes
    log = step(run, act("a", "stake", amount=1500), act("b", "transfer", to="a", amount=1000))
    assert rejected(log) == ("stake", "insufficient_funds")
    assert account(run, "a").staked == 0 and account(run, "a").balance == 2000


def test_unknown_submitter_refused_before_recording(tmp_path):
    run = make_run(tmp_path)
    head = run.store.head()
    with pytest.raises(BadInput, match="unknown agent 'zed'"):
        run.step([act("zed", "mine")])
    assert run.store.head() == head and run.next_turn == 2


def test_duplicate_input_rejected(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    log = step(run, act("a", "stake", amount=10), act("a", "stake", amount=20))
    # the first input counts, the second (same agent, same turn) is refused
    assert log.effects == [
        ev.StakeLocked(agent="a", amount=10, input_seq=log.inputs[0]),
        ev.ActionRejected(agent="a", action="stake", reason="duplicate", detail="a already submitted an input this turn",
                          input_seq=log.inputs[1]),
    ]
    assert account(run, "a").staked == 10


@pytest.mark.parametrize("raw, action", [
    (None, "unknown"),  # no action at all
    ("mine", "unknown"),  # a bare string, not an object
    ([1, 2], "unknown"),  # an array
    ({}, "unknown"),  # no action name
    ({"action": "fly"}, "unknown"),  # an action that does not exist
    ({"action": "stake"}, "stake"),  # missing amount
    ({"action": "stake", "amount": "5"}, "stake"),  # amount is a string
    ({"action": "stake", "amount": 1.5}, "stake"),  # amount is a float
    ({"action": "stake", "amount": True}, "stake"),  # amount is a bool
    ({"action": "stake", "amount": 2**70}, "stake"),  # amount beyond int64 (recorded as a marker string)
    ({"action": "transfer", "amount": 5}, "transfer"),  # missing recipient
    ({"action": "sign_contract", "contract_id": "contract_1", "role": "judge"}, "sign_contract"),  # no such role
    ({"action": "bid_core", "core_id": 0, "amount": 5}, "bid_core"),  # core id is not a string
    ({"action": "propose_contract", "contract": {"counterparty": "b"}}, "propose_contract"),  # incomplete offer
])
def test_invalid_action_malformed(tmp_path, raw, action):
    run = make_run(tmp_path)
    before = balances(run)
    log = step(run, act("a", raw=raw))
    assert [(type(e), getattr(e, "reason", None)) for e in log.effects] == [(ev.ActionRejected, "malformed")]
    assert log.effects[0].action == action and log.effects[0].input_seq == log.inputs[0]
    assert balances(run) == before


@pytest.mark.parametrize("raw", [
    {"action": "bid_core", "core_id": None, "amount": None},  # two bad fields, not in sorted order
    {"amount": None, "core_id": None, "action": "bid_core"},  # the same, keys in another order
])
def test_rejection_independent_of_key_order(tmp_path, raw):
    run = make_run(tmp_path)
    log = step(run, act("a", raw=raw))
    # the log stores keys sorted; the engine must decide from that recorded form (R5), so the
    # first field msgspec complains about is the same whatever order the client sent
    assert log.effects[0].detail == "Expected `int`, got `null` - at `$.amount`"
    run.close()
    assert reexecute(run.store.path).ok


def test_invalid_action_out_of_range_integer_recorded_as_marker(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "stake", amount=2**70))
    assert log.events[0].action == {"action": "stake", "amount": "<int out of range: 1180591620717411303424>"}
    assert log.effects[0].detail == "Expected `int`, got `str` - at `$.amount`"


def test_invalid_action_non_finite_float_recorded_as_marker(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "stake", amount=float("inf")))
    assert log.events[0].action == {"action": "stake", "amount": "<float inf>"}
    assert rejected(log) == ("stake", "malformed")


def test_nan_units_recorded_as_marker_and_rejected(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine", thinking=float("nan")))
    assert log.events[0].thinking_units == "<float nan>"
    assert rejected(log) == ("mine", "malformed") and log.of(ev.InferenceFeeCharged) == []


def test_deep_nesting_recorded_as_marker(tmp_path):
    run = make_run(tmp_path)
    deep = 1
    for _ in range(40):
        deep = [deep]
    log = step(run, act("a", raw={"action": "mine", "note": deep}))
    recorded = log.events[0].action["note"]
    depth = 0
    while isinstance(recorded, list):
        recorded, depth = recorded[0], depth + 1
    # cut at depth 32 (the action object itself is depth 0); the extra field does not make the action malformed
    assert (depth, recorded) == (32, "<too deep>")
    assert log.effects[0] == ev.MiningEntered(agent="a", input_seq=log.inputs[0])


@pytest.mark.parametrize("thinking, output", [
    (-1, 0),  # negative thinking units
    (0, -1),  # negative output units
    (10**9 + 1, 0),  # above the 10^9 cap
    ("many", 0),  # not a number
    (True, 0),  # a bool is not a count
    (1.0, 0),  # a float is not a count
    (None, 0),  # missing
])
def test_invalid_units_malformed(tmp_path, thinking, output):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine", thinking=thinking, output=output))
    assert log.effects == [ev.ActionRejected(agent="a", action="mine", reason="malformed",
                                             detail="thinking_units and output_units must be integers in 0..1000000000",
                                             input_seq=log.inputs[0])]
    assert run.state.miners == [] and account(run, "a").balance == 1000  # no fee: the bad count bills 0


def test_units_at_cap_accepted(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    log = step(run, act("a", "stake", amount=1, thinking=10**9, output=0))
    # 10^9 thinking units x 0.1 = 10^8 billable, minus 100 commons = 99,999,900 tokens of fee
    assert log.effects[0] == ev.StakeLocked(agent="a", amount=1, input_seq=log.inputs[0])
    assert log.of(ev.InferenceFeeCharged)[0].fee == 99_999_900


# --- mine --------------------------------------------------------------------------


def test_mine_enters_the_lottery(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine"))
    entry = ev.BlockEntry(agent="a", weight_ppm=10 * PPM)
    assert log.effects == [ev.MiningEntered(agent="a", input_seq=log.inputs[0]),
                           ev.BlockNotProduced(entrants=[entry], total_weight_ppm=10 * PPM, threshold_ppm=20 * PPM)]


# --- stake, unstake (more in test_stake.py) ------------------------------------------


def test_stake_locks_tokens(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    log = step(run, act("a", "stake", amount=300))
    assert log.effects == [ev.StakeLocked(agent="a", amount=300, input_seq=log.inputs[0])]
    assert (account(run, "a").balance, account(run, "a").staked) == (700, 300)
    assert run.state.token_supply() == 4000  # staking moves tokens, it neither mints nor burns
    assert_accounting(run)


def test_stake_whole_balance(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    step(run, act("a", "stake", amount=1000))
    assert (account(run, "a").balance, account(run, "a").staked) == (0, 1000)


@pytest.mark.parametrize("amount, reason, detail", [
    (0, "invalid_amount", "amount must be a positive integer, got 0"),  # zero
    (-5, "invalid_amount", "amount must be a positive integer, got -5"),  # negative
    (1001, "insufficient_funds", "a has 1000, stake needs 1001"),  # one more than the balance
])
def test_invalid_stake(tmp_path, amount, reason, detail):
    run = make_run(tmp_path)
    log = step(run, act("a", "stake", amount=amount))
    assert log.effects == [ev.ActionRejected(agent="a", action="stake", reason=reason, detail=detail,
                                             input_seq=log.inputs[0])]
    assert account(run, "a").staked == 0


def test_invalid_stake_from_negative_balance(tmp_path):
    run = make_run(tmp_path, genesis=100)
    # 350 output units bill 250: a ends turn 2 at -150
    step(run, act("a", "mine", output=350))
    log = step(run, act("a", "stake", amount=1))
    assert rejected(log) == ("stake", "insufficient_funds")


def test_unstake_requests_release(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    step(run, act("a", "stake", amount=300))
    log = step(run, act("a", "unstake", amount=100))
    # turn 3 + unstake_delay_turns 5 = turn 8
    assert log.effects == [ev.UnstakeRequested(agent="a", amount=100, release_turn=8, input_seq=log.inputs[0])]
    a = account(run, "a")
    assert (a.balance, a.staked, a.pending_unstakes) == (700, 200, [(8, 100)])
    assert_accounting(run)


@pytest.mark.parametrize("amount, reason", [
    (0, "invalid_amount"),  # zero
    (-1, "invalid_amount"),  # negative
    (301, "insufficient_funds"),  # one more than staked
])
def test_invalid_unstake(tmp_path, amount, reason):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    step(run, act("a", "stake", amount=300))
    log = step(run, act("a", "unstake", amount=amount))
    assert rejected(log) == ("unstake", reason)
    assert account(run, "a").staked == 300


def test_invalid_unstake_nothing_staked(tmp_path):
    run = make_run(tmp_path)
    # never staked: even 1 is too much
    log = step(run, act("a", "unstake", amount=1))
    assert log.effects == [ev.ActionRejected(agent="a", action="unstake", reason="insufficient_funds",
                                             detail="a has 0 staked, unstake needs 1", input_seq=log.inputs[0])]


# --- burn ------------------------------------------------------------------------------


def test_burn_destroys_tokens(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "burn", amount=50))
    # burnt at turn 2, matures at 2 + burn_maturity_turns 3
    assert log.effects == [ev.TokensBurned(agent="a", amount=50, matures_turn=5, input_seq=log.inputs[0])]
    assert account(run, "a").balance == 950 and account(run, "a").burns == [(5, 50)]
    assert run.state.token_supply() == 3950 and run.state.sunk == 50
    assert_accounting(run)


@pytest.mark.parametrize("amount, reason", [
    (0, "invalid_amount"),  # zero
    (-50, "invalid_amount"),  # negative
    (1001, "insufficient_funds"),  # one more than the balance
])
def test_invalid_burn(tmp_path, amount, reason):
    run = make_run(tmp_path)
    log = step(run, act("a", "burn", amount=amount))
    assert rejected(log) == ("burn", reason)
    assert account(run, "a").burns == [] and run.state.sunk == 0


# --- transfer ----------------------------------------------------------------------------


def test_transfer_moves_amount_and_destroys_fee(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "transfer", to="b", amount=100, fee=3))
    assert log.effects == [ev.TokensTransferred(sender="a", recipient="b", amount=100, fee=3,
                                                input_seq=log.inputs[0])]
    # a pays 100 + 3, b gets 100, the fee leaves the supply
    assert balances(run) == {"a": 897, "b": 1100, "c": 1000, "d": 1000}
    assert run.state.sunk == 3
    assert_accounting(run)


def test_transfer_whole_balance_with_fee(tmp_path):
    run = make_run(tmp_path)
    # amount + fee exactly the balance
    step(run, act("a", "transfer", to="b", amount=990, fee=10))
    assert balances(run)["a"] == 0


@pytest.mark.parametrize("fields, reason", [
    ({"to": "zed", "amount": 10}, "unknown_agent"),  # recipient not in the run
    ({"to": "a", "amount": 10}, "self_dealing"),  # to oneself
    ({"to": "b", "amount": 0}, "invalid_amount"),  # zero amount
    ({"to": "b", "amount": -10}, "invalid_amount"),  # negative amount
    ({"to": "b", "amount": 10, "fee": -1}, "invalid_amount"),  # fee below transfer_fee_min (0)
    ({"to": "b", "amount": 1000, "fee": 1}, "insufficient_funds"),  # amount + fee one above the balance
])
def test_invalid_transfer(tmp_path, fields, reason):
    run = make_run(tmp_path)
    log = step(run, act("a", "transfer", **fields))
    assert rejected(log) == ("transfer", reason)
    assert balances(run) == {"a": 1000, "b": 1000, "c": 1000, "d": 1000}


def test_invalid_transfer_fee_below_rules_minimum(tmp_path):
    run = make_run(tmp_path, rules={"transfer_fee_min": 2})
    # fee 1 under a minimum of 2
    log = step(run, act("a", "transfer", to="b", amount=10, fee=1))
    assert log.effects == [ev.ActionRejected(agent="a", action="transfer", reason="invalid_amount",
                                             detail="fee must be >= 2, got 1", input_seq=log.inputs[0])]


# --- job -------------------------------------------------------------------------------------
# Pay by units (job_pay = "units", logs before the money rules); the default pay is pinned in test_money_rules.py.
UNITS_PAY = {"job_pay": "units"}


@pytest.mark.parametrize("rate, pay", [
    (1.0, 28),  # job_pay_units 28 x 1
    (3.0, 84),  # 28 x 3 (high compute cost)
    (0.1, 2),  # 28 x 0.1 = 2.8, rounded down
    (1.5, 42),  # 28 x 1.5
    (0.29, 8),  # 28 x 0.29 = 8.12, rounded down
    (0.0, 0),  # free compute: the job pays nothing
])
def test_job_pays_indexed_wage(tmp_path, rate, pay):
    run = make_run(tmp_path, rules=UNITS_PAY, base_inference_rate=rate)
    log = step(run, act("a", "job"))
    assert log.effects == [ev.JobPaid(agent="a", amount=pay, input_seq=log.inputs[0])]
    assert balances(run)["a"] == 1000 + pay and run.state.minted == pay
    assert_accounting(run)


def test_job_pay_follows_rules_units(tmp_path):
    run = make_run(tmp_path, rules={**UNITS_PAY, "job_pay_units": 40}, base_inference_rate=0.5)
    log = step(run, act("a", "job"))
    assert log.effects[0].amount == 20  # 40 x 0.5


def test_invalid_job_during_cooldown(tmp_path):
    run = make_run(tmp_path, rules={**UNITS_PAY, "job_cooldown_turns": 1})
    step(run, act("a", "job"))  # turn 2
    log = step(run, act("a", "job"))  # turn 3: cooldown 1 forbids two turns running
    assert log.effects == [ev.ActionRejected(agent="a", action="job", reason="too_early",
                                             detail="a took a job at turn 2; next job from turn 4",
                                             input_seq=log.inputs[0])]
    log = step(run, act("a", "job"))  # turn 4
    assert log.effects == [ev.JobPaid(agent="a", amount=28, input_seq=log.inputs[0])]


def test_job_cooldown_is_per_agent(tmp_path):
    run = make_run(tmp_path, rules={**UNITS_PAY, "job_cooldown_turns": 1})
    step(run, act("a", "job"))
    log = step(run, act("b", "job"))
    assert log.effects == [ev.JobPaid(agent="b", amount=28, input_seq=log.inputs[0])]


def test_job_every_turn_without_cooldown(tmp_path):
    run = make_run(tmp_path, rules={"job_cooldown_turns": 0})
    step(run, act("a", "job"))
    log = step(run, act("a", "job"))
    assert [type(e) for e in log.effects] == [ev.JobPaid]


def test_job_cooldown_of_two(tmp_path):
    run = make_run(tmp_path, rules={"job_cooldown_turns": 2})
    step(run, act("a", "job"))  # turn 2
    step(run)  # turn 3
    assert rejected(step(run, act("a", "job"))) == ("job", "too_early")  # turn 4: still cooling down
    assert [type(e) for e in step(run, act("a", "job")).effects] == [ev.JobPaid]  # turn 5


# --- study -------------------------------------------------------------------------------------


def test_study_costs_and_opens_discount_window(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "study"))
    # turn 2 + study_duration_turns 5 = discount through turn 7
    assert log.effects == [ev.StudyCompleted(agent="a", cost=20, discount_until_turn=7, input_seq=log.inputs[0])]
    assert balances(run)["a"] == 980 and run.state.sunk == 20 and account(run, "a").study_until == 7
    assert_accounting(run)


def test_study_with_exactly_its_cost(tmp_path):
    run = make_run(tmp_path, genesis=20)
    step(run, act("a", "study"))
    assert balances(run)["a"] == 0


def test_invalid_study_insufficient_funds(tmp_path):
    run = make_run(tmp_path, genesis=19)
    # one token short of the study cost (20)
    log = step(run, act("a", "study"))
    assert log.effects == [ev.ActionRejected(agent="a", action="study", reason="insufficient_funds",
                                             detail="a has 19, study needs 20", input_seq=log.inputs[0])]


def test_study_again_extends_window(tmp_path):
    run = make_run(tmp_path)
    step(run, act("a", "study"))  # turn 2: until 7
    step(run, act("a", "study"))  # turn 3: until 8
    assert account(run, "a").study_until == 8 and balances(run)["a"] == 960


def test_quiet_turn_emits_only_empty_lottery_and_seal(tmp_path):
    run = make_run(tmp_path)
    log = step(run)
    assert log.events == [NO_BLOCK] and isinstance(log.seal, ev.TurnSealed)


def test_text_that_is_not_unicode_is_recorded_as_a_marker_and_the_run_goes_on(tmp_path):
    run = make_run(tmp_path)
    before = run.state.sealed_turn
    # a lone surrogate cannot be encoded as UTF-8: in a free-text field, a dict key and a recipient id
    step(run, {"agent_id": "a", "thinking": "\ud800", "action": {"action": "transfer", "to": "\udfff", "amount": 1},
               "speech": {"\ud801": 1}, "thinking_units": 0, "output_units": 0})
    assert run.state.sealed_turn == before + 1
    errors = run.state.turns[-1].errors
    assert [(e["agent"], e["reason"]) for e in errors] == [("a", "unknown_agent")]
    assert reexecute(run.store.path).ok
