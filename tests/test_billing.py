"""R3 inference fees, R12 study discount, R6 dividends and fee retention, R4 interest.

Default knobs unless a test says otherwise: rate 1.0, thinking discount 0.1,
commons threshold 100, interest 0.01, four cores. Turn 1 is played idle, so the
cores are owned by fill in core order (core_0 -> a, core_1 -> b, ...).
Expected numbers are worked by hand in the comments.
"""

from __future__ import annotations


import pytest

from _engine_kit import NO_BLOCK, account, act, assert_accounting, balances, make_run, rejected, step

from simledger.events import types as ev
from simledger.ledger.engine import compute_inference_fee, compute_interest
from simledger.events.config import RULES_BEFORE_V4, RULES_BEFORE_V6, Config


def fee_event(agent: str, thinking: int, output: int, fee: int, discounted: bool = False) -> ev.InferenceFeeCharged:
    return ev.InferenceFeeCharged(agent=agent, thinking_units=thinking, output_units=output, fee=fee,
                                  discounted=discounted)


# --- R3: the fee formula ------------------------------------------------------------------------


FEE_EDGES = [
    # (config, thinking, output, fee)
    ({}, 0, 0, 0),  # nothing used
    ({}, 0, 100, 0),  # output exactly at the commons threshold
    ({}, 0, 101, 1),  # one unit above
    ({}, 1000, 0, 0),  # 1,000 thinking x 0.1 = 100: exactly at the threshold
    ({}, 1010, 0, 1),  # 101 billable
    ({}, 1009, 0, 0),  # 100.9 - 100 = 0.9, rounded down
    ({}, 15, 99, 0),  # 1.5 + 99 - 100 = 0.5, rounded down
    ({}, 25, 99, 1),  # 2.5 + 99 - 100 = 1.5, rounded down
    ({}, 500, 200, 150),  # 50 + 200 - 100
    ({"base_inference_rate": 3.0}, 15, 100, 3),  # whole units: 1.5 thinking counts 1, 3 x 1
    ({"base_inference_rate": 3.0}, 25, 99, 3),  # 2 + 99 - 100 = 1 whole unit, 3 x 1
    ({"base_inference_rate": 3.0}, 0, 101, 3),  # 3 x 1
    ({"base_inference_rate": 0.29}, 0, 200, 29),  # 0.29 x 100 is exactly 29 (binary floats give 28.999...)
    ({"thinking_layer_discount": 0.29}, 100, 100, 29),  # 0.29 x 100 + 100 - 100 = 29 exactly
    ({"thinking_layer_discount": 1.0}, 60, 60, 20),  # no discount: 60 + 60 - 100
    ({"thinking_layer_discount": 0.0}, 10**6, 100, 0),  # thinking free: only output counts
    ({"commons_threshold_per_turn": 0}, 0, 1, 1),  # no free allowance
    ({"base_inference_rate": 0.0}, 0, 10**6, 0),  # free compute
]


@pytest.mark.parametrize("thinking, output, whole, fractional", [
    (15, 100, 3, 4),  # 1.5 thinking: whole 1 unit x 3; fractional 3 x 1.5 = 4.5, rounded down
    (19, 100, 3, 5),  # 1.9: whole 1 x 3; 3 x 1.9 = 5.7 -> 5
    (10, 100, 3, 3),  # a whole unit either way
    (5, 100, 0, 1),  # 0.5 thinking: no whole unit; 3 x 0.5 = 1.5 -> 1
    (0, 101, 3, 3),  # output only: no fraction to drop
])
def test_whole_billable_units_drop_the_fraction_before_the_rate(tmp_path, thinking, output, whole, fractional):
    """R3: under high compute cost (rate 3) the fraction of the discounted thinking is dropped before the rate
    triples it; older logs (``billable_units = "fractional"``) multiply it and round the fee once."""
    for rules, fee in (({}, whole), (RULES_BEFORE_V6, fractional)):
        run = make_run(tmp_path, base_inference_rate=3.0, rules=rules)
        log = step(run, act("a", "mine", thinking=thinking, output=output))
        assert [e.fee for e in log.of(ev.InferenceFeeCharged)] == ([fee] if fee else [])
        assert_accounting(run)


@pytest.mark.parametrize("config, thinking, output, fee", FEE_EDGES)
def test_inference_fee_formula(tmp_path, config, thinking, output, fee):
    run = make_run(tmp_path, **config)
    log = step(run, act("a", "mine", thinking=thinking, output=output))
    assert log.of(ev.InferenceFeeCharged) == ([fee_event("a", thinking, output, fee)] if fee else [])
    assert account(run, "a").balance == 1000 - fee + sum(d.amount for d in log.of(ev.DividendPaid) if d.owner == "a")
    assert compute_inference_fee(Config(**config), thinking, output) == fee
    assert_accounting(run)


