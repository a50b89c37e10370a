"""The HTTP API's contract: refusals append nothing, signatures are the agents', audit endpoints read the log.

Fast tests through Litestar's TestClient (the app in-process, no socket); the
real uvicorn server is exercised by test_http_driver.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import pytest
import typer
from litestar.testing import TestClient
from typer.testing import CliRunner

from simledger.api.app import create_app
from simledger.api.client_signing import sign_input
from simledger.api.service import LedgerService
from simledger.cli.serve_command import register
from simledger.events.keys import SeedKeys
from simledger.ledger.errors import LedgerError, WriterBusy

logging.getLogger("httpx").setLevel(logging.WARNING)

AGENTS = ["agent_0", "agent_1", "agent_2"]
SEED = 7


def init_body(**extra) -> dict:
    return {"config": {"num_agents": len(AGENTS)}, "agent_ids": AGENTS, "seed": SEED, **extra}


def mine(agent: str, **extra) -> dict:
    return {"agent_id": agent, "thinking": "", "action": {"action": "mine"}, "speech": None,
            "thinking_units": 20, "output_units": 40, **extra}


def count_events(db_path) -> int:
    """Return the log's event count with a plain sqlite3 reader (0 when there is no log)."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return 0
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()


class Api:
    """A served run.db: the service, its TestClient, and the db path."""

    def __init__(self, db_path, keystore=None, **options):
        self.db_path = db_path
        self.service = LedgerService(db_path, keystore=keystore, **options)
        self._client_cm = TestClient(create_app(self.service))
        self.client = self._client_cm.__enter__()

    def close(self):
        self._client_cm.__exit__(None, None, None)
        self.service.close()

    def init(self, **extra) -> dict:
        response = self.client.post("/init", json=init_body(**extra))
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def turn(self, inputs) -> dict:
        response = self.client.post("/turn", json={"inputs": inputs})
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def api(tmp_path):
    served = Api(tmp_path / "run.db")
    yield served
    served.close()


@pytest.fixture
def running(api):
    """A served run with genesis and one turn."""
    api.init()
    api.turn([mine(a) for a in AGENTS])
    return api


