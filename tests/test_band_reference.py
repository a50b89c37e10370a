"""The band's reference rate: how often the original engine itself would meet the 12-seed band."""

from __future__ import annotations

import dataclasses
import json
import random
from statistics import mean, pvariance
from importlib import resources

from scipy import stats

from simledger.study.band_reference import (
    DRAWS, ON_DEMAND_DRAWS, TurnOne, compute_band_reference, describe_against_reference, draw_block,
    load_band_reference, name_failure,
)
from simledger.study.compare import compare
from simledger.study.paper import load_paper
from simledger.study.targets import block_target

PAPER = load_paper()


def test_the_shipped_reference_is_what_resampling_the_shipped_paper_gives():
    """If this fails, the paper data or the band changed: rewrite study/data/band_reference.json from
    compute_band_reference(load_paper()).to_dict()."""
    shipped = json.loads(resources.files("simledger.study").joinpath("data", "band_reference.json").read_text())
    assert shipped == compute_band_reference(PAPER).to_dict()
    assert shipped["draws"] == DRAWS


def test_the_original_engine_misses_the_band_on_some_blocks_mostly_by_the_defaults_sign():
    reference = load_band_reference(PAPER)
    assert 0.5 < reference.rate < 1  # a faithful engine is not certain to meet it
    worst = next(iter(reference.failures))
    assert worst == "Table 2 sign: coordination_push - baseline contracts_defaulted_mean"


def test_a_block_resamples_a_truth_first_so_it_spreads_wider_than_the_papers_runs():
    """Blocks drawn straight from the paper's runs sit closer to the paper than a faithful engine's would."""
    rng = random.Random(1)
    baseline = [r for r in PAPER.runs if r["regime"] == "baseline"]

    def block_mean(rows):
        return sum(r["contracts_defaulted_total"] for r in rows) / len(rows)
    two_stage = [block_mean([r for r in draw_block(PAPER, rng, d) if r["regime"] == "baseline"]) for d in range(400)]
    direct = [block_mean([rng.choice(baseline) for _ in baseline]) for _ in range(400)]
    assert stats.levene(two_stage, direct).pvalue < 0.01 and pvariance(two_stage) > pvariance(direct)


def test_each_block_is_twelve_runs_a_regime_with_the_same_seeds_in_each():
    block = draw_block(PAPER, random.Random(0), draw=3)
    seeds = [sorted(r["seed"] for r in block if r["regime"] == regime)
             for regime in ("baseline", "coordination_push", "high_compute_cost")]
    assert len(set(seeds[0])) == 12 and seeds[0] == seeds[1] == seeds[2]
    assert compare(block, None, PAPER).regimes == ["baseline", "coordination_push", "high_compute_cost"]


def test_other_paper_runs_are_resampled_on_demand():
    other = dataclasses.replace(PAPER, runs=[{**r, "total_errors": r["total_errors"] + 1} for r in PAPER.runs])
    reference = load_band_reference(other)
    assert reference.draws == ON_DEMAND_DRAWS and reference.paper_digest != load_band_reference(PAPER).paper_digest


def test_failures_are_named_without_their_figures():
    assert name_failure("dividend/fee ratio: baseline 0.9801 outside [0.96, 0.98]") == "dividend/fee ratio: baseline"
    assert name_failure("Table 2 sign: coordination_push - baseline contracts_defaulted_mean: ours -0.75 vs paper "
                        "+1.58") == "Table 2 sign: coordination_push - baseline contracts_defaulted_mean"
    assert name_failure("only 32 of 39 means within 1 SD (need 33); between 1 and 2 SD: x") == "too few means within 1 SD"


def test_our_block_count_is_tested_against_the_reference_rate():
    reference = load_band_reference(PAPER)
    line = describe_against_reference(75, 100, reference)
    assert f"{reference.rate:.1%}" in line and f"{stats.binomtest(75, 100, reference.rate).pvalue:.2g}" in line
    assert "binomial p" in block_target([True] * 9 + [False], PAPER).describe()


def test_a_resampled_run_trades_its_seeds_turn_one_fees_for_a_fresh_seeds():
    turn_one = TurnOne(paper={("baseline", 101): 140}, fresh={"baseline": [200]})
    row = {"regime": "baseline", "seed": 101, "inference_fees_total": 6000, "token_supply_final": 5000, "x": 1}
    assert turn_one.redraw(row, random.Random(0)) == {**row, "inference_fees_total": 6060, "token_supply_final": 4940}


def test_the_papers_seeds_drew_low_turn_one_fees():
    """Why turn 1 is re-drawn: the paper's 12 seeds a regime sit below fresh seeds' turn-1 fees."""
    turn_one = TurnOne.compute(PAPER, range(20_001, 20_201))
    for regime in ("baseline", "high_compute_cost"):
        ours = [fees for (name, _), fees in turn_one.paper.items() if name == regime]
        assert len(ours) == 12 and mean(ours) < mean(turn_one.fresh[regime])


def test_runs_of_a_regime_simledger_cannot_play_are_resampled_without_claiming_a_turn_one_redraw():
    renamed = {"baseline": "baseline_elsewhere"}
    other = dataclasses.replace(
        PAPER, runs=[{**r, "regime": renamed.get(r["regime"], r["regime"])} for r in PAPER.runs],
        regimes={renamed.get(name, name): row for name, row in PAPER.regimes.items()})
    reference = load_band_reference(other)
    assert not reference.turn_one_redrawn and load_band_reference(PAPER).turn_one_redrawn
    assert "turn 1" not in describe_against_reference(5, 10, reference)
    assert "with turn 1 re-drawn" in describe_against_reference(5, 10, load_band_reference(PAPER))
