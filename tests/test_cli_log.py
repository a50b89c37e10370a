"""`simledger log`: filtered, paged event listings built from parameters, never from pasted user text."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simledger.cli.log_commands import build_event_filter
from simledger.cli.main import app
from simledger.ledger.store import Store
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 8


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("log") / "run.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=103, agents=8,
                turns=TURNS).close()
    return path


@pytest.fixture(scope="module")
def all_rows(log_path):
    with Store(log_path) as store:
        return list(store.rows())


def log_seqs(log_path, *args) -> list[int]:
    result = invoke("log", log_path, *args, "--limit", 100_000, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == len(doc["events"])
    return [event["seq"] for event in doc["events"]]


def first_contract(all_rows) -> str:
    return next(row[4] for row in all_rows if row[4])


@pytest.mark.parametrize("filters", [
    {"turn": 3},
    {"kind": "contract_signed"},
    {"actor": "agent_2"},
    {"actor": "engine"},
    {"contract": "FIRST"},
    {"turn": 5, "kind": "inference_fee_charged"},
    {"turn": 2, "actor": "agent_5", "kind": "action_submitted"},
])
def test_filters_return_exactly_the_matching_rows(log_path, all_rows, filters):
    filters = {k: (first_contract(all_rows) if v == "FIRST" else v) for k, v in filters.items()}
    column = {"turn": 1, "kind": 2, "actor": 3, "contract": 4}
    expected = [row[0] for row in all_rows if all(row[column[k]] == v for k, v in filters.items())]
    args = [item for k, v in filters.items() for item in (f"--{k}", v)]
    assert expected, "a filter that matches nothing proves nothing"
    assert log_seqs(log_path, *args) == expected


def test_pages_concatenate_to_the_whole_listing(log_path, all_rows):
    pages = []
    for offset in (0, 7, 14):
        result = invoke("log", log_path, "--limit", 7, "--offset", offset, "--json")
        pages += [event["seq"] for event in json.loads(result.stdout)["events"]]
    assert pages == [row[0] for row in all_rows[:21]]


def test_default_page_is_50_rows_with_a_next_page_hint(log_path, all_rows):
    result = invoke("log", log_path)
    assert result.exit_code == 0, result.output
    assert "next page: --offset 50" in result.output
    assert len(log_seqs(log_path)) == len(all_rows)  # --limit 100000 reaches the end


def test_json_rows_carry_payload_and_chain_fields(log_path, all_rows):
    result = invoke("log", log_path, "--turn", 1, "--kind", "core_bid_placed", "--json")
    events = json.loads(result.stdout)["events"]
    by_seq = {row[0]: row for row in all_rows}
    for event in events:
        row = by_seq[event["seq"]]
        assert event["payload"] == json.loads(row[7])
        assert (event["hash"], event["prev_hash"], event["signature"]) == (row[9], row[8], row[11])


def test_filter_values_are_parameters_not_sql():
    where, args = build_event_filter((2, 5), "x' OR '1'='1", "agent_1", None)
    assert "'1'='1" not in where and "agent_1" not in where
    assert where == "turn >= ? AND turn <= ? AND kind = ? AND actor = ?" and args == [2, 5, "x' OR '1'='1", "agent_1"]


@pytest.mark.parametrize("args", [
    ["--kind", "x' OR '1'='1"],  # unknown kind (and an injection attempt)
    ["--actor", "agent_1' OR '1'='1"],  # unknown agent
    ["--contract", "contract_999"],  # unknown contract
    ["--turn", str(TURNS + 1)],  # beyond the log
    ["--limit", "0"],  # page size must be >= 1
])
def test_log_user_mistakes_exit_2(log_path, args):
    result = invoke("log", log_path, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_log_of_a_missing_file_is_one_line(tmp_path):
    result = invoke("log", tmp_path / "missing.db")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
