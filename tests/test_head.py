"""Signed heads catch what chain verification cannot: truncation and rollback.

A log cut after its last good turn still links event to event, so plain
``verify`` passes; a signed checkpoint (C2SP tlog-checkpoint in the
signed-note format) taken earlier fails against it, passes against a log that
only grew (with an RFC 9162 consistency proof), and is trusted only when the
genesis engine key signed it.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events import merkle
from simledger.events.keys import SeedKeys
from simledger.ledger.errors import LedgerError
from simledger.ledger.head import BadCheckpoint, export_head, parse_checkpoint, sign_note, verify_head
from simledger.ledger.proofs import compute_consistency_proof, compute_root, iter_event_hashes
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes
from simledger.study.runner import agent_ids, resume_run

SEED, AGENTS, FULL_TURNS = 107, 8, 10
EM_DASH = "\u2014"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def play(path, turns: int, *, seed: int = SEED, keystore=None) -> None:
    """Create a study run meant to last FULL_TURNS turns and play only its first ``turns``."""
    regime = load_regimes()["baseline"]
    run = Run.create(path, agents=agent_ids(AGENTS), seed=seed, config=engine_config(regime, AGENTS),
                     keystore=keystore, identity={"regime": "baseline", "run_name": "head", "turns": FULL_TURNS})
    policy = StudyPolicy(regime["policy"], seed)
    for turn in range(1, turns + 1):
        run.step(policy.decide(TurnView.from_state(run.state, turn, FULL_TURNS)))
    run.close()


def all_hashes(path) -> list[bytes]:
    with Store(path) as store:
        return [bytes.fromhex(h) for _, h in store.rows(columns=("seq", "hash"))]


def genesis_of(path):
    with Store(path) as store:
        return store.genesis()


def delete_turns_after(path, turn: int) -> None:
    """Truncate the log behind the library's back: drop every event of the turns after ``turn``."""
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM events WHERE turn > ?", [turn])
    for derived in ("checkpoints", "account_turns", "turns"):  # what a rollback to that turn would hold
        conn.execute(f"DELETE FROM {derived} WHERE turn > ?", [turn])
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def five_turns(tmp_path_factory):
    """A log at turn 5 of 10 and its signed head."""
    folder = tmp_path_factory.mktemp("head")
    path = folder / "run.db"
    play(path, 5)
    head_file = folder / "run.head"
    head_file.write_text(export_head(path))
    return path, head_file


# --- the format ---------------------------------------------------------------------------


def test_checkpoint_is_a_c2sp_signed_note_byte_for_byte(five_turns):
    path, head_file = five_turns
    note = head_file.read_bytes().decode("utf-8")
    genesis = genesis_of(path)
    hashes = all_hashes(path)
    origin = f"simledger/{genesis.run_id}"
    with Store(path) as store:
        head_seq, head_hash, last_turn = store.head()
    body = (f"{origin}\n{len(hashes)}\n{base64.b64encode(merkle.merkle_root(hashes)).decode()}\n"
            f"head {head_hash.hex()}\nturn {last_turn}\n")
    assert note.startswith(body + "\n" + EM_DASH + " " + origin + " ")
    assert note.endswith("\n") and note.count("\n") == body.count("\n") + 2 and "\r" not in note
    assert len(hashes) == head_seq + 1 and last_turn == 5
    encoded = note[len(body) + 1:].removesuffix("\n").split(" ")
    assert encoded[:2] == [EM_DASH, origin] and len(encoded) == 3
    raw = base64.b64decode(encoded[2], validate=True)
    public = bytes.fromhex(genesis.engine_key)
    assert len(raw) == 4 + 64
    assert raw[:4] == hashlib.sha256(origin.encode() + b"\x0a" + b"\x01" + public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())  # raises if it does not verify
    assert public == bytes.fromhex(SeedKeys(SEED).private_key("engine").public_key().public_bytes_raw().hex())


def test_cli_head_prints_the_note_and_writes_it_with_out(five_turns, tmp_path):
    path, head_file = five_turns
    printed = invoke("head", path)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == head_file.read_text()  # Ed25519 is deterministic: the same log, the same note
    written = invoke("head", path, "--out", tmp_path / "h.note")
    assert written.exit_code == 0 and (tmp_path / "h.note").read_text() == head_file.read_text()


