"""The per-turn read models in a run.db (`account_turns`, `turns`) equal the fold of its log, and `verify` says so.

They are written in each turn's transaction, rebuilt from the log when a writer
starts or finds another connection's writes, absent from logs written before they
existed (which still verify), and outside the hashed chain.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simledger.ledger.readmodels import PER_TURN_TABLES, has_turn_tables, stored_rows
from simledger.ledger.replay import load_state, positioned_events
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.turn_tables import TURN_COLUMNS, fold_tables
from simledger.ledger.verify import verify_log
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run, play_to

TURNS = 10
FIXTURE = Path(__file__).parent / "fixtures" / "format_v1.db"


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "run.db"
    execute_run(path, regime_name="coordination_push", regime=load_regimes()["coordination_push"], seed=101,
                turns=TURNS).close()
    return path


def folded(path) -> dict[str, list[tuple]]:
    with Store(path) as store:
        tables = fold_tables(positioned_events(store))
    return {"account_turns": sorted(tables.accounts, key=lambda r: (r[0], r[1])), "turns": tables.turns}


def stored(path) -> dict[str, list[tuple]] | None:
    """Return both tables as stored, in key order, or None when the log has neither."""
    with Store(path) as store:
        if not has_turn_tables(store):
            return None
        return {table: stored_rows(store, table).fetchall() for table in PER_TURN_TABLES}


def play_one_more_turn(path) -> None:
    run = Run.open(path)
    play_to(run, StudyPolicy(load_regimes()["coordination_push"]["policy"], 101), run.next_turn).close()


def sql(path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def test_a_run_stores_the_fold_of_its_log(log_path):
    tables = stored(log_path)
    assert len(tables["turns"]) == TURNS + 1 and len(tables["account_turns"]) == (TURNS + 1) * 8
    assert tables == folded(log_path)
    assert verify_log(log_path).ok


def test_verify_names_the_table_and_turn_a_client_edited(log_path):
    sql(log_path, "UPDATE turns SET gini_wealth = 0.5 WHERE turn = 7")
    result = verify_log(log_path)
    assert not result.ok
    assert "(turn 7): read model turns differs from the fold of the log" in result.message
    assert (result.error.seq, result.error.turn) == (None, 7)
    with Store(log_path) as store:
        assert (result.events, result.head_seq) == (store.count(), store.count() - 1), "the chain itself verified"
    sql(log_path, "UPDATE turns SET gini_wealth = 0.5 WHERE turn = 7", "DELETE FROM account_turns WHERE turn = 3")
    assert "(turn 3): read model account_turns differs from the fold of the log" in verify_log(log_path).message


def test_rows_left_behind_by_a_cut_log_are_reported_with_their_first_turn(log_path):
    sql(log_path, f"DELETE FROM events WHERE turn = {TURNS}")  # the chain still verifies, one turn shorter
    result = verify_log(log_path)
    assert not result.ok and result.error.turn == TURNS
    assert "rows for turns the log does not have" in result.message and "--expect-head" in result.message


def test_the_next_turn_rebuilds_edited_or_missing_rows(log_path):
    sql(log_path, "DELETE FROM account_turns WHERE turn > 4", "UPDATE turns SET fees = -1")
    play_one_more_turn(log_path)
    assert stored(log_path) == folded(log_path)
    assert len(stored(log_path)["turns"]) == TURNS + 2
    assert verify_log(log_path).ok


def test_a_log_without_the_tables_verifies_and_gets_them_at_its_next_turn(log_path):
    sql(log_path, "DROP TABLE account_turns", "DROP TABLE turns")
    assert stored(log_path) is None
    assert verify_log(log_path).ok
    play_one_more_turn(log_path)
    assert stored(log_path) == folded(log_path)


def test_the_first_version_fixture_has_no_tables_and_verifies(tmp_path):
    path = tmp_path / "v1.db"
    shutil.copy(FIXTURE, path)
    assert stored(path) is None
    assert verify_log(path).ok


def test_a_damaged_table_is_a_verify_failure_not_a_crash_and_the_next_turn_replaces_it(log_path):
    sql(log_path, "DROP TABLE turns", "CREATE TABLE turns (turn INTEGER)")
    result = verify_log(log_path)
    assert not result.ok and "per-turn read models cannot be checked" in result.message
    play_one_more_turn(log_path)
    assert stored(log_path) == folded(log_path)


def test_the_tables_are_outside_the_hashed_chain(tmp_path, log_path):
    other = tmp_path / "other.db"
    execute_run(other, regime_name="coordination_push", regime=load_regimes()["coordination_push"], seed=101,
                turns=TURNS).close()
    sql(other, "DROP TABLE account_turns", "DROP TABLE turns")
    assert verify_log(other).head_hash == verify_log(log_path).head_hash


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(regime=st.sampled_from(["baseline", "coordination_push", "high_compute_cost"]),
       seed=st.integers(min_value=1, max_value=10_000))
def test_any_run_stores_per_turn_rows_equal_to_the_projection_at_each_turn(tmp_path, regime, seed):
    path = tmp_path / f"{regime}_{seed}.db"
    path.unlink(missing_ok=True)
    execute_run(path, regime_name=regime, regime=load_regimes()[regime], seed=seed, turns=8).close()
    tables = stored(path)
    assert tables == folded(path)
    with Store(path) as store:
        for turn in range(9):
            state = load_state(store, turn, use_checkpoints=False)
            rows = [r for r in tables["account_turns"] if r[0] == turn]
            assert [(r[1], r[2], r[3], r[4]) for r in rows] == sorted(
                (a, acc.balance, acc.staked, acc.locked) for a, acc in state.accounts.items())
            assert tables["turns"][turn][TURN_COLUMNS.index("token_supply")] == state.token_supply()


def test_a_table_written_with_the_old_agent_column_fails_verify_cleanly_and_the_next_turn_replaces_it(log_path):
    sql(log_path, "ALTER TABLE account_turns RENAME COLUMN agent_id TO agent")
    result = verify_log(log_path)
    assert not result.ok and "per-turn read models cannot be checked" in result.message
    play_one_more_turn(log_path)
    assert stored(log_path) == folded(log_path) and verify_log(log_path).ok
