"""The in-memory run is the logged run's economy: same events, same hashes, same summary.

A study run is played twice, once into a log (``execute_run``) and once in
memory (``simulate_run``); the in-memory events must equal the events decoded
back from the log, its head hash the log's head, and its summary the summary
``simledger summarize`` computes from the verified log.
"""

from __future__ import annotations

import pytest

from simledger.ledger.memory import MemoryRun
from simledger.ledger.errors import BadInput
from simledger.ledger.replay import positioned_events
from simledger.ledger.store import Store
from simledger.study.metrics import run_summary
from simledger.study.regimes import DEFAULT_REGIMES, load_regimes
from simledger.study.runner import execute_run, simulate_run
from simledger.study.summary import summarize_log

CATALOGUE = load_regimes()


@pytest.mark.parametrize("regime", DEFAULT_REGIMES)
def test_memory_run_equals_logged_run(tmp_path, regime):
    path = tmp_path / f"{regime}.db"
    logged = execute_run(path, regime_name=regime, regime=CATALOGUE[regime], seed=103, turns=40)
    logged_head = logged.head_hash
    logged.close()
    memory = simulate_run(regime_name=regime, regime=CATALOGUE[regime], seed=103, turns=40, keep_events=True)
    with Store(path) as store:
        stored = list(positioned_events(store))
    assert len(memory.events) == len(stored) > 1000
    assert memory.events == stored
    assert memory.head_hash == logged_head
    from_log = summarize_log(path)
    assert from_log.pop("log_file") == path.name
    assert run_summary(memory.state) == from_log


def test_memory_run_with_rules_records_them_in_genesis():
    rules = {"job_pay_units": 5}
    memory = simulate_run(regime_name="baseline", regime=CATALOGUE["baseline"], seed=101, turns=3, rules=rules,
                          keep_events=True)
    genesis = memory.events[0][2]
    assert genesis.rules.job_pay_units == 5
    assert memory.state.rules.job_pay_units == 5


def test_memory_run_refuses_unknown_agent():
    run = MemoryRun.create(agents=["a", "b", "c"], seed=1)
    with pytest.raises(BadInput, match="unknown agent"):
        run.step([{"agent_id": "z", "action": {"action": "mine"}}])
    assert run.next_turn == 1