def assert_refused(response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False
    assert message in body["error"]


# --- the original calls ----------------------------------------------------------------


def test_config_answers_defaults_before_init_and_the_runs_config_after(api):
    before = api.client.get("/config")
    assert before.status_code == 200 and before.json()["num_agents"] == 8
    api.init()
    assert api.client.get("/config").json()["num_agents"] == len(AGENTS)


def test_turn_answers_the_original_data_shape_from_the_turns_metrics(running):
    data = running.turn([mine(a) for a in AGENTS])
    assert set(data) == {"turn", "block_winner", "inference_fees_collected", "contracts_settled",
                         "contracts_defaulted", "errors", "dividends_paid", "interest_charged"}
    assert data["turn"] == 2
    state = running.service.run.state
    metrics = state.turns[-1]
    assert data["inference_fees_collected"] == metrics.fees
    assert data["dividends_paid"] == metrics.dividends
    assert data["block_winner"] == metrics.block_winner


def test_state_lists_agents_in_order_with_balance_staked_and_supply(running):
    body = running.client.get("/state").json()
    state = running.service.run.state
    assert [a["agent_id"] for a in body["agents"]] == AGENTS
    assert [a["balance"] for a in body["agents"]] == [state.accounts[a].balance for a in AGENTS]
    assert [a["staked"] for a in body["agents"]] == [state.accounts[a].staked for a in AGENTS]
    assert body["token_supply"] == state.token_supply()
    assert (body["turn"], body["next_turn"], body["run_id"]) == (1, 2, state.run_id)


def test_invalid_action_is_recorded_as_a_rejection_not_refused(running):
    before = count_events(running.db_path)
    data = running.turn([{"agent_id": "agent_0", "action": {"action": "stake", "amount": -5}}])
    assert [e["agent"] for e in data["errors"]] == ["agent_0"]
    assert count_events(running.db_path) > before


def test_existing_log_is_reopened_and_continued(tmp_path):
    first = Api(tmp_path / "run.db")
    first.init()
    first.turn([mine(a) for a in AGENTS])
    first.close()
    second = Api(tmp_path / "run.db")
    try:
        assert second.client.get("/state").json()["turn"] == 1
        assert second.turn([mine("agent_1")])["turn"] == 2
        assert_refused(second.client.post("/init", json=init_body()), 409, "already holds run")
    finally:
        second.close()


def test_init_records_seed_identity_and_rules_in_the_genesis(api):
    api.init(identity={"regime": "custom", "turns": 3}, rules={"job_pay_units": 33})
    state = api.service.run.state
    assert (state.seed, state.identity, state.rules.job_pay_units) == (SEED, {"regime": "custom", "turns": 3}, 33)
    assert state.agent_keys["agent_0"] == SeedKeys(SEED).private_key("agent_0").public_key().public_bytes_raw().hex()


# --- refusals: 4xx, a clear message, nothing appended ----------------------------------------


BAD_TURNS = [
    # malformed JSON: the body is cut short
    ("malformed_json", {"content": b'{"inputs": [', "headers": {"content-type": "application/json"}}, 400,
     "malformed"),
    # inputs is an object, not a list
    ("inputs_not_a_list", {"json": {"inputs": {"agent_id": "agent_0"}}}, 400, "inputs: Expected `array`"),
    # agent_id is a number
    ("agent_id_not_a_string", {"json": {"inputs": [{"agent_id": 3}]}}, 400, "inputs[0].agent_id: Expected `str`"),
    # no inputs field at all
    ("inputs_missing", {"json": {"turn": []}}, 400, "missing required field `inputs`"),
    # an agent that is not in the run
    ("unknown_agent", {"json": {"inputs": [mine("agent_0"), mine("mallory")]}}, 400, "unknown agent 'mallory'"),
    # agent_1 sends two inputs in one turn
    ("two_inputs_one_agent", {"json": {"inputs": [mine("agent_1"), mine("agent_0"), mine("agent_1")]}}, 400,
     "two inputs from 'agent_1'"),
    # a signature that is not even hex
    ("signature_not_hex", {"json": {"inputs": [mine("agent_0", signature="zz")]}}, 400, "does not verify"),
]


@pytest.mark.parametrize("name, request_kwargs, status, message", BAD_TURNS, ids=[b[0] for b in BAD_TURNS])
def test_bad_turn_request_is_refused_and_appends_nothing(running, name, request_kwargs, status, message):
    before = count_events(running.db_path)
    assert_refused(running.client.post("/turn", **request_kwargs), status, message)
    assert count_events(running.db_path) == before
    assert running.client.get("/state").json()["turn"] == 1
    assert running.turn([mine("agent_0")])["turn"] == 2  # and the run goes on


def test_turn_before_init_is_refused(api):
    assert_refused(api.client.post("/turn", json={"inputs": [mine("agent_0")]}), 409, "POST /init first")
    assert count_events(api.db_path) == 0
    assert_refused(api.client.get("/state"), 409, "POST /init first")


def test_second_init_is_refused_on_a_non_empty_log(running):
    before = count_events(running.db_path)
    assert_refused(running.client.post("/init", json=init_body(seed=8)), 409, "already holds run")
    assert count_events(running.db_path) == before


@pytest.mark.parametrize("body, message", [
    # config.num_agents disagrees with the agent list
    ({"config": {"num_agents": 5}, "agent_ids": AGENTS}, "config.num_agents is 5"),
    # a config knob that does not exist
    ({"config": {"num_agents": 3, "warp_speed": 9}, "agent_ids": AGENTS}, "unknown field `warp_speed`"),
    # the same agent twice
    ({"config": {"num_agents": 2}, "agent_ids": ["a", "a"]}, "unique"),
    # a misspelt top-level field
    ({"config": {"num_agents": 3}, "agent_ids": AGENTS, "sed": 1}, "unknown field `sed`"),
])
def test_bad_init_is_refused_and_a_good_one_still_works(api, body, message):
    assert_refused(api.client.post("/init", json=body), 400, message)
    assert count_events(api.db_path) == 0
    assert api.init()["turn"] == 0


# --- signatures: custodial by default, the agent's own when given ----------------------------


def sign(api, agent: str, item: dict, *, key_owner: str | None = None, turn: int | None = None) -> dict:
    """Return ``item`` signed as a non-custodial client would (key from the run's seed)."""
    state = api.client.get("/state").json()
    key = SeedKeys(SEED).private_key(key_owner or agent)
    signature = sign_input(key, state["run_id"], turn if turn is not None else state["next_turn"], item)
    return {**item, "signature": signature}


class RefusingSigner:
    """Stands in for the server's copy of an agent key: any use of it fails the test."""

    def sign(self, message):
        raise AssertionError("the server signed an input the client had signed")


def test_client_signed_input_is_recorded_with_the_clients_signature(running):
    running.service.run._signers["agent_0"] = RefusingSigner()  # the server cannot sign for agent_0 now
    signed = sign(running, "agent_0", mine("agent_0"))
    running.turn([signed, mine("agent_1")])
    events = running.client.get("/events", params={"after_seq": -1, "limit": 1000}).json()["events"]
    submitted = [e for e in events if e["kind"] == "action_submitted" and e["turn"] == 2]
    assert [(e["actor"], e["signature"]) for e in submitted][0] == ("agent_0", signed["signature"])
    assert running.client.get("/verify").json()["ok"] is True


@pytest.mark.parametrize("key_owner, turn_offset, change", [
    ("agent_1", 0, None),  # signed with another agent's key
    ("agent_0", 1, None),  # signed for the wrong turn
    ("agent_0", 0, {"output_units": 41}),  # the input was changed after signing
])
def test_wrongly_signed_input_is_refused_and_appends_nothing(running, key_owner, turn_offset, change):
    next_turn = running.client.get("/state").json()["next_turn"]
    signed = sign(running, "agent_0", mine("agent_0"), key_owner=key_owner, turn=next_turn + turn_offset)
    before = count_events(running.db_path)
    assert_refused(running.client.post("/turn", json={"inputs": [{**signed, **(change or {})}]}), 400,
                   "signature of agent_0's input does not verify")
    assert count_events(running.db_path) == before


# --- audit endpoints ---------------------------------------------------------------------------


def test_events_pages_walk_the_whole_log_in_order(running):
    seqs, after = [], -1
    while True:
        page = running.client.get("/events", params={"after_seq": after, "limit": 4}).json()
        assert len(page["events"]) <= 4
        seqs += [e["seq"] for e in page["events"]]
        after = page["next_after_seq"]
        if not page["more"]:
            break
    assert seqs == list(range(count_events(running.db_path)))
    assert page["head_seq"] == seqs[-1]


def test_events_limit_is_bounded(running):
    assert_refused(running.client.get("/events", params={"limit": 0}), 400, "limit")
    body = running.client.get("/events", params={"limit": 10**6}).json()
    assert len(body["events"]) == min(1000, count_events(running.db_path))


def propose(proposer: str, counterparty: str, arbitrator: str) -> dict:
    contract = {"counterparty": counterparty, "arbitrator": arbitrator, "contract_type": "service",
                "terms": {"description": "test", "price": 30, "delivery_turn": 9},
                "collateral": {"proposer_locked": 10, "counterparty_locked": 10, "arbitrator_locked": 5},
                "penalty": 5, "arbitrator_fee": 2}
    return {"agent_id": proposer, "action": {"action": "propose_contract", "contract": contract}}


def test_contracts_and_their_history_come_from_the_log(running):
    running.turn([propose("agent_0", "agent_1", "agent_2")])
    [contract] = running.client.get("/contracts").json()
    cid = contract["contract_id"]
    assert (contract["proposer"], contract["counterparty"], contract["status"]) == ("agent_0", "agent_1", "proposed")
    running.turn([{"agent_id": "agent_1", "action": {"action": "sign_contract", "contract_id": cid,
                                                   "role": "counterparty"}}])
    history = running.client.get(f"/contracts/{cid}/history").json()
    kinds = [e["kind"] for e in history["events"]]
    assert kinds[0] == "contract_proposed" and "contract_signed" in kinds
    log = running.client.get("/events", params={"limit": 1000}).json()["events"]
    assert [e["seq"] for e in history["events"]] == [e["seq"] for e in log if e["contract_id"] == cid]
    status = running.service.run.state.contracts[cid].status
    assert running.client.get("/contracts", params={"status": status}).json()[0]["contract_id"] == cid
    assert_refused(running.client.get("/contracts/contract_999/history"), 404, "no contract 'contract_999'")


def test_verify_reports_the_whole_log(running):
    body = running.client.get("/verify").json()
    head_seq, head_hash, _ = running.service.run.store.head()
    assert (body["ok"], body["head_seq"], body["head_hash"], body["events"]) == \
        (True, head_seq, head_hash.hex(), count_events(running.db_path))
    assert "NOT who wrote it" in body["proved"]  # seed-derived keys: integrity only


def test_replay_refolds_the_log_to_a_past_turn(running):
    after_turn_1 = running.client.get("/state").json()
    running.turn([mine("agent_2"), mine("agent_0")])
    replayed = running.client.get("/replay", params={"until_turn": 1}).json()
    assert replayed["agents"] == after_turn_1["agents"]
    assert replayed["token_supply"] == after_turn_1["token_supply"]
    assert replayed["state_digest"] == after_turn_1["last_seal"]["state_digest"]
    assert running.client.get("/replay").json()["turn"] == 2
    assert_refused(running.client.get("/replay", params={"until_turn": 99}), 400, "beyond the log")


def test_openapi_schema_and_docs_are_served(api):
    schema = api.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert {"/init", "/turn", "/state", "/config", "/events", "/verify", "/replay"} <= set(schema.json()["paths"])
    assert api.client.get("/schema").status_code == 200
    assert api.client.get("/schema/swagger").status_code == 200


# --- one writer per log -----------------------------------------------------------------------


def test_second_server_on_the_same_db_refuses_to_start(tmp_path):
    db_path = tmp_path / "run.db"
    first = LedgerService(db_path)  # before /init: holds the writer lock already
    try:
        with pytest.raises(WriterBusy, match="already open for writing"):
            LedgerService(db_path)
        cli = typer.Typer()
        cli.callback()(lambda: None)
        register(cli)
        result = CliRunner().invoke(cli, ["serve", "--db", str(db_path), "--port", "0"])
        assert result.exit_code == 2
        assert "already open for writing" in result.output
        assert "Traceback" not in result.output
    finally:
        first.close()


def test_second_server_on_an_existing_log_refuses_to_start(running):
    with pytest.raises(WriterBusy):
        LedgerService(running.db_path)
    assert running.turn([mine("agent_0")])["turn"] == 2  # the first server is unharmed


def test_client_write_transaction_on_core_shares_delays_a_turn_without_breaking_it(running):
    before = sorted(running.service.run.state.cores.items())
    client = sqlite3.connect(running.db_path, isolation_level=None, check_same_thread=False)
    client.execute("BEGIN IMMEDIATE")
    client.execute("DELETE FROM core_shares")
    release = threading.Timer(0.3, lambda: client.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    data = running.turn([mine("agent_0")])
    release.join()
    client.close()
    assert data["turn"] == 2 and time.monotonic() - started >= 0.25
    conn = sqlite3.connect(running.db_path)
    rows = conn.execute("SELECT core_id, owner FROM core_shares ORDER BY core_id").fetchall()
    conn.close()
    assert rows == [(core, owner) for core, (owner, _) in before]


def test_keystore_server_signs_custodially_with_the_keystore_keys(tmp_path):
    served = Api(tmp_path / "run.db", keystore=tmp_path / "keys")
    try:
        genesis = served.init()
        assert served.service.run.state.identity == {} and (tmp_path / "keys" / "agent_0.key").is_file()
        seed_key = SeedKeys(SEED).private_key("agent_0").public_key().public_bytes_raw().hex()
        assert genesis["agent_keys"]["agent_0"] != seed_key  # not derived from the seed
        served.turn([mine(a) for a in AGENTS])
        assert served.client.get("/verify").json()["ok"] is True
    finally:
        served.close()
    reopened = Api(tmp_path / "run.db", keystore=tmp_path / "keys")
    try:
        assert reopened.turn([mine("agent_2")])["turn"] == 2
    finally:
        reopened.close()


# --- who signs, and what the API hands out -------------------------------------------------------------


def test_require_signatures_refuses_unsigned_inputs_and_appends_nothing(tmp_path):
    served = Api(tmp_path / "run.db", require_signatures=True)
    try:
        served.init()
        before = count_events(served.db_path)
        assert_refused(served.client.post("/turn", json={"inputs": [mine("agent_1")]}), 400,
                       "agent_1's input is not signed")
        assert count_events(served.db_path) == before
        assert served.turn([sign(served, "agent_1", mine("agent_1"))])["turn"] == 1
    finally:
        served.close()


def test_keystore_server_records_that_it_signed_for_the_agent(tmp_path):
    served = Api(tmp_path / "run.db", keystore=tmp_path / "keys")
    try:
        served.init()
        served.turn([mine("agent_0")])
        events = served.client.get("/events", params={"limit": 1000}).json()["events"]
        [submitted] = [e for e in events if e["kind"] == "action_submitted"]
        assert submitted["payload"]["custodial"] is True
    finally:
        served.close()


def test_events_never_serve_the_seed(running):
    genesis = running.client.get("/events", params={"after_seq": -1, "limit": 1}).json()["events"][0]
    assert genesis["kind"] == "run_genesis"
    assert genesis["payload"]["seed"] is None and genesis["redacted"] == ["seed"]
    assert str(SEED) not in str(genesis["payload"].get("seed"))
    assert genesis["payload"]["agent_keys"]  # the public keys are still there


def finished_study_log(tmp_path, turns: int = 2):
    from simledger.study.regimes import load_regimes
    from simledger.study.runner import execute_run

    path = tmp_path / "study.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=SEED, agents=3,
                turns=turns).close()
    return path


def test_serving_a_finished_study_run_needs_extend(tmp_path):
    path = finished_study_log(tmp_path)
    with pytest.raises(LedgerError, match="finished study run .*--read-only, or --extend"):
        LedgerService(path)
    extended = Api(path, extend=True)
    try:
        assert extended.turn([mine("agent_0")])["turn"] == 3
    finally:
        extended.close()


def test_read_only_server_serves_a_finished_log_and_writes_nothing(tmp_path):
    path = finished_study_log(tmp_path)
    before, files = path.read_bytes(), sorted(tmp_path.iterdir())
    served = Api(path, read_only=True)
    try:
        assert served.client.get("/state").json()["turn"] == 2
        assert served.client.get("/config").json()["num_agents"] == 3
        assert served.client.get("/verify").json()["ok"] is True
        assert served.client.get("/events", params={"limit": 5}).json()["events"][0]["seq"] == 0
        assert served.client.get("/replay", params={"until_turn": 1}).json()["turn"] == 1
        assert_refused(served.client.post("/turn", json={"inputs": [mine("agent_0")]}), 409, "read-only")
        assert_refused(served.client.post("/init", json=init_body()), 409, "read-only")
    finally:
        served.close()
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == files  # not even a lock or -wal file


def test_read_only_server_needs_a_log(tmp_path):
    with pytest.raises(LedgerError, match="no log to serve read-only"):
        LedgerService(tmp_path / "none.db", read_only=True)


# --- bounded input ------------------------------------------------------------------------------------


def nested(depth: int):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def post_with_deep(client, route: str, body: dict, depth: int):
    """POST ``body`` with its "DEEP" placeholder replaced by JSON nesting ``depth`` lists (too deep for json.dumps)."""
    text = json.dumps(body).replace('"DEEP"', "[" * depth + "]" * depth)
    return client.post(route, content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("where", ["identity", "speech", "thinking", "action"])
def test_deeply_nested_json_is_refused_before_it_is_decoded(api, where):
    if where == "identity":
        response = post_with_deep(api.client, "/init", init_body(identity={"x": "DEEP"}), 5000)
    else:
        api.init()
        response = post_with_deep(api.client, "/turn", {"inputs": [mine("agent_0", **{where: "DEEP"})]}, 5000)
    assert_refused(response, 400, "deeper than 64 levels")
    assert count_events(api.db_path) == (0 if where == "identity" else 2)


def test_moderately_nested_json_is_still_recorded(running):
    assert running.turn([mine("agent_0", speech=nested(40))])["turn"] == 2


@pytest.mark.parametrize("params", [{"after_seq": 10**20}, {"after_seq": -(10**20)}, {"limit": 10**20},
                                    {"after_seq": "1e400"}, {"limit": -5}])
def test_out_of_range_query_integers_are_refused(running, params):
    response = running.client.get("/events", params=params)
    assert response.status_code == 400, response.text


def test_out_of_range_replay_turn_is_refused(running):
    assert running.client.get("/replay", params={"until_turn": 10**20}).status_code == 400


@pytest.mark.parametrize("agent", ["agent\x00", "agent_\u200b1", "a\u202egnp", "\x1b[31mred", "has space", "x" * 65,
                                   "engine", ""])
@pytest.mark.parametrize("keystore", [False, True])
def test_agent_ids_outside_the_safe_alphabet_are_refused(tmp_path, agent, keystore):
    served = Api(tmp_path / "run.db", keystore=tmp_path / "keys" if keystore else None)
    try:
        body = init_body(agent_ids=["agent_0", "agent_1", agent])
        assert_refused(served.client.post("/init", json=body), 400, "A-Z a-z 0-9 _ . -")
        assert count_events(served.db_path) == 0
    finally:
        served.close()


def serve_cli(*args):
    cli = typer.Typer()
    cli.callback()(lambda: None)
    register(cli)
    return CliRunner().invoke(cli, ["serve", *map(str, args), "--port", "0"])


def test_serve_command_refuses_a_finished_study_run_in_one_line(tmp_path):
    path = finished_study_log(tmp_path)
    result = serve_cli("--db", path)
    assert result.exit_code == 2 and "finished study run" in result.output and "--extend" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_serve_command_read_only_takes_no_writing_options(tmp_path):
    path = finished_study_log(tmp_path)
    result = serve_cli("--db", path, "--read-only", "--extend")
    assert result.exit_code == 2 and "--read-only writes nothing" in result.output
