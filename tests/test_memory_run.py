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
from simledger.projections.metrics import run_summary
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


def test_cli_experiment_no_logs_writes_the_logged_summaries_without_logs(tmp_path):
    import json

    from typer.testing import CliRunner

    from simledger.cli.main import app

    common = ["experiment", "--regimes", "baseline,high_compute_cost", "--seeds", "101-102", "--turns", "10",
              "--workers", "1", "--held-out", "2"]
    logged = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "logged")])
    memory = CliRunner().invoke(app, [*common, "--no-logs", "--out", str(tmp_path / "memory")])
    assert logged.exit_code == 0 and memory.exit_code == 0, memory.output
    assert not list((tmp_path / "memory").rglob("*.db")) and len(list((tmp_path / "logged").rglob("*.db"))) == 4
    with_logs = json.loads((tmp_path / "logged" / "run_summaries.json").read_text())
    without = json.loads((tmp_path / "memory" / "run_summaries.json").read_text())
    assert [{k: v for k, v in r.items() if k != "log_file"} for r in with_logs] == without
    for folder in ("logged", "memory"):
        held = json.loads((tmp_path / folder / "held_out" / "run_summaries.json").read_text())
        assert sorted({r["seed"] for r in held}) == [9001, 9002]
        report = (tmp_path / folder / "report.md").read_text()
        assert "**held-out ensemble** (4 runs, seeds 9001, 9002)" in report
    assert "held-out seeds 9001, 9002: indistinguishable from the paper" in memory.stdout


def test_cli_report_keeps_the_held_out_verdict(tmp_path):
    from typer.testing import CliRunner

    from simledger.cli.main import app

    out = tmp_path / "res"
    args = ["experiment", "--regimes", "baseline", "--seeds", "101-102", "--turns", "5", "--workers", "1",
            "--held-out", "2", "--no-logs", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    written = (out / "report.md").read_bytes()
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert (out / "report.md").read_bytes() == written


def test_in_memory_ensemble_does_not_depend_on_the_worker_count():
    from simledger.study.experiment import simulate_specs
    from simledger.study.sweep import study_specs

    specs = study_specs(["coordination_push"], [1001, 1002, 1003], turns=8)
    assert simulate_specs(specs, workers=2) == simulate_specs(specs, workers=1)
