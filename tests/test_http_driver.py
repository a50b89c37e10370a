"""The study's driver, run against ``simledger serve`` as it ran against the original engine.

A real server (``simledger serve`` run as ``python -m simledger.cli.main serve`` with the driver's
DB_PATH/PORT environment, uvicorn on a free loopback port) and a client that
does what ``run_experiments.py`` did: GET /state, read the ``contracts`` table
with sqlite3, choose actions with the study policy, POST /turn, and after turn 1
overwrite ``core_shares`` with its own auction. The log it produces must be the
in-process run's log, byte for byte.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from simledger.ledger.views import contract_view, turn_view
from simledger.ledger.run import Run
from simledger.ledger.verify import verify_log
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes
from simledger.study.runner import agent_ids, execute_run, run_name

TURNS, SEED, AGENTS = 40, 101, 8
SERVER_START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 20.0


# --- the server, started as the driver started the original --------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db_path: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start the server with DB_PATH/PORT in its environment; return it and its base URL once ready."""
    port = free_port()
    env = {**os.environ, "DB_PATH": str(db_path), "PORT": str(port)}
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "simledger.cli.main", "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_engine(base_url, proc, log_path)
    except BaseException:
        stop_server(proc)
        raise
    return proc, base_url


def wait_for_engine(base_url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            http_json("GET", f"{base_url}/config", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {SERVER_START_TIMEOUT}s: {log_path.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    db_path = tmp_path / "http.db"
    proc, base_url = start_server(db_path, tmp_path / "server.log")
    yield db_path, base_url
    stop_server(proc)


# --- the driver's client side -------------------------------------------------------------


def http_json(method: str, url: str, payload=None, timeout=REQUEST_TIMEOUT):
    """Send a JSON request as the driver did (urllib); return the decoded JSON answer."""
    data = json.dumps(payload).encode("utf-8") if payload is not None else None
    req = urllib.request.Request(url=url, data=data, headers={"Content-Type": "application/json"}, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def fetch_contracts(db_path: Path) -> list[dict]:
    """Read the contracts table with the driver's query (no ORDER BY: the table's natural order)."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT contract_id, status, data FROM contracts").fetchall()
    conn.close()
    contracts = []
    for row in rows:
        data = json.loads(row["data"])
        data["status"] = row["status"]
        contracts.append(data)
    return contracts


def assign_core_shares(db_path: Path, bids: list[dict], num_cores: int) -> dict[str, str]:
    """Overwrite core_shares with the driver's script-side auction (the engine must not care)."""
    by_core = defaultdict(list)
    for bid in bids:
        by_core[bid["core_id"]].append((bid["agent_id"], int(bid["amount"])))
    winners = {core: max(by_core[core], key=lambda x: x[1])[0]
               for core in (f"core_{i}" for i in range(num_cores)) if by_core.get(core)}
    seen = set(winners.values())
    everyone = sorted({b["agent_id"] for b in bids})
    fill = [a for a in everyone if a not in seen] + everyone
    for index, core in enumerate(c for c in (f"core_{i}" for i in range(num_cores)) if c not in winners):
        winners[core] = fill[index % len(fill)]
    write_core_shares(db_path, [(core, owner, 1.0) for core, owner in winners.items()])
    return winners


def write_core_shares(db_path: Path, rows: list[tuple]) -> None:
    """DELETE + INSERT into core_shares from a plain sqlite3 connection, as the driver did."""
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM core_shares")
    conn.executemany("INSERT INTO core_shares(core_id, owner, proportion) VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()


def read_core_shares(db_path: Path) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT core_id, owner, proportion FROM core_shares ORDER BY core_id").fetchall()
    conn.close()
    return rows


def wire_input(agent_input) -> dict:
    """Return an input in the driver's /turn shape (no signature: the server signs, custodially)."""
    item = msgspec.to_builtins(agent_input)
    item.pop("signature", None)
    return item


GARBAGE_AFTER_TURN = 10


def drive(db_path: Path, base_url: str, regime: dict) -> list[dict]:
    """Play the study run over HTTP like run_experiments.run_single; return each turn's /turn data."""
    policy = StudyPolicy(regime["policy"], SEED)
    identity = {"regime": "baseline", "run_name": run_name("baseline", SEED), "turns": TURNS}
    out = http_json("POST", f"{base_url}/init", {"config": engine_config(regime, AGENTS), "agent_ids": agent_ids(AGENTS),
                                                "seed": SEED, "identity": identity})
    assert out["ok"], out
    core_bids, turn_data = [], []
    # Another client keeps a read transaction open on the db while each turn is written.
    watcher = sqlite3.connect(db_path, isolation_level=None)
    for turn in range(1, TURNS + 1):
        state = http_json("GET", f"{base_url}/state")
        view = TurnView(turn=turn, max_turns=TURNS, agents=state["agents"], contracts=fetch_contracts(db_path))
        inputs = [wire_input(i) for i in policy.decide(view)]
        core_bids += [{"agent_id": i["agent_id"], **i["action"]} for i in inputs if i["action"]["action"] == "bid_core"]
        watcher.execute("BEGIN")
        seen = watcher.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        out = http_json("POST", f"{base_url}/turn", {"inputs": inputs})
        assert out["ok"], out
        assert watcher.execute("SELECT COUNT(*) FROM events").fetchone()[0] == seen  # its snapshot holds
        watcher.execute("COMMIT")
        turn_data.append(out["data"])
        if turn == 1:
            assign_core_shares(db_path, core_bids, regime["policy"]["num_cores"])
        if turn == GARBAGE_AFTER_TURN:
            write_core_shares(db_path, [("core_0", "mallory", 99.0), ("core_9", "agent_0", 1e9)])
    watcher.close()
    return turn_data


def event_hashes(db_path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall()
    conn.close()
    return rows


# --- the acceptance test ---------------------------------------------------------------------


def test_study_driver_over_http_reproduces_the_in_process_log_byte_for_byte(server, tmp_path):
    db_path, base_url = server
    regime = load_regimes()["baseline"]
    turn_data = drive(db_path, base_url, regime)
    final = http_json("GET", f"{base_url}/state")

    local = execute_run(tmp_path / "local.db", regime_name="baseline", regime=regime, seed=SEED, agents=AGENTS,
                        turns=TURNS)
    try:
        # The HTTP log is the in-process log: every event hash, hence the head hash.
        assert event_hashes(db_path) == event_hashes(tmp_path / "local.db")
        assert final["head_hash"] == local.head_hash.hex()
        # And what /turn reported is what the engine computed, turn by turn.
        metrics = {m.turn: m for m in local.state.turns}
        assert [d["turn"] for d in turn_data] == list(range(1, TURNS + 1))
        # Past turns keep totals only (their details are compacted away), so compare totals.
        assert [sum(d["dividends_paid"].values()) for d in turn_data] == \
            [metrics[t].dividends_total for t in range(1, TURNS + 1)]
        assert [sum(d["interest_charged"].values()) for d in turn_data] == \
            [metrics[t].interest_total for t in range(1, TURNS + 1)]
        assert [d["inference_fees_collected"] for d in turn_data] == [metrics[t].fees for t in range(1, TURNS + 1)]
        assert [d["block_winner"] for d in turn_data] == [metrics[t].block_winner for t in range(1, TURNS + 1)]
        assert [len(d["errors"]) for d in turn_data] == [metrics[t].error_count for t in range(1, TURNS + 1)]
        assert turn_data[-1]["dividends_paid"] == metrics[TURNS].dividends  # the latest turn keeps its details
        # Projections agree: balances, stakes, supply, contracts.
        assert {a["agent_id"]: (a["balance"], a["staked"]) for a in final["agents"]} == \
            {agent: (acc.balance, acc.staked) for agent, acc in local.state.accounts.items()}
        assert final["token_supply"] == local.state.token_supply()
        assert [(c["contract_id"], c["status"]) for c in fetch_contracts(db_path)] == \
            [(cid, c.status) for cid, c in local.state.contracts.items()]
        assert http_json("GET", f"{base_url}/contracts") == http_json_contracts_expected(local)
    finally:
        local.close()

    # The log verifies, from the library and over HTTP.
    result = verify_log(db_path)
    assert result.ok, result.message
    assert http_json("GET", f"{base_url}/verify")["ok"] is True
    # core_shares was rewritten from the log after the garbage: it shows the engine's own auction.
    assert read_core_shares(db_path) == [(c["core_id"], c["owner"], c["proportion"]) for c in final["cores"]]


def http_json_contracts_expected(local) -> list[dict]:
    """Return /contracts as the server would answer it for the in-process run's state."""
    return json.loads(json.dumps([contract_view(c) for c in local.state.contracts.values()]))


def test_core_shares_garbage_is_ignored_and_restored_by_the_next_turn(server, tmp_path):
    db_path, base_url = server
    genesis = {"config": {"num_agents": 3}, "agent_ids": ["a", "b", "c"], "seed": 3}
    turns = [
        [{"agent_id": "a", "action": {"action": "bid_core", "core_id": "core_0", "amount": 50}},
         {"agent_id": "b", "action": {"action": "bid_core", "core_id": "core_1", "amount": 40}}],
        [{"agent_id": agent, "action": {"action": "mine"}, "thinking_units": 100, "output_units": 400}
         for agent in ("a", "b", "c")],
    ]
    http_json("POST", f"{base_url}/init", genesis)
    first = http_json("POST", f"{base_url}/turn", {"inputs": turns[0]})["data"]
    engine_shares = read_core_shares(db_path)
    assert engine_shares  # the engine resolved the auction itself
    # A client hands every core to someone else, at a huge proportion, and invents a core.
    others = {"a": "c", "b": "c", "c": "a"}
    write_core_shares(db_path, [(core, others[owner], 1e6) for core, owner, _ in engine_shares]
                      + [("core_99", "b", 1.0)])
    second = http_json("POST", f"{base_url}/turn", {"inputs": turns[1]})["data"]
    assert second["inference_fees_collected"] > 0 and second["dividends_paid"]
    # The same turns in-process, with no client writing anywhere, give the same answers and log.
    local = Run.create(tmp_path / "local.db", agents=genesis["agent_ids"], seed=genesis["seed"],
                       config=genesis["config"])
    try:
        expected = [turn_view(local.step(inputs)) for inputs in turns]
        assert [first, second] == json.loads(json.dumps(expected))
        assert event_hashes(db_path) == event_hashes(tmp_path / "local.db")
    finally:
        local.close()
    assert read_core_shares(db_path) == engine_shares  # restored from the log


def test_concurrent_turn_requests_are_serialized_into_consecutive_turns(server):
    db_path, base_url = server
    http_json("POST", f"{base_url}/init", {"config": {"num_agents": 2}, "agent_ids": ["a", "b"]})
    results: list[dict] = []
    errors: list[BaseException] = []

    def post_turn(agent: str) -> None:
        try:
            results.append(http_json("POST", f"{base_url}/turn",
                                     {"inputs": [{"agent_id": agent, "action": {"action": "mine"}}]}))
        except BaseException as err:  # collected and re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=post_turn, args=("ab"[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT)
    assert not errors
    assert sorted(r["data"]["turn"] for r in results) == list(range(1, 9))
    assert verify_log(db_path).ok
    assert http_json("GET", f"{base_url}/state")["turn"] == 8