def test_fee_may_overdraw(tmp_path):
    run = make_run(tmp_path, genesis=10, num_cores=1)
    log = step(run, act("d", "mine", output=150))
    # fee 50 from a balance of 10: d goes to -40 (fees overdraw, R3)
    assert log.of(ev.InferenceFeeCharged) == [fee_event("d", 0, 150, 50)]
    assert balances(run)["d"] == -40


def test_agents_without_input_are_not_billed(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine", output=150))
    assert [e.agent for e in log.of(ev.InferenceFeeCharged)] == ["a"]


def test_fees_billed_in_input_order_after_actions(tmp_path):
    run = make_run(tmp_path, num_cores=1)
    log = step(run, act("c", "stake", amount=1, output=101), act("b", "stake", amount=1, output=102))
    assert [type(e) for e in log.effects[:4]] == [ev.StakeLocked, ev.StakeLocked, ev.InferenceFeeCharged,
                                                  ev.InferenceFeeCharged]
    assert [(e.agent, e.fee) for e in log.of(ev.InferenceFeeCharged)] == [("c", 1), ("b", 2)]


def test_rejected_action_is_still_billed(tmp_path):
    run = make_run(tmp_path)
    # a stake of 0 is refused, but the agent still thought: 150 - 100 = 50
    log = step(run, act("a", "stake", amount=0, output=150))
    assert rejected(log) == ("stake", "invalid_amount")
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 50)]


def test_duplicate_input_is_billed_too(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine", output=150), act("a", "mine", output=120))
    assert rejected(log) == ("mine", "duplicate")
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 50), fee_event("a", 0, 120, 20)]


def test_malformed_unit_count_bills_zero(tmp_path):
    run = make_run(tmp_path)
    # thinking -1 is malformed and bills as 0; the valid 150 output units still bill 50
    log = step(run, act("a", "mine", thinking=-1, output=150))
    assert rejected(log) == ("mine", "malformed")
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 50)]


def test_accepted_job_not_billed(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "job", thinking=2000, output=500))
    # its 0.1 x 2000 + 500 - 100 = 600 units of compute are not billed; the job pays their price, 600 (R11)
    assert log.events[1:] == [ev.JobPaid(agent="a", amount=600, input_seq=log.inputs[0]), NO_BLOCK]
    assert balances(run)["a"] == 1600


def test_rejected_job_billed(tmp_path):
    run = make_run(tmp_path, rules={"job_cooldown_turns": 1})
    step(run, act("a", "job"))
    # second job in a row: refused (cooldown), so billed: 0.1 x 2000 + 500 - 100 = 600
    log = step(run, act("a", "job", thinking=2000, output=500))
    assert rejected(log) == ("job", "too_early")
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 2000, 500, 600)]


# --- R12: study discount -----------------------------------------------------------------------------


@pytest.mark.parametrize("output, undiscounted, fee", [
    (150, 50, 25),  # 50 halved
    (107, 7, 3),  # 7 x 0.5 = 3.5, rounded down
    (101, 1, 0),  # 1 x 0.5 = 0.5 -> 0: no fee event at all
])
def test_study_discount_halves_fee(tmp_path, output, undiscounted, fee):
    run = make_run(tmp_path)
    log = step(run, act("a", "study", output=output))
    # the study's own turn is already discounted
    assert log.of(ev.InferenceFeeCharged) == ([fee_event("a", 0, output, fee, discounted=True)] if fee else [])


def test_study_discount_lasts_through_duration(tmp_path):
    run = make_run(tmp_path)
    step(run, act("a", "study"))  # turn 2: discount through turn 7
    fees = {}
    for turn in range(3, 9):
        log = step(run, act("a", "mine", output=150))
        fees[turn] = [(e.fee, e.discounted) for e in log.of(ev.InferenceFeeCharged)]
    assert fees == {3: [(25, True)], 4: [(25, True)], 5: [(25, True)], 6: [(25, True)], 7: [(25, True)],
                    8: [(50, False)]}


def test_study_discount_follows_rules(tmp_path):
    run = make_run(tmp_path, rules={"study_discount": 0.25, "study_duration_turns": 0})
    log = step(run, act("a", "study", output=150))
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 37, discounted=True)]  # 50 x 0.75 = 37.5
    log = step(run, act("a", "mine", output=150))  # duration 0: only the study's turn
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 50)]


