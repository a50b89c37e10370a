"""The old band (z in paper SDs, Table 2 signs, pooled rates, ratios) and ``simledger compare``."""

from __future__ import annotations


import copy
import csv
import json
import math
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.study.compare import compare, compute_required_within_1sd
from simledger.study.metrics import regime_summary
from simledger.study.paper import (
    METRICS, compute_ci95, compute_cohens_d, compute_dividend_fee_ratio, compute_pooled_contracts, load_paper,
    parse_run_summaries,
)

from _seed import SEED

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "study" / "data"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def paper_runs() -> list[dict]:
    """Return the seed's 36 per-run rows as run summaries (what our summarize would produce for them)."""
    return parse_run_summaries((SEED / "run_summaries.csv").read_text(), "seed run_summaries.csv")


def shift(runs: list[dict], regime: str, column: str, by: float) -> list[dict]:
    """Return a copy of ``runs`` with ``by`` added to ``column`` in every run of ``regime`` (its mean moves by ``by``)."""
    out = copy.deepcopy(runs)
    for run in out:
        if run["regime"] == regime:
            run[column] += by
    return out


def seed_sd(regime: str, column: str) -> float:
    rows = list(csv.DictReader((SEED / "run_summaries.csv").open()))
    return statistics.pstdev(float(r[column]) for r in rows if r["regime"] == regime)


