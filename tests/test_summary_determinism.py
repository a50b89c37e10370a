"""Summaries are a function of the log alone: not of checkpoints, dict order, or snapshot age."""

from __future__ import annotations

import json

import msgspec
import pytest

from simledger.events.envelope import ENCODER
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.projections.state import SNAPSHOT_VERSION, snapshot_state
from simledger.projections.metrics import run_summary
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run


@pytest.fixture(scope="module")
def log_with_checkpoints(tmp_path_factory):
    path = tmp_path_factory.mktemp("det") / "run.db"
    execute_run(path, regime_name="high_compute_cost", regime=load_regimes()["high_compute_cost"], seed=103,
                turns=25).close()
    return path


def test_summary_is_the_same_with_and_without_checkpoints(log_with_checkpoints):
    with Store(log_with_checkpoints) as store:
        turns = [t for (t,) in store.conn.execute("SELECT turn FROM checkpoints ORDER BY turn")]
        assert turns == [0, 10, 20]
        with_checkpoints = run_summary(load_state(store))
        from_genesis = run_summary(load_state(store, use_checkpoints=False))
    assert json.dumps(with_checkpoints) == json.dumps(from_genesis)


def test_winner_hhi_does_not_depend_on_dict_order(log_with_checkpoints):
    with Store(log_with_checkpoints) as store:
        state = load_state(store, use_checkpoints=False)
    forward = run_summary(state)["winner_hhi"]
    state.winner_counts = dict(reversed(list(state.winner_counts.items())))
    assert run_summary(state)["winner_hhi"] == forward


def test_checkpoint_of_another_snapshot_version_is_ignored(log_with_checkpoints, tmp_path):
    copy = tmp_path / "copy.db"
    copy.write_bytes(log_with_checkpoints.read_bytes())
    with Store(copy) as store:
        expected = run_summary(load_state(store, 20, use_checkpoints=False))
        blob = store.conn.execute("SELECT state FROM checkpoints WHERE turn = 20").fetchone()[0]
        _, state = msgspec.msgpack.decode(blob)
        state["turns"] = []  # what an older library's snapshot without these counters would hold
    old = ENCODER.encode((SNAPSHOT_VERSION - 1, state))
    import sqlite3

    conn = sqlite3.connect(copy)
    conn.execute("UPDATE checkpoints SET state = ? WHERE turn = 20", [old])
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="snapshot version"):
        snapshot_state(old)
    with Store(copy) as store:
        assert run_summary(load_state(store, 20)) == expected
