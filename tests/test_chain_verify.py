"""verify_log: an engine-written log verifies; every edit of a readable copy, malformed cell or
broken structural rule is reported as the first bad seq, never as an exception."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

import msgspec
import pytest

from simledger.events import merkle
from simledger.events import types as ev
from simledger.ledger import verify as verify_module
from simledger.ledger.errors import LedgerError, NoRunYet, NotALog, UnsupportedFormat
from simledger.ledger.store import Store
from simledger.ledger.proofs import check_inclusion, inclusion_proof_for
from simledger.ledger.verify import VerifyResult, verify_log, verify_state_digests


import logtools as lt


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return lt.LogCache(tmp_path_factory.mktemp("logs"))


@pytest.fixture
def log(cache, tmp_path) -> Path:
    """A private copy of a small engine log (4 agents, 3 turns)."""
    return cache.copy(tmp_path / "run.db")


def assert_fails_at(path: Path, seq: int, reason: str = "", *, workers: int = 1) -> VerifyResult:
    result = verify_log(path, workers=workers)
    assert not result.ok, result.message
    assert result.error.seq == seq, result.message
    assert reason.lower() in result.error.reason.lower(), result.message
    assert result.events == seq and result.head_seq == seq - 1
    return result


def middle_seq(path: Path, kind: str | None = None) -> int:
    """Return a seq in the middle of the log that is not a seal (of ``kind`` if given)."""
    rows = [r for r in lt.read_rows(path) if r["seq"] > 1 and r["kind"] != "turn_sealed"
            and (kind is None or r["kind"] == kind)]
    return rows[len(rows) // 2]["seq"]


# --- a good log ------------------------------------------------------------------------------


def test_engine_log_verifies(log):
    result = verify_log(log)
    with Store(log) as store:
        head_seq, head_hash, last_turn = store.head()
        events = store.count()
    assert result.ok and result.error is None
    assert (result.events, result.turns) == (events, last_turn)
    assert (result.head_seq, result.head_hash) == (head_seq, head_hash.hex())
    assert result.message.startswith("OK")


def test_parallel_verify_gives_the_same_result(log, monkeypatch):
    monkeypatch.setattr(verify_module, "CHUNK_EVENTS", 7)  # many chunks, several pending at once
    assert verify_log(log, workers=2) == verify_log(log, workers=1)


def test_result_serialises_for_json_callers(log):
    lt.set_cell(log, 3, "payload_json", "{}")
    doc = msgspec.to_builtins(verify_log(log))
    assert doc["ok"] is False and doc["error"]["seq"] == 3 and doc["error"]["reason"]
    assert verify_log(log).error["seq"] == 3


def test_fold_reproduces_every_seal_state_digest(log):
    assert verify_state_digests(log).ok


def test_forged_state_digest_is_caught_by_the_fold_check(log):
    # verify_log checks bytes, links, keys and Merkle roots; only the fold can check a seal's state digest.
    # The last seal is forged (re-hashed, re-signed with the seed key), so no later seal notices.
    seal_row = lt.read_row(log, lt.count(log) - 1)
    seal = lt.decoded(seal_row)
    lt.forge_event(log, seal_row["seq"], msgspec.structs.replace(seal, state_digest="00" * 32))
    assert verify_log(log).ok
    result = verify_state_digests(log)
    assert not result.ok and result.error.seq == seal_row["seq"] and "state_digest" in result.error.reason


def test_keystore_signed_log_verifies(tmp_path):
    from simledger.ledger.run import Run

    run = Run.create(tmp_path / "k.db", agents=["a", "b"], seed=3, keystore=tmp_path / "keys")
    run.step([{"agent_id": "a", "action": {"action": "mine"}}, {"agent_id": "b", "action": {"action": "job"}}])
    run.close()
    assert verify_log(tmp_path / "k.db").ok


# --- not a log ---------------------------------------------------------------------------------


def test_missing_file_is_not_a_log(tmp_path):
    with pytest.raises(NotALog):
        verify_log(tmp_path / "nothing.db")


def test_text_file_is_not_a_log(tmp_path):
    (tmp_path / "notes.db").write_text("hello, this is not sqlite\n" * 100)
    with pytest.raises(NotALog):
        verify_log(tmp_path / "notes.db")


def test_other_sqlite_database_is_not_a_log(tmp_path):
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(NotALog):
        verify_log(tmp_path / "other.db")


def test_newer_format_version_is_unsupported(log):
    with lt.connect(log) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(UnsupportedFormat):
        verify_log(log)


# --- readable copies edited with sqlite3 ------------------------------------------------------

COLUMN_EDITS = {
    "payload_json": lambda row: row["payload_json"][:-1] + ',"x":1}',
    "turn": lambda row: row["turn"] + 1,
    "kind": lambda row: "stake_locked" if row["kind"] != "stake_locked" else "mining_entered",
    "actor": lambda row: "agent_99",
    "contract_id": lambda row: "c-forged" if row["contract_id"] is None else None,
}


@pytest.mark.parametrize("column", sorted(COLUMN_EDITS))
def test_editing_a_readable_column_fails_at_that_seq(log, column):
    seq = middle_seq(log)
    lt.set_cell(log, seq, column, COLUMN_EDITS[column](lt.read_row(log, seq)))
    assert_fails_at(log, seq)


@pytest.mark.parametrize("column, reason", [("actor", "actor column"), ("contract_id", "contract_id column"),
                                            ("kind", "payload is a")])
def test_rehashed_column_edit_is_caught_by_the_copy_check(log, column, reason):
    # The attacker knows the seed: the edited row gets a correct hash and signature, the rest is re-chained.
    seq = middle_seq(log, "mining_entered")
    row = lt.read_row(log, seq)
    lt.forge(log, seq, **{column: COLUMN_EDITS[column](row)})
    assert_fails_at(log, seq, reason)


def test_edited_payload_json_is_named_in_the_reason(log):
    seq = middle_seq(log)
    lt.set_cell(log, seq, "payload_json", COLUMN_EDITS["payload_json"](lt.read_row(log, seq)))
    assert_fails_at(log, seq, "payload_json")


def test_edited_actor_column_hint_names_the_column(log):
    seq = middle_seq(log, "mining_entered")
    lt.set_cell(log, seq, "actor", "agent_99")
    result = assert_fails_at(log, seq, "hash does not match")
    assert "actor column" in result.error.reason


# --- malformed cells ----------------------------------------------------------------------------

MALFORMED = {
    "payload NULL": ("payload", "NULL"),
    "payload as text": ("payload", "'not a blob'"),
    "payload oversized": ("payload", "zeroblob(16 * 1024 * 1024 + 1)"),
    "payload not msgpack": ("payload", "x'c1c1c1'"),
    "hash NULL": ("hash", "NULL"),
    "hash not hex": ("hash", "'zz' || substr(hash, 3)"),
    "hash too short": ("hash", "substr(hash, 3)"),
    "prev_hash as integer": ("prev_hash", "42"),
    "signature NULL": ("signature", "NULL"),
    "signature not hex": ("signature", "'xyz'"),
    "signature too long": ("signature", "signature || '00'"),
    "turn as text": ("turn", "'three'"),
    "turn NULL": ("turn", "NULL"),
    "kind NULL": ("kind", "NULL"),
    "kind unknown": ("kind", "'mystery_kind'"),
    "kind not utf-8": ("kind", "CAST(x'ff41' AS TEXT)"),
    "actor as blob": ("actor", "x'00'"),
    "actor not utf-8": ("actor", "CAST(x'c3' AS TEXT)"),
    "contract_id as integer": ("contract_id", "7"),
    "payload_json NULL": ("payload_json", "NULL"),
    "payload_json not utf-8": ("payload_json", "CAST(x'ffff' AS TEXT)"),
    "payload_version as text": ("payload_version", "'one'"),
    "payload_version newer": ("payload_version", "2"),
    "signer NULL": ("signer", "NULL"),
    "hash in upper case": ("hash", "upper(hash)"),
    "prev_hash with a space": ("prev_hash", "substr(prev_hash, 1, 2) || ' ' || substr(prev_hash, 3)"),
    "signature in upper case": ("signature", "upper(signature)"),
    "format_version 2": ("format_version", "2"),
    "format_version NULL": ("format_version", "NULL"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("workers", [1, 2])
def test_malformed_cell_is_a_clean_failure_naming_its_seq(log, case, workers):
    column, expression = MALFORMED[case]
    seq = middle_seq(log)
    lt.set_cell_sql(log, seq, column, expression)
    assert_fails_at(log, seq, workers=workers)


def test_malformed_genesis_cell_fails_at_seq_0(log):
    lt.set_cell_sql(log, 0, "payload", "x'00'")
    assert_fails_at(log, 0)


# --- structure --------------------------------------------------------------------------------------


def test_a_log_without_events_is_no_run_yet(tmp_path):
    with Store(tmp_path / "empty.db", create=True) as store:
        with store.transaction():  # the schema alone, as a creation killed before its genesis once left it
            pass
    with pytest.raises(NoRunYet, match="no run yet"):
        verify_log(tmp_path / "empty.db")


def rebuild_without_primary_key(path: Path) -> None:
    """Recreate the events table with seq as a plain column (what a forger must do to hide a row)."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE loose AS SELECT * FROM events ORDER BY seq;
        DROP TABLE events;
        ALTER TABLE loose RENAME TO events;
    """)
    conn.close()


@pytest.mark.parametrize("stray_seq, fails_at", [(None, None), (2.5, None), ("dup", "dup")])
def test_a_row_hidden_from_the_walk_in_seq_order_fails(log, monkeypatch, stray_seq, fails_at):
    rebuild_without_primary_key(log)
    monkeypatch.setattr(verify_module, "BATCH_ROWS", 3)  # seq 2 ends the first batch: the walk resumes at 3
    row = lt.read_row(log, 2)
    row["seq"] = 2 if stray_seq == "dup" else stray_seq
    with lt.connect(log) as conn:  # a copy of seq 2's row, added beside the chain
        conn.execute(f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    result = verify_log(log)
    assert not result.ok
    if fails_at == "dup":
        assert result.error.seq == 2 and "2 rows claim this seq" in result.error.reason, result.message
    else:
        assert result.error.seq is None and "not part of the chain" in result.error.reason, result.message
        assert result.error.kind == row["kind"]


def test_a_damaged_file_is_a_failure_naming_where_reading_stopped_never_an_exception(cache, tmp_path):
    """Garbage over one database page: verify reports how far the chain could be read."""
    source = cache.copy(tmp_path / "source.db", agents=8, turns=12)
    page = sqlite3.connect(source).execute("PRAGMA page_size").fetchone()[0]
    pages = source.stat().st_size // page
    results = []
    for number in range(2, pages):  # every page but the header page (that one makes it "not a log")
        damaged = tmp_path / f"damaged_{number}.db"
        data = bytearray(source.read_bytes())
        data[number * page:(number + 1) * page] = bytes(range(256)) * (page // 256)
        damaged.write_bytes(bytes(data))
        try:
            result = verify_log(damaged)  # a failure result, never a sqlite3 exception
        except NotALog:
            continue  # the page held the meta table: refused at open, in one line, which is clean too
        results.append(result)
        if not result.ok:
            assert result.error.reason and (result.error.seq is None or result.error.seq >= 0), result.message
    assert sum(not r.ok for r in results) >= len(results) // 2, "most pages of a small log hold events or indexes"
    assert any("cannot be read" in r.message or "unreadable" in r.message for r in results)


def test_last_turn_without_seal_is_incomplete(log):
    last = lt.count(log) - 1
    assert lt.read_row(log, last)["kind"] == "turn_sealed"
    lt.delete_event(log, last)
    result = assert_fails_at(log, last, "incomplete")
    assert result.error.turn == lt.read_row(log, last - 1)["turn"]


def test_first_event_must_be_a_genesis(log):
    lt.forge_event(log, 0, ev.FeesRetained(amount=1))
    assert_fails_at(log, 0, "not a run_genesis")


def test_genesis_prev_hash_must_be_zero(log):
    lt.set_cell(log, 0, "prev_hash", "11" * 32)
    assert_fails_at(log, 0, "zero")


@pytest.mark.parametrize("change, reason", [
    ({"agent_keys": {}}, "no agent keys"),
    ({"engine_key": ""}, "no engine key"),
    ({"engine_key": "zz" * 32}, "not hex"),
    ({"engine_key": "ab" * 16}, "not 64 hex"),
    ({"agent_keys": {"agent_0": "12" * 32}}, "no key for agent"),
])
def test_genesis_without_usable_keys_fails(log, change, reason):
    genesis = lt.genesis(log)
    lt.forge_event(log, 0, msgspec.structs.replace(genesis, **change))
    assert_fails_at(log, 0, reason)


def test_second_genesis_fails(log):
    seq = middle_seq(log)
    lt.forge_event(log, seq, lt.genesis(log))
    assert_fails_at(log, seq, "second run_genesis")


@pytest.mark.parametrize("field, value, reason", [
    ("event_count", lambda s: s.event_count + 1, "events"),
    ("first_seq", lambda s: s.first_seq + 1, "first_seq"),
    ("merkle_root", lambda s: "00" * 32, "merkle_root"),
    ("turn", lambda s: s.turn + 1, "seal says turn"),
])
def test_forged_seal_that_misstates_its_turn_fails(log, field, value, reason):
    seal_row = lt.first_of_kind(log, "turn_sealed", after=2)
    seal = lt.decoded(seal_row)
    lt.forge_event(log, seal_row["seq"], msgspec.structs.replace(seal, **{field: value(seal)}))
    assert_fails_at(log, seal_row["seq"], reason)


def test_event_after_a_seal_in_the_same_turn_fails(log):
    seal_row = lt.first_of_kind(log, "turn_sealed", after=2)
    nxt = seal_row["seq"] + 1
    lt.forge(log, nxt, turn=seal_row["turn"])
    assert_fails_at(log, nxt, "after the seal")


def test_turn_going_backwards_fails(log):
    seal_row = lt.first_of_kind(log, "turn_sealed", after=2)
    nxt = seal_row["seq"] + 1
    lt.forge(log, nxt, turn=seal_row["turn"] - 1)
    assert_fails_at(log, nxt, "decreases")


def test_turn_skipping_ahead_fails(log):
    seal_row = lt.first_of_kind(log, "turn_sealed", after=2)
    nxt = seal_row["seq"] + 1
    lt.forge(log, nxt, turn=seal_row["turn"] + 2)
    assert_fails_at(log, nxt, "jumps")


def test_unknown_kind_with_a_correct_hash_fails(log):
    seq = middle_seq(log)
    lt.forge(log, seq, kind="mystery_kind")
    assert_fails_at(log, seq, "unknown event kind")


def test_bad_msgpack_with_a_correct_hash_fails(log):
    seq = middle_seq(log)
    lt.forge(log, seq, payload=b"\xc1\x00")
    assert_fails_at(log, seq, "does not decode")


def test_input_from_an_agent_unknown_to_the_genesis_fails(log):
    seq = middle_seq(log, "action_submitted")
    stranger = lt.SeedKeys(12345).private_key("stranger")
    event = ev.ActionSubmitted(agent="stranger", action={"action": "mine"})
    lt.forge_event(log, seq, event, signer_key=stranger)
    assert_fails_at(log, seq, "no key in the genesis")


# --- parallel: the lowest bad seq wins ---------------------------------------------------------------


@pytest.fixture
def long_log(cache, tmp_path) -> Path:
    return cache.copy(tmp_path / "long.db", seed=5, agents=6, turns=6)


def test_parallel_reports_lowest_bad_signature_before_later_chain_error(long_log, monkeypatch):
    monkeypatch.setattr(verify_module, "CHUNK_EVENTS", 5)
    rows = lt.read_rows(long_log)
    early, late = rows[len(rows) // 4]["seq"], rows[3 * len(rows) // 4]["seq"]
    lt.set_cell(long_log, early, "signature", lt.flip_hex(rows[early]["signature"], 10))
    lt.set_cell(long_log, late, "prev_hash", lt.flip_hex(rows[late]["prev_hash"], 3))
    for workers in (1, 2, 3):
        assert_fails_at(long_log, early, "signature", workers=workers)


def test_parallel_reports_chain_error_before_later_bad_signatures(long_log, monkeypatch):
    monkeypatch.setattr(verify_module, "CHUNK_EVENTS", 5)
    rows = lt.read_rows(long_log)
    early = rows[len(rows) // 3]["seq"]
    lt.set_cell(long_log, early, "prev_hash", lt.flip_hex(rows[early]["prev_hash"], 3))
    for seq in range(early + 1, len(rows)):
        lt.set_cell(long_log, seq, "signature", lt.flip_hex(rows[seq]["signature"], 0))
    for workers in (1, 2):
        assert_fails_at(long_log, early, "prev_hash", workers=workers)


def test_parallel_reports_the_first_of_many_bad_signatures(long_log, monkeypatch):
    monkeypatch.setattr(verify_module, "CHUNK_EVENTS", 4)
    rows = lt.read_rows(long_log)
    bad = [rows[i]["seq"] for i in range(len(rows) // 2, len(rows), 3)]
    for seq in bad:
        lt.set_cell(long_log, seq, "signature", lt.flip_hex(rows[seq]["signature"], 7))
    assert_fails_at(long_log, bad[0], "signature", workers=2)


def test_parallel_checks_queued_signatures_before_reporting_an_unreadable_row(long_log, monkeypatch):
    monkeypatch.setattr(verify_module, "CHUNK_EVENTS", 50)
    rows = lt.read_rows(long_log)
    early, late = rows[len(rows) // 3]["seq"], rows[len(rows) // 3 + 20]["seq"]
    lt.set_cell(long_log, early, "signature", lt.flip_hex(rows[early]["signature"], 1))
    lt.set_cell_sql(long_log, late, "actor", "CAST(x'ff' AS TEXT)")
    assert_fails_at(long_log, early, "signature", workers=2)
    lt.set_cell(long_log, early, "signature", rows[early]["signature"])
    assert_fails_at(long_log, late, "unreadable", workers=2)


# --- inclusion proofs --------------------------------------------------------------------------------


def test_every_event_is_included_in_its_turn_seal(log):
    with Store(log) as store:
        for row in lt.read_rows(log):
            if row["kind"] == "turn_sealed":
                with pytest.raises(LedgerError, match="seal"):
                    inclusion_proof_for(store, row["seq"])
                continue
            proof, index, size, root = inclusion_proof_for(store, row["seq"])
            assert merkle.verify_inclusion(bytes.fromhex(row["hash"]), index, size, proof, root)
            assert check_inclusion(store, row["seq"])


def test_tampered_event_fails_its_inclusion_check(log):
    seq = middle_seq(log)
    lt.set_cell(log, seq, "payload", lt.flip_blob(lt.read_row(log, seq)["payload"], 5))
    with Store(log) as store:
        assert not check_inclusion(store, seq)
        assert check_inclusion(store, seq - 1)


def test_inclusion_proof_of_a_missing_seq_raises(log):
    with Store(log) as store, pytest.raises(LedgerError, match="no event"):
        inclusion_proof_for(store, 10_000)


# --- bounded memory -------------------------------------------------------------------------------------


def peak_bytes_verifying(path: Path) -> int:
    tracemalloc.start()
    try:
        assert verify_log(path).ok
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_verify_memory_does_not_grow_with_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(verify_module, "BATCH_ROWS", 50)
    small = lt.make_synthetic_log(tmp_path / "small.db", turns=10)
    large = lt.make_synthetic_log(tmp_path / "large.db", turns=60)
    peak_small, peak_large = peak_bytes_verifying(small), peak_bytes_verifying(large)
    # Six times the events; a verifier holding the log would need about six times the memory.
    assert peak_large < 1.5 * peak_small + 200_000, (peak_small, peak_large)
