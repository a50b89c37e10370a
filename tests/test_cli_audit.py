"""`simledger audit`: a contract's checked history and an agent's reconciled account statement."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger import audit as audit_module
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 12


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "run.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=101, agents=8,
                turns=TURNS).close()
    return path


@pytest.fixture(scope="module")
def final_state(log_path):
    with Store(log_path) as store:
        return load_state(store, use_checkpoints=False)


def audit_json(*args) -> tuple[int, dict]:
    result = invoke("audit", *args, "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def test_the_log_has_contracts_to_audit(final_state):
    # Guard: the other tests mean nothing on a run without contracts.
    assert len(final_state.contracts) >= 3


def test_contract_audit_lists_exactly_the_contracts_events_in_order(log_path, final_state):
    with Store(log_path) as store:
        for cid, contract in final_state.contracts.items():
            code, doc = audit_json(log_path, cid)
            assert code == 0
            seqs = [e["seq"] for e in doc["events"]]
            assert seqs == [row[0] for row in store.select("contract_id = ?", [cid])]
            assert seqs == contract.history
            assert [e["kind"] for e in doc["events"]][0] == "contract_proposed"
            assert doc["status"] == contract.status


def test_every_listed_event_checks_hash_signature_and_inclusion(log_path, final_state):
    for cid in final_state.contracts:
        _, doc = audit_json(log_path, cid)
        assert doc["all_checks_pass"] is True
        for entry in doc["events"]:
            assert entry["hash_ok"] and entry["signature_ok"] and entry["included"] is True
            assert entry["proof"]["root"] and 0 <= entry["proof"]["index"] < entry["proof"]["size"]
            if entry["input_seq"] is not None:
                assert entry["input_signature_ok"] is True


def test_token_movements_match_what_each_event_says(log_path, final_state):
    seen = set()
    for cid in final_state.contracts:
        _, doc = audit_json(log_path, cid)
        for entry in doc["events"]:
            p, moves = entry["payload"], {m["agent_id"]: m for m in entry["movements"]}
            if entry["kind"] == "collateral_locked":
                assert moves[p["agent"]]["balance"] == -p["amount"] and moves[p["agent"]]["locked"] == p["amount"]
            elif entry["kind"] == "collateral_released":
                assert moves[p["agent"]]["balance"] == p["amount"] and moves[p["agent"]]["locked"] == -p["amount"]
            elif entry["kind"] == "collateral_slashed":
                assert moves[p["agent"]]["locked"] == -p["amount"] and entry["supply"]["sunk"] == p["amount"]
            elif entry["kind"] == "contract_payment":
                assert moves[p["payer"]]["balance"] == -p["amount"] and moves[p["payee"]]["balance"] == p["amount"]
            elif entry["kind"] in ("contract_proposed", "contract_signed", "delivery_confirmed"):
                assert moves == {}
            seen.add(entry["kind"])
    assert {"collateral_locked", "contract_payment"} <= seen


def test_audit_table_marks_every_check(log_path, final_state):
    cid = next(iter(final_state.contracts))
    result = invoke("audit", log_path, cid)
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    assert "every hash, signature and inclusion proof checks" in result.output


def test_audit_marks_a_forged_signature_and_exits_1(log_path, final_state, tmp_path):
    cid = next(iter(final_state.contracts))
    forged = tmp_path / "forged.db"
    shutil.copy(log_path, forged)
    target = final_state.contracts[cid].history[-1]
    with sqlite3.connect(forged) as conn:
        (sig,) = conn.execute("SELECT signature FROM events WHERE seq = ?", [target]).fetchone()
        flipped = ("0" if sig[0] != "0" else "1") + sig[1:]  # one nibble of the signature changed
        conn.execute("UPDATE events SET signature = ? WHERE seq = ?", [flipped, target])
    code, doc = audit_json(forged, cid)
    assert code == 1
    bad = [e for e in doc["events"] if not e["signature_ok"]]
    assert [e["seq"] for e in bad] == [target]
    assert bad[0]["hash_ok"] and bad[0]["included"]  # the hash (and so the proof) does not cover the signature


def test_audit_of_unknown_contract_exits_2(log_path):
    assert_one_line_error(invoke("audit", log_path, "contract_999"))


@pytest.mark.parametrize("args", [[], ["contract_1", "--agent", "agent_1"], ["--agent", "nobody"]])
def test_audit_usage_mistakes_are_one_line(log_path, args):
    assert_one_line_error(invoke("audit", log_path, *args))


def test_account_statement_reconciles_for_every_agent(log_path, final_state):
    genesis_tokens = final_state.config.genesis_tokens_per_agent
    for agent in final_state.agents:
        code, doc = audit_json(log_path, "--agent", agent)
        assert code == 0
        assert doc["reconciled"] is True
        assert doc["closing_balance"] == doc["projected_balance"] == final_state.accounts[agent].balance
        assert doc["opening_balance"] == genesis_tokens
        running = 0
        for line in doc["lines"]:
            running += line["delta"]
            assert line["balance"] == running and line["delta"] != 0
        assert running == doc["closing_balance"]


def test_statement_lists_every_event_that_moved_the_agents_balance(log_path, final_state):
    _, doc = audit_json(log_path, "--agent", "agent_1")
    by_seq = {line["seq"]: line for line in doc["lines"]}
    with Store(log_path) as store:
        fees = store.select("kind = 'inference_fee_charged' AND actor = ?", ["agent_1"])
        transfers = store.select("kind = 'tokens_transferred' AND payload_json LIKE ?", ['%"recipient":"agent_1"%'])
    for row in fees:
        assert by_seq[row[0]]["delta"] == -json.loads(row[7])["fee"]
    for row in transfers:
        payload = json.loads(row[7])
        assert by_seq[row[0]]["delta"] == payload["amount"] and by_seq[row[0]]["counterparty"] == payload["sender"]


def test_statement_that_does_not_reconcile_exits_1(log_path, monkeypatch):
    real = audit_module.load_state

    def off_by_one(store, *args, **kwargs):
        state = real(store, *args, **kwargs)
        state.accounts["agent_2"].balance += 1
        return state

    monkeypatch.setattr(audit_module, "load_state", off_by_one)
    result = invoke("audit", log_path, "--agent", "agent_2")
    assert result.exit_code == 1
    assert "!=" in result.output and "✗" in result.output
