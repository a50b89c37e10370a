"""A turn that fails, before or even after its COMMIT, leaves the open Run usable and the log whole.

An exception can reach ``Run._commit_turn`` from the engine (nothing written), from
inside the transaction (rolled back), or, like a Ctrl-C, just after the COMMIT
succeeded (the turn is in the log). In every case the Run rebuilds its state and
its head from the log, so the next step appends where the log really ends and the
run finishes on the head an uninterrupted run reaches.
"""

from __future__ import annotations

import pytest

from simledger.ledger import engine
from simledger.ledger import store as store_module
from simledger.ledger.run import Run
from simledger.ledger.verify import verify_log

AGENTS = ["a", "b", "c"]
TURNS = 6


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt (which pytest would treat as the user's own Ctrl-C)."""


def new_run(path) -> Run:
    return Run.create(path, agents=AGENTS, seed=7, config={"num_agents": len(AGENTS)})


@pytest.fixture(scope="module")
def uninterrupted_head(tmp_path_factory) -> bytes:
    with new_run(tmp_path_factory.mktemp("clean") / "run.db") as run:
        for _ in range(TURNS):
            run.step([])
        return run.head_hash


def play_on(run: Run) -> None:
    while run.next_turn <= TURNS:
        run.step([])


def test_an_engine_failure_writes_nothing_and_the_run_goes_on(tmp_path, monkeypatch, uninterrupted_head):
    run = new_run(tmp_path / "run.db")
    run.step([])
    before = run.store.head()
    real = engine.process_turn

    def fail_once(rec, turn, inputs):
        monkeypatch.setattr(engine, "process_turn", real)
        real(rec, turn, inputs)  # the turn's events are made, signed and folded ...
        raise RuntimeError("the engine failed mid-turn")  # ... then lost

    monkeypatch.setattr(engine, "process_turn", fail_once)
    with pytest.raises(RuntimeError):
        run.step([])
    assert run.store.head() == before and run.next_turn == 2
    play_on(run)
    assert run.head_hash == uninterrupted_head
    run.close()
    assert verify_log(tmp_path / "run.db").ok


def test_an_interrupt_right_after_commit_keeps_the_turn_and_the_run_goes_on(tmp_path, monkeypatch,
                                                                               uninterrupted_head):
    run = new_run(tmp_path / "run.db")
    run.step([])
    commit = store_module._Transaction.__exit__

    def commit_then_interrupt(self, *exc):
        monkeypatch.setattr(store_module._Transaction, "__exit__", commit)
        commit(self, *exc)
        raise Interrupted

    monkeypatch.setattr(store_module._Transaction, "__exit__", commit_then_interrupt)
    with pytest.raises(Interrupted):
        run.step([])
    seq, head, turn = run.store.head()
    assert turn == 2, "the interrupted turn committed"
    assert (run.head_hash, run.next_turn) == (head, 3)
    play_on(run)  # before the fix, every later step reused seqs: UNIQUE constraint failed: events.seq
    assert run.head_hash == uninterrupted_head
    run.close()
    assert verify_log(tmp_path / "run.db").ok
