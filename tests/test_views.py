"""One set of views: the CLI's --json and the HTTP API show an account, a contract, a core and an event alike."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simledger.api.service import LedgerService
from simledger.cli.main import app
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "run.db"
    execute_run(path, regime_name="coordination_push", regime=load_regimes()["coordination_push"], seed=103,
                agents=6, turns=12).close()
    return path


def cli_json(*args) -> dict:
    result = CliRunner().invoke(app, [str(a) for a in args] + ["--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_replay_and_the_api_show_the_same_accounts_cores_contracts_block_and_seal(log_path):
    service = LedgerService(log_path, read_only=True)
    try:
        api_state, contracts = service.state(), service.contracts()
    finally:
        service.close()
    assert contracts, "the run made contracts"
    replayed = cli_json("replay", log_path)
    assert replayed["accounts"] == api_state["agents"]
    assert replayed["cores"] == api_state["cores"]
    assert (replayed["last_block"], replayed["last_seal"]) == (api_state["last_block"], api_state["last_seal"])
    for contract in contracts:
        assert cli_json("replay", log_path, "--contract", contract["contract_id"])["contract"] == contract
        assert "event_seqs" in contract and "history" not in contract


def test_log_and_the_api_show_the_same_events(log_path):
    service = LedgerService(log_path, read_only=True)
    try:
        api_events = service.events(after_seq=-1, limit=40)["events"]
    finally:
        service.close()
    cli_events = cli_json("log", log_path, "--limit", 40)["events"]
    assert len(cli_events) == len(api_events) == 40
    for ours, served in zip(cli_events, api_events):
        assert ours.pop("signed_by") in ("engine", "seed key")  # the CLI adds who signed, from the genesis
        if served.pop("redacted", None):  # the API never serves the genesis' seed
            assert served["payload"].pop("seed") is None and ours["payload"].pop("seed") == 103
        assert ours == served


def test_an_agent_is_agent_id_in_every_view_table_and_json_document(log_path, tmp_path):
    from simledger import open_run

    other = tmp_path / "other.db"
    execute_run(other, regime_name="coordination_push", regime=load_regimes()["coordination_push"], seed=104,
                agents=6, turns=12).close()
    state = cli_json("replay", log_path)
    differ = CliRunner().invoke(app, ["diff", str(log_path), str(other), "--json"])
    assert differ.exit_code == 1, differ.output  # the runs differ
    diff = json.loads(differ.stdout)
    statement = cli_json("audit", log_path, "--agent", state["accounts"][0]["agent_id"])
    contract = next(cid for ids in state["contracts"].values() for cid in ids)
    movements = [m for entry in cli_json("audit", log_path, contract)["events"] for m in entry["movements"]]
    assert diff["accounts"] and movements
    for document in [*state["accounts"], *diff["accounts"], statement, *movements]:
        assert "agent_id" in document and "agent" not in document, document
    frame = open_run(log_path).accounts()
    assert "agent_id" in frame.columns and "agent" not in frame.columns
