"""What a verified log proves: integrity always, authenticity only against a pinned head or a trusted key.

The attack: with seed-derived keys anyone can write a different history under
the same genesis, and it verifies. ``verify`` must say that it proved nothing
about who wrote the log, and the head a study run writes beside its log must
catch the rewrite (naming where the logs part when one is cut short or grew).
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.head import head_file_of
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

AGENTS = ["agent_0", "agent_1", "agent_2"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def study_log(path, turns: int = 3):
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=5, agents=3, turns=turns).close()
    return path


def forged_copy(path, original):
    """Write a different history under the original's genesis, signed with the keys its seed derives."""
    genesis = Run.open(original)
    seed, config, identity = genesis.state.seed, genesis.state.config, genesis.state.identity
    genesis.close()
    with Run.create(path, agents=AGENTS, seed=seed, config=config, identity=identity) as run:
        for _ in range(3):
            run.step([{"agent_id": "agent_0", "action": {"action": "transfer", "to": "agent_1", "amount": 5, "fee": 1}}])
    return path


def test_study_runs_write_their_signed_head_beside_the_log(tmp_path):
    log = study_log(tmp_path / "baseline_5.db")
    assert head_file_of(log) == tmp_path / "baseline_5.head"
    checked = invoke("verify", log, "--expect-head", head_file_of(log))
    assert checked.exit_code == 0 and "OK: head matches the signed checkpoint" in checked.output


def test_run_command_writes_the_head(tmp_path):
    result = invoke("run", tmp_path / "one.db", "--turns", 2, "--agents", 3)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one.head").read_text().startswith("simledger/run-")


def test_a_seed_keyed_log_verifies_but_verify_says_it_proves_no_authorship(tmp_path):
    original = study_log(tmp_path / "orig.db")
    forged = forged_copy(tmp_path / "forged.db", original)
    plain = invoke("verify", forged)
    assert plain.exit_code == 0  # the rewrite is internally consistent ...
    assert "NOT who wrote it" in plain.output and "anyone holding the seed" in plain.output
    pinned = invoke("verify", forged, "--expect-head", head_file_of(original))
    assert pinned.exit_code == 1 and "FAILED: TRUNCATED or ROLLED BACK" in pinned.output  # only the kept head tells


def truncate_after(path, seq: int) -> None:
    with sqlite3.connect(path) as conn:  # a careful rollback: the events and the per-turn read models
        turn = conn.execute("SELECT turn FROM events WHERE seq = ?", [seq]).fetchone()[0]
        conn.execute("DELETE FROM events WHERE seq > ?", [seq])
        for derived in ("checkpoints", "account_turns", "turns"):
            conn.execute(f"DELETE FROM {derived} WHERE turn > ?", [turn])


def test_expect_head_names_the_first_missing_seq_and_json_agrees_with_itself(tmp_path):
    log = study_log(tmp_path / "cut.db")
    size = json.loads(invoke("verify", log, "--json").output)["events"]
    with sqlite3.connect(log) as conn:
        turn_2_end = conn.execute("SELECT MAX(seq) FROM events WHERE turn = 2").fetchone()[0]
    truncate_after(log, turn_2_end)
    human = invoke("verify", log, "--expect-head", head_file_of(log))
    assert human.exit_code == 1
    assert f"seqs {turn_2_end + 1}-{size - 1} of the pinned head are missing" in human.output
    doc = json.loads(invoke("verify", log, "--expect-head", head_file_of(log), "--json").output)
    assert doc["ok"] is False and doc["message"].startswith("FAILED")
    assert doc["expect_head"]["first_missing_seq"] == turn_2_end + 1
    assert "proved" not in doc


def test_expect_head_names_the_first_seq_beyond_a_pinned_head(tmp_path):
    log = study_log(tmp_path / "grow.db", turns=2)
    pinned = tmp_path / "pinned.head"
    pinned.write_text(head_file_of(log).read_text())
    size = json.loads(invoke("verify", log, "--json").output)["events"]
    with Run.open(log) as run:
        run.step([])
    doc = json.loads(invoke("verify", log, "--expect-head", pinned, "--json").output)
    assert doc["ok"] is True and doc["message"].startswith("OK")
    assert doc["expect_head"]["first_new_seq"] == size
    assert "beyond the pinned head" in doc["expect_head"]["message"]
    assert "the log is the head you pinned (or only grew from it)" in doc["proved"]


@pytest.fixture
def keystore_log(tmp_path):
    with Run.create(tmp_path / "k.db", agents=AGENTS, seed=1, config={"num_agents": 3},
                    keystore=tmp_path / "keys") as run:
        run.step([])
        return tmp_path / "k.db", run.state.engine_key


def test_a_keystore_log_is_authentic_only_against_a_trusted_engine_key(keystore_log):
    path, engine_key = keystore_log
    plain = invoke("verify", path)
    assert plain.exit_code == 0 and "NOT that those are the real keys" in plain.output
    trusted = invoke("verify", path, "--engine-key", engine_key)
    assert trusted.exit_code == 0 and "signed by the engine key you trust" in trusted.output
    other = invoke("verify", path, "--engine-key", "ab" * 32)
    assert other.exit_code == 1 and "not the key you trust" in other.output
    malformed = invoke("verify", path, "--engine-key", "xyz")
    assert malformed.exit_code == 2 and "64 hex characters" in malformed.output


def test_the_genesis_says_where_keys_came_from(tmp_path, keystore_log):
    seeded = study_log(tmp_path / "s.db", turns=1)
    sources = []
    for path in (seeded, keystore_log[0]):
        with Store(path) as store:
            sources.append(store.genesis().key_source)
    assert sources == ["seed", "keystore"]
