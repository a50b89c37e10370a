"""Acceptance tests of the study (issue 4): a reduced study end to end, against the seed driver's schema.

Two regimes x two seeds x ten turns, run through ``simledger experiment`` (one
and two workers) and through the library. The expected schemas are read from
the seed driver (/work/shared/seed/run_experiments.py) and the seed's result
files, never restated by hand.
"""

from __future__ import annotations


import ast
import csv
import importlib.util
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.actions import action_name
from simledger.ledger.replay import load_state, positioned_events
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log
from simledger.study.experiment import execute_specs
from simledger.study.sweep import study_specs
from simledger.study.summary import SUMMARY_FILES, summarize
from _seed import SEED

SEED_DIR = SEED
DRIVER = SEED_DIR / "run_experiments.py"
REGIMES = ("baseline", "high_compute_cost")
SEEDS = (101, 102)
TURNS = 10
AGENTS = 8
EXPECTED_RUN_IDS = [f"{r}_{s}" for r in REGIMES for s in SEEDS]


# --- the seed driver, read as data -----------------------------------------------


def get_driver_tree() -> ast.Module:
    return ast.parse(DRIVER.read_text())


def get_function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def get_driver_csv_fields() -> list[str]:
    """Return the ``fields`` list write_outputs writes run_summaries.csv with."""
    func = get_function(get_driver_tree(), "write_outputs")
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List) and \
                any(isinstance(t, ast.Name) and t.id == "fields" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("write_outputs has no literal fields list")


def get_driver_run_summary_keys() -> list[str]:
    """Return the keys of the ``run_summary`` dict run_single returns."""
    func = get_function(get_driver_tree(), "run_single")
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                any(isinstance(t, ast.Name) and t.id == "run_summary" for t in node.targets):
            return [k.value for k in node.value.keys]
    raise AssertionError("run_single builds no run_summary dict")


def get_driver_turn_row_keys() -> list[str]:
    """Return the keys of the dict run_single appends to ``turn_rows``."""
    func = get_function(get_driver_tree(), "run_single")
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "turn_rows":
            return [k.value for k in node.args[0].keys]
    raise AssertionError("run_single appends no turn row")


def load_driver_module():
    """Import the seed driver from its path (it only imports the standard library)."""
    spec = importlib.util.spec_from_file_location("seed_run_experiments", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


# --- the reduced study, run once per way of running it ----------------------------


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_cli_experiment(out: Path, workers: int, *extra: str) -> Path:
    result = invoke("experiment", "--regimes", ",".join(REGIMES), "--seeds", f"{SEEDS[0]}-{SEEDS[-1]}",
                    "--turns", TURNS, "--out", out, "--workers", workers, *extra)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Path:
    """The reduced study through the CLI on one worker, with the default report."""
    return run_cli_experiment(tmp_path_factory.mktemp("one_worker"), 1)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Path:
    """The same study through the CLI on two worker processes."""
    return run_cli_experiment(tmp_path_factory.mktemp("two_workers"), 2, "--no-report")


@pytest.fixture(scope="module")
def library_study(tmp_path_factory) -> tuple[Path, list]:
    """The same study through the library: specs, executor, summaries."""
    out = tmp_path_factory.mktemp("library")
    specs = study_specs(REGIMES, SEEDS, AGENTS, TURNS)
    outcomes = execute_specs(specs, out / "runs", workers=1)
    summarize([o.path for o in outcomes], out)
    return out, outcomes


def get_logs(study_dir: Path) -> list[Path]:
    return sorted((study_dir / "runs").glob("*.db"))


def get_events_table(path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def get_head_hash(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()[0]
    finally:
        conn.close()


def load_runs(study_dir: Path) -> list[dict]:
    return json.loads((study_dir / "run_summaries.json").read_text())


# --- schemas ------------------------------------------------------------------------


def test_experiment_writes_the_four_summary_files_and_one_log_per_run(one_worker):
    for name in SUMMARY_FILES:
        assert (one_worker / name).is_file(), name
    assert [p.stem for p in get_logs(one_worker)] == EXPECTED_RUN_IDS


def test_run_summaries_csv_header_is_the_drivers_fields_list(one_worker):
    fields = get_driver_csv_fields()
    assert read_csv_header(one_worker / "run_summaries.csv") == fields
    assert read_csv_header(SEED_DIR / "run_summaries.csv") == fields


def test_regime_summary_csv_header_is_the_seeds(one_worker):
    assert read_csv_header(one_worker / "regime_summary.csv") == read_csv_header(SEED_DIR / "regime_summary.csv")


def test_run_summaries_json_rows_have_every_key_of_the_drivers_run_summary(one_worker):
    driver_keys = get_driver_run_summary_keys()
    assert set(driver_keys) >= {
        "run_id", "seed", "regime", "turns", "agents", "contracts_total", "contracts_settled_total",
        "contracts_defaulted_total", "contracts_final_status", "inference_fees_total", "interest_total",
        "dividends_total", "token_supply_final", "mean_balance", "median_balance", "mean_wealth", "gini_balance",
        "gini_wealth", "negative_balance_agents", "winner_hhi", "blocks_produced", "action_counts", "winner_counts",
        "total_errors", "balances_final", "staked_final", "turn_rows",
    }
    turn_keys = get_driver_turn_row_keys()
    runs = load_runs(one_worker)
    assert len(runs) == len(EXPECTED_RUN_IDS)
    for run in runs:
        missing = [k for k in driver_keys if k not in run]
        assert not missing, f"{run['run_id']} lacks {missing}"
        assert run["turns"] == TURNS and run["agents"] == AGENTS
        assert [row["turn"] for row in run["turn_rows"]] == list(range(1, TURNS + 1))
        for row in run["turn_rows"]:
            assert list(row) == turn_keys


def test_regime_summary_json_keys_equal_its_csv_header(one_worker):
    header = read_csv_header(one_worker / "regime_summary.csv")
    rows = json.loads((one_worker / "regime_summary.json").read_text())
    assert [row["regime"] for row in rows] == sorted(REGIMES)
    for row in rows:
        assert list(row) == header
        assert row["n_runs"] == len(SEEDS)


def test_run_summaries_csv_rows_are_the_json_rows(one_worker):
    runs = load_runs(one_worker)
    with open(one_worker / "run_summaries.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(runs)
    for row, run in zip(rows, runs):
        assert row == {k: str(run[k]) for k in row}


def test_regime_means_are_the_means_of_the_runs(one_worker):
    runs = load_runs(one_worker)
    rows = json.loads((one_worker / "regime_summary.json").read_text())
    by_regime = {row["regime"]: row for row in rows}
    for regime in REGIMES:
        mine = [r for r in runs if r["regime"] == regime]
        assert by_regime[regime]["gini_wealth_mean"] == sum(r["gini_wealth"] for r in mine) / len(mine)
        assert by_regime[regime]["blocks_produced_mean"] == sum(r["blocks_produced"] for r in mine) / len(mine)
        assert by_regime[regime]["errors_mean"] == sum(r["total_errors"] for r in mine) / len(mine)


def test_rows_are_ordered_regime_then_seed(one_worker):
    runs = load_runs(one_worker)
    assert [r["run_id"] for r in runs] == EXPECTED_RUN_IDS
    assert [(r["regime"], r["seed"]) for r in runs] == sorted((r["regime"], r["seed"]) for r in runs)
    with open(one_worker / "run_summaries.csv", newline="", encoding="utf-8") as f:
        assert [row["run_id"] for row in csv.DictReader(f)] == EXPECTED_RUN_IDS


# --- the logs are the source of truth -------------------------------------------------


def test_every_log_verifies(one_worker, two_workers, library_study):
    for study_dir in (one_worker, two_workers, library_study[0]):
        for path in get_logs(study_dir):
            result = verify_log(path)
            assert result.ok, f"{path}: {result.error}"
            assert result.turns == TURNS  # turns 1..TURNS after the genesis


def test_summarize_reproduces_the_four_files_byte_for_byte(one_worker, tmp_path):
    logs = get_logs(one_worker)
    result = invoke("summarize", *logs, "--out", tmp_path / "again", "--no-report")
    assert result.exit_code == 0, result.output
    for name in SUMMARY_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (one_worker / name).read_bytes(), name


def test_one_and_two_workers_write_identical_logs_and_summaries(one_worker, two_workers):
    one, two = get_logs(one_worker), get_logs(two_workers)
    assert [p.name for p in one] == [p.name for p in two]
    heads = set()
    for a, b in zip(one, two):
        assert get_head_hash(a) == get_head_hash(b), a.name
        assert get_events_table(a) == get_events_table(b), a.name
        heads.add(get_head_hash(a))
    assert len(heads) == len(one), "distinct runs must have distinct heads"
    for name in SUMMARY_FILES:
        assert (one_worker / name).read_bytes() == (two_workers / name).read_bytes(), name


def test_library_and_cli_produce_the_same_logs_and_summaries(one_worker, library_study):
    out, outcomes = library_study
    assert [o.name for o in outcomes] == EXPECTED_RUN_IDS
    for outcome in outcomes:
        cli_log = one_worker / "runs" / f"{outcome.name}.db"
        assert outcome.head_hash == get_head_hash(cli_log)
        assert get_events_table(Path(outcome.path)) == get_events_table(cli_log)
    for name in SUMMARY_FILES:
        assert (out / name).read_bytes() == (one_worker / name).read_bytes(), name


def get_log_events(path: Path) -> list:
    with Store(path) as store:
        return [event for _, _, event in positioned_events(store)]


def test_gini_wealth_is_the_drivers_formula_on_the_folded_log(one_worker):
    driver = load_driver_module()
    runs = {r["run_id"]: r for r in load_runs(one_worker)}
    for path in get_logs(one_worker):
        with Store(path) as store:
            state = load_state(store, use_checkpoints=False)
        balances = [state.accounts[a].balance for a in state.agents]
        wealth = [state.accounts[a].balance + state.accounts[a].staked for a in state.agents]
        run = runs[path.stem]
        assert run["gini_wealth"] == driver.gini([max(0, w + 2000) for w in wealth])
        assert run["gini_balance"] == driver.gini([max(0, b + 2000) for b in balances])
        assert run["balances_final"] == dict(zip(state.agents, balances))
        assert run["negative_balance_agents"] == sum(1 for b in balances if b < 0)


def test_action_and_block_figures_are_counted_from_the_log_events(one_worker):
    runs = {r["run_id"]: r for r in load_runs(one_worker)}
    for path in get_logs(one_worker):
        events = get_log_events(path)
        kinds = [e.__struct_config__.tag for e in events]
        submitted = [e for e in events if e.__struct_config__.tag == "action_submitted"]
        winners = Counter(e.winner for e in events if e.__struct_config__.tag == "block_produced")
        run = runs[path.stem]
        assert len(submitted) == TURNS * AGENTS
        assert run["action_counts"] == dict(Counter(action_name(e.action) for e in submitted))
        assert run["blocks_produced"] == kinds.count("block_produced")
        assert run["winner_counts"] == dict(winners)
        assert run["total_errors"] == kinds.count("action_rejected")
        assert run["contracts_total"] == kinds.count("contract_proposed")
        if winners:
            total = sum(winners.values())
            assert run["winner_hhi"] == sum((c / total) ** 2 for c in winners.values())
