"""Hostile files: every reader command fails cleanly, in one line, and writes nothing.

`verify`, `replay`, `audit`, `diff` and `log` are run on files that are not
logs, and on logs damaged in every way a cell can be (missing tables, NULL or
oversized cells, undecodable payloads, unknown kinds, a genesis without keys).
None may print a traceback or touch the file. A property test then puts a
random value of a random type into a random cell of a valid log: verification
must fail cleanly, naming a seq, and never raise.
"""

from __future__ import annotations

import itertools
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.errors import LedgerError
from simledger.ledger.store import EVENT_COLUMNS
from simledger.ledger.verify import verify_log


import logtools as lt
TARGET_SEQ = 5
EXAMPLES = itertools.count()  # a fresh file name per hypothesis example
OVERSIZED = 17 * 1024 * 1024  # beyond the store's 16 MiB cell limit


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return lt.LogCache(tmp_path_factory.mktemp("logs"))


def good_log(cache, path: Path) -> Path:
    return cache.copy(path, seed=101, agents=8, turns=4)


def execute(conn_path: Path, *statements: str, args: tuple = ()) -> None:
    conn = sqlite3.connect(conn_path)
    for statement in statements:
        conn.execute(statement, args) if args else conn.execute(statement)
    conn.commit()
    conn.close()


# --- the hostile files: each builder writes one at ``path`` -----------------------------------


def not_sqlite(cache, path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(8192))


def empty_file(cache, path: Path) -> None:
    path.write_bytes(b"")


def other_app(cache, path: Path) -> None:
    execute(path, "CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)", "CREATE TABLE meta (k TEXT, v TEXT)",
            "INSERT INTO events (what) VALUES ('a birthday')")


def text_file(cache, path: Path) -> None:
    path.write_text("seq,turn,kind\n0,0,run_genesis\n")


def missing_events_table(cache, path: Path) -> None:
    good_log(cache, path)
    execute(path, "DROP TABLE events")


def missing_meta_table(cache, path: Path) -> None:
    good_log(cache, path)
    execute(path, "DROP TABLE meta")


def missing_column(cache, path: Path) -> None:
    good_log(cache, path)
    execute(path, "ALTER TABLE events DROP COLUMN signature")


def null_payload(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "payload", None)


def null_turn(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "turn", None)


def null_hash(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "hash", None)


def text_in_payload(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "payload", "I am text, not bytes")


def oversized_payload(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "payload", b"\x00" * OVERSIZED)


def oversized_kind(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "kind", "k" * OVERSIZED)


def payload_not_msgpack(cache, path: Path) -> None:
    good_log(cache, path)
    lt.forge(path, TARGET_SEQ, payload=b"\xc1\xc1\xc1")  # 0xc1 is never valid msgpack; hash and chain re-done


def payload_json_not_json(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell(path, TARGET_SEQ, "payload_json", "{this is not json")


def unknown_kind(cache, path: Path) -> None:
    good_log(cache, path)
    lt.forge(path, TARGET_SEQ, kind="no_such_kind")


def genesis_without_keys(cache, path: Path) -> None:
    good_log(cache, path)
    genesis = lt.genesis(path)
    import msgspec

    lt.forge_event(path, 0, msgspec.structs.replace(genesis, engine_key="", agent_keys={}))


def invalid_utf8_text(cache, path: Path) -> None:
    good_log(cache, path)
    lt.set_cell_sql(path, TARGET_SEQ, "actor", "CAST(X'FFFE41' AS TEXT)")


NOT_A_LOG = [not_sqlite, empty_file, other_app, text_file, missing_events_table, missing_meta_table, missing_column]
BAD_EVENT = [null_payload, null_turn, null_hash, text_in_payload, oversized_payload, oversized_kind,
             payload_not_msgpack, payload_json_not_json, unknown_kind, genesis_without_keys, invalid_utf8_text]
UNFOLDABLE = {null_payload, text_in_payload, oversized_payload, payload_not_msgpack, unknown_kind, null_turn,
              oversized_kind}
COMMANDS = {
    "verify": lambda p: ["verify", p],
    "verify-json": lambda p: ["verify", p, "--json"],
    "replay": lambda p: ["replay", p, "--until", "turn", "2"],
    "audit": lambda p: ["audit", p, "--agent", "agent_0"],
    "audit-contract": lambda p: ["audit", p, "contract_1"],
    "diff": lambda p: ["diff", p, p],
    "log": lambda p: ["log", p, "--limit", "20"],
}


def fingerprint(path: Path) -> tuple:
    """Return what must not change: the file's bytes and mtime, and the bytes of any -wal or -journal.

    A read-only SQLite connection to a WAL-mode file may create an empty -wal and
    the -shm index beside it (SQLite needs them to read safely while a writer may
    append); neither holds log content, and the db file itself is never touched.
    """
    side = []
    for suffix in ("-wal", "-journal"):
        side_path = path.parent / (path.name + suffix)
        side.append(side_path.read_bytes() if side_path.exists() else b"")
    return path.read_bytes(), path.stat().st_mtime_ns, tuple(side)


def run_cli(args: list) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def assert_clean(code: int, output: str) -> None:
    assert "Traceback" not in output and code in (0, 1, 2), output
    if code == 2:
        lines = output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), output