def write_results(folder: Path, runs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_summaries.json").write_text(json.dumps(runs))
    (folder / "regime_summary.json").write_text(json.dumps(regime_summary(runs)))
    return folder


# --- the shipped data are the paper's -----------------------------------------------


def test_shipped_paper_csvs_are_the_seed_files():
    assert (PACKAGE_DATA / "paper_regime_summary.csv").read_bytes() == (SEED / "regime_summary.csv").read_bytes()
    assert (PACKAGE_DATA / "paper_run_summaries.csv").read_bytes() == (SEED / "run_summaries.csv").read_bytes()


def test_published_pooled_counts_match_the_paper_runs():
    paper = load_paper()
    for regime in paper.regimes:
        pooled = compute_pooled_contracts(paper.runs_of(regime))
        published = paper.figure("pooled_contracts", regime)
        assert {k: pooled[k] for k in ("contracts", "settled", "defaulted")} == {
            k: published[k] for k in ("contracts", "settled", "defaulted")}
        assert round(pooled["settlement_rate"], 4) == published["settlement_rate"]
        assert round(pooled["default_rate"], 4) == published["default_rate"]


def test_published_ratios_and_table2_match_the_paper_tables():
    paper = load_paper()
    for regime in paper.regimes:
        assert round(compute_dividend_fee_ratio(paper.runs_of(regime)), 3) == paper.figure("dividend_fee_ratio", regime)
    for regime in ("coordination_push", "high_compute_cost"):
        for metric, printed in paper.figure("table2_deltas", regime).items():
            if metric.startswith("_"):
                continue
            delta = paper.mean(regime, metric) - paper.mean("baseline", metric)
            assert abs(delta - printed) <= 0.006, (regime, metric)


def test_ci_and_cohens_d_reproduce_section_4_6():
    """Population SD, 1.96 sd / sqrt(n): the paper's own intervals and d ~ 12 come out of its per-run rows."""
    paper = load_paper()
    column = {"gini_wealth_mean": "gini_wealth", "errors_mean": "total_errors"}
    for metric, per_regime in paper.figure("ci95").items():
        if metric.startswith("_"):
            continue
        for regime, (mean, half_width) in per_regime.items():
            values = [r[column[metric]] for r in paper.runs_of(regime)]
            half_unit = 0.0005 if metric.startswith("gini") else 0.05  # printed to 3 (1) decimals
            assert abs(statistics.fmean(values) - mean) <= half_unit + 1e-12
            assert abs(compute_ci95(values) - half_width) <= half_unit + 1e-12
    d = compute_cohens_d([r["gini_wealth"] for r in paper.runs_of("high_compute_cost")],
                         [r["gini_wealth"] for r in paper.runs_of("baseline")])
    assert round(d) == paper.figure("cohens_d_gini_wealth_high_vs_baseline", "value")


# --- z ----------------------------------------------------------------------------------------


def test_z_matches_a_hand_computed_value():
    runs = shift(paper_runs(), "baseline", "total_errors", 7)
    cmp = compare(runs, regime_summary(runs))
    paper_mean = float(next(r for r in csv.DictReader((SEED / "regime_summary.csv").open())
                            if r["regime"] == "baseline")["errors_mean"])
    ours = statistics.fmean(float(r["total_errors"]) for r in runs if r["regime"] == "baseline")
    expected = (ours - paper_mean) / seed_sd("baseline", "total_errors")
    cell = cmp.cell("baseline", "errors_mean")
    assert cell.z == pytest.approx(expected, rel=1e-12)
    # By hand: baseline errors 7 17 15 24 30 5 10 12 39 39 22 15 sum to 235 (mean 19.583); the squared
    # deviations average 121.4097, so the paper SD is 11.0186 and +7 errors a run is z = 7 / 11.0186.
    assert cell.z == pytest.approx(0.63529, abs=1e-5)
    assert cell.paper_sd == pytest.approx(seed_sd("baseline", "total_errors"), rel=1e-12)


def test_paper_own_runs_compare_at_zero_and_meet_the_bar():
    runs = paper_runs()
    cmp = compare(runs, regime_summary(runs))
    assert len(cmp.cells) == 39
    assert all(abs(c.z) < 1e-9 for c in cmp.cells)
    assert cmp.bar_met and cmp.failures == []
    assert all(c.passed for c in cmp.criteria)


def test_three_sd_shift_fails_the_bar_and_names_the_metric():
    sd = seed_sd("coordination_push", "blocks_produced")
    runs = shift(paper_runs(), "coordination_push", "blocks_produced", 3 * sd)
    cmp = compare(runs, regime_summary(runs))
    assert cmp.cell("coordination_push", "blocks_produced_mean").z == pytest.approx(3.0)
    assert not cmp.bar_met
    assert [f for f in cmp.failures if "coordination_push blocks_produced_mean" in f and "beyond 2 SD" in f]
    # only that cell is off: the other 38 stay at z = 0
    assert sum(1 for c in cmp.cells if abs(c.z) > 1e-9) == 1


def test_within_one_sd_count_needs_33_of_39():
    # Move 7 metrics of baseline by 1.5 SD each: all within 2 SD, but only 32 of 39 within 1 SD.
    runs = paper_runs()
    moved = ["contracts_total", "inference_fees_total", "interest_total", "token_supply_final", "gini_balance",
             "winner_hhi", "total_errors"]
    for column in moved:
        runs = shift(runs, "baseline", column, 1.5 * seed_sd("baseline", column))
    cmp = compare(runs, regime_summary(runs))
    names = {c.name: c.passed for c in cmp.criteria}
    assert names["all means within 2 paper SD"] is True
    assert names["at least 33 of 39 means within 1 paper SD"] is False
    assert any("only 32 of 39" in f for f in cmp.failures)
    # one fewer moved metric: 33 of 39 is enough
    runs = shift(runs, "baseline", "total_errors", -1.5 * seed_sd("baseline", "total_errors"))
    assert {c.name: c.passed for c in compare(runs).criteria}["at least 33 of 39 means within 1 paper SD"] is True


# --- Table 2 signs, ratios, Gini ----------------------------------------------------------------


def test_sign_flip_on_a_big_table2_delta_fails():
    # high_compute_cost - baseline blocks: paper +2.00, baseline SD 3.04 (not big); errors: +33.67 vs SD 10.2 (big).
    runs = shift(paper_runs(), "high_compute_cost", "total_errors", -35)
    cmp = compare(runs, regime_summary(runs))
    check = next(d for d in cmp.deltas if d.regime == "high_compute_cost" and d.metric == "errors_mean")
    assert check.is_big and not check.is_same_sign
    assert any(f.startswith("Table 2 sign: high_compute_cost - baseline errors_mean") for f in cmp.failures)


def test_sign_flip_on_a_small_table2_delta_is_not_a_failure():
    # Baseline settled 1.58 -> 0.08 (z -0.90): coordination - baseline flips from -1.42 to +0.08,
    # but |-1.42| is below the baseline's paper SD (1.66), so the bar still holds.
    runs = shift(paper_runs(), "baseline", "contracts_settled_total", -1.5)
    cmp = compare(runs, regime_summary(runs))
    check = next(d for d in cmp.deltas if d.regime == "coordination_push" and d.metric == "contracts_settled_mean")
    assert not check.is_same_sign and not check.is_big
    assert cmp.bar_met, cmp.failures


def test_dividend_ratio_outside_range_fails():
    runs = paper_runs()
    for run in runs:
        if run["regime"] == "coordination_push":
            run["dividends_total"] = round(run["inference_fees_total"] * 0.95)
    cmp = compare(runs, regime_summary(runs))
    assert cmp.ratios["coordination_push"]["ours"] == pytest.approx(0.95, abs=1e-3)
    assert any(f.startswith("dividend/fee ratio: coordination_push") for f in cmp.failures)
    assert not any(f.startswith("dividend/fee ratio: baseline") for f in cmp.failures)


def test_gini_below_three_times_baseline_fails():
    runs = paper_runs()
    base = statistics.fmean(r["gini_wealth"] for r in runs if r["regime"] == "baseline")
    high = statistics.fmean(r["gini_wealth"] for r in runs if r["regime"] == "high_compute_cost")
    runs = shift(runs, "high_compute_cost", "gini_wealth", 2.9 * base - high)
    cmp = compare(runs, regime_summary(runs))
    assert cmp.gini_factor["ours"] == pytest.approx(2.9)
    assert any(f.startswith("wealth Gini: high_compute_cost is 2.90x") for f in cmp.failures)


# --- reduced studies -----------------------------------------------------------------------------


def test_reduced_study_compares_only_common_regimes():
    runs = [r for r in paper_runs() if r["regime"] != "coordination_push"]
    cmp = compare(runs, regime_summary(runs))
    assert cmp.regimes == ["baseline", "high_compute_cost"]
    assert len(cmp.cells) == 26 and cmp.not_compared["paper_only"] == ["coordination_push"]
    assert compute_required_within_1sd(26) == 22 and compute_required_within_1sd(39) == 33
    assert {d.regime for d in cmp.deltas} == {"high_compute_cost"}
    assert cmp.bar_met


def test_single_regime_leaves_cross_regime_criteria_unevaluated():
    runs = [r for r in paper_runs() if r["regime"] == "coordination_push"]
    extra = copy.deepcopy(runs[0]) | {"regime": "my_regime", "run_id": "my_regime_101"}
    cmp = compare(runs + [extra])
    assert cmp.regimes == ["coordination_push"] and cmp.not_compared["ours_only"] == ["my_regime"]
    unevaluated = {c.name for c in cmp.criteria if c.passed is None}
    assert unevaluated == {"every big Table 2 delta has the paper's sign", "high_compute_cost wealth Gini >= 3x baseline's"}
    assert cmp.bar_met


def test_json_is_complete_and_strict():
    doc = json.loads(compare(paper_runs()).to_json())
    assert doc["bar_met"] is True
    assert len(doc["metrics"]) == 39 and {m["metric"] for m in doc["metrics"]} == set(METRICS)
    assert len(doc["table2_deltas"]) == 16
    assert doc["pooled_contracts"]["baseline"]["ours"]["contracts"] == 257


def test_zero_paper_sd_gives_infinite_z_unless_equal():
    paper = load_paper()
    for run in paper.runs:  # every paper run of baseline has the same block count
        if run["regime"] == "baseline":
            run["blocks_produced"] = 30
    paper.regimes["baseline"]["blocks_produced_mean"] = 30.0
    runs = paper_runs()
    cell = compare(runs, regime_summary(runs), paper).cell("baseline", "blocks_produced_mean")
    assert cell.paper_sd == 0 and math.isinf(cell.z) and cell.z > 0  # ours 30.5 > 30
    assert json.loads(compare(runs, regime_summary(runs), paper).to_json())  # inf becomes null, still valid JSON


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_compare_exit_0_when_every_figure_is_indistinguishable(tmp_path):
    folder = write_results(tmp_path / "res", paper_runs())  # the paper's own runs: every test has p = 1
    result = invoke("compare", folder)
    assert result.exit_code == 0, result.output
    assert "indistinguishable from the paper at α = 0.05 in 55 of 55 figures" in result.stdout
    assert "Old band, for context: 12-seed band MET: 39 of 39 means within 2 paper SD" in result.stdout
    result = invoke("compare", folder, "--json", "--paper", SEED / "regime_summary.csv",
                    "--paper-runs", SEED / "run_summaries.csv")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["indistinguishable"] == doc["figures_total"] == 55


def test_cli_compare_exit_1_and_names_the_worst_figure(tmp_path):
    runs = shift(paper_runs(), "baseline", "inference_fees_total", 3 * seed_sd("baseline", "inference_fees_total"))
    result = invoke("compare", write_results(tmp_path / "res", runs), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    # fees moved by 3 SD, and with them the dividend/fee ratio; nothing else
    differing = {f"{f['section']} {f['regime']} {f['figure']}" for f in doc["figures"] if not f["indistinguishable"]}
    assert differing == {"4.1 baseline Inference fees total", "4.3 baseline Dividends / fees"}
    assert doc["worst"][0] in differing
    assert doc["band"].startswith("12-seed band NOT MET")


def test_cli_compare_without_regime_summary_recomputes_it(tmp_path):
    folder = write_results(tmp_path / "res", paper_runs())
    (folder / "regime_summary.json").unlink()
    assert invoke("compare", folder).exit_code == 0


@pytest.mark.parametrize("damage, message", [
    ("no_folder", "is not a folder"),
    ("no_file", "run_summaries.json not found"),
    ("bad_json", "is not valid JSON"),
    ("not_a_list", "expected a JSON list"),
    ("missing_field", "has no field 'winner_hhi'"),
    ("bad_paper", "not a regime summary"),
    ("missing_paper", "not found"),
])
def test_cli_compare_user_errors_exit_2_in_one_line(tmp_path, damage, message):
    folder = write_results(tmp_path / "res", paper_runs())
    args = ["compare", folder]
    if damage == "no_folder":
        args = ["compare", tmp_path / "nowhere"]
    elif damage == "no_file":
        (folder / "run_summaries.json").unlink()
    elif damage == "bad_json":
        (folder / "run_summaries.json").write_text("[{")
    elif damage == "not_a_list":
        (folder / "run_summaries.json").write_text('{"runs": []}')
    elif damage == "missing_field":
        runs = paper_runs()
        del runs[3]["winner_hhi"]
        (folder / "run_summaries.json").write_text(json.dumps(runs))
    elif damage == "bad_paper":
        args += ["--paper", SEED / "run_summaries.csv"]
    elif damage == "missing_paper":
        args += ["--paper-runs", tmp_path / "none.csv"]
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_study_of_unknown_regimes_is_not_evaluated():
    runs = [copy.deepcopy(r) | {"regime": "my_regime"} for r in paper_runs()[:3]]
    cmp = compare(runs)
    assert cmp.cells == [] and cmp.not_compared["ours_only"] == ["my_regime"]
    assert cmp.verdict == "NOT EVALUATED" and not cmp.bar_met
    assert "The 12-seed band: NOT EVALUATED" in cmp.to_markdown()


def test_band_is_counted_on_disjoint_12_seed_blocks():
    from simledger.study.compare import compute_band_blocks, judge_study

    paper = load_paper()
    same = [dict(r, seed=r["seed"] + 100, run_id=r["run_id"] + "_b") for r in paper_runs()]
    moved = shift(same, "baseline", "inference_fees_total", 3 * seed_sd("baseline", "inference_fees_total"))
    assert compute_band_blocks(paper_runs() + same, paper) == [True, True]
    assert compute_band_blocks(paper_runs() + moved, paper) == [True, False]
    assert compute_band_blocks(paper_runs(), paper) == []  # one block: the band line itself says it
    assert judge_study(paper_runs() + moved).band.endswith("the band is met in 1 of 2")
