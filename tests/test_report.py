"""The study report: every section of the paper's analysis, plots, byte-identical regeneration."""

from __future__ import annotations


import copy
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.study.compare import format_delta, format_value
from simledger.study.experiment import execute_specs
from simledger.study.sweep import study_specs
from simledger.study.metrics import regime_summary
from simledger.study.paper import load_paper, parse_run_summaries
from simledger.study.report import PLOTS, compute_trajectory, write_report
from simledger.study.summary import summarize
from _seed import SEED

SECTIONS = [
    "# Study report", "## Verdict", "## 4.1 Regime-level means", "### baseline (n = 2)",
    "### high_compute_cost (n = 2)", "](plots/distributions.png)",
    "## 4.2 Contracting: pooled settlement and default rates", "](plots/contract_outcomes.png)",
    "## 4.3 Dividends / inference fees", "## 4.4 High compute cost vs baseline", "](plots/balance_trajectory.png)",
    "## 4.5 Validation concentration", "## 4.6 Uncertainty and effect size", "## 4.7 Action composition",
    "](plots/action_composition.png)", "## 4.8 Representative runs", "## 4.9 Table 2: deltas from baseline",
    "## Every figure tested: these runs:",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A reduced study: 2 regimes x 2 seeds x 10 turns, summarized (no report) into a results folder."""
    out = tmp_path_factory.mktemp("study")
    specs = study_specs(["baseline", "high_compute_cost"], [101, 102], agents=8, turns=10)
    outcomes = execute_specs(specs, out / "runs", workers=1)
    runs, rows = summarize([o.path for o in outcomes], out)
    return out, runs, rows


def snapshot(folder: Path) -> dict[str, bytes]:
    files = [folder / "report.md", *sorted((folder / "plots").glob("*.png")), *sorted((folder / "plots").glob("*.svg"))]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def reported(study, tmp_path_factory):
    out, runs, rows = study
    folder = tmp_path_factory.mktemp("report")
    write_report(folder, runs, rows, runs_dir=out / "runs")
    return folder


def test_report_has_every_section_each_figure_after_its_table(reported):
    text = (reported / "report.md").read_text()
    positions = [text.find(heading) for heading in SECTIONS]
    assert all(p >= 0 for p in positions), [h for h, p in zip(SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    # nothing printed twice: one verdict, one Table 2, each figure once
    assert text.count("## Verdict") == 1 and text.count("## 4.9 Table 2") == 1 and text.count("| Metric (mean) |") == 1
    assert text.count("Acceptance bar") == 0 and "## Plots" not in text
    assert not re.search(r"issue \d|#\d+|acceptance bar", text, re.I), "no tracker words in the report"
    assert all(text.count(f"]({relative})") == 1 for relative in PLOTS.values())
    # Table 4.1 has one line per summary metric and regime, each with the paper's value beside ours
    assert len(re.findall(r"^\| Wealth Gini \| [0-9.]+ \+/- [0-9.]+ \| 0\.\d{4} \|", text, re.M)) == 2


def test_report_plots_exist_as_png_and_svg(reported):
    text = (reported / "report.md").read_text()
    for name, relative in PLOTS.items():
        path = reported / relative
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({relative})" in text
        assert b"Software" not in path.read_bytes() and b"matplotlib" not in path.read_bytes()
        svg = path.with_suffix(".svg")
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text(), name
        assert f"]({relative.removesuffix('.png')}.svg)" in text
        assert "dc:date" not in svg.read_text() and "Matplotlib v" not in svg.read_text()


def test_report_regenerates_byte_identical(study, reported, tmp_path):
    out, runs, rows = study
    first = snapshot(reported)
    write_report(reported, runs, rows, runs_dir=out / "runs")
    assert snapshot(reported) == first
    # inputs in another order, into another folder: the same bytes
    write_report(tmp_path, list(reversed(runs)), list(reversed(rows)), runs_dir=out / "runs")
    assert snapshot(tmp_path) == first


def test_report_figures_are_recomputed_from_the_runs(study, reported):
    out, runs, rows = study
    text = (reported / "report.md").read_text()
    base = [r for r in runs if r["regime"] == "baseline"]
    settled = sum(r["contracts_settled_total"] for r in base)
    total = sum(r["contracts_total"] for r in base)
    assert f"| baseline | {total} (257) | {settled} (19) | {100 * settled / total:.2f}% | 7.39% |" in text
    actions = sum(sum(r["action_counts"].values()) for r in base)
    assert f"### baseline: {actions:,} actions (paper: 3,840)" in text


def test_trajectory_is_the_fold_of_the_log(study):
    out, runs, rows = study
    run = runs[0]
    path = out / "runs" / run["log_file"]
    trajectory = compute_trajectory(path)
    assert trajectory["turns"] == list(range(0, run["turns"] + 1))
    genesis = 1000  # the study's genesis_tokens_per_agent (regime config, not a calibrated rule)
    assert {agent: series[0] for agent, series in trajectory["balances"].items()} == {
        agent: genesis for agent in run["balances_final"]}
    assert {agent: series[-1] for agent, series in trajectory["balances"].items()} == run["balances_final"]
    # every turn agrees with replay's projection at that turn; owners are the cores' owners at the end
    with Store(path) as store:
        for turn in (3, run["turns"] // 2):
            state = load_state(store, turn)
            assert {a: s[turn] for a, s in trajectory["balances"].items()} == {
                a: state.accounts[a].balance for a in state.agents}
        final = load_state(store, run["turns"])
    assert trajectory["owners"] == sorted({owner for owner, _ in final.cores.values()}) != []


def test_report_without_logs_skips_the_trajectory_with_a_note(study, tmp_path):
    out, runs, rows = study
    write_report(tmp_path, runs, rows)
    text = (tmp_path / "report.md").read_text()
    assert "Balance trajectories need the run logs; not drawn" in text
    assert PLOTS["trajectory"] not in text and not (tmp_path / PLOTS["trajectory"]).exists()


def test_report_flags_means_beyond_one_paper_sd(tmp_path):
    """Paper's own runs, one metric moved by 1.5 SD: that line and only that line says so."""
    runs = parse_run_summaries((SEED / "run_summaries.csv").read_text(), "seed")
    paper = load_paper()
    moved = copy.deepcopy(runs)
    sd = paper.sd("high_compute_cost", "interest_total_mean")
    for run in moved:
        if run["regime"] == "high_compute_cost":
            run["interest_total"] += 1.5 * sd
    write_report(tmp_path, moved, regime_summary(moved), paper=paper)
    text = (tmp_path / "report.md").read_text()
    section = text[text.index("### high_compute_cost (n = 12)"):text.index("## 4.2")]
    flagged = [line for line in section.splitlines() if "> 1 SD" in line or "> 2 SD" in line]
    assert len(flagged) == 1 and flagged[0].startswith("| Interest total |") and "(z +1.50)" in flagged[0]
    assert "> 1 SD" not in text[:text.index("### high_compute_cost (n = 12)")].split("## 4.1")[1]


def test_cli_report_regenerates_the_same_report(study, reported, tmp_path):
    out, runs, rows = study
    folder = tmp_path / "res"
    shutil.copytree(out, folder)
    result = invoke("report", folder)
    assert result.exit_code == 0, result.output
    assert snapshot(folder) == snapshot(reported)  # the CLI found the logs in RESULTS_DIR/runs


def test_cli_report_user_errors_exit_2(tmp_path):
    result = invoke("report", tmp_path / "missing")
    assert result.exit_code == 2 and "is not a folder" in result.stderr and "Traceback" not in result.output
    (tmp_path / "run_summaries.json").write_text(json.dumps([]))
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "no runs" in result.stderr


def test_report_on_a_regime_the_paper_lacks(study, tmp_path):
    """A sweep's own regimes: our means only, no paper column to compare with, still a full report."""
    out, runs, rows = study
    renamed = [dict(r, regime="cheap_compute") for r in runs if r["regime"] == "baseline"]
    write_report(tmp_path, renamed, regime_summary(renamed))
    text = (tmp_path / "report.md").read_text()
    assert "### cheap_compute (n = 2)" in text and "The paper has no such regime; our means only." in text
    assert "in 0 of 0 figures" in text and "Not tested: cheap_compute: not in the paper" in text


def test_report_validation_concentration_puts_winner_hhi_beside_the_papers(study, reported):
    out, runs, rows = study
    text = (reported / "report.md").read_text()
    section = text[text.index("## 4.5"):text.index("## 4.6")]
    paper = load_paper()
    for row in rows:
        regime = row["regime"]
        ours, published = row["winner_hhi_mean"], paper.mean(regime, "winner_hhi_mean")
        top = sum(max(r["winner_counts"].values()) / sum(r["winner_counts"].values())
                  for r in runs if r["regime"] == regime) / 2
        assert (f"| {regime} | {format_value('winner_hhi_mean', ours)} +/- " in section
                and f"| {format_value('winner_hhi_mean', published)} | "
                    f"{format_delta('winner_hhi_mean', ours - published)} | {100 * top:.2f}% |" in section), regime
    assert "high_compute_cost over baseline: winner HHI " in section