@pytest.mark.parametrize("build", NOT_A_LOG, ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_reader_refuses_a_file_that_is_not_a_log_in_one_line(cache, tmp_path, build, command):
    path = tmp_path / "hostile.db"
    build(cache, path)
    before = fingerprint(path)
    code, output = run_cli(COMMANDS[command](path))
    assert code == 2, output
    assert_clean(code, output)
    assert fingerprint(path) == before


@pytest.mark.parametrize("build", BAD_EVENT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_reader_survives_a_damaged_event_and_writes_nothing(cache, tmp_path, build, command):
    path = tmp_path / "hostile.db"
    build(cache, path)
    before = fingerprint(path)
    code, output = run_cli(COMMANDS[command](path))
    assert_clean(code, output)
    assert fingerprint(path) == before
    if command.startswith("verify"):
        assert code == 1 and ("seq" in output), output  # the verdict names where the log breaks
    if build in UNFOLDABLE and command in ("replay", "diff", "audit"):
        assert code == 2 and "seq" in output, output


@pytest.mark.parametrize("build", BAD_EVENT, ids=lambda f: f.__name__)
def test_verify_names_the_damaged_seq(cache, tmp_path, build):
    path = tmp_path / "hostile.db"
    build(cache, path)
    result = verify_log(path)
    assert not result.ok
    expected = 0 if build is genesis_without_keys else TARGET_SEQ
    # A damaged hash breaks the next link too; the first bad seq is the damaged one.
    assert result.error.seq == expected, result.message


def test_log_without_its_checkpoints_table_still_replays_exactly(cache, tmp_path):
    path = good_log(cache, tmp_path / "run.db")
    good = run_cli(["replay", path, "--json"])
    execute(path, "DROP TABLE checkpoints")
    before = fingerprint(path)
    assert run_cli(["replay", path, "--json"]) == good  # checkpoints are derived data: the fold needs none
    assert fingerprint(path) == before


# --- random cells ---------------------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.text(alphabet="0123456789abcdef", min_size=128, max_size=128),
    st.sampled_from(["run_genesis", "turn_sealed", "action_submitted", "engine", "agent_0", "", "contract_1"]),
)


@pytest.fixture(scope="module")
def mutable_source(cache, tmp_path_factory):
    path = tmp_path_factory.mktemp("source") / "run.db"
    cache.copy(path, seed=101, agents=4, turns=3)
    return path, lt.count(path)


def remove_log(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()


def read_cell(path: Path, seq: int, column: str):
    conn = sqlite3.connect(path)
    conn.text_factory = bytes  # read text as stored, even when it is not UTF-8
    try:
        row = conn.execute(f"SELECT {column}, typeof({column}) FROM events WHERE seq = ?", [seq]).fetchone()
    finally:
        conn.close()
    return row


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_cell_set_to_any_value_fails_verification_cleanly_naming_a_seq(mutable_source, tmp_path, data):
    source, events = mutable_source
    path = tmp_path / f"mutated_{next(EXAMPLES)}.db"
    shutil.copyfile(source, path)
    seq = data.draw(st.integers(min_value=0, max_value=events - 1), label="seq")
    column = data.draw(st.sampled_from(EVENT_COLUMNS), label="column")
    value = data.draw(VALUES, label="value")
    before = read_cell(path, seq, column)
    try:
        lt.set_cell(path, seq, column, value)
    except sqlite3.IntegrityError:
        assume(False)  # another row already has that seq
    after_cell = read_cell(path, seq, column)
    assume(after_cell != before)  # SQLite's column affinity gave back the same value: nothing changed
    try:
        result = verify_log(path)
    except LedgerError as err:  # a clean, one-line refusal (e.g. the file no longer reads as a log)
        assert "\n" not in str(err)
        return
    finally:
        remove_log(path)
    assert not result.ok, f"seq {seq} {column} = {value!r} still verifies"
    assert isinstance(result.error.seq, int) and 0 <= result.error.seq <= max(seq, 0) + 1, result.message
    assert result.message.startswith("FAILED at seq")


META_VALUES = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=40), st.sampled_from(["simledger", "1", "2", "0"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["application", "format_version", "library_version", "run_id"]), value=META_VALUES)
def test_meta_cells_either_refuse_the_file_clearly_or_do_not_matter(mutable_source, tmp_path, key, value):
    source, _ = mutable_source
    path = tmp_path / f"meta_{next(EXAMPLES)}.db"
    shutil.copyfile(source, path)
    execute(path, "UPDATE meta SET value = ? WHERE key = ?", args=(value, key))
    try:
        result = verify_log(path)
    except LedgerError as err:
        # Only the two cells that say what the file is may refuse it, and they say why in one line.
        assert key in ("application", "format_version") and "\n" not in str(err), str(err)
        return
    finally:
        remove_log(path)
    # The meta table is not trusted: the log's own events decide, so it still verifies.
    assert result.ok and (key not in ("application", "format_version") or str(value) in ("simledger", "1"))


def markup_kind(cache, path: Path) -> None:
    good_log(cache, path)
    lt.forge(path, TARGET_SEQ, kind="[/][bold]kind\nTraceback (most recent call last):")


@pytest.mark.parametrize("command", ["replay", "diff", "audit"])
def test_error_quoting_hostile_text_prints_it_literally_on_one_line(cache, tmp_path, command):
    path = tmp_path / "hostile.db"
    markup_kind(cache, path)
    code, output = run_cli(COMMANDS[command](path))
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "[/][bold]kind" in lines[0], output


def test_unknown_agent_named_with_markup_is_a_literal_one_line_error(cache, tmp_path):
    path = good_log(cache, tmp_path / "run.db")
    code, output = run_cli(["audit", path, "--agent", "[/]\n[red]x"])
    assert code == 2 and output.count("\n") == 1 and "[/]" in output, output
