"""The LLM orchestrator against a real chat-completions server on 127.0.0.1 with scripted answers.

Proves: a 5-agent x 10-turn run verifies and re-executes byte for byte with the
server stopped; scripted failures (invalid JSON, an answer for another agent, an
invalid action, timeouts, 429s, 500s) are recorded attempt by attempt and end
as recorded ``malformed`` rejections; fees follow the reported token usage; a
run killed mid-turn resumes to the uninterrupted head without asking again for
any answer it already had.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events import types as ev
from simledger.events.config import exact
from simledger.ledger.blobs import get_blob
from simledger.ledger.replay import positioned_events
from simledger.ledger.store import Store
from simledger.orchestrator import transport
from simledger.orchestrator.calls import NotRecorded
from simledger.orchestrator.driver import redrive_store, sampling_seed
from simledger.orchestrator.society import Players

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
from chat_server import ChatServer, Reply, answer  # noqa: E402

runner = CliRunner()
AGENTS, TURNS = 5, 10


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    """Latency is recorded; a fixed clock makes two runs against the same answers hash alike."""
    monkeypatch.setattr(transport, "CLOCK", lambda: 0.0)


def scripted(agent: str, turn: int, seen: int) -> Reply:
    """The failures the 5 x 10 run meets, each once."""
    match (agent, turn, seen):
        case ("agent_1", 3, _):
            return Reply(content="I think I will mine this turn.")  # not JSON
        case ("agent_2", 4, _):
            return Reply(content=answer("agent_0", 4).replace('"thinking"', '"agent_id": "agent_0", "thinking"'))
        case ("agent_0", 7, _):
            return Reply(content='{"thinking": "fly", "action": {"action": "fly"}}')  # no such action
        case ("agent_3", 5, 0):
            return Reply(status=429)
        case ("agent_3", 5, 1):
            return Reply(status=500)
        case ("agent_4", 6, 0):
            return Reply(delay_s=2.0)  # longer than the client's timeout
        case ("agent_2", 9, _):
            return Reply(status=503)  # every attempt: the retries run out
    return Reply()


def llm_run_args(db: Path, url: str, *extra: str) -> list[str]:
    return ["run", str(db), "--policy", "llm", "--llm-url", url, "--llm-model", "scripted-model",
            "--agents", str(AGENTS), "--turns", str(TURNS), "--llm-timeout", "0.5", "--llm-backoff", "0",
            "--llm-retries", "2", *extra]


def events_of(db: Path) -> list[tuple[int, int, object]]:
    with Store(db) as store:
        return list(positioned_events(store))


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory) -> tuple[Path, list[tuple]]:
    """A 5 x 10 run against the scripted server (which is stopped when the fixture returns)."""
    db = tmp_path_factory.mktemp("llm") / "run.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transport, "CLOCK", lambda: 0.0)
        with ChatServer(scripted) as server:
            result = runner.invoke(app, llm_run_args(db, server.url))
            requests = list(server.requests)
    assert result.exit_code == 0, result.output
    return db, requests


def test_run_verifies_and_reexecutes_byte_for_byte_with_the_server_stopped(scripted_run):
    db, _ = scripted_run
    result = runner.invoke(app, ["verify", str(db), "--reexecute"])
    assert result.exit_code == 0, result.output
    assert "OK: re-executed 10 turns: all" in result.output


def calls_of(events, agent: str, turn: int) -> list[ev.ModelCalled]:
    return [e for _, t, e in events if t == turn and isinstance(e, ev.ModelCalled) and e.agent == agent]


def rejection_of(events, agent: str, turn: int) -> ev.ActionRejected | None:
    found = [e for _, t, e in events if t == turn and isinstance(e, ev.ActionRejected) and e.agent == agent]
    return found[0] if found else None


def test_every_attempt_is_recorded_with_its_status(scripted_run):
    db, requests = scripted_run
    events = [e for e in events_of(db)]
    calls = [e for _, _, e in events if isinstance(e, ev.ModelCalled)]
    assert len(calls) == len(requests)  # one event per request the server saw, no more, no less
    assert [(c.attempt, c.status, c.error) for c in calls_of(events, "agent_3", 5)] == [
        (0, 429, "HTTP 429"), (1, 500, "HTTP 500"), (2, 200, "")]
    timed_out, answered = calls_of(events, "agent_4", 6)
    assert (timed_out.status, timed_out.error) == (0, "timeout after 0.5 s") and answered.verdict == "ok"
    assert [c.status for c in calls_of(events, "agent_2", 9)] == [503, 503, 503]
    ok = calls_of(events, "agent_0", 2)[0]
    assert (ok.provider_model, ok.system_fingerprint, ok.finish_reason) == ("scripted-model-served", "fp_scripted", "stop")
    assert ok.params["seed"] == sampling_seed(Store(db).genesis().seed) and ok.usage.reasoning_tokens == 32


@pytest.mark.parametrize("agent, turn, verdict", [
    ("agent_1", 3, "answer is not JSON"),
    ("agent_2", 4, "answer is for 'agent_0', not agent_2"),
    ("agent_0", 7, "not a valid action"),
    ("agent_2", 9, "no answer: HTTP 503"),
])
def test_bad_answers_are_recorded_as_is_and_rejected_as_malformed(scripted_run, agent, turn, verdict):
    db, _ = scripted_run
    events = events_of(db)
    last = calls_of(events, agent, turn)[-1]
    assert last.verdict.startswith(verdict)
    assert rejection_of(events, agent, turn).reason == "malformed"
    submitted = [e for _, t, e in events if t == turn and isinstance(e, ev.ActionSubmitted) and e.agent == agent][0]
    with Store(db) as store:
        text = get_blob(store.conn, last.text).decode() if last.text else None
    if agent == "agent_1":
        assert submitted.action == text == "I think I will mine this turn."  # recorded as is


def test_inference_fees_equal_the_billing_formula_applied_to_reported_usage(scripted_run):
    db, _ = scripted_run
    events = events_of(db)
    genesis = events[0][2]
    config, rules = genesis.config, genesis.rules
    checked = 0
    for _, turn, e in events:
        if not isinstance(e, ev.ActionSubmitted):
            continue
        calls = calls_of(events, e.agent, turn)
        reasoning = sum(c.usage.reasoning_tokens for c in calls)
        completion = sum(c.usage.completion_tokens for c in calls)
        assert (e.thinking_units, e.output_units) == (reasoning, completion - reasoning)
        fees = [f for _, t, f in events if t == turn and isinstance(f, ev.InferenceFeeCharged) and f.agent == e.agent]
        billable = exact(config.thinking_layer_discount) * reasoning + (completion - reasoning) - config.commons_threshold_per_turn
        expected = int(exact(config.base_inference_rate) * max(Fraction(0), billable))
        if fees:
            fee = fees[0]
            if fee.discounted:
                expected = int(expected * (1 - exact(rules.study_discount)))
            assert fee.fee == expected and expected > 0
            checked += 1
        else:  # not billed: an accepted job, or nothing above the commons threshold
            is_job = isinstance(e.action, dict) and e.action.get("action") == "job" and rejection_of(events, e.agent, turn) is None
            assert is_job or expected == 0
    assert checked >= 30


def test_usage_command_reports_tokens_and_money_from_the_price_table(scripted_run, tmp_path):
    db, _ = scripted_run
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices."scripted-model"]\nprompt = 2.0\ncached_prompt = 1.0\ncompletion = 8.0\n')
    result = runner.invoke(app, ["usage", str(db), "--llm-prices", str(prices), "--json"])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.output)
    calls = [e for _, _, e in events_of(db) if isinstance(e, ev.ModelCalled)]
    prompt = sum(c.usage.prompt_tokens for c in calls)
    cached = sum(c.usage.cached_tokens for c in calls)
    completion = sum(c.usage.completion_tokens for c in calls)
    assert doc["run"]["calls"] == len(calls) and doc["run"]["prompt_tokens"] == prompt
    assert doc["run"]["cost"] == pytest.approx(((prompt - cached) * 2.0 + cached * 1.0 + completion * 8.0) / 1e6)
    assert sum(u["calls"] for u in doc["by_agent"].values()) == len(calls)
    assert sorted(doc["by_turn"], key=int) == [str(t) for t in range(1, TURNS + 1)]


def test_a_request_missing_from_the_recording_is_an_error_naming_it(scripted_run, tmp_path):
    db, _ = scripted_run
    with Store(db) as store:
        identity = dict(store.genesis().identity)
        spec = identity["policies"]["agent_0"]
        edited = {**spec, "template": {**spec["template"], "user": spec["template"]["user"] + " Be brief."}}
        identity["policies"] = {agent: edited for agent in identity["policies"]}
        society = Players.from_identity(identity, seed=store.genesis().seed, agents=store.genesis().agents)
        with pytest.raises(NotRecorded, match=r"not in the recording: agent_0, turn 1, attempt 0, model 'scripted-model'"):
            redrive_store(store, society, TURNS)


def test_verify_fails_when_a_recorded_text_is_changed(scripted_run, tmp_path):
    db, _ = scripted_run
    copy = tmp_path / "copy.db"
    source = sqlite3.connect(db)
    source.backup(target := sqlite3.connect(copy))
    source.close()
    first = target.execute("SELECT hash FROM blobs ORDER BY hash LIMIT 1").fetchone()[0]
    target.execute("UPDATE blobs SET body = ? WHERE hash = ?", [b"edited", first])
    target.commit()
    target.close()
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code == 1
    assert f"the text stored as {first[:16]} does not hash to that name" in result.output


# --- kill and resume -----------------------------------------------------------------------------

CHILD = """
import sys
import simledger.orchestrator.transport as transport
transport.CLOCK = lambda: 0.0
from simledger.cli.main import app
app(sys.argv[1:])
"""


def pending_rows(db: Path, turn: int) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM model_calls_pending WHERE turn = ?", [turn]).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def wait_until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_a_run_killed_mid_turn_resumes_to_the_same_head_without_asking_twice(tmp_path):
    with ChatServer() as server:
        reference = tmp_path / "reference.db"
        assert runner.invoke(app, llm_run_args(reference, server.url)).exit_code == 0
    with Store(reference) as store:
        reference_head = store.head()[1].hex()

    def hold_agent_3_in_turn_6(agent: str, turn: int, seen: int) -> Reply:
        return Reply(hold=(agent, turn, seen) == ("agent_3", 6, 0))

    db = tmp_path / "killed.db"
    with ChatServer(hold_agent_3_in_turn_6) as server:
        child = subprocess.Popen([sys.executable, "-c", CHILD, *llm_run_args(db, server.url, "--llm-timeout", "600")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"})
        try:
            wait_until(server.held.is_set, "agent_3's call in turn 6")
            wait_until(lambda: pending_rows(db, 6) == AGENTS - 1, "the other agents' turn-6 answers kept")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        before = [(agent, turn, str(body["messages"])) for agent, turn, body in server.requests]
        with Store(db) as store:
            assert store.head()[0] > 0 and max(t for _, t, _ in positioned_events(store)) == 5  # turns 1-5 committed
        server.script = lambda agent, turn, seen: Reply()
        result = runner.invoke(app, ["run", str(db), "--resume", "--llm-url", server.url, "--llm-timeout", "5"])
        assert result.exit_code == 0, result.output
        after = [(agent, turn, str(body["messages"])) for agent, turn, body in server.requests[len(before):]]
    asked_again = [request for request in after if request in before]
    assert [(agent, turn) for agent, turn, _ in asked_again] == [("agent_3", 6)]  # the one call never answered
    assert {turn for _, turn, _ in after} == set(range(6, TURNS + 1))
    with Store(db) as store:
        assert store.head()[1].hex() == reference_head
    assert pending_rows(db, 6) == 0
    assert runner.invoke(app, ["verify", str(db), "--reexecute"]).exit_code == 0


# --- mixed societies and budgets ------------------------------------------------------------------


def test_a_mixed_society_records_each_agents_policy_and_resumes_after_the_token_budget(tmp_path):
    with ChatServer() as server:
        whole, split = tmp_path / "whole.db", tmp_path / "split.db"
        mixed = ("--llm-agents", "agent_1,agent_3")
        assert runner.invoke(app, llm_run_args(whole, server.url, *mixed)).exit_code == 0
        stopped = runner.invoke(app, llm_run_args(split, server.url, *mixed, "--llm-run-budget", "6000"))
        assert stopped.exit_code == 2 and "token budget" in stopped.output
        asked = len(server.requests)
        resumed = runner.invoke(app, ["run", str(split), "--resume", "--llm-url", server.url])
        assert resumed.exit_code == 0, resumed.output
        resumed_turns = {turn for _, turn, _ in server.requests[asked:]}
    with Store(whole) as store:
        genesis = store.genesis()
        head = store.head()[1].hex()
    policies = genesis.identity["policies"]
    assert {agent: spec["kind"] for agent, spec in policies.items()} == {
        "agent_0": "study", "agent_1": "llm", "agent_2": "study", "agent_3": "llm", "agent_4": "study"}
    assert policies["agent_1"]["model"] == "scripted-model" and "sign_prob" in policies["agent_0"]
    callers = {e.agent for _, _, e in events_of(whole) if isinstance(e, ev.ModelCalled)}
    assert callers == {"agent_1", "agent_3"}
    with Store(split) as store:
        assert store.head()[1].hex() == head
    assert min(resumed_turns) > 1  # the turns played before the budget stop were not asked again
    assert runner.invoke(app, ["verify", str(split), "--reexecute"]).exit_code == 0


def test_resume_without_a_model_url_is_a_one_line_error(tmp_path):
    with ChatServer() as server:
        db = tmp_path / "run.db"
        assert runner.invoke(app, llm_run_args(db, server.url, "--llm-run-budget", "3000")).exit_code == 2
    result = runner.invoke(app, ["run", str(db), "--resume"])
    assert result.exit_code == 2 and "pass --llm-url" in result.output and "Traceback" not in result.output


# --- as a client of `simledger serve` ---------------------------------------------------------------


@pytest.fixture
def engine_server(tmp_path):
    """`simledger serve`'s app under uvicorn on a free loopback port, in a thread."""
    import socket
    import threading

    import uvicorn

    from simledger.api.app import create_app
    from simledger.api.service import LedgerService

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "served.db"
    service = LedgerService(db)
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the engine server to start")
    yield db, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    service.close()


