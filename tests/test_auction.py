"""R13: the opening core auction: all-pay bids, highest wins, ties to the earliest, fill of unbid cores.

Runs start at turn 1 here (the auction turn): a, b, c, d, 1,000 tokens each, four cores.
"""

from __future__ import annotations


import pytest

from _engine_kit import PPM, act, assert_accounting, balances, make_run, rejected, step

from simledger.events import types as ev


def bid(agent: str, core_id: str, amount: int) -> dict:
    return act(agent, "bid_core", core_id=core_id, amount=amount)


def award(core_id: str, owner: str, price: int = 0) -> ev.CoreAward:
    return ev.CoreAward(core_id=core_id, owner=owner, price=price, proportion_ppm=PPM, by="bid" if price else "fill")


def auction(log) -> list[ev.CoreAward]:
    (resolved,) = log.of(ev.CoreAuctionResolved)
    return resolved.awards


def test_highest_bid_wins_all_pay(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run, bid("a", "core_0", 100), bid("b", "core_0", 150), bid("c", "core_1", 50))
    assert log.effects == [
        ev.CoreBidPlaced(agent="a", core_id="core_0", amount=100, input_seq=log.inputs[0]),
        ev.CoreBidPlaced(agent="b", core_id="core_0", amount=150, input_seq=log.inputs[1]),
        ev.CoreBidPlaced(agent="c", core_id="core_1", amount=50, input_seq=log.inputs[2]),
        # unbid core_2 and core_3 go to the agents without a core, sorted: a, d
        ev.CoreAuctionResolved(awards=[award("core_0", "b", 150), award("core_1", "c", 50), award("core_2", "a"),
                                       award("core_3", "d")]),
    ]
    # all-pay: a's losing bid is spent too
    assert balances(run) == {"a": 900, "b": 850, "c": 950, "d": 1000}
    assert run.state.sunk == 300 and run.state.token_supply() == 3700
    assert run.state.cores == {"core_0": ("b", PPM), "core_1": ("c", PPM), "core_2": ("a", PPM),
                               "core_3": ("d", PPM)}
    assert run.state.core_bids == []
    assert_accounting(run)


def test_auction_resolves_after_the_turn_lottery_and_settlement(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run, bid("a", "core_0", 10))
    assert isinstance(log.events[-1], ev.CoreAuctionResolved)
    assert log.all.index(log.of(ev.BlockNotProduced)[0]) < log.all.index(log.events[-1])


def test_tie_goes_to_earliest_bid(tmp_path):
    run = make_run(tmp_path, auction=False)
    # d bids first: it wins the tie though a sorts before it
    log = step(run, bid("d", "core_0", 100), bid("a", "core_0", 100))
    assert auction(log)[0] == award("core_0", "d", 100)
    assert balances(run) == {"a": 900, "b": 1000, "c": 1000, "d": 900}


def test_higher_later_bid_beats_earlier(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run, bid("d", "core_0", 100), bid("a", "core_0", 101))
    assert auction(log)[0] == award("core_0", "a", 101)


def test_no_bids_fill_cores_in_order(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run)
    assert auction(log) == [award("core_0", "a"), award("core_1", "b"), award("core_2", "c"), award("core_3", "d")]
    assert run.state.sunk == 0


@pytest.mark.parametrize("num_cores, bids, owners", [
    (6, [], ["a", "b", "c", "d", "a", "b"]),  # more cores than agents: the fill cycles through everyone
    (6, [("b", "core_0", 5)], ["b", "a", "c", "d", "a", "b"]),  # non-owners first (a, c, d), then all agents again
    (2, [("c", "core_1", 5)], ["a", "c"]),  # fewer cores: the first non-owner fills core_0
    (1, [], ["a"]),
])
def test_fill_of_unbid_cores(tmp_path, num_cores, bids, owners):
    run = make_run(tmp_path, auction=False, num_cores=num_cores)
    log = step(run, *[bid(*b) for b in bids])
    assert [a.owner for a in auction(log)] == owners
    assert [a.by for a in auction(log)] == ["bid" if any(b[1] == a.core_id for b in bids) else "fill"
                                            for a in auction(log)]


def test_bid_of_whole_balance(tmp_path):
    run = make_run(tmp_path, auction=False)
    log = step(run, bid("a", "core_3", 1000))
    assert auction(log)[3] == award("core_3", "a", 1000) and balances(run)["a"] == 0


@pytest.mark.parametrize("inputs, reason", [
    ([bid("a", "core_4", 10)], "unknown_core"),  # four cores: core_0..core_3
    ([bid("a", "cpu", 10)], "unknown_core"),  # not a core id at all
    ([bid("a", "core_0", 0)], "invalid_amount"),  # zero bid
    ([bid("a", "core_0", -10)], "invalid_amount"),  # negative bid
    ([bid("a", "core_0", 1001)], "insufficient_funds"),  # one above the balance
])
def test_invalid_bid_core(tmp_path, inputs, reason):
    run = make_run(tmp_path, auction=False)
    log = step(run, *inputs)
    assert rejected(log) == ("bid_core", reason)
    # the refused bid costs nothing and takes no part: core_0 goes by fill
    assert balances(run)["a"] == 1000 and auction(log)[0] == award("core_0", "a")


def test_invalid_bid_after_auction(tmp_path):
    run = make_run(tmp_path)  # turn 1 played: the auction is resolved
    log = step(run, bid("a", "core_0", 10))
    assert log.effects == [ev.ActionRejected(agent="a", action="bid_core", reason="auction_closed",
                                             detail="the core auction was resolved after turn 1",
                                             input_seq=log.inputs[0])]
    assert balances(run)["a"] == 1000 and log.of(ev.CoreAuctionResolved) == []


def test_auction_runs_once(tmp_path):
    run = make_run(tmp_path)
    for _ in range(3):
        assert step(run).of(ev.CoreAuctionResolved) == []
    assert run.state.cores["core_0"] == ("a", PPM)


def test_winners_collect_dividends_from_turn_two(tmp_path):
    run = make_run(tmp_path, auction=False)
    step(run, bid("d", "core_0", 100))  # core_0 -> d; fill: core_1 a, core_2 b, core_3 c
    log = step(run, act("a", "mine", output=140))  # pool 40: 10 a core
    assert [(e.core_id, e.owner, e.amount) for e in log.of(ev.DividendPaid)] == [
        ("core_0", "d", 10), ("core_1", "a", 10), ("core_2", "b", 10), ("core_3", "c", 10)]
