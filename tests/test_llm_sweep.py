"""Sweeps and experiments with language-model agents, against the scripted chat-completions server.

Proves: a 2-scenario x 1-seed sweep whose scenarios give an ``llm`` table (a
mixed society: 2 of 4 agents played by the model) writes logs that record every
model call as ``simledger run --policy llm`` does, verify, and re-execute with
the server stopped; a rerun skips them without calling the model, and continues
an unfinished one to the uninterrupted head without asking again for its
recorded turns; a regimes file may carry the table too, and an experiment logs
such a regime's runs but leaves it out of its in-memory held-out ensemble
(``--no-logs`` refuses it up front); a spec without an endpoint is a one-line
error before anything runs; the endpoint is never recorded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events import types as ev
from simledger.ledger.blobs import get_blob
from simledger.ledger.head import head_file_of
from simledger.ledger.replay import positioned_events
from simledger.ledger.store import Store
from simledger.ledger.run import Run
from simledger.orchestrator import transport
from simledger.orchestrator.driver import BudgetSpent, LocalEngine, play_society, sampling_seed
from simledger.orchestrator.society import Players
from simledger.orchestrator.society_runs import society_plan
from simledger.orchestrator.transport import LiveTransport, PendingCalls
from simledger.study.regimes import engine_config
from simledger.study.runner import agent_ids
from simledger.study.sweep import load_sweep, sweep_specs

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
from chat_server import ChatServer  # noqa: E402

runner = CliRunner()
TURNS = 3
LLM_AGENTS = ["agent_1", "agent_3"]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(transport, "CLOCK", lambda: 0.0)


def sweep_spec(folder: Path, url: str | None) -> Path:
    endpoint = f'url = "{url}", ' if url else ""
    spec = folder / "llm_sweep.toml"
    spec.write_text(f"""
seeds = [101]
agents = 4
turns = {TURNS}

[[scenarios]]
name = "cold"
llm = {{ {endpoint}model = "scripted-model", temperature = 0.0, agents = {json.dumps(LLM_AGENTS)} }}

