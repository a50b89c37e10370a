"""The stake and win rules of new runs (R7 a stake warms up before it counts; R9 a win re-warms the winner's
stake and spends its matured burns), their old values, and the version-4 genesis that predates them.

Default knobs: unstake delay 5, stake weight 0.01 a token, burn weight 0.05 a token, burn maturity 3,
decay 0.02, two miners gate a block. Expected numbers are worked by hand in the comments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from _engine_kit import PPM, account, act, assert_accounting, make_run, step

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V5, Rules
from simledger.events.envelope import decode_payload, get_written_version
from simledger.ledger.observation import observed_account
from simledger.ledger.reexecute import reexecute
from simledger.ledger.verify import verify_log, verify_state_digests
from simledger.projections.state import get_digest_extensions, state_digest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
import logtools as lt  # noqa: E402

V4_LOG = Path(__file__).parent / "fixtures" / "genesis_v4.db"


def staked_600(tmp_path, rules: dict | None = None, seed: int = 7):
    """Return a run where a staked 600 at turn 2 (pending until turn 7 under the warm-up)."""
    run = make_run(tmp_path, rules=rules, seed=seed)
    step(run, act("a", "stake", amount=600))
    return run


def won_at_turn_8(tmp_path, rules: dict | None = None):
    """Return (run, turn 8's log): a staked 600 at 2, burnt 100 at 3 (matures 6) and 10 at 7 (matures 10),
    then a and b mine at 8 and a wins (seed 2, under both rule sets)."""
    run = staked_600(tmp_path, rules, seed=2)
    step(run, act("a", "burn", amount=100))
    for _ in range(3):
        step(run)
    step(run, act("a", "burn", amount=10))
    log = step(run, act("a", "mine"), act("b", "mine"))
    assert log.of(ev.BlockProduced)[0].winner == "a"
    return run, log


# --- R7: a stake warms up before it counts ---------------------------------------------------------


def test_a_pending_stake_has_no_weight_and_no_wealth_but_is_in_the_supply(tmp_path):
    run = staked_600(tmp_path)
    a = account(run, "a")
    assert (a.balance, a.staked, a.pending_stakes, a.wealth) == (400, 0, [(7, 600)], 400)
    assert observed_account(run.state, "a")["staked"] == 0  # what the driver adds to the balance as wealth
    assert run.state.token_supply() == 4000
    assert_accounting(run)
    log = step(run, act("a", "mine"))  # turn 3: the base weight alone
    assert log.of(ev.BlockNotProduced)[0].entrants == [ev.BlockEntry(agent="a", weight_ppm=10 * PPM)]


def test_the_stake_locked_event_says_when_it_activates(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "stake", amount=600))  # turn 2 + delay 5
    assert log.effects == [ev.StakeLocked(agent="a", amount=600, input_seq=log.inputs[0], activates_turn=7)]


def test_a_stake_activates_at_the_start_of_turn_stake_plus_delay(tmp_path):
    run = staked_600(tmp_path)
    for turn in range(3, 7):
        assert step(run).of(ev.StakeActivated) == [], turn
        assert account(run, "a").staked == 0
    log = step(run, act("a", "mine"))  # turn 7: activated before the actions, so it weighs in this draw
    assert log.turn == 7 and log.events[0] == ev.StakeActivated(agent="a", amount=600)
    assert log.of(ev.BlockNotProduced)[0].entrants == [ev.BlockEntry(agent="a", weight_ppm=16 * PPM)]
    a = account(run, "a")
    assert (a.staked, a.pending_stakes, a.wealth) == (600, [], 1000)
    assert_accounting(run)


def test_stakes_of_different_turns_activate_separately(tmp_path):
    run = staked_600(tmp_path)
    step(run, act("a", "stake", amount=100))  # turn 3: activates at 8
    assert account(run, "a").pending_stakes == [(7, 600), (8, 100)]
    for _ in range(3):  # turns 4-6
        step(run)
    assert step(run).events[0] == ev.StakeActivated(agent="a", amount=600)  # turn 7
    assert step(run).events[0] == ev.StakeActivated(agent="a", amount=100)  # turn 8
    assert account(run, "a").staked == 700


def test_a_pending_stake_cannot_be_unstaked(tmp_path):
    run = staked_600(tmp_path)
    log = step(run, act("a", "unstake", amount=1))
    assert [(e.action, e.reason) for e in log.of(ev.ActionRejected)] == [("unstake", "insufficient_funds")]


# --- R9: a win uses up the weight that won it ---------------------------------------------------------


def test_a_win_rewarms_the_winners_stake_and_spends_exactly_its_matured_burns(tmp_path):
    run, log = won_at_turn_8(tmp_path)
    # a's weight: 10 + 600 x 0.01 + 100 x 0.05 x 0.98^2 (matured at 6); the burn of 10 matures at 10
    assert log.of(ev.BlockProduced)[0].entrants[0] == ev.BlockEntry(agent="a", weight_ppm=20_802_000)
    block = log.events.index(log.of(ev.BlockProduced)[0])
    assert log.events[block + 1:] == [ev.StakeRewarmed(agent="a", amount=600, activates_turn=13),
                                      ev.BurnsSpent(agent="a", amount=100, matured_by=8)]
    a = account(run, "a")
    assert (a.staked, a.pending_stakes, a.burns, a.wealth) == (0, [(13, 600)], [(10, 10)], a.balance)
    assert run.state.token_supply() == 4000 - 110  # the re-warmed stake is still held
    assert_accounting(run)
    log = step(run, act("a", "mine"), act("b", "mine"))  # turn 9: a weighs its base alone
    assert log.of(ev.BlockProduced)[0].entrants[0] == ev.BlockEntry(agent="a", weight_ppm=10 * PPM)


def test_a_burn_maturing_in_the_winning_turn_is_spent(tmp_path):
    run = make_run(tmp_path, burn_maturity_turns=0, burn_decay_rate=0.0)
    step(run, act("b", "burn", amount=10))  # turn 2, matures at 2
    log = step(run, act("a", "mine"), act("b", "mine"))  # turn 3
    winner = log.of(ev.BlockProduced)[0].winner
    spent = [ev.BurnsSpent(agent="b", amount=10, matured_by=3)] if winner == "b" else []
    assert log.of(ev.BurnsSpent) == spent and log.of(ev.StakeRewarmed) == []  # nothing staked


def test_the_old_rules_stake_at_once_and_keep_the_winners_weight(tmp_path):
    run = staked_600(tmp_path, rules=RULES_BEFORE_V5)
    a = account(run, "a")
    assert (a.staked, a.pending_stakes, a.wealth) == (600, [], 1000)
    run, log = won_at_turn_8(tmp_path, rules=RULES_BEFORE_V5)
    assert log.of(ev.StakeLocked, ev.StakeActivated, ev.StakeRewarmed, ev.BurnsSpent) == []
    a = account(run, "a")
    assert (a.staked, a.pending_stakes, a.burns) == (600, [], [(6, 100), (10, 10)])


# --- the digest: old states hash as before ------------------------------------------------------------


def test_pending_stakes_enter_the_digest_only_when_there_are_some(tmp_path):
    run = staked_600(tmp_path)
    state = run.state.copy()
    assert get_digest_extensions(state) == {"account": {"a": {"pending_stakes": [(7, 600)]}}}
    with_pending = state_digest(state)
    state.accounts["a"].pending_stakes = []
    assert get_digest_extensions(state) == {} and state_digest(state) != with_pending


def test_an_old_log_keeps_every_state_digest():
    result = verify_state_digests(V4_LOG)
    assert result.ok, result.message


# --- the version-4 genesis -----------------------------------------------------------------------


def test_version_4_genesis_upcasts_to_the_stake_rules_it_was_played_with():
    genesis = ev.RunGenesis(run_id="r", seed=1, agents=["a"], config=msgspec.convert({}, ev.Config),
                            rules=Rules(job_pay_units=33), engine_key="", agent_keys={}, key_source="seed",
                            library_version="x")
    data = msgspec.to_builtins(genesis)
    data["rules"] = {k: v for k, v in data["rules"].items() if k not in RULES_BEFORE_V5}
    decoded = decode_payload("run_genesis", 4, msgspec.msgpack.encode(data))
    assert {name: getattr(decoded.rules, name) for name in RULES_BEFORE_V5} == RULES_BEFORE_V5
    assert decoded.rules.job_pay_units == 33 and decoded.rules.job_pay == "compute"  # what the log recorded stays
    assert get_written_version(decoded, 4) == 4 and get_written_version(decoded, 5) == 5


def test_a_version_4_log_verifies_and_reexecutes_exactly():
    """genesis_v4.db was written by the last version-4 writer (commit e38313d: `simledger run --regime
    high_compute_cost --seed 11 --turns 10`, 8 agents); it replays with the stake rules it was played with."""
    assert verify_log(V4_LOG).ok
    (genesis_row, *rows) = lt.read_rows(V4_LOG)
    assert genesis_row["payload_version"] == 4
    assert {name: getattr(lt.decoded(genesis_row).rules, name) for name in RULES_BEFORE_V5} == RULES_BEFORE_V5
    kinds = [r["kind"] for r in rows]
    # stakes were staked at once and blocks kept the winners' weight: the old rules are in force
    assert "stake_locked" in kinds and "block_produced" in kinds
    assert not {"stake_activated", "stake_rewarmed", "burns_spent"} & set(kinds)
    result = reexecute(V4_LOG)
    assert result.ok, result.divergence