def test_rejected_study_gives_no_discount(tmp_path):
    run = make_run(tmp_path, genesis=19)
    log = step(run, act("a", "study", output=150))
    assert rejected(log) == ("study", "insufficient_funds")
    assert log.of(ev.InferenceFeeCharged) == [fee_event("a", 0, 150, 50)]


# --- R6: dividends and fee retention -------------------------------------------------------------------


def test_dividends_pay_core_owners_and_retain_remainder(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine", output=107))
    # pool 7 over 4 cores: floor(7 / 4) = 1 per core, 3 retained
    assert log.effects == [
        ev.MiningEntered(agent="a", input_seq=log.inputs[0]),
        fee_event("a", 0, 107, 7),
        ev.DividendPaid(owner="a", core_id="core_0", amount=1),
        ev.DividendPaid(owner="b", core_id="core_1", amount=1),
        ev.DividendPaid(owner="c", core_id="core_2", amount=1),
        ev.DividendPaid(owner="d", core_id="core_3", amount=1),
        ev.FeesRetained(amount=3),
        ev.BlockNotProduced(entrants=[ev.BlockEntry(agent="a", weight_ppm=10_000_000)], total_weight_ppm=10_000_000,
                            threshold_ppm=20_000_000),
    ]
    assert balances(run) == {"a": 994, "b": 1001, "c": 1001, "d": 1001}
    assert run.state.fee_pool == 0 and run.state.sunk == 3
    assert_accounting(run)


@pytest.mark.parametrize("num_cores, outputs, dividend, retained", [
    (4, [103], 0, 3),  # pool 3 < 4 cores: nothing paid, all retained
    (4, [104], 1, 0),  # pool 4: 1 each, nothing retained (no fees_retained event)
    (4, [105, 106], 2, 3),  # pool 5 + 6 = 11: 2 each, 3 retained
    (3, [110], 3, 1),  # pool 10 over 3 cores: 3 each, 1 retained
    (1, [150, 160], 110, 0),  # one core takes the whole pool of 50 + 60
    (5, [149], 9, 4),  # 5 cores, 4 agents: core_4 goes to a again (fill cycles), pool 49: 9 each, 4 retained
])
def test_dividend_floor_with_remainders(tmp_path, num_cores, outputs, dividend, retained):
    run = make_run(tmp_path, num_cores=num_cores)
    log = step(run, *[act(agent, "stake", amount=1, output=o) for agent, o in zip("cd", outputs)])
    assert [(e.core_id, e.amount) for e in log.of(ev.DividendPaid)] == (
        [(f"core_{i}", dividend) for i in range(num_cores)] if dividend else [])
    assert log.of(ev.FeesRetained) == ([ev.FeesRetained(amount=retained)] if retained else [])
    assert run.state.fee_pool == 0
    assert_accounting(run)


def test_turn_one_pays_no_dividends(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run, act("a", "mine", output=150))
    # no core is owned during turn 1: the whole pool of 50 is retained, then the auction resolves
    assert log.of(ev.DividendPaid) == [] and log.of(ev.FeesRetained) == [ev.FeesRetained(amount=50)]
    assert log.effects[-1] == ev.CoreAuctionResolved(awards=log.effects[-1].awards)
    assert log.all.index(log.of(ev.FeesRetained)[0]) < log.all.index(log.effects[-1])


def test_dividend_to_owner_of_several_cores(tmp_path):
    run = make_run(tmp_path, agents=["a", "b"], num_cores=4)
    # 2 agents, 4 cores: fill gives core_0 a, core_1 b, core_2 a, core_3 b; pool 40 -> 10 per core
    log = step(run, act("a", "mine", output=140))
    assert [(e.owner, e.core_id, e.amount) for e in log.of(ev.DividendPaid)] == [
        ("a", "core_0", 10), ("b", "core_1", 10), ("a", "core_2", 10), ("b", "core_3", 10)]
    assert balances(run) == {"a": 1000 - 40 + 20, "b": 1020}


# --- R4: interest ---------------------------------------------------------------------------------------------


def indebt(tmp_path, debts: dict[str, int], rules: dict | None = None, **config):
    """Return a run (two cores, owned by a and b) where each agent in ``debts`` ends turn 2 that far below zero.

    Genesis 100 each; an agent owing ``debt`` bills 200 + debt output units in turn 2:
    fee = 100 + debt, so 100 - fee = -debt. The pool goes to a and b as dividends.
    """
    run = make_run(tmp_path, genesis=100, num_cores=2, rules=rules, **config)
    step(run, *[act(agent, "mine", output=200 + debt) for agent, debt in debts.items()])
    assert {agent: balances(run)[agent] for agent in debts} == {agent: -debt for agent, debt in debts.items()}
    return run


@pytest.mark.parametrize("rate, debt, interest", [
    (0.01, 99, 0),  # 0.99, rounded down: no interest event
    (0.01, 100, 1),  # exactly 1
    (0.01, 199, 1),  # 1.99, rounded down
    (0.01, 250, 2),  # 2.5, rounded down
    (0.05, 199, 9),  # 9.95, rounded down
    (0.0, 10_000, 0),  # no interest
    (1.0, 30, 30),  # the whole debt
])
def test_interest_rounding(tmp_path, rate, debt, interest):
    run = indebt(tmp_path, {"d": debt}, interest_rate_per_turn=rate)
    log = step(run, act("d", "mine"))  # a billed input (fee 0): interest comes with the bill
    assert log.of(ev.InterestCharged) == ([ev.InterestCharged(agent="d", amount=interest)] if interest else [])
    assert balances(run)["d"] == -debt - interest
    assert compute_interest(rate, debt) == interest
    assert_accounting(run)


def test_interest_paid_to_core_owners_remainder_retained(tmp_path):
    run = indebt(tmp_path, {"c": 150, "d": 250}, rules=RULES_BEFORE_V4)
    before = balances(run)
    log = step(run)
    # c: floor(1.5) = 1, d: floor(2.5) = 2; total 3 over 2 owned cores: 1 each to a and b, 1 leaves the supply
    assert log.effects == [
        ev.InterestCharged(agent="c", amount=1),
        ev.InterestCharged(agent="d", amount=2),
        ev.InterestPaid(owner="a", core_id="core_0", amount=1),
        ev.InterestPaid(owner="b", core_id="core_1", amount=1),
    ]
    after = balances(run)
    assert {a: after[a] - before[a] for a in after} == {"a": 1, "b": 1, "c": -1, "d": -2}
    assert run.state.token_supply() == sum(before.values()) - 1
    assert_accounting(run)


def test_interest_too_small_to_share_leaves_supply(tmp_path):
    run = indebt(tmp_path, {"d": 150}, rules=RULES_BEFORE_V4)
    log = step(run)
    # 1 token of interest over 2 cores: floor(1 / 2) = 0 each, the token is destroyed
    assert log.effects == [ev.InterestCharged(agent="d", amount=1)]
    # turn 2's pool of 250 went whole to the two owners (125 each): the only sink so far is this token
    assert (run.state.sunk, run.state.minted) == (1, 0)


def test_no_interest_in_the_turn_debt_appears(tmp_path):
    run = make_run(tmp_path, genesis=100, num_cores=2)
    log = step(run, act("d", "mine", output=500))
    # d is at -300 after this turn's billing, but its opening debt was 0
    assert log.of(ev.InterestCharged) == []


def test_interest_is_simple_not_compound(tmp_path):
    run = indebt(tmp_path, {"d": 199})
    charged = [[e.amount for e in step(run, act("d", "mine")).of(ev.InterestCharged)] for _ in range(3)]
    # principal stays 199: floor(1.99) = 1 every turn; compounding would charge floor(2.00) = 2 from the second turn
    assert charged == [[1], [1], [1]]
    assert account(run, "d").balance == -202 and account(run, "d").interest_paid == 3


def test_interest_on_opening_debt_even_if_repaid_this_turn(tmp_path):
    run = indebt(tmp_path, {"d": 250})
    # a holds 100 + 175 of turn 2's dividends = 275
    log = step(run, act("a", "transfer", to="d", amount=260), act("d", "mine"))
    # d opened the turn owing 250: charged 2 though it ends the turn in credit
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]
    assert balances(run)["d"] == -250 + 260 - 2


def test_interest_charged_to_agents_that_do_not_act_under_every_debtor(tmp_path):
    run = indebt(tmp_path, {"d": 250}, rules=RULES_BEFORE_V4)
    log = step(run, act("a", "mine"))
    assert log.of(ev.InterestCharged) == [ev.InterestCharged(agent="d", amount=2)]


def test_interest_comes_after_fees_before_dividends(tmp_path):
    run = indebt(tmp_path, {"d": 250}, rules=RULES_BEFORE_V4)
    log = step(run, act("c", "mine", output=110))
    kinds = [type(e) for e in log.effects]
    assert kinds == [ev.MiningEntered, ev.InferenceFeeCharged, ev.InterestCharged, ev.InterestPaid, ev.InterestPaid,
                     ev.DividendPaid, ev.DividendPaid, ev.BlockNotProduced]