def test_streaming_root_and_proof_equal_the_reference_merkle_functions(five_turns):
    path, _ = five_turns
    hashes = all_hashes(path)
    for n in (0, 1, 2, 3, 7, 8, 9, 100, len(hashes)):
        assert compute_root(hashes[:n]) == (merkle.merkle_root(hashes[:n]), n)
    with Store(path) as store:
        assert list(iter_event_hashes(store, 3, 9)) == hashes[3:9]
        for old, new in ((1, 1), (1, 2), (3, 7), (4, 8), (5, 64), (63, 64), (100, len(hashes)),
                         (len(hashes) - 1, len(hashes))):
            proof = compute_consistency_proof(store, old, new)
            assert proof == merkle.consistency_proof(old, hashes[:new])
            assert merkle.verify_consistency(old, new, merkle.merkle_root(hashes[:old]),
                                             merkle.merkle_root(hashes[:new]), proof)


# --- what it proves -------------------------------------------------------------------------


def test_untouched_log_matches_its_head(five_turns):
    path, head_file = five_turns
    check = verify_head(path, head_file)
    assert check.ok and check.expected_size == check.current_size, check.message


def test_truncated_log_still_chain_verifies_but_fails_the_signed_head(five_turns, tmp_path):
    path, head_file = five_turns
    cut = tmp_path / "cut.db"
    shutil.copyfile(path, cut)
    delete_turns_after(cut, 3)
    assert verify_log(cut).ok  # every remaining link still checks: plain verify cannot see the cut
    check = verify_head(cut, head_file)
    size = len(all_hashes(cut))
    assert not check.ok
    assert "TRUNCATED" in check.message and f"has {size} events" in check.message
    assert check.current_size == size < check.expected_size
    plain = invoke("verify", cut)
    assert plain.exit_code == 0, plain.output
    expecting = invoke("verify", cut, "--expect-head", head_file)
    assert expecting.exit_code == 1, expecting.output
    assert "TRUNCATED" in expecting.output and "Traceback" not in expecting.output


def test_bare_head_hash_detects_truncation_too(five_turns, tmp_path):
    path, _ = five_turns
    with Store(path) as store:
        head_hex = store.head()[1].hex()
    assert verify_head(path, head_hex).ok
    cut = tmp_path / "cut.db"
    shutil.copyfile(path, cut)
    delete_turns_after(cut, 4)
    check = verify_head(cut, head_hex)
    assert not check.ok and "not in this log" in check.message
    result = invoke("verify", cut, "--expect-head", head_hex)
    assert result.exit_code == 1 and "not in this log" in result.output


def test_rolled_back_copy_fails_and_the_grown_log_passes_with_a_consistency_proof(tmp_path):
    path = tmp_path / "run.db"
    play(path, 4)
    backup = tmp_path / "backup.db"
    shutil.copyfile(path, backup)  # an old copy, as a rollback would restore
    resume_run(path, load_regimes()).close()
    head_file = tmp_path / "late.head"
    head_file.write_text(export_head(path))
    rolled_back = verify_head(backup, head_file)
    assert not rolled_back.ok and "ROLLED BACK" in rolled_back.message
    # A head taken early still holds for the finished log: it only grew.
    early = tmp_path / "early.head"
    early.write_text(export_head(backup))
    grown = verify_head(path, early)
    hashes = all_hashes(path)
    old = len(all_hashes(backup))
    assert grown.ok and "only grew" in grown.message, grown.message
    assert (grown.expected_size, grown.current_size) == (old, len(hashes))
    proof = [bytes.fromhex(p) for p in grown.consistency_proof]
    assert proof == merkle.consistency_proof(old, hashes)
    assert merkle.verify_consistency(old, len(hashes), merkle.merkle_root(hashes[:old]), merkle.merkle_root(hashes),
                                     proof)
    assert invoke("verify", path, "--expect-head", early).exit_code == 0


def test_rewritten_history_of_the_same_run_fails_at_the_checkpoint_size(tmp_path):
    original, rewritten = tmp_path / "a.db", tmp_path / "b.db"
    play(original, 3)
    head_file = tmp_path / "a.head"
    head_file.write_text(export_head(original))
    # The same run (same genesis, same keys), replayed with different inputs from turn 2 on.
    regime = load_regimes()["baseline"]
    run = Run.create(rewritten, agents=agent_ids(AGENTS), seed=SEED, config=engine_config(regime, AGENTS),
                     identity={"regime": "baseline", "run_name": "head", "turns": FULL_TURNS})
    policy = StudyPolicy(regime["policy"], SEED)
    run.step(policy.decide(TurnView.from_state(run.state, 1, FULL_TURNS)))
    for _ in range(6):
        run.step([{"agent_id": agent, "action": {"action": "mine"}} for agent in agent_ids(AGENTS)])
    run.close()
    assert genesis_of(rewritten).run_id == genesis_of(original).run_id
    assert len(all_hashes(rewritten)) > len(all_hashes(original))
    check = verify_head(rewritten, head_file)
    assert not check.ok and "REWRITTEN" in check.message, check.message


