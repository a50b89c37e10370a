"""The read models (`contracts`, `core_shares`) equal the projection after every turn, whatever a client wrote.

Tools written for the original engine read these tables, and the study driver even
wrote `core_shares`. The engine never reads them; each turn's transaction brings
them back in line with the log, including rows of contracts the turn did not touch
and rows no contract has.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from simledger.ledger.readmodels import contract_data
from simledger.ledger.run import Run
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run, play_to

TURNS = 12


def projected_tables(run: Run) -> tuple[list, list]:
    contracts = [(cid, c.status, contract_data(c)) for cid, c in run.state.contracts.items()]
    shares = [(core, owner, ppm / 1_000_000) for core, (owner, ppm) in sorted(run.state.cores.items())]
    return contracts, shares


def stored_tables(path) -> tuple[list, list]:
    conn = sqlite3.connect(path)
    try:
        contracts = [(cid, status, json.loads(data))
                     for cid, status, data in conn.execute("SELECT contract_id, status, data FROM contracts")]
        shares = conn.execute("SELECT core_id, owner, proportion FROM core_shares ORDER BY core_id").fetchall()
    finally:
        conn.close()
    return contracts, shares


def client_writes(path) -> None:
    """What a careless client might do: edit a contract, invent one, take the cores."""
    conn = sqlite3.connect(path)
    with conn:
        first = conn.execute("SELECT contract_id FROM contracts ORDER BY rank LIMIT 1").fetchone()[0]
        conn.execute("UPDATE contracts SET status = 'settled', data = '{}' WHERE contract_id = ?", [first])
        conn.execute("INSERT INTO contracts(contract_id, status, data, rank) VALUES ('forged', 'active', '{}', 0)")
        conn.execute("UPDATE core_shares SET owner = 'mallory', proportion = 99.0")
    conn.close()


@pytest.fixture
def run(tmp_path):
    regime = load_regimes()["coordination_push"]
    run = execute_run(tmp_path / "run.db", regime_name="coordination_push", regime=regime, seed=101, turns=TURNS)
    yield run
    run.close()


def test_read_models_equal_the_projection_after_a_run(run):
    assert len(run.state.contracts) > 1, "the regime makes contracts"
    assert stored_tables(run.store.path) == projected_tables(run)


def test_a_clients_writes_are_undone_by_the_next_turn_even_for_untouched_contracts(run):
    client_writes(run.store.path)
    assert stored_tables(run.store.path) != projected_tables(run)
    policy = StudyPolicy(load_regimes()["coordination_push"]["policy"], 101)
    play_to(run, policy, TURNS + 1)
    assert stored_tables(run.store.path) == projected_tables(run)


def test_writes_made_while_no_writer_was_open_are_undone_by_the_first_turn_after_reopening(run, tmp_path):
    run.close()
    client_writes(tmp_path / "run.db")
    reopened = Run.open(tmp_path / "run.db")
    try:
        policy = StudyPolicy(load_regimes()["coordination_push"]["policy"], 101)
        play_to(reopened, policy, TURNS + 1)
        assert stored_tables(reopened.store.path) == projected_tables(reopened)
    finally:
        reopened.close()
