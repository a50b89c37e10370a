"""The statistical verdict: each test's arithmetic, the correction, and which figures it judges."""

from __future__ import annotations

import copy
import math

import pytest
from scipy import stats

from simledger.study.agreement import (
    ALPHA, HypothesisTest, apply_correction, compute_d_se, compute_se_distance, empirical_test, judge_agreement,
    narrated_statistics, proportion_test, spread_test, welch_test,
)
from simledger.study.experiment import simulate_specs
from simledger.study.sweep import study_specs
from simledger.study.paper import load_paper

PAPER = load_paper()


@pytest.fixture(scope="module")
def small_ensemble():
    """Three in-memory runs per regime: summaries with action counts and final balances."""
    return simulate_specs(study_specs(seeds=[1001, 1002, 1003]))


def test_se_distance_is_welch_t():
    ours, paper = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    expected = (2.5 - 4.0) / math.sqrt((5 / 3) / 4 + 4.0 / 3)
    assert compute_se_distance(ours, paper) == pytest.approx(expected)
    test = welch_test(ours, paper)
    assert test.statistic == pytest.approx(stats.ttest_ind(ours, paper, equal_var=False).statistic)


def test_constant_samples_are_equal_or_different_for_sure():
    assert welch_test([3.0, 3.0], [3.0, 3.0]).p == 1.0
    differ = welch_test([4.0, 4.0], [3.0, 3.0])
    assert differ.p == 0.0 and math.isinf(differ.statistic)
    assert spread_test([1.0, 1.0, 1.0], [1.0, 1.0]).p == 1.0
    one_constant = spread_test([1.0, 1.0, 1.0], [0.0, 5.0, 9.0])  # no spread against some: a real test
    assert one_constant.p == pytest.approx(stats.levene([1, 1, 1], [0, 5, 9], center="median").pvalue)


def test_empirical_quantile_p_values():
    values = [float(v) for v in range(1, 10)]  # 1..9
    assert empirical_test(values, 5.0).p == 1.0
    assert empirical_test(values, 9.0).p == pytest.approx(2 * 2 / 10)  # (1 + one value >= 9) / (1 + 9)
    assert empirical_test(values, 100.0).p == pytest.approx(2 / 10)  # the smallest p 9 runs can give


def test_identical_proportions_are_indistinguishable():
    test, distance = proportion_test(19, 257, 19, 257)
    assert test.p == 1.0 and distance == 0.0
    test, distance = proportion_test(5, 500, 50, 500)
    assert test.p < 1e-6 and distance < -5


def test_benjamini_hochberg_adjustment():
    tests = [HypothesisTest("t", 0.0, p) for p in (0.01, 0.02, 0.5)]
    apply_correction(tests)
    assert [t.p_adjusted for t in tests] == pytest.approx([0.03, 0.03, 0.5])


def test_cohens_d_standard_error():
    assert compute_d_se(0.0, 12, 12) == pytest.approx(math.sqrt(24 / 144))
    assert compute_d_se(12.0, 12, 12) == pytest.approx(math.sqrt(24 / 144 + 144 / 48))


def test_narrated_balances_become_rank_statistics():
    named = narrated_statistics({"a": 4002, "b": -4968, "c": 3255, "d": -3517})
    balances = [5000, 100, -10, -6000, -4000]
    assert [(name, statistic(balances), value) for name, statistic, value in named] == [
        ("largest final balance", 5000, 4002), ("2nd largest final balance", 100, 3255),
        ("lowest final balance", -6000, -4968), ("2nd lowest final balance", -4000, -3517)]


def test_every_published_figure_is_judged(small_ensemble):
    agreement = judge_agreement(small_ensemble, PAPER)
    sections = [f.section for f in agreement.figures]
    assert len(agreement.figures) == 75
    assert (sections.count("4.1"), sections.count("4.3"), sections.count("4.2"), sections.count("4.7"),
            sections.count("4.6"), sections.count("4.8"), sections.count("4.4/4.8")) == (39, 3, 6, 9, 7, 10, 1)
    for figure in agreement.figures:
        assert all(t.p_adjusted >= t.p for t in figure.tests)
        assert figure.is_indistinguishable == all(t.p_adjusted >= ALPHA for t in figure.tests)
    assert agreement.headline() == (f"indistinguishable from the paper at α = 0.05 in "
                                    f"{agreement.n_indistinguishable} of 75 figures")


def test_a_run_with_no_deep_debtor_is_placed_in_the_tail(small_ensemble):
    runs = copy.deepcopy(small_ensemble)
    for run in runs:
        if run["regime"] == "high_compute_cost":
            run["balances_final"] = {a: max(b, -100) for a, b in run["balances_final"].items()}
    figure = next(f for f in judge_agreement(runs, PAPER).figures if f.name == "agents below -3,000")
    assert figure.ours == 0 and figure.paper == 2
    assert figure.tests[0].p == pytest.approx(2 / 4)  # 3 runs: (1 + 0 ...) the smallest p is 2 / (1 + 3)


def test_a_study_of_the_papers_own_runs_agrees_everywhere():
    agreement = judge_agreement(PAPER.runs, PAPER)
    assert agreement.n_indistinguishable == len(agreement.figures) == 55  # no action counts or balances in rows
    assert all(t.p == 1.0 for t in agreement.tests)
