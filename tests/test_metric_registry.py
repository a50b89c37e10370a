"""Adding a metric is one registry row: summaries, CSV/JSON columns, sweep tables follow; the paper still loads."""

from __future__ import annotations

import csv
import io
import json

import pytest

from simledger.cli.sweep_command import format_metric, print_sweep_table
from simledger.projections import metrics
from simledger.projections.metrics import Metric, regime_fields, run_csv_fields
from simledger.study.compare import compare
from simledger.study.paper import METRICS as PAPER_COLUMNS
from simledger.study.paper import load_paper, parse_regime_summary, parse_run_summaries
from simledger.study.sweep import parse_sweep, run_sweep

SPEC = {"regime": "baseline", "seeds": [101, 102], "agents": 4, "turns": 4, "grid": {"interest_rate_per_turn": [0.01]}}


def richest(run: dict) -> int:
    return max(run["balances_final"].values())


DUMMY = Metric("richest_balance", "Richest final balance", True, "richest_balance_mean", headline="richest",
               derive=richest)


@pytest.fixture
def with_dummy(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", [*metrics.METRICS, DUMMY])


def header(path) -> list[str]:
    return next(csv.reader(io.StringIO(path.read_text())))


def test_a_registry_row_reaches_every_summary_and_table(with_dummy, tmp_path, capsys):
    sweep = parse_sweep(SPEC)
    result = run_sweep(sweep, tmp_path, report=False, plots=False)
    assert result.ok and len(result.summaries) == 2
    expected = sum(richest(r) for r in result.summaries) / 2

    assert "richest_balance_mean" in regime_fields()
    assert header(tmp_path / "regime_summary.csv") == regime_fields()
    (row,) = json.loads((tmp_path / "regime_summary.json").read_text())
    assert row["richest_balance_mean"] == expected

    assert "richest_balance" not in run_csv_fields(), "a derived metric is computed when read, not stored"
    (sweep_row,) = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert sweep_row["richest_balance_mean"] == expected
    assert {"richest_balance_mean", "richest_balance_ci95"} <= set(header(tmp_path / "sweep_summary.csv"))

    print_sweep_table(sweep, result)  # not a terminal: tab-separated, header first
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines() if "\t" in line]
    header_row, last_row = rows[0], rows[-1]
    assert header_row[-1] == "richest" and last_row[-1] == format_metric(expected), "the new column is the last"


def test_the_paper_loads_without_our_new_column_and_ours_load_with_it(with_dummy, tmp_path):
    paper = load_paper()
    assert "richest_balance_mean" not in PAPER_COLUMNS, "not a paper metric: never required in the paper's files"
    result = run_sweep(parse_sweep(SPEC), tmp_path, report=False, plots=False)
    ours = parse_regime_summary((tmp_path / "regime_summary.csv").read_text(), "ours")
    assert set(next(iter(ours.values()))) == set(PAPER_COLUMNS)
    assert len(parse_run_summaries((tmp_path / "run_summaries.csv").read_text(), "ours")) == 2
    rows = json.loads((tmp_path / "regime_summary.json").read_text())
    assert compare(result.summaries, rows, paper).verdict


def test_the_paper_loader_ignores_extra_columns_in_the_papers_own_files():
    text = "regime,n_runs,extra," + ",".join(PAPER_COLUMNS) + "\nbaseline,12,x," + ",".join("1" for _ in PAPER_COLUMNS)
    assert parse_regime_summary(text, "extended")["baseline"] == {c: 1.0 for c in PAPER_COLUMNS}