def test_orchestrating_a_served_engine_writes_the_same_log_as_an_in_process_run_also_when_continued(tmp_path, engine_server):
    served, engine_url = engine_server
    local = tmp_path / "local.db"
    with ChatServer(scripted) as server:
        assert runner.invoke(app, llm_run_args(local, server.url, "--llm-agents", "agent_0,agent_2,agent_3")).exit_code == 0
    with ChatServer(scripted) as server:
        args = llm_run_args(Path("unused"), server.url, "--llm-agents", "agent_0,agent_2,agent_3")[4:]
        orchestrate = ["orchestrate", "--engine", engine_url, "--pending", str(tmp_path / "kept.db"), *args]
        stopped = runner.invoke(app, [*orchestrate, "--llm-run-budget", "9000"])
        assert stopped.exit_code == 2 and "token budget" in stopped.output
        # the engine holds the run: continued from its next turn
        result = runner.invoke(app, [*orchestrate, "--json"])
        assert result.exit_code == 0, result.output
    with Store(local) as a, Store(served) as b:
        assert [r[9] for r in a.rows()] == [r[9] for r in b.rows()]  # every event hash, in order
        _, head, last_turn = b.head()
        assert json.loads(result.stdout) == {"engine": engine_url, "turns": last_turn, "head_hash": head.hex()}
        assert dict(a.conn.execute("SELECT hash, body FROM blobs")) == dict(b.conn.execute("SELECT hash, body FROM blobs"))
    assert runner.invoke(app, ["verify", str(served), "--reexecute"]).exit_code == 0