def test_checkpoint_of_another_run_is_refused(five_turns, tmp_path):
    path, _ = five_turns
    other = tmp_path / "other.db"
    play(other, 2, seed=SEED + 1)
    other_head = tmp_path / "other.head"
    other_head.write_text(export_head(other))
    check = verify_head(path, other_head)
    assert not check.ok and "is for" in check.message


# --- signatures -------------------------------------------------------------------------------


def test_flipped_signature_byte_fails(five_turns, tmp_path):
    path, head_file = five_turns
    note = head_file.read_text()
    body, signature_line = note.rsplit("\n\n", 1)
    prefix, encoded = signature_line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01  # one bit of the Ed25519 signature (after the 4-byte key id)
    bad = tmp_path / "bad.head"
    bad.write_text(f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n")
    check = verify_head(path, bad)
    assert not check.ok and "does not verify" in check.message
    result = invoke("verify", path, "--expect-head", bad)
    assert result.exit_code == 1 and "does not verify" in result.output


def test_edited_body_under_the_original_signature_fails(five_turns, tmp_path):
    path, head_file = five_turns
    note = head_file.read_text()
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) - 1)  # claim a shorter log, keep the old signature
    bad = tmp_path / "edited.head"
    bad.write_text("\n".join(lines))
    check = verify_head(path, bad)
    assert not check.ok and "does not verify" in check.message


def test_checkpoint_signed_by_another_key_is_not_trusted(five_turns, tmp_path):
    path, head_file = five_turns
    checkpoint = parse_checkpoint(head_file.read_text())
    forged = tmp_path / "forged.head"
    forged.write_text(sign_note(checkpoint.text, checkpoint.origin, SeedKeys(SEED + 99).private_key("engine")))
    check = verify_head(path, forged)
    assert not check.ok and "not signed by this run's engine key" in check.message


@pytest.mark.parametrize("content", [
    b"", b"\x00\x01binary", "not a checkpoint\n".encode(), "origin\n12\nnot base64!\n\n\u2014 k AAAA\n".encode(),
    "o\n1x\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 k AAAAAAAA\n".encode(), b"\xff\xfe\xfd",
])
def test_malformed_checkpoint_is_a_one_line_error(five_turns, tmp_path, content):
    path, _ = five_turns
    bad = tmp_path / "bad.head"
    bad.write_bytes(content)
    with pytest.raises(BadCheckpoint):
        verify_head(path, bad)
    result = invoke("verify", path, "--expect-head", bad)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_expect_head_that_is_neither_file_nor_hash_is_a_one_line_error(five_turns):
    path, _ = five_turns
    result = invoke("verify", path, "--expect-head", "no-such-file")
    assert result.exit_code == 2 and "neither a checkpoint file nor" in result.output


# --- keys -------------------------------------------------------------------------------------


def test_keystore_run_is_signed_with_the_keystore_engine_key(tmp_path):
    keystore = tmp_path / "keys"
    path = tmp_path / "k.db"
    play(path, 2, keystore=keystore)
    refused = invoke("head", path)  # the seed-derived key is not this log's engine key
    assert refused.exit_code == 2 and "--keystore" in refused.output
    result = invoke("head", path, "--keystore", keystore, "--out", tmp_path / "k.head")
    assert result.exit_code == 0, result.output
    assert verify_head(path, tmp_path / "k.head").ok


def test_head_of_a_log_that_does_not_verify_is_refused(five_turns, tmp_path):
    path, _ = five_turns
    broken = tmp_path / "broken.db"
    shutil.copyfile(path, broken)
    conn = sqlite3.connect(broken)
    conn.execute("UPDATE events SET hash = ? WHERE seq = 3", ["00" * 32])
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="does not verify"):
        export_head(broken)
    result = invoke("head", broken)
    assert result.exit_code == 2 and "refusing to sign" in result.output
