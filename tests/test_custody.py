"""Who signed an input, and for which run: custodial signing is visible, signatures never cross runs.

* A keystore run's server signs an unsigned input for its agent and records
  ``"custodial": true``; an agent-signed input is recorded without it, and a
  seed-derived run records neither (its genesis says ``key_source: "seed"``).
* ``require_signatures`` refuses every unsigned input and records nothing.
* A keystore genesis carries a random nonce that enters the run id: two runs
  created with the same parameters and keystore get different ids, so an input
  signed for one is refused by the other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import pytest

from typer.testing import CliRunner

from simledger.api.client_signing import sign_input
from simledger.cli.main import app
from simledger.events import types as ev
from simledger.events.envelope import decode_payload
from simledger.ledger.errors import BadInput
from simledger.ledger.reexecute import reexecute
from simledger.ledger.run import Run
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
import logtools as lt  # noqa: E402

AGENTS = ["agent_0", "agent_1", "agent_2"]
CONFIG = {"num_agents": len(AGENTS)}


def mine(agent: str) -> dict:
    return {"agent_id": agent, "action": {"action": "mine"}, "thinking_units": 5, "output_units": 5}


def new_run(path, keystore=None, **options) -> Run:
    return Run.create(path, agents=AGENTS, seed=11, config=CONFIG, keystore=keystore, **options)


def submitted(run: Run) -> list[ev.ActionSubmitted]:
    return [decode_payload(row[2], row[5], row[6]) for row in run.store.select("kind = ?", ["action_submitted"])]


def signed(keystore, run: Run, agent: str) -> dict:
    item = mine(agent)
    key = (keystore / f"{agent}.key").read_text()
    item["signature"] = sign_input(key, run.state.run_id, run.next_turn, item)
    return item


def test_keystore_run_marks_server_signed_inputs_custodial_and_agent_signed_ones_not(tmp_path):
    keys = tmp_path / "keys"
    with new_run(tmp_path / "run.db", keys) as run:
        run.step([mine("agent_0"), signed(keys, run, "agent_1")])
        marks = {event.agent: event.custodial for event in submitted(run)}
    assert marks["agent_0"] is True  # the server signed on agent_0's behalf
    assert marks["agent_1"] is msgspec.UNSET  # agent_1 signed its own input: no custody claim
    assert verify_log(tmp_path / "run.db").ok
    assert reexecute(tmp_path / "run.db", keystore=keys).ok  # custodial inputs re-sign to the same hashes


def test_seed_derived_run_records_no_custody_field_so_its_bytes_are_unchanged(tmp_path):
    with new_run(tmp_path / "run.db") as run:
        run.step([mine(a) for a in AGENTS])
        rows = run.store.select("kind = ?", ["action_submitted"])
        genesis = run.store.select("seq = 0", [])[0]
    assert all(b"custodial" not in bytes(row[6]) for row in rows)
    assert b"nonce" not in bytes(genesis[6])


@pytest.mark.parametrize("keystore", [False, True])
def test_require_signatures_refuses_an_unsigned_input_and_records_nothing(tmp_path, keystore):
    keys = tmp_path / "keys" if keystore else None
    with new_run(tmp_path / "run.db", keys, require_signatures=True) as run:
        before = run.store.head()
        with pytest.raises(BadInput, match="agent_0's input is not signed"):
            run.step([mine("agent_0")])
        assert run.store.head() == before
        if keystore:
            run.step([signed(keys, run, "agent_0")])
            assert [event.custodial for event in submitted(run)] == [msgspec.UNSET]


def test_require_signatures_is_an_option_of_reopening_too(tmp_path):
    new_run(tmp_path / "run.db").close()
    with Run.open(tmp_path / "run.db", require_signatures=True) as run:
        with pytest.raises(BadInput, match="not signed"):
            run.step([mine("agent_2")])


def test_keystore_runs_with_the_same_parameters_get_different_run_ids(tmp_path):
    keys = tmp_path / "keys"
    with new_run(tmp_path / "a.db", keys) as a, new_run(tmp_path / "b.db", keys) as b:
        assert a.state.run_id != b.state.run_id
        assert a.state.agent_keys == b.state.agent_keys  # same keys: only the nonce tells the runs apart


def test_an_input_signed_for_one_run_is_refused_by_its_twin(tmp_path):
    keys = tmp_path / "keys"
    with new_run(tmp_path / "a.db", keys) as a, new_run(tmp_path / "b.db", keys) as b:
        replayed = signed(keys, a, "agent_0")
        a.step([replayed])
        before = b.store.head()
        with pytest.raises(BadInput, match="does not verify"):
            b.step([replayed])
        assert b.store.head() == before


def test_seed_derived_runs_stay_reproducible(tmp_path):
    with new_run(tmp_path / "a.db") as a, new_run(tmp_path / "b.db") as b:
        a.step([mine("agent_0")])
        b.step([mine("agent_0")])
        assert a.state.run_id == b.state.run_id and a.head_hash == b.head_hash


# --- audit and log say who signed ------------------------------------------------------------------


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def study_logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("custody")
    regime = load_regimes()["baseline"]
    for name, keystore in (("seed", None), ("keystore", folder / "keys")):
        execute_run(folder / f"{name}.db", regime_name="baseline", regime=regime, seed=101, agents=8, turns=10,
                    keystore=keystore).close()
    return folder


@pytest.mark.parametrize("name, label", [("seed", "seed key"), ("keystore", "server for agent")])
def test_log_and_audit_show_who_signed_each_input(study_logs, name, label):
    path = study_logs / f"{name}.db"
    shown = cli("log", path, "--kind", "action_submitted", "--limit", "3")
    assert shown.exit_code == 0 and shown.output.count(label) >= 3, shown.output
    with Run.open(path, keystore=study_logs / "keys" if name == "keystore" else None) as run:
        contract = next(iter(run.state.contracts))
    audited = cli("audit", path, contract)
    assert audited.exit_code == 0 and f"signed by {label}" in audited.output, audited.output
    doc = json.loads(cli("audit", path, contract, "--json").output)
    assert {e["input_signed_by"] for e in doc["events"] if e["input_seq"] is not None} == {label}


# --- the format: the new fields are a payload version of their own -------------------------------


def test_marked_inputs_and_nonced_geneses_are_payload_version_2_and_the_rest_stay_version_1(tmp_path):
    keys = tmp_path / "keys"
    with new_run(tmp_path / "k.db", keys) as keyed, new_run(tmp_path / "s.db") as seeded:
        keyed.step([mine("agent_0"), signed(keys, keyed, "agent_1")])
        seeded.step([mine("agent_0")])
        versions = {name: [(row[2], row[5]) for row in run.store.select("kind IN (?, ?)", ["run_genesis",
                                                                                           "action_submitted"])]
                    for name, run in (("keyed", keyed), ("seeded", seeded))}
    # every genesis is version 6 now (its rules hold the rule variants); inputs keep their own versions
    assert versions["keyed"] == [("run_genesis", 6), ("action_submitted", 2), ("action_submitted", 1)]
    assert versions["seeded"] == [("run_genesis", 6), ("action_submitted", 1)]


def test_a_custody_mark_under_the_old_payload_version_does_not_verify(tmp_path):
    log = lt.make_log(tmp_path / "run.db", turns=2)
    row = lt.first_of_kind(log, "action_submitted")
    marked = msgspec.structs.replace(lt.decoded(row), custodial=True)
    lt.forge_event(log, row["seq"], marked, payload_version=1)  # re-hashed and re-signed: only the version is off
    result = verify_log(log)
    assert not result.ok and result.error.seq == row["seq"]
    assert "payload version 1, but the payload's fields are those of version 2" in result.error.reason
