"""R8-R9: the block lottery: weights in ppm, burn maturity and decay, the threshold, a recheckable draw.

Default knobs: mine base weight 10, stake weight 0.01 per token, burn weight 0.05 per
token, burn decay 0.02 a turn, maturity 3 turns, threshold 20. Weights are in
millionths (ppm), rounded down.
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from _engine_kit import PPM, act, assert_accounting, balances, make_run, read_events, step

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V5 as STAKED_AT_ONCE
from simledger.events.config import Config
from simledger.ledger.engine import compute_burn_weight_ppm


def entry(agent: str, weight_ppm: int) -> ev.BlockEntry:
    return ev.BlockEntry(agent=agent, weight_ppm=weight_ppm)


def lottery(log) -> ev.BlockProduced | ev.BlockNotProduced:
    """Return the turn's one lottery outcome."""
    (outcome,) = log.of(ev.BlockProduced, ev.BlockNotProduced)
    return outcome


# --- weights -----------------------------------------------------------------------------


def test_miner_weight_is_base_weight(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine"))
    assert lottery(log) == ev.BlockNotProduced(entrants=[entry("a", 10 * PPM)], total_weight_ppm=10 * PPM,
                                               threshold_ppm=20 * PPM)


@pytest.mark.parametrize("staked, weight_ppm", [
    (500, 15_000_000),  # 10 + 0.01 x 500
    (333, 13_330_000),  # 10 + 3.33 (exact: binary 0.01 x 333 is not)
    (1, 10_010_000),  # one token: 0.01
])
def test_miner_weight_adds_stake(tmp_path, staked, weight_ppm):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE)
    step(run, act("a", "stake", amount=staked))
    log = step(run, act("a", "mine"))
    assert lottery(log).entrants == [entry("a", weight_ppm)]


def test_weight_rounded_down_to_ppm(tmp_path):
    run = make_run(tmp_path, stake_weight_per_token=1e-7)
    step(run, act("a", "stake", amount=5))
    log = step(run, act("a", "mine"))
    # 10 + 5 x 0.0000001 = 10.0000005 -> 10,000,000.5 ppm, rounded down
    assert lottery(log).entrants == [entry("a", 10_000_000)]


def test_stake_of_non_miners_does_not_count(tmp_path):
    run = make_run(tmp_path)
    step(run, act("b", "stake", amount=1000))
    log = step(run, act("a", "mine"))
    # b's 1,000 staked would reach the threshold, but b does not mine this turn
    assert lottery(log) == ev.BlockNotProduced(entrants=[entry("a", 10 * PPM)], total_weight_ppm=10 * PPM,
                                               threshold_ppm=20 * PPM)


def test_entrants_in_submission_order(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("c", "mine"), act("a", "stake", amount=1), act("b", "mine"))
    assert [e.agent for e in lottery(log).entrants] == ["c", "b"]


