"""Private keys stay private: 0600 files, unsafe files refused, never in a log, a message or a repr."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.keys import Keystore, KeystoreError, SeedKeys
from simledger.ledger.errors import LedgerError
from simledger.ledger.head import export_head
from simledger.ledger.run import Run
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes

AGENTS = [f"agent_{i}" for i in range(4)]
OWNERS = ["engine", *AGENTS]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def play(path, *, keystore=None, seed: int = 31, turns: int = 4) -> None:
    regime = load_regimes()["baseline"]
    run = Run.create(path, agents=AGENTS, seed=seed, config=engine_config(regime, len(AGENTS)), keystore=keystore,
                     identity={"regime": "baseline", "run_name": "keys", "turns": turns})
    policy = StudyPolicy(regime["policy"], seed)
    for turn in range(1, turns + 1):
        run.step(policy.decide(TurnView.from_state(run.state, turn, turns)))
    run.close()


def private_hexes(keys) -> list[str]:
    return [keys.private_key(owner).private_bytes_raw().hex() for owner in OWNERS]


@pytest.fixture
def keystore_run(tmp_path):
    keystore = tmp_path / "keys"
    path = tmp_path / "k.db"
    play(path, keystore=keystore)
    return path, keystore


def test_keystore_files_are_created_owner_only(keystore_run):
    _, keystore = keystore_run
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o700
    files = sorted(keystore.iterdir())
    assert [f.name for f in files] == sorted(f"{owner}.key" for owner in OWNERS)
    for key_file in files:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610])
def test_group_or_world_accessible_key_file_is_refused_with_a_clear_message(keystore_run, mode):
    path, keystore = keystore_run
    os.chmod(keystore / "engine.key", mode)
    with pytest.raises(KeystoreError, match=r"readable by others \(chmod 600 it\)"):
        Keystore(keystore, create=False).private_key("engine")
    with pytest.raises(KeystoreError, match="chmod 600"):
        Run.open(path, keystore=keystore)
    for args in (["head", path, "--keystore", keystore], ["verify", path, "--reexecute", "--keystore", keystore]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "chmod 600" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_no_private_key_ever_lands_in_a_log(keystore_run, tmp_path):
    seeded = tmp_path / "seeded.db"
    play(seeded, seed=32)
    for path, keys in ((keystore_run[0], Keystore(keystore_run[1], create=False)), (seeded, SeedKeys(32))):
        secrets = private_hexes(keys)
        raw = [bytes.fromhex(h) for h in secrets]
        conn = sqlite3.connect(path)
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"events", "meta", "checkpoints"} <= set(tables)
        cells = 0
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for cell in row:
                    cells += 1
                    blob = cell if isinstance(cell, bytes) else str(cell).encode()
                    for secret_hex, secret_raw in zip(secrets, raw):
                        assert secret_raw not in blob, f"a private key's bytes are in table {table}"
                        assert secret_hex.encode() not in blob.lower(), f"a private key's hex is in table {table}"
        conn.close()
        assert cells > 500  # the scan really read the log
        file_bytes = path.read_bytes()
        assert not any(secret in file_bytes for secret in raw)


def test_key_objects_never_show_their_secret(keystore_run):
    _, keystore = keystore_run
    for keys in (Keystore(keystore, create=False), SeedKeys(31)):
        secrets = private_hexes(keys)
        shown = " ".join([repr(keys), str(keys), *(repr(keys.private_key(o)) for o in OWNERS),
                          *(str(keys.private_key(o)) for o in OWNERS)])
        assert not any(secret in shown.lower() for secret in secrets), shown
        assert "31" not in repr(SeedKeys(31))  # not even the seed the keys derive from


def test_key_errors_never_quote_key_material(keystore_run, tmp_path):
    path, keystore = keystore_run
    secrets = private_hexes(Keystore(keystore, create=False))
    messages = []
    # A key file that holds something else than a key (here: a truncated copy of the real key).
    engine_file = keystore / "engine.key"
    original = engine_file.read_text()
    engine_file.write_text(original[:40] + "\n")
    with pytest.raises(KeystoreError) as bad_file:
        Keystore(keystore, create=False).private_key("engine")
    messages.append(str(bad_file.value))
    messages.append(invoke("head", path, "--keystore", keystore).output)
    # A valid key that is not the one the genesis records.
    other = tmp_path / "other_keys"
    Keystore(other).private_key("engine")
    with pytest.raises(LedgerError) as wrong_key:
        export_head(path, keystore=other)
    messages.append(str(wrong_key.value))
    messages.append(invoke("head", path, "--keystore", other).output)
    engine_file.write_text(original)
    secrets += [Keystore(other, create=False).private_key("engine").private_bytes_raw().hex(), original.strip()[:40]]
    assert all(messages) and all(len(m.strip().splitlines()) == 1 for m in messages), messages
    for message in messages:
        assert not any(secret in message.lower() for secret in secrets), message


# --- where keys may come from -------------------------------------------------------------


def test_a_key_planted_in_a_world_writable_keystore_is_refused(tmp_path):
    keystore = tmp_path / "keys"
    Keystore(keystore).private_key("agent_0")
    os.chmod(keystore, 0o777)  # anyone could have replaced agent_0.key
    with pytest.raises(KeystoreError, match="others can write to it"):
        Keystore(keystore).private_key("agent_0")
    with pytest.raises(KeystoreError, match="others can write to it"):
        Run.create(tmp_path / "k.db", agents=AGENTS, seed=1, config={"num_agents": 4}, keystore=keystore)
    assert not (tmp_path / "k.db").exists() or (tmp_path / "k.db").stat().st_size == 0


def test_group_writable_key_file_is_refused(tmp_path):
    Keystore(tmp_path / "keys").private_key("agent_0")
    os.chmod(tmp_path / "keys" / "agent_0.key", 0o620)
    with pytest.raises(KeystoreError, match="refusing key file"):
        Keystore(tmp_path / "keys").private_key("agent_0")


def test_keys_and_folders_of_another_user_are_refused(tmp_path, monkeypatch):
    Keystore(tmp_path / "keys").private_key("agent_0")
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(tmp_path).st_uid + 1)  # we are now someone else
    with pytest.raises(KeystoreError, match="belongs to another user"):
        Keystore(tmp_path / "keys").private_key("agent_0")


def test_a_symlinked_key_file_is_refused(tmp_path):
    keystore = tmp_path / "keys"
    Keystore(keystore).private_key("agent_0")
    os.symlink(keystore / "agent_0.key", keystore / "agent_1.key")
    with pytest.raises(KeystoreError, match="not a regular file"):
        Keystore(keystore).private_key("agent_1")


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_keystore_folder_is_0700_and_files_0600_whatever_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        Keystore(tmp_path / "deep" / "keys").private_key("agent_0")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "deep" / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "deep" / "keys" / "agent_0.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("owner", ["agent\x00", "a\u202eb", "\x1b[31mred", "a b", "x" * 65])
def test_keystore_refuses_owner_names_outside_the_safe_alphabet(tmp_path, owner):
    with pytest.raises(KeystoreError, match="unsafe key owner name"):
        Keystore(tmp_path).private_key(owner)


def test_run_command_takes_a_keystore_like_serve(tmp_path):
    keystore = tmp_path / "keys"
    result = invoke("run", tmp_path / "k.db", "--turns", 2, "--agents", 3, "--keystore", keystore)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in keystore.iterdir()) == ["agent_0.key", "agent_1.key", "agent_2.key", "engine.key"]
    assert invoke("verify", tmp_path / "k.db", "--reexecute", "--keystore", keystore).exit_code == 0
    os.chmod(keystore, 0o757)
    refused = invoke("run", tmp_path / "k2.db", "--turns", 2, "--agents", 3, "--keystore", keystore)
    assert refused.exit_code == 2 and "others can write to it" in refused.output
