"""The reproduction targets: each count, its tolerance, and its interval."""

from __future__ import annotations

import pytest
from scipy import stats

from simledger.study.agreement import Figure, judge_agreement
from simledger.study.compare import judge_study
from simledger.study.paper import load_paper
from simledger.study.targets import block_target, compute_wilson, judge_targets, mean_target, pooled_target, share_target

PAPER = load_paper()


def figure(section: str, name: str, ours: float, paper: float, distance: float, regime: str = "baseline") -> Figure:
    return Figure(section=section, regime=regime, name=name, ours=ours, paper=paper, distance=distance, tests=[])


def test_wilson_interval_is_scipys():
    low, high = compute_wilson(27, 164)
    ci = stats.binomtest(27, 164).proportion_ci(method="wilson")
    assert (low, high) == (ci.low, ci.high)
    assert 0.1156 < low < 0.1158 and 0.2288 < high < 0.2290  # the interval quoted in docs/mechanics.md


def test_a_mean_counts_within_two_standard_errors_inclusive():
    figures = [figure("4.1", "a", 0, 0, 2.0), figure("4.1", "b", 0, 0, -2.01), figure("4.1", "c", 0, 0, float("nan")),
               figure("4.2", "not a mean", 0, 0, 9.0)]
    target = mean_target(figures)
    assert (target.met, target.total) == (1, 3)
    assert target.misses == ["baseline b (-2.01 SE)", "baseline c (+nan SE)"]


def test_the_means_target_is_35_of_39_and_pro_rata_for_one_regime():
    assert mean_target([figure("4.1", str(i), 0, 0, 0.0) for i in range(39)]).needed == 35
    one_regime = mean_target([figure("4.1", str(i), 0, 0, 0.0) for i in range(13)])
    assert one_regime.needed == 12 and one_regime.is_met


def test_a_share_misses_beyond_two_points():
    target = share_target([figure("4.7", "job share", 0.068, 0.048, 0), figure("4.7", "mine share", 0.344, 0.323, 0)])
    assert (target.met, target.needed) == (1, 2)
    assert target.misses == ["baseline mine share (+2.1 pp)"] and not target.is_met


def test_a_pooled_rate_is_judged_by_the_papers_wilson_interval():
    counts = PAPER.figure("pooled_contracts", "high_compute_cost")
    low, _ = compute_wilson(counts["defaulted"], counts["contracts"])
    inside = figure("4.2", "Default rate", low + 1e-4, 0.1646, 0, regime="high_compute_cost")
    outside = figure("4.2", "Default rate", low - 1e-4, 0.1646, 0, regime="high_compute_cost")
    assert pooled_target([inside], PAPER).is_met
    assert not pooled_target([outside], PAPER).is_met


def test_the_band_target_asks_for_nine_blocks_in_ten():
    assert block_target([True] * 9 + [False], PAPER).is_met
    assert not block_target([True] * 8 + [False] * 2, PAPER).is_met
    assert judge_targets([], PAPER, blocks=[]) [-1].name.startswith("pooled")  # no blocks, no band target


def test_the_papers_own_runs_meet_the_means_target():
    targets = judge_targets(judge_agreement(PAPER.runs, PAPER).figures, PAPER, blocks=[])
    means = targets[0]
    assert (means.met, means.total) == (39, 39) and means.is_met


@pytest.mark.parametrize("as_json", [False, True])
def test_compare_reports_the_targets(as_json):
    from simledger.study.experiment import simulate_specs
    from simledger.study.sweep import study_specs

    agreement = judge_study(simulate_specs(study_specs(seeds=[1001, 1002])))
    if as_json:
        names = [t["target"] for t in agreement.to_dict()["targets"]]
        assert names[0] == "regime means within 2 SE (Welch)" and len(names) == 3
    else:
        assert "Reproduction targets" in agreement.to_markdown()
        assert "action shares within 2 percentage points" in agreement.to_markdown()


def test_the_one_line_summary_names_each_count():
    agreement = judge_study(PAPER.runs)
    line = agreement.targets_summary()
    assert line.startswith("targets NOT met (means 39/39, shares 0/0, pooled")  # the rows carry no action counts