def test_rejected_mine_does_not_enter(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine"), act("a", "mine"), act("b", "mine", thinking=-1))
    # a's second input is a duplicate and b's units are malformed: only a's first input enters
    assert lottery(log).entrants == [entry("a", 10 * PPM)]


# --- burns: maturity and decay --------------------------------------------------------------


def test_burn_weight_matures_then_decays(tmp_path):
    run = make_run(tmp_path)
    step(run, act("a", "burn", amount=100))  # turn 2: matures at turn 5
    weights = {}
    for turn in range(3, 10):
        weights[turn] = lottery(step(run, act("a", "mine"))).entrants[0].weight_ppm
    # 100 x 0.05 = 5 at maturity, then x 0.98 a turn: 4.9, 4.802, 4.70596, 4.6118408 (-> 4,611,840 ppm)
    assert weights == {3: 10_000_000, 4: 10_000_000, 5: 15_000_000, 6: 14_900_000, 7: 14_802_000,
                       8: 14_705_960, 9: 14_611_840}


def test_matured_burn_reaches_threshold_when_all_weight_gates(tmp_path):
    run = make_run(tmp_path, rules={"block_gate": "weight"})
    step(run, act("a", "burn", amount=200))  # turn 2: 200 x 0.05 = 10 at turn 5
    assert isinstance(lottery(step(run, act("a", "mine"))), ev.BlockNotProduced)  # turn 3
    assert isinstance(lottery(step(run, act("a", "mine"))), ev.BlockNotProduced)  # turn 4: not mature
    log = step(run, act("a", "mine"))  # turn 5: 10 + 10 = 20
    assert lottery(log).entrants == [entry("a", 20 * PPM)] and lottery(log).winner == "a"


def test_burns_add_up(tmp_path):
    run = make_run(tmp_path, burn_decay_rate=0.0)
    step(run, act("a", "burn", amount=100))  # turn 2: matures 5
    step(run, act("a", "burn", amount=60))  # turn 3: matures 6
    assert lottery(step(run, act("a", "mine"))).entrants[0].weight_ppm == 10 * PPM  # turn 4
    assert lottery(step(run, act("a", "mine"))).entrants[0].weight_ppm == 15 * PPM  # turn 5: 5
    assert lottery(step(run, act("a", "mine"))).entrants[0].weight_ppm == 18 * PPM  # turn 6: 5 + 3


@pytest.mark.parametrize("burns, turn, weight_ppm", [
    ([(5, 100)], 4, 0),  # one turn before maturity
    ([(5, 100)], 5, 5_000_000),  # at maturity: no decay yet
    ([(5, 100)], 9, 4_611_840),  # 5 x 0.98^4 = 4.6118408, rounded down
    ([(5, 1)], 6, 49_000),  # 0.05 x 0.98
    ([(5, 100), (7, 100)], 7, 9_802_000),  # 5 x 0.98^2 + 5
    ([(5, 100)], 105, 663_097),  # 5 x 0.98^100 = 0.6630977..., rounded down
])
def test_burn_weight_exact_ppm(burns, turn, weight_ppm):
    assert compute_burn_weight_ppm(Config(), burns, turn) == weight_ppm


def test_burn_maturity_follows_config(tmp_path):
    run = make_run(tmp_path, burn_maturity_turns=0, burn_decay_rate=0.5)
    log = step(run, act("a", "burn", amount=100))  # turn 2, mature at once
    assert log.of(ev.TokensBurned)[0].matures_turn == 2
    # turn 3: one turn of decay: 5 x 0.5 = 2.5
    assert lottery(step(run, act("a", "mine"))).entrants == [entry("a", 12_500_000)]


# --- the threshold ------------------------------------------------------------------------------


def test_two_base_miners_reach_threshold(tmp_path):
    run = make_run(tmp_path)
    log = step(run, act("a", "mine"), act("b", "mine"))
    block = lottery(log)
    assert isinstance(block, ev.BlockProduced)
    assert block.entrants == [entry("a", 10 * PPM), entry("b", 10 * PPM)] and block.total_weight_ppm == 20 * PPM
    assert block.height == 1 and block.reward == 0 and block.winner in ("a", "b")
    assert run.state.block_height == 1


@pytest.mark.parametrize("staked, produced", [
    (1000, True),  # 10 + 10 = 20: exactly the threshold
    (999, False),  # 19.99: just under
])
def test_one_heavily_staked_miner_when_all_weight_gates(tmp_path, staked, produced):
    run = make_run(tmp_path, rules={**STAKED_AT_ONCE, "block_gate": "weight"})
    step(run, act("a", "stake", amount=staked))
    log = step(run, act("a", "mine"))
    assert isinstance(lottery(log), ev.BlockProduced) is produced


def test_stake_and_burns_cannot_make_one_miner_a_block(tmp_path):
    run = make_run(tmp_path, rules={**STAKED_AT_ONCE, "block_gate": "mining"})  # only mining weight gates
    step(run, act("a", "stake", amount=900), act("b", "burn", amount=400))
    step(run), step(run)
    log = step(run, act("a", "mine"))  # turn 5: weight 19 (10 + 9 staked) but one miner's mining weight is 10
    assert isinstance(lottery(log), ev.BlockNotProduced) and lottery(log).total_weight_ppm == 19 * PPM
    log = step(run, act("b", "mine"))  # turn 6: 10 + 19.6 of matured burns, still one miner
    assert isinstance(lottery(log), ev.BlockNotProduced)


def test_stake_tilts_the_draw_once_two_miners_gate_it(tmp_path):
    run = make_run(tmp_path, rules={**STAKED_AT_ONCE, "block_gate": "mining"})
    step(run, act("a", "stake", amount=1000))
    block = lottery(step(run, act("a", "mine"), act("b", "mine")))
    assert isinstance(block, ev.BlockProduced)
    assert block.entrants == [entry("a", 20 * PPM), entry("b", 10 * PPM)] and block.total_weight_ppm == 30 * PPM


@pytest.mark.parametrize("threshold, produced, threshold_ppm", [
    (20.000001, False, 20_000_001),  # one ppm above two miners' 20,000,000
    (19.9999995, True, None),  # 19,999,999.5 ppm: two miners reach it
    (30.0, False, 30_000_000),
])
def test_threshold_edges(tmp_path, threshold, produced, threshold_ppm):
    run = make_run(tmp_path, block_threshold=threshold)
    block = lottery(step(run, act("a", "mine"), act("b", "mine")))
    assert isinstance(block, ev.BlockProduced) is produced
    if not produced:
        assert block.threshold_ppm == threshold_ppm and block.total_weight_ppm == 20 * PPM


def test_no_miners_no_block(tmp_path):
    run = make_run(tmp_path, block_threshold=0.000001)
    log = step(run, act("a", "stake", amount=1))
    assert lottery(log) == ev.BlockNotProduced(entrants=[], total_weight_ppm=0, threshold_ppm=1)


def test_block_reward_minted_to_winner(tmp_path):
    run = make_run(tmp_path, rules={"block_reward": 7})
    block = lottery(step(run, act("a", "mine"), act("b", "mine")))
    assert block.reward == 7
    assert balances(run)[block.winner] == 1007 and run.state.minted == 7
    assert_accounting(run)


def test_heights_count_blocks(tmp_path):
    run = make_run(tmp_path)
    heights = []
    for _ in range(3):
        step(run, act("a", "mine"))  # alone: no block
        heights.append(lottery(step(run, act("a", "mine"), act("b", "mine"))).height)
    assert heights == [1, 2, 3] and run.state.block_height == 3


# --- the draw ------------------------------------------------------------------------------------


def recheck(store, seed: int, block: ev.BlockProduced, turn: int) -> tuple[str, int, str]:
    """Recompute (randomness, draw, winner) of a block from the log alone (R9)."""
    seals = [e for _, t, e in read_events(store) if isinstance(e, ev.TurnSealed) and t == turn - 1]
    (seal,) = seals
    randomness = hashlib.sha256(msgspec.msgpack.encode(
        ["simledger/block/v1", seed, turn, seal.merkle_root, seal.state_digest])).digest()
    total = sum(e.weight_ppm for e in block.entrants)
    draw = int.from_bytes(randomness, "big") % total
    cumulative = 0
    for e in block.entrants:
        cumulative += e.weight_ppm
        if draw < cumulative:
            return randomness.hex(), draw, e.agent
    raise AssertionError("draw beyond the total weight")


def test_draw_recheckable_from_block_event(tmp_path):
    run = make_run(tmp_path, rules=STAKED_AT_ONCE, seed=12345)
    step(run, act("c", "stake", amount=700))
    winners = set()
    for _ in range(12):
        log = step(run, act("b", "mine"), act("c", "mine"), act("a", "mine"))
        block = lottery(log)
        assert block.entrants == [entry("b", 10 * PPM), entry("c", 17 * PPM), entry("a", 10 * PPM)]
        assert block.total_weight_ppm == 37 * PPM
        assert (block.randomness, block.draw, block.winner) == recheck(run.store, 12345, block, log.turn)
        winners.add(block.winner)
    assert len(winners) > 1  # the draw moves with the chain


def test_same_inputs_same_draws(tmp_path):
    def draws(seed):
        run = make_run(tmp_path, seed=seed)
        out = [lottery(step(run, act("a", "mine"), act("b", "mine"))).randomness for _ in range(3)]
        run.close()
        return out

    first, again, other = draws(1), draws(1), draws(2)
    assert first == again and first != other and len(set(first)) == 3
