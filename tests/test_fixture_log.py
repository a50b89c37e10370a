"""The format-v1 fixture log, kept forever: every later simledger must still verify and fold it.

The fixture and the facts pinned about it (format_v1.json) are written together by
tests/fixtures/make_fixture.py; regenerating is re-running that script.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from simledger.events import types as ev
from simledger.events.envelope import decode_payload
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log
from simledger.projections.state import state_digest

FIXTURES = Path(__file__).parent / "fixtures"
DB = FIXTURES / "format_v1.db"
FACTS = json.loads((FIXTURES / "format_v1.json").read_text())


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixture_is_small_and_self_contained():
    assert DB.stat().st_size < 1_000_000
    assert not DB.with_name(DB.name + "-wal").exists()
    assert DB.read_bytes()[:16] == b"SQLite format 3\x00"


@pytest.mark.parametrize("workers", [1, 2])
def test_fixture_verifies(workers):
    result = verify_log(DB, workers=workers)
    assert result.ok, result.message
    assert (result.events, result.head_seq) == (FACTS["events"], FACTS["head_seq"])
    assert result.head_hash == FACTS["head_hash"]
    assert result.turns == FACTS["turns"]  # the turns after the genesis


def test_fixture_genesis_says_format_version_1():
    with Store(DB) as store:
        assert store.meta["format_version"] == "1"
        row = store.select("seq = ?", [0])[0]
    assert row[2] == "run_genesis" and row[12] == 1  # the hashed format_version of the first event
    genesis = decode_payload(row[2], row[5], row[6])
    assert isinstance(genesis, ev.RunGenesis)
    assert (genesis.seed, len(genesis.agents), genesis.run_id) == (FACTS["seed"], FACTS["agents"], FACTS["run_id"])
    assert genesis.identity["regime"] == FACTS["regime"]


def test_fixture_holds_the_pinned_events():
    with Store(DB) as store:
        kinds = dict(store.conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())
    assert kinds == FACTS["kinds"]


def test_fixture_folds_to_its_last_turn():
    with Store(DB) as store:
        state = load_state(store)
    assert state.sealed_turn == FACTS["turns"]
    assert state.events == FACTS["events"]
    assert state.run_id == FACTS["run_id"] and len(state.accounts) == FACTS["agents"]
    assert state.last_seal["turn"] == FACTS["turns"]


def test_fixture_folds_at_every_turn_with_and_without_checkpoints():
    with Store(DB) as store:
        for turn in range(FACTS["turns"] + 1):
            fresh = load_state(store, turn, use_checkpoints=False)
            assert fresh.sealed_turn == turn
            assert state_digest(load_state(store, turn)) == state_digest(fresh)


def test_reading_the_fixture_never_changes_it():
    before = file_digest(DB)
    verify_log(DB)
    with Store(DB) as store:
        load_state(store)
    assert file_digest(DB) == before
    assert not DB.with_name(DB.name + ".writer-lock").exists()
