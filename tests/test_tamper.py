"""Tampering with a log, the way an attacker would, always fails verification at the right seq.

Each test changes one thing: a flipped byte (payload, hash, prev_hash, signature),
a deleted, swapped or inserted event, or an event re-signed with the wrong key.
The property test runs the same operations at random positions of random small logs.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simledger.events import types as ev
from simledger.events.keys import SeedKeys, public_hex
from simledger.ledger.verify import verify_log


import logtools as lt
OUTSIDER = SeedKeys(999_999).private_key("mallory")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return lt.LogCache(tmp_path_factory.mktemp("logs"))


@pytest.fixture
def log(cache, tmp_path) -> Path:
    return cache.copy(tmp_path / "run.db", seed=11, agents=4, turns=3)


def assert_fails_at(path: Path, seq: int, reason: str = "", workers: int = 1) -> None:
    result = verify_log(path, workers=workers)
    assert not result.ok, f"tampered log verified: {result.message}"
    assert result.error.seq == seq, result.message
    assert reason.lower() in result.error.reason.lower(), result.message


# --- the tamper operations -----------------------------------------------------------------------
# Each takes (path, seq, rng), damages the log, and returns (seq the verifier must name, reason fragment).


def flip_payload(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    payload = lt.read_row(path, seq)["payload"]
    lt.set_cell(path, seq, "payload", lt.flip_blob(payload, rng.randrange(len(payload))))
    return seq, ""  # the hash check or the decoder catches it, at this seq


def flip_hash(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    lt.set_cell(path, seq, "hash", lt.flip_hex(lt.read_row(path, seq)["hash"], rng.randrange(32)))
    return seq, "hash does not match"


def flip_prev_hash(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    lt.set_cell(path, seq, "prev_hash", lt.flip_hex(lt.read_row(path, seq)["prev_hash"], rng.randrange(32)))
    return seq, "prev_hash"


def flip_signature(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    lt.set_cell(path, seq, "signature", lt.flip_hex(lt.read_row(path, seq)["signature"], rng.randrange(64)))
    return seq, "signature"


def delete(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    last = lt.count(path) - 1
    lt.delete_event(path, seq)
    return seq, "incomplete" if seq == last else "missing"


def swap(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    other = rng.choice([s for s in range(lt.count(path)) if s != seq])
    lt.swap_events(path, seq, other)
    return min(seq, other), ""


def insert_outsider_event(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    """Insert a well-formed, correctly chained engine event signed by a key the genesis does not name."""
    seq = max(seq, 1)
    before = lt.read_row(path, seq - 1)
    # Right after a seal, the event opens the next turn; otherwise it joins the current one.
    turn = lt.read_row(path, seq)["turn"] if before["kind"] == "turn_sealed" else before["turn"]
    row = {**lt.event_row(ev.FeesRetained(amount=1), seq=seq, turn=turn), "prev_hash": before["hash"]}
    lt.insert_row_at(path, lt.sign_row(row, OUTSIDER))
    return seq, "not the engine key"


def resign_input_by_other_agent(path: Path, seq: int, rng: random.Random) -> tuple[int, str]:
    """Alter an agent's input (the first at or after ``seq``, wrapping) and sign it with another agent's key."""
    inputs = [r for r in lt.read_rows(path) if r["kind"] == "action_submitted"]
    row = next((r for r in inputs if r["seq"] >= seq), inputs[0])
    original = lt.decoded(row)
    other = rng.choice([a for a in lt.genesis(path).agents if a != original.agent])
    altered = ev.ActionSubmitted(agent=original.agent, action={"action": "transfer", "to": other, "amount": 999})
    lt.forge_event(path, row["seq"], altered, signer_key=lt.seed_keys(path).private_key(other))
    return row["seq"], f"not {original.agent}'s key"


OPERATIONS = {
    "flip_payload": flip_payload, "flip_hash": flip_hash, "flip_prev_hash": flip_prev_hash,
    "flip_signature": flip_signature, "delete": delete, "swap": swap, "insert_outsider_event": insert_outsider_event,
    "resign_input_by_other_agent": resign_input_by_other_agent,
}


# --- one test per operation, at a random position ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPERATIONS))
@pytest.mark.parametrize("position_seed", [1, 2, 3])
def test_tampering_fails_at_the_tampered_seq(log, name, position_seed):
    rng = random.Random(f"{name}/{position_seed}")
    seq = rng.randrange(lt.count(log))
    expected, reason = OPERATIONS[name](log, seq, rng)
    assert_fails_at(log, expected, reason)


@pytest.mark.parametrize("name", ["flip_signature", "swap", "insert_outsider_event"])
def test_tampering_is_found_by_parallel_verify_too(log, name):
    rng = random.Random(name)
    expected, reason = OPERATIONS[name](log, rng.randrange(1, lt.count(log)), rng)
    assert_fails_at(log, expected, reason, workers=2)


def test_first_and_last_events_are_protected(log):
    last = lt.count(log) - 1
    rng = random.Random(0)
    for seq in (0, last):
        for name in ("flip_payload", "flip_hash", "flip_signature"):
            copy = log.with_name(f"{name}_{seq}.db")
            copy.write_bytes(log.read_bytes())
            expected, reason = OPERATIONS[name](copy, seq, rng)
            assert_fails_at(copy, expected, reason)


# --- signer substitution: correct hashes, wrong key ------------------------------------------------------


def agents_of(path: Path) -> list[str]:
    return list(lt.genesis(path).agents)


def test_event_signed_by_an_outsider_claiming_the_engine_key_fails(log):
    # The signer column names the engine key, the signature is the outsider's: only the signature check can tell.
    seq = lt.first_of_kind(log, "mining_entered")["seq"]
    engine_id = lt.read_row(log, 0)["signer"]
    lt.forge(log, seq, signer_key=OUTSIDER, signer_id=engine_id)
    assert_fails_at(log, seq, "signature does not verify")


def test_engine_event_resigned_with_an_agent_key_fails(log):
    seq = lt.first_of_kind(log, "mining_entered")["seq"]
    agent_key = lt.seed_keys(log).private_key(agents_of(log)[0])
    lt.forge(log, seq, signer_key=agent_key)
    assert_fails_at(log, seq, "not the engine key")


def test_altered_input_resigned_by_another_agent_fails(log):
    # Change what agent A asked for, and sign it with agent B's (real, genesis-listed) key; the
    # altered row's hash is correct and the rest of the log is re-chained, so only the signer check can catch it.
    row = lt.first_of_kind(log, "action_submitted")
    original = lt.decoded(row)
    other = next(a for a in agents_of(log) if a != original.agent)
    altered = ev.ActionSubmitted(agent=original.agent, action={"action": "transfer", "to": other, "amount": 500},
                                 thinking_units=original.thinking_units, output_units=original.output_units,
                                 thinking=original.thinking, speech=original.speech)
    lt.forge_event(log, row["seq"], altered, signer_key=lt.seed_keys(log).private_key(other))
    assert_fails_at(log, row["seq"], f"not {original.agent}'s key")


def test_altered_input_signed_by_another_agent_under_the_right_key_id_fails(log):
    row = lt.first_of_kind(log, "action_submitted")
    original = lt.decoded(row)
    other = next(a for a in agents_of(log) if a != original.agent)
    altered = ev.ActionSubmitted(agent=original.agent, action={"action": "burn", "amount": 900})
    lt.forge_event(log, row["seq"], altered, signer_key=lt.seed_keys(log).private_key(other), signer_id=row["signer"])
    assert_fails_at(log, row["seq"], "signature does not verify")


def test_input_signature_is_bound_to_its_turn(log):
    # Replaying an input into another turn (same payload, same agent signature) fails: the turn is signed.
    rows = [r for r in lt.read_rows(log) if r["kind"] == "action_submitted"]
    first = rows[0]
    later = next(r for r in rows if r["turn"] > first["turn"] and lt.decoded(r).agent == lt.decoded(first).agent)
    lt.forge(log, later["seq"], payload=first["payload"], payload_json=first["payload_json"])
    lt.set_cell(log, later["seq"], "signature", first["signature"])  # the signature is not hashed: no re-chain needed
    assert_fails_at(log, later["seq"], "signature does not verify")


def test_replacing_the_genesis_breaks_the_next_link(log):
    # A forged genesis naming the outsider as engine is self-consistent, but its hash
    # differs, so the event after it no longer links.
    genesis = lt.genesis(log)
    forged = msgspec.structs.replace(genesis, engine_key=public_hex(OUTSIDER))
    row = {**lt.event_row(forged, seq=0, turn=0)}
    lt.write_rows(log, [lt.sign_row(row, OUTSIDER)])
    assert_fails_at(log, 1, "prev_hash")


# --- the property ------------------------------------------------------------------------------------------

_PROPERTY_CACHE: dict[tuple, bytes] = {}


def property_log(tmp: Path, seed: int, agents: int, turns: int) -> Path:
    key = (seed, agents, turns)
    if key not in _PROPERTY_CACHE:
        built = lt.make_log(tmp / f"p_{seed}_{agents}_{turns}.db", seed=seed, agents=agents, turns=turns)
        _PROPERTY_CACHE[key] = built.read_bytes()
    path = tmp / "target.db"
    for leftover in (tmp / "target.db-wal", tmp / "target.db-shm"):
        leftover.unlink(missing_ok=True)
    path.write_bytes(_PROPERTY_CACHE[key])
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 3), agents=st.integers(2, 4), turns=st.integers(1, 3),
       name=st.sampled_from(sorted(OPERATIONS)), position=st.floats(0, 1, exclude_max=True), salt=st.integers(0, 99),
       workers=st.sampled_from([1, 1, 2]))
def test_property_any_tamper_anywhere_fails_at_its_seq(tmp_path, seed, agents, turns, name, position, salt, workers):
    path = property_log(tmp_path, seed, agents, turns)
    seq = int(position * lt.count(path))
    expected, reason = OPERATIONS[name](path, seq, random.Random(salt))
    assert_fails_at(path, expected, reason, workers=workers)


def test_untampered_property_logs_verify(tmp_path):
    # The property's base logs must verify, or the property would prove nothing.
    for seed, agents, turns in [(0, 2, 1), (3, 4, 3)]:
        assert verify_log(property_log(tmp_path, seed, agents, turns)).ok
