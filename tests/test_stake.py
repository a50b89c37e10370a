"""R7: stake, delayed unstake, and the release at the start of turn ``request + unstake_delay_turns``.

These run with stakes staked at once (the rules before the warm-up); tests/test_stake_rules.py covers the warm-up."""

from __future__ import annotations


from _engine_kit import PPM, account, act, assert_accounting, make_run, rejected, step

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V5 as STAKED_AT_ONCE


def test_stake_locks_tokens(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    log = step(run, act("a", "stake", amount=300))
    assert log.effects == [ev.StakeLocked(agent="a", amount=300, input_seq=log.inputs[0])]
    a = account(run, "a")
    assert (a.balance, a.staked, a.wealth) == (700, 300, 1000)
    assert_accounting(run)


def test_stakes_accumulate(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    step(run, act("a", "stake", amount=300))
    step(run, act("a", "stake", amount=200))
    assert (account(run, "a").balance, account(run, "a").staked) == (500, 500)


def test_stake_survives_overdraft(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE, genesis=100, num_cores=1)
    step(run, act("d", "stake", amount=100))
    # fee 250 overdraws the balance; the stake is untouched
    step(run, act("d", "mine", output=350))
    assert (account(run, "d").balance, account(run, "d").staked) == (-250, 100)


def unstaked(tmp_path, **config):
    """Return a run where a staked 300 at turn 2 and asked to unstake 100 at turn 3."""
    run = make_run(tmp_path, rules=STAKED_AT_ONCE, **config)
    step(run, act("a", "stake", amount=300))
    log = step(run, act("a", "unstake", amount=100))
    return run, log


def test_unstake_moves_stake_to_pending(tmp_path):
    run, log = unstaked(tmp_path)
    # turn 3 + delay 5
    assert log.effects == [ev.UnstakeRequested(agent="a", amount=100, release_turn=8, input_seq=log.inputs[0])]
    a = account(run, "a")
    assert (a.balance, a.staked, a.pending_unstakes, a.pending) == (700, 200, [(8, 100)], 100)
    assert run.state.token_supply() == 4000  # pending tokens still exist
    assert_accounting(run)


def test_unstake_released_after_delay(tmp_path):
    run, _ = unstaked(tmp_path)
    for turn in range(4, 8):  # turns 4-7: still pending
        log = step(run)
        assert log.of(ev.UnstakeReleased) == [], turn
    log = step(run)  # turn 8
    assert log.turn == 8 and log.events[0] == ev.UnstakeReleased(agent="a", amount=100)
    a = account(run, "a")
    assert (a.balance, a.staked, a.pending_unstakes) == (800, 200, [])
    assert_accounting(run)


def test_release_comes_before_actions(tmp_path):
    run, _ = unstaked(tmp_path)
    for _ in range(4):
        step(run)
    # turn 8: a holds 700 until the release; staking 800 works only because the release comes first
    log = step(run, act("a", "stake", amount=800))
    assert [type(e) for e in log.events[:3]] == [ev.UnstakeReleased, ev.ActionSubmitted, ev.StakeLocked]
    assert (account(run, "a").balance, account(run, "a").staked) == (0, 1000)


def test_pending_unstake_has_no_lottery_weight(tmp_path):
    run, _ = unstaked(tmp_path)
    log = step(run, act("a", "mine"))
    # weight counts the 200 still staked, not the 100 pending: 10 + 2
    assert log.of(ev.BlockNotProduced)[0].entrants == [ev.BlockEntry(agent="a", weight_ppm=12 * PPM)]


def test_successive_unstakes_release_in_turn(tmp_path):
    run, _ = unstaked(tmp_path, unstake_delay_turns=2)  # turn 3: 100, released at 5
    log = step(run, act("a", "unstake", amount=50))  # turn 4: 50, released at 6
    assert log.effects[0].release_turn == 6
    assert account(run, "a").pending_unstakes == [(5, 100), (6, 50)]
    assert step(run).events[0] == ev.UnstakeReleased(agent="a", amount=100)  # turn 5
    assert account(run, "a").pending_unstakes == [(6, 50)]
    assert step(run).events[0] == ev.UnstakeReleased(agent="a", amount=50)  # turn 6
    a = account(run, "a")
    assert (a.balance, a.staked, a.pending_unstakes) == (850, 150, [])
    assert_accounting(run)


def test_unstake_delay_one_releases_next_turn(tmp_path):
    run, log = unstaked(tmp_path, unstake_delay_turns=1)
    assert log.effects[0].release_turn == 4
    assert step(run).events == [ev.UnstakeReleased(agent="a", amount=100),
                                ev.BlockNotProduced(entrants=[], total_weight_ppm=0, threshold_ppm=20 * PPM)]


def test_invalid_unstake_more_than_remaining_stake(tmp_path):
    run, _ = unstaked(tmp_path)
    # 300 staked, 100 already pending: 201 is one more than what is left
    log = step(run, act("a", "unstake", amount=201))
    assert rejected(log) == ("unstake", "insufficient_funds")
    log = step(run, act("a", "unstake", amount=200))
    assert [type(e) for e in log.effects] == [ev.UnstakeRequested]
    assert account(run, "a").staked == 0


def test_release_without_acting(tmp_path):
    run, _ = unstaked(tmp_path, unstake_delay_turns=1)
    log = step(run, act("b", "mine"))
    # a submitted nothing in turn 4, its release still comes
    assert log.events[0] == ev.UnstakeReleased(agent="a", amount=100)