def test_audit_reasoning_shows_an_agents_calls_thinking_actions_and_outcomes_turn_by_turn(scripted_run):
    import json

    db, _ = scripted_run
    result = runner.invoke(app, ["audit", str(db), "--agent", "agent_3", "--reasoning", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["turn"] for e in entries] == list(range(1, TURNS + 1))
    turn5 = entries[4]
    assert [a["status"] for a in turn5["attempts"]] == [429, 500, 200]
    assert turn5["thinking"] == "agent_3 plans turn 5" and turn5["reasoning"] == "reasoning of agent_3 at 5"
    assert turn5["outcome"] == "accepted" and turn5["verdict"] == "ok"
    table = runner.invoke(app, ["audit", str(db), "--agent", "agent_1", "--reasoning"], env={"COLUMNS": "60"})
    assert table.exit_code == 0 and "agent_1: turn by turn" in table.output and "malformed" in table.output
    assert runner.invoke(app, ["audit", str(db), "--agent", "nobody", "--reasoning"]).exit_code == 2


def test_an_unreachable_model_records_nothing_for_the_turn_and_resume_plays_it_later(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # nothing listens here once the socket closes
    db = tmp_path / "run.db"
    refused = runner.invoke(app, llm_run_args(db, closed))
    assert refused.exit_code == 2 and "no model call of turn 1 reached the server" in refused.output
    with Store(db) as store:
        assert store.head()[0] == 1  # the genesis and its seal only
    with ChatServer() as server:
        resumed = runner.invoke(app, ["run", str(db), "--resume", "--llm-url", server.url])
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, ["verify", str(db), "--reexecute"]).exit_code == 0


def test_a_bad_model_url_is_refused_before_anything_is_written(tmp_path):
    db = tmp_path / "run.db"
    result = runner.invoke(app, llm_run_args(db, "ftp://example.org"))
    assert result.exit_code == 2 and "--llm-url must be an http(s) URL" in result.output
    assert not db.exists()


def test_the_engine_refuses_model_calls_whose_texts_are_missing_or_false(tmp_path):
    from simledger.api.service import LedgerService
    from simledger.events.actions import AgentInput
    from simledger.ledger.blobs import blob_hash
    from simledger.ledger.errors import BadInput

    service = LedgerService(tmp_path / "served.db")
    try:
        service.init(agent_ids=["a", "b", "c"], config=None, seed=1, identity=None, rules=None)
        body = b'[{"content":"hi","role":"user"}]'
        call = ev.ModelCalled(agent="a", attempt=0, key="k" * 64, model="m", params={}, messages=blob_hash(body),
                              status=200)
        inputs = [AgentInput(agent_id="a", action={"action": "mine"})]
        with pytest.raises(BadInput, match="which the request does not carry"):
            service.step(inputs, [call], {})
        with pytest.raises(BadInput, match="does not hash to that name"):
            service.step(inputs, [call], {blob_hash(body): "something else"})
        service.step(inputs, [call], {blob_hash(body): body.decode()})
        assert service.text(blob_hash(body))["text"] == body.decode()
        assert service.state()["turn"] == 1
    finally:
        service.close()


def test_a_regimes_file_can_name_the_llm_policy_and_the_genesis_records_it_in_full(tmp_path):
    import json

    regimes = tmp_path / "regimes.json"
    regimes.write_text(json.dumps({"regimes": {"llm_baseline": {
        "config": {"num_cores": 4},
        "policy": {"kind": "llm", "model": "from-the-regime", "temperature": 0.2, "max_retries": 1}}}}))
    db = tmp_path / "run.db"
    with ChatServer() as server:
        result = runner.invoke(app, ["run", str(db), "--regime", "llm_baseline", "--regimes-file", str(regimes),
                                     "--llm-url", server.url, "--agents", "3", "--turns", "2"])
        assert result.exit_code == 0, result.output
        models = {body["model"] for _, _, body in server.requests}
    with Store(db) as store:
        policies = store.genesis().identity["policies"]
    assert models == {"from-the-regime"}
    assert all(spec["kind"] == "llm" and spec["temperature"] == 0.2 and "system" in spec["template"]
               for spec in policies.values())
    assert runner.invoke(app, ["verify", str(db), "--reexecute"]).exit_code == 0
    mistyped = tmp_path / "typo.json"
    mistyped.write_text(json.dumps({"regimes": {"x": {"config": {}, "policy": {"kind": "llm", "modle": "m"}}}}))
    refused = runner.invoke(app, ["run", str(tmp_path / "other.db"), "--regime", "x", "--regimes-file", str(mistyped)])
    assert refused.exit_code == 2 and "modle" in refused.output


def test_experiments_and_sweeps_refuse_an_llm_regime_before_running_anything(tmp_path):
    import json

    regimes = tmp_path / "regimes.json"
    regimes.write_text(json.dumps({"regimes": {"llm_baseline": {"config": {}, "policy": {"kind": "llm", "model": "m"}}}}))
    result = runner.invoke(app, ["experiment", "--regimes", "llm_baseline", "--regimes-file", str(regimes),
                                 "--seeds", "1", "--turns", "2", "--agents", "3", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "plays a language model" in result.output
    assert not (tmp_path / "out" / "runs").exists() or not list((tmp_path / "out" / "runs").iterdir())
