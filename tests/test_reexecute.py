"""Re-execution (`simledger verify --reexecute`): the engine must reproduce every recorded event hash.

How the divergence tests get a log the engine did not write:

* altered input: a copy of an engine log with one recorded input changed and
  re-signed with the agent's (seed-derived) key, its stored hash left as it
  was. The re-executed input hashes differently at exactly that seq.
* forged engine: a log recorded while the engine's job step paid one token
  more than the real one. Its chain, signatures and seals are all consistent (verify passes);
  only re-execution with the real engine finds the first bad event.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import msgspec
import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events import types as ev
from simledger.events.actions import AgentInput
from simledger.events.envelope import Envelope, encode_payload, envelope_hash, payload_json
from simledger.events.keys import SeedKeys, input_message
from simledger.ledger import engine
from simledger.ledger.errors import LedgerError
from simledger.ledger.reexecute import reexecute
from simledger.ledger.run import Run
from simledger.ledger.store import Store, envelope_from_row
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.runner import agent_ids, execute_run

SEED = 101


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def hand_inputs(turn: int) -> list[AgentInput]:
    """Everyone mines, except agent_2 takes a job in turn 2."""
    return [AgentInput(agent_id=a, action={"action": "job" if (a, turn) == ("agent_2", 2) else "mine"},
                       thinking_units=40, output_units=110) for a in agent_ids(8)]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("reexec") / "run.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=SEED, agents=8,
                turns=10).close()
    return path


def pick_input(path, turn: int) -> tuple:
    with Store(path) as store:
        return store.select("turn = ? AND kind = 'action_submitted'", [turn])[2]


def alter_input(source, target, turn: int, *, resign: bool) -> tuple[int, bytes, bytes]:
    """Copy ``source`` with one input of ``turn`` changed; return (seq, stored hash, hash of the new input)."""
    shutil.copy(source, target)
    row = pick_input(source, turn)
    env = envelope_from_row(row)
    old = ev.ActionSubmitted(**{k: v for k, v in json.loads(row[7]).items() if k != "type"})
    action = {"action": "job"} if old.action != {"action": "job"} else {"action": "mine"}
    new = ev.ActionSubmitted(agent=old.agent, action=action, thinking_units=old.thinking_units,
                             output_units=old.output_units, thinking=old.thinking, speech=old.speech)
    payload = encode_payload(new)
    signature = env.signature
    if resign:
        with Store(source) as store:
            run_id = store.meta["run_id"]
        signature = SeedKeys(SEED).private_key(old.agent).sign(input_message(run_id, turn, payload))
    with sqlite3.connect(target) as conn:
        conn.execute("UPDATE events SET payload = ?, payload_json = ?, signature = ? WHERE seq = ?",
                     [payload, payload_json(new), signature.hex(), env.seq])
    new_env = Envelope(**{**{f: getattr(env, f) for f in Envelope.__struct_fields__}, "payload": payload})
    return env.seq, env.hash, envelope_hash(new_env)


def test_reexecution_of_an_engine_log_reproduces_every_hash(log_path):
    result = reexecute(log_path)
    with Store(log_path) as store:
        count, last_turn = store.count(), store.head()[2]
    assert result.ok and result.divergence is None
    assert (result.events, result.turns) == (count, last_turn)


def test_verify_reexecute_command_passes_on_an_engine_log(log_path):
    result = invoke("verify", log_path, "--reexecute")
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "reproduced" in result.output


def test_altered_and_resigned_input_diverges_at_its_seq(log_path, tmp_path):
    seq, stored, altered = alter_input(log_path, tmp_path / "altered.db", 4, resign=True)
    result = reexecute(tmp_path / "altered.db")
    assert not result.ok
    d = result.divergence
    assert (d.seq, d.turn, d.kind) == (seq, 4, "action_submitted")
    assert (d.expected, d.got) == (stored.hex(), altered.hex())
    assert result.events == seq  # everything before it was reproduced


def test_altered_input_without_its_signature_is_refused_at_its_seq(log_path, tmp_path):
    seq, _, _ = alter_input(log_path, tmp_path / "unsigned.db", 3, resign=False)
    d = reexecute(tmp_path / "unsigned.db").divergence
    assert (d.seq, d.turn) == (seq, 3)
    assert "refused" in d.reason and "signature" in d.reason


@pytest.fixture(scope="module")
def forged_log(tmp_path_factory):
    """A consistent log written by an engine whose job pay is one token too many."""
    path = tmp_path_factory.mktemp("forged") / "run.db"

    real_pay = engine.process_job_pay

    class Inflating:
        """Passes events on to the real recorder, adding one token to every job payment."""

        def __init__(self, rec):
            self.rec, self.state = rec, rec.state

        def emit(self, event, **kwargs):
            if isinstance(event, ev.JobPaid):
                event = msgspec.structs.replace(event, amount=event.amount + 1)
            return self.rec.emit(event, **kwargs)

        def turn_hashes(self):
            return self.rec.turn_hashes()

    def generous_pay(rec, agent, fee, seq):
        real_pay(Inflating(rec), agent, fee, seq)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "process_job_pay", generous_pay)
        with Run.create(path, agents=agent_ids(8), seed=7) as run:
            for turn in range(1, 5):
                run.step(hand_inputs(turn))
    return path


def test_forged_engine_log_verifies_but_reexecution_names_the_first_forged_event(forged_log):
    assert verify_log(forged_log).ok  # hashes, signatures and seals are all consistent
    with Store(forged_log) as store:
        (job_row,) = store.select("kind = 'job_paid'", [])
    d = reexecute(forged_log).divergence
    assert (d.seq, d.turn, d.kind, d.got_kind) == (job_row[0], 2, "job_paid", "job_paid")
    assert d.expected == job_row[9] != d.got
    result = invoke("verify", forged_log, "--reexecute")
    assert result.exit_code == 1
    assert f"seq {job_row[0]}" in result.output


def test_keystore_log_needs_its_keystore(tmp_path):
    keys = tmp_path / "keys"
    path = tmp_path / "ks.db"
    with Run.create(path, agents=agent_ids(8), seed=9, keystore=keys) as run:
        for turn in range(1, 4):
            run.step(hand_inputs(turn))
    before = sorted(p.name for p in keys.iterdir())
    with pytest.raises(LedgerError, match="--keystore"):
        reexecute(path)
    result = invoke("verify", path, "--reexecute")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert reexecute(path, keystore=keys).ok
    assert invoke("verify", path, "--reexecute", "--keystore", keys).exit_code == 0
    assert sorted(p.name for p in keys.iterdir()) == before  # re-execution never writes keys


def test_reexecution_refuses_a_keystore_with_other_keys(tmp_path):
    path = tmp_path / "ks.db"
    with Run.create(path, agents=agent_ids(8), seed=9, keystore=tmp_path / "keys") as run:
        run.step(hand_inputs(1))
    other = tmp_path / "other"
    with Run.create(tmp_path / "other.db", agents=agent_ids(8), seed=9, keystore=other):
        pass
    with pytest.raises(LedgerError, match="not the one in the log's genesis"):
        reexecute(path, keystore=other)


# --- the verify command's verdicts -------------------------------------------------------


def test_verify_prints_its_verdict_and_what_it_proved_and_exits_0_on_a_good_log(log_path):
    result = invoke("verify", log_path)
    assert result.exit_code == 0
    verdict, proved = result.output.strip().splitlines()
    assert verdict.startswith("OK") and proved.startswith("proved: ")


def test_verify_exits_1_on_a_tampered_log_and_skips_reexecution(log_path, tmp_path):
    seq, _, _ = alter_input(log_path, tmp_path / "tampered.db", 4, resign=True)
    result = invoke("verify", tmp_path / "tampered.db", "--reexecute")
    assert result.exit_code == 1
    assert f"seq {seq}" in result.output and "skipped" in result.output


def test_verify_json_reports_the_first_bad_event(log_path, tmp_path):
    seq, _, _ = alter_input(log_path, tmp_path / "tampered.db", 4, resign=True)
    result = invoke("verify", tmp_path / "tampered.db", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["ok"] is False and doc["error"]["seq"] == seq


@pytest.mark.parametrize("content", [None, b"garbage bytes, not a database" * 10])
def test_verify_of_a_non_log_exits_2(tmp_path, content):
    path = tmp_path / "x.db"
    if content is not None:
        path.write_bytes(content)
    result = invoke("verify", path)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
