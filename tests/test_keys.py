"""Keys: seed-derived keys are deterministic, keystores are owner-only, private keys never leak."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simledger.events.keys import (
    SEED_KEY_DOMAIN, Keystore, KeystoreError, SeedKeys, input_message, key_id, load_public, public_hex, verify_signature,
)

# Pinned: seed 7's engine key. A change here silently re-keys every seed-signed log ever written.
SEED_7_ENGINE_PUBLIC = "100241b578e652d6ebdae213bbbd9c3f39fa9bf2696adefea30dc7daf9840fe0"
SEED_7_ENGINE_KEY_ID = "6ef47e8eac7264e6"


def private_hex(key: Ed25519PrivateKey) -> str:
    return key.private_bytes_raw().hex()


# --- seed-derived keys ----------------------------------------------------------------------------


def test_seed_keys_are_deterministic():
    assert public_hex(SeedKeys(7).private_key("agent_3")) == public_hex(SeedKeys(7).private_key("agent_3"))
    assert private_hex(SeedKeys(7).private_key("agent_3")) == private_hex(SeedKeys(7).private_key("agent_3"))


def test_seed_keys_differ_by_owner_and_by_seed():
    owners = ("engine", "agent_0", "a")
    keys = {public_hex(SeedKeys(seed).private_key(owner)) for seed in (7, 8, 70) for owner in owners}
    assert len(keys) == 9


def test_seed_key_derivation_is_pinned():
    key = SeedKeys(7).private_key("engine")
    assert public_hex(key) == SEED_7_ENGINE_PUBLIC
    assert key_id(SEED_7_ENGINE_PUBLIC) == SEED_7_ENGINE_KEY_ID
    # Independently: the private key is SHA-256(domain || seed || 0x00 || owner).
    material = hashlib.sha256(SEED_KEY_DOMAIN + b"7\x00engine").digest()
    assert key.private_bytes_raw() == material


def test_seed_and_owner_cannot_be_confused():
    # "1" + "\0" + "2x" and "12" + "\0" + "x" must not derive the same key.
    assert public_hex(SeedKeys(1).private_key("2x")) != public_hex(SeedKeys(12).private_key("x"))


def test_key_id_is_16_hex_of_sha256_of_the_public_key():
    assert key_id(SEED_7_ENGINE_PUBLIC) == hashlib.sha256(bytes.fromhex(SEED_7_ENGINE_PUBLIC)).hexdigest()[:16]


# --- signatures ------------------------------------------------------------------------------------


def test_signature_verifies_only_for_its_key_and_message():
    key, other = SeedKeys(1).private_key("a"), SeedKeys(1).private_key("b")
    signature = key.sign(b"message")
    public = load_public(public_hex(key))
    assert verify_signature(public, signature, b"message")
    assert not verify_signature(public, signature, b"messagE")
    assert not verify_signature(load_public(public_hex(other)), signature, b"message")
    assert not verify_signature(public, signature[:-1] + bytes([signature[-1] ^ 1]), b"message")
    assert not verify_signature(public, b"short", b"message")


def test_malformed_public_key_raises_value_error():
    with pytest.raises(ValueError):
        load_public("zz" * 32)
    with pytest.raises(ValueError):
        load_public("ab" * 8)


def test_input_message_binds_run_turn_and_payload():
    base = input_message("run-a", 3, b"\x01\x02")
    assert len(base) == 32
    assert base == input_message("run-a", 3, b"\x01\x02")
    assert base != input_message("run-b", 3, b"\x01\x02")
    assert base != input_message("run-a", 4, b"\x01\x02")
    assert base != input_message("run-a", 3, b"\x01\x03")


# --- keystore ------------------------------------------------------------------------------------------


def test_keystore_creates_owner_only_key_files(tmp_path):
    store = Keystore(tmp_path / "keys")
    key = store.private_key("agent_0")
    path = tmp_path / "keys" / "agent_0.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not stat.S_IMODE((tmp_path / "keys").stat().st_mode) & 0o077
    assert public_hex(Keystore(tmp_path / "keys").private_key("agent_0")) == public_hex(key)


def test_keystore_keys_are_random_not_seed_derived(tmp_path):
    a = public_hex(Keystore(tmp_path / "one").private_key("agent_0"))
    b = public_hex(Keystore(tmp_path / "two").private_key("agent_0"))
    assert a != b


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610])
def test_keystore_refuses_group_or_world_accessible_key_file(tmp_path, mode):
    Keystore(tmp_path).private_key("agent_0")
    secret = (tmp_path / "agent_0.key").read_text().strip()
    os.chmod(tmp_path / "agent_0.key", mode)
    with pytest.raises(KeystoreError, match="readable by others") as raised:
        Keystore(tmp_path).private_key("agent_0")
    assert secret not in str(raised.value)


def test_keystore_without_create_refuses_missing_key(tmp_path):
    with pytest.raises(KeystoreError, match="no key"):
        Keystore(tmp_path, create=False).private_key("agent_0")
    assert not (tmp_path / "agent_0.key").exists()


def test_malformed_key_file_error_does_not_echo_its_content(tmp_path):
    secret = "5e" * 31 + "zz"  # almost a key: the error must not print it
    path = tmp_path / "agent_0.key"
    path.write_text(secret)
    os.chmod(path, 0o600)
    with pytest.raises(KeystoreError) as raised:
        Keystore(tmp_path).private_key("agent_0")
    assert secret not in str(raised.value) and secret[:20] not in str(raised.value)


@pytest.mark.parametrize("owner", ["", "../engine", "a/b", ".hidden"])
def test_keystore_refuses_unsafe_owner_names(tmp_path, owner):
    with pytest.raises(KeystoreError, match="unsafe"):
        Keystore(tmp_path).private_key(owner)


def test_private_key_never_appears_in_reprs(tmp_path):
    store = Keystore(tmp_path)
    secret = private_hex(store.private_key("agent_0"))
    seed_secret = private_hex(SeedKeys(7).private_key("engine"))
    for text in (repr(store), str(store), repr(SeedKeys(7)), str(SeedKeys(7))):
        assert secret not in text and seed_secret not in text
    assert "7" not in repr(SeedKeys(7))  # not even the seed a key can be derived from


def test_private_key_never_enters_a_log(tmp_path):
    from simledger.ledger.run import Run

    run = Run.create(tmp_path / "r.db", agents=["a", "b"], seed=5, keystore=tmp_path / "keys")
    run.step([{"agent_id": "a", "action": {"action": "mine"}}])
    run.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("r.db*"))  # the db and any WAL left beside it
    for owner in ("engine", "a", "b"):
        secret = bytes.fromhex((tmp_path / "keys" / f"{owner}.key").read_text().strip())
        assert secret not in raw and secret.hex().encode() not in raw