[[scenarios]]
name = "warm"
config = {{ base_inference_rate = 3 }}
llm = {{ {endpoint}model = "scripted-model", temperature = 0.7, agents = {json.dumps(LLM_AGENTS)}, concurrency = 2 }}
""")
    return spec


@pytest.fixture(scope="module")
def llm_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llm_sweep")
    with ChatServer() as server:
        spec = sweep_spec(folder, server.url)
        transport.CLOCK, clock = (lambda: 0.0), transport.CLOCK
        try:
            result = runner.invoke(app, ["sweep", str(spec), "--out", str(folder / "out"), "--no-report"])
        finally:
            transport.CLOCK = clock
        asked = sum(server.calls_for(a, t) for a in LLM_AGENTS for t in range(1, TURNS + 1))
    assert result.exit_code == 0, result.output
    return folder, spec, sorted((folder / "out" / "runs").glob("*.db")), asked, server.url


def model_calls(db: Path) -> list[ev.ModelCalled]:
    with Store(db) as store:
        return [e for _, _, e in positioned_events(store) if isinstance(e, ev.ModelCalled)]


def test_each_run_records_every_model_call_and_the_society(llm_sweep):
    _, _, logs, asked, url = llm_sweep
    assert [p.name for p in logs] == ["cold__seed=101.db", "warm__seed=101.db"]
    assert asked == 2 * len(LLM_AGENTS) * TURNS  # each scenario asked once per LLM agent and turn
    for db in logs:
        calls = model_calls(db)
        assert sorted({c.agent for c in calls}) == LLM_AGENTS and len(calls) == len(LLM_AGENTS) * TURNS
        with Store(db) as store:
            genesis = store.genesis()
            assert all(get_blob(store.conn, c.text) for c in calls)  # every answer's text is stored
        policies = genesis.identity["policies"]
        assert [policies[a]["kind"] for a in genesis.agents] == ["study", "llm", "study", "llm"]
        assert policies["agent_1"]["model"] == "scripted-model" and policies["agent_1"]["seed"] == sampling_seed(101)
        assert url.encode() not in db.read_bytes() and "url" not in json.dumps(genesis.identity)
        assert head_file_of(db).is_file()
    temperatures = [model_calls(db)[0].params for db in logs]
    assert temperatures[0] != temperatures[1]  # each scenario's own sampling settings


def test_logs_verify_and_reexecute_with_the_server_stopped(llm_sweep):
    _, _, logs, _, _ = llm_sweep
    for db in logs:
        result = runner.invoke(app, ["verify", str(db), "--reexecute"])
        assert result.exit_code == 0, result.output
        assert "all" in result.output and "reproduced" in result.output


def test_a_rerun_skips_the_finished_runs_without_calling_the_model(llm_sweep):
    folder, spec, logs, _, _ = llm_sweep
    before = {db.name: db.read_bytes() for db in logs}
    with ChatServer() as server:
        rerun_spec = sweep_spec(folder / "out", server.url)  # same settings, another port: the same runs
        result = runner.invoke(app, ["sweep", str(rerun_spec), "--out", str(folder / "out"), "--no-report", "--json"])
        assert result.exit_code == 0, result.output
        assert sum(server.calls_for(a, t) for a in LLM_AGENTS for t in range(1, TURNS + 1)) == 0
    assert json.loads(result.stdout)["skipped"] == len(logs) and json.loads(result.stdout)["ran"] == 0
    assert {db.name: db.read_bytes() for db in logs} == before


def test_a_spec_without_an_endpoint_is_a_one_line_error_before_anything_runs(tmp_path):
    result = runner.invoke(app, ["sweep", str(sweep_spec(tmp_path, None)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "llm.url" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "runs").exists() or not list((tmp_path / "out" / "runs").iterdir())


def test_a_regime_policy_of_kind_llm_without_an_endpoint_is_refused_naming_the_fix(tmp_path):
    regimes = tmp_path / "regimes.json"
    regimes.write_text(json.dumps({"regimes": {"talk": {"config": {}, "policy": {"kind": "llm", "model": "m"}}}}))
    spec = tmp_path / "s.toml"
    spec.write_text('regimes_file = "regimes.json"\nregime = "talk"\nseeds = [1]\nagents = 3\nturns = 1\n'
                    '[[scenarios]]\nname = "a"\n')
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "names no endpoint" in result.output and "Traceback" not in result.output


def test_a_regimes_file_llm_table_plays_every_agent_in_an_experiment(tmp_path):
    with ChatServer() as server:
        regimes = tmp_path / "regimes.json"
        regimes.write_text(json.dumps({"regimes": {"talk": {
            "config": {}, "policy": {"kind": "llm", "model": "scripted-model"}, "llm": {"url": server.url}}}}))
        spec = tmp_path / "s.toml"
        spec.write_text('regimes_file = "regimes.json"\nregime = "talk"\nseeds = [7]\nagents = 3\nturns = 2\n'
                        '[[scenarios]]\nname = "all_llm"\n')
        result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--no-report"])
        assert result.exit_code == 0, result.output
    (db,) = (tmp_path / "out" / "runs").glob("*.db")
    assert sorted({c.agent for c in model_calls(db)}) == ["agent_0", "agent_1", "agent_2"]
    assert runner.invoke(app, ["verify", str(db), "--reexecute"]).exit_code == 0


def test_a_rerun_continues_an_unfinished_log_without_asking_again_for_its_turns(llm_sweep, tmp_path):
    _, _, logs, _, _ = llm_sweep
    with ChatServer() as server:
        spec = next(s for s in sweep_specs(load_sweep(sweep_spec(tmp_path, server.url))) if s.name.startswith("cold"))
        endpoint, _ = society_plan(spec.regime, agent_ids(spec.agents), spec.seed)
        runs = tmp_path / "out" / "runs"
        runs.mkdir(parents=True)
        run = Run.create(runs / f"{spec.name}.db", agents=agent_ids(spec.agents), seed=spec.seed,
                         config=engine_config(spec.regime, spec.agents), identity=spec.genesis_identity())
        players = Players.from_identity(run.state.identity, seed=spec.seed, agents=run.state.agents)
        with pytest.raises(BudgetSpent):  # the run stops after turn 1, as a failed sweep run would
            play_society(LocalEngine(run), players, TURNS, LiveTransport(server.url), PendingCalls(run.store.conn),
                         run_token_budget=1)
        run.close()
        asked_before = len(server.requests)
        result = runner.invoke(app, ["sweep", str(tmp_path / "llm_sweep.toml"), "--out", str(tmp_path / "out"),
                                     "--no-report"])
        assert result.exit_code == 0, result.output
        cold_turns = [turn for _, turn, body in server.requests[asked_before:] if body["temperature"] == 0.0]
    assert asked_before == len(LLM_AGENTS)  # turn 1 of the cold run, recorded before it stopped
    assert sorted(cold_turns) == [turn for turn in range(2, TURNS + 1) for _ in LLM_AGENTS]  # turn 1 not asked again
    cold = runs / f"{spec.name}.db"
    uninterrupted = next(db for db in logs if db.name == cold.name)
    assert head_file_of(cold).read_text() == head_file_of(uninterrupted).read_text()  # the same signed head
    assert runner.invoke(app, ["verify", str(cold), "--reexecute"]).exit_code == 0


def llm_regimes(folder: Path, url: str) -> Path:
    path = folder / "regimes.json"
    shipped = json.loads((Path(__file__).parents[1] / "study" / "data" / "regimes.json").read_text())
    baseline = shipped["regimes"]["baseline"]
    path.write_text(json.dumps({"regimes": {"baseline": baseline, "talk": {
        **baseline, "llm": {"url": url, "model": "scripted-model", "agents": ["agent_2"]}}}}))
    return path


def test_an_experiment_logs_the_model_played_regime_and_leaves_it_out_of_the_held_out_ensemble(tmp_path):
    out = tmp_path / "exp"
    with ChatServer() as server:
        args = ["experiment", "--regimes-file", str(llm_regimes(tmp_path, server.url)), "--regimes", "baseline,talk",
                "--seeds", "101", "--agents", "3", "--turns", "2", "--workers", "1", "--out", str(out),
                "--held-out", "2", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 2  # agent_2, turns 1 and 2, of the one logged talk run
    assert json.loads(result.stdout)["held_out_runs"] == 2  # baseline's two held-out seeds, not talk's
    assert sorted({c.agent for c in model_calls(out / "runs" / "talk_101.db")}) == ["agent_2"]


def test_in_memory_runs_refuse_a_model_played_regime_before_running_anything(tmp_path):
    args = ["experiment", "--regimes-file", str(llm_regimes(tmp_path, "http://127.0.0.1:1/v1")), "--regimes",
            "baseline,talk", "--seeds", "101", "--agents", "3", "--turns", "2", "--no-logs",
            "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "'talk' plays a language model" in result.output
    assert "not in memory" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "run_summaries.csv").exists()


def test_the_study_alone_refuses_a_model_played_regime_in_one_line():
    """The study never imports the orchestrator: without it, a regime with an llm table is refused, not misplayed."""
    import subprocess
    import sys

    code = ("from simledger.events.config import InvalidConfig\n"
            "from simledger.study.regimes import load_regimes, validate_regime\n"
            "import sys\n"
            "regime = dict(load_regimes()['baseline'], llm={'url': 'http://127.0.0.1:1/v1', 'model': 'm'})\n"
            "try:\n    validate_regime('talk', regime)\nexcept InvalidConfig as err:\n    print(err)\n"
            "print('orchestrator loaded' if 'simledger.orchestrator' in sys.modules else 'orchestrator not loaded')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "import simledger.orchestrator" in out and out.strip().endswith("orchestrator not loaded"), out


@pytest.mark.parametrize("policy_is_llm", [False, True])
def test_run_of_a_regime_with_an_llm_table_plays_the_tables_endpoint(tmp_path, policy_is_llm):
    """`simledger run --regime talk` takes the endpoint from talk's llm table, as a sweep would (no --llm-url)."""
    log, regimes = tmp_path / "talk.db", tmp_path / "regimes.json"
    with ChatServer() as server:
        llm_regimes(tmp_path, server.url)
        if policy_is_llm:  # the policy is the llm spec (every agent); the table only says where the model is
            doc = json.loads(regimes.read_text())
            doc["regimes"]["talk"]["policy"] = {"kind": "llm", "model": "scripted-model"}
            doc["regimes"]["talk"]["llm"] = {"url": server.url}
            regimes.write_text(json.dumps(doc))
        args = ["run", str(log), "--regimes-file", str(regimes), "--regime", "talk",
                "--seed", "101", "--agents", "3", "--turns", "2", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    played = ["agent_0", "agent_1", "agent_2"] if policy_is_llm else ["agent_2"]
    assert len(server.requests) == 2 * len(played)
    assert sorted({c.agent for c in model_calls(log)}) == played
