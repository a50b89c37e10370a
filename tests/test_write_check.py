"""The writer reads back each turn before acknowledging it: a dropped, altered or extra row is an error.

Each case plants a SQLite trigger that tampers with the rows a turn inserts
(what a hostile co-tenant of the file, or a broken storage layer, could do).
The turn must fail with WriteMismatch, roll back whole, and leave the log
verifying at the previous turn.
"""

from __future__ import annotations

import sqlite3

import pytest

from simledger.ledger.errors import WriteMismatch
from simledger.ledger.run import Run
from simledger.ledger.verify import verify_log

AGENTS = ["a", "b", "c"]
MINE = [{"agent_id": agent, "action": {"action": "mine"}} for agent in AGENTS]

TRIGGERS = {
    # drops every action_submitted row (the insert of that row is silently skipped)
    "dropped": "CREATE TRIGGER t BEFORE INSERT ON events WHEN NEW.kind = 'action_submitted' "
               "BEGIN SELECT RAISE(IGNORE); END",
    # rewrites the seal's signature just after it lands
    "altered": "CREATE TRIGGER t AFTER INSERT ON events WHEN NEW.kind = 'turn_sealed' "
               "BEGIN UPDATE events SET signature = substr(signature, 3) || '00' WHERE seq = NEW.seq; END",
    # adds a forged row behind the turn's seal
    "extra": "CREATE TRIGGER t AFTER INSERT ON events WHEN NEW.kind = 'turn_sealed' "
             "BEGIN INSERT INTO events SELECT NEW.seq + 1, NEW.turn, 'block_produced', NEW.actor, NEW.contract_id, "
             "NEW.payload_version, NEW.payload, NEW.payload_json, NEW.hash, NEW.hash, NEW.signer, NEW.signature, "
             "NEW.format_version; END",
}


@pytest.mark.parametrize("tamper, what", [("dropped", "missing"), ("altered", "altered"), ("extra", "extra")])
def test_a_tampered_turn_is_refused_and_rolled_back(tmp_path, tamper, what):
    path = tmp_path / "run.db"
    run = Run.create(path, agents=AGENTS, seed=7, config={"num_agents": len(AGENTS)})
    run.step(MINE)
    before = run.store.head()
    with sqlite3.connect(path) as conn:
        conn.execute(TRIGGERS[tamper])
    with pytest.raises(WriteMismatch, match=f"seq [0-9]+ is {what}; the turn was rolled back"):
        run.step(MINE)
    assert run.store.head() == before and run.next_turn == 2
    run.close()
    result = verify_log(path)
    assert result.ok and result.head_seq == before[0], result.message


def test_an_untampered_turn_passes_the_read_back(tmp_path):
    with Run.create(tmp_path / "run.db", agents=AGENTS, seed=7, config={"num_agents": 3}) as run:
        for _ in range(3):
            run.step(MINE)
        assert run.store.head()[0] == run.state.events - 1


def test_over_http_a_tampered_turn_is_a_500_that_says_why_and_appends_nothing(tmp_path):
    from litestar.testing import TestClient

    from simledger.api.app import create_app
    from simledger.api.service import LedgerService

    service = LedgerService(tmp_path / "run.db")
    try:
        with TestClient(create_app(service)) as client:
            assert client.post("/init", json={"config": {"num_agents": 3}, "agent_ids": AGENTS}).status_code == 200
            with sqlite3.connect(tmp_path / "run.db") as conn:
                conn.execute(TRIGGERS["dropped"])
                before = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            response = client.post("/turn", json={"inputs": MINE})
            assert response.status_code == 500 and "rolled back" in response.json()["error"]
            assert "Traceback" not in response.text
            with sqlite3.connect(tmp_path / "run.db") as conn:
                assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == before
    finally:
        service.close()
