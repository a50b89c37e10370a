"""A closed log is one file: the writer leaves nothing beside it, readers create nothing, read-only folders serve it.

While a writer has a log open it is in WAL mode (readers work beside it); on
close the writer folds the WAL back and switches the file to a rollback
journal. A reader of such a file opens it read-only and needs no -wal or -shm,
so a valid log in a read-only folder (or on a read-only mount) verifies,
replays and summarizes; `summarize runs/*` skips the sidecars, locks and
signed heads it meets.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log

sys.path.insert(0, str(Path(__file__).parent))  # tests/_unprivileged.py (importlib mode adds nothing to sys.path)
import _unprivileged as unprivileged  # noqa: E402

TURNS = "4"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def closed_log(tmp_path) -> Path:
    path = tmp_path / "run.db"
    result = invoke("run", path, "--turns", TURNS)
    assert result.exit_code == 0, result.output
    return path


def test_a_closed_log_is_one_file_in_rollback_journal_mode(closed_log):
    assert sorted(p.name for p in closed_log.parent.iterdir()) == ["run.db", "run.head"]  # the log, its signed head
    with sqlite3.connect(f"{closed_log.as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    # Reopened for writing (WAL with -wal and -shm while open), then closed: one file again.
    run = Run.open(closed_log)
    assert {p.name for p in closed_log.parent.iterdir()} == {"run.db", "run.head", "run.db-wal", "run.db-shm"}
    run.close()
    assert sorted(p.name for p in closed_log.parent.iterdir()) == ["run.db", "run.head"]


@pytest.mark.parametrize("command", [
    ("verify",), ("verify", "--reexecute"), ("replay",), ("log", "--limit", "3"), ("audit", "--agent", "agent_0"),
])
def test_readers_of_a_closed_log_create_no_file_and_change_no_byte(closed_log, command):
    before = listing(closed_log.parent)
    result = invoke(command[0], closed_log, *command[1:])
    assert result.exit_code == 0, result.output
    assert listing(closed_log.parent) == before


def test_summarize_of_a_closed_log_creates_nothing_beside_it(closed_log, tmp_path):
    before = listing(closed_log.parent)
    result = invoke("summarize", closed_log, "--out", tmp_path / "out", "--no-report", "--workers", 1)
    assert result.exit_code == 0, result.output
    assert listing(closed_log.parent) == before


def test_a_server_that_never_got_init_leaves_nothing(tmp_path):
    from simledger.api.service import LedgerService

    service = LedgerService(tmp_path / "served.db")
    assert (tmp_path / "served.db").exists()  # the empty file the writer lock is held on
    service.close()
    assert list(tmp_path.iterdir()) == []


def make_read_only(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


@pytest.fixture
def shared():
    folder = unprivileged.shared_folder()
    yield folder
    unprivileged.remove_folder(folder)


def copy_closed_log(source: Path, folder: Path) -> Path:
    (folder / "logs").mkdir()
    target = folder / "logs" / source.name
    target.write_bytes(source.read_bytes())
    return target


def test_a_closed_log_in_a_read_only_folder_verifies_replays_and_summarizes(closed_log, shared):
    log = copy_closed_log(closed_log, shared)
    out = shared / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    make_read_only(log.parent)
    before = listing(log.parent)
    for args in (("verify",), ("replay", "--json"), ("summarize", "--no-report", "--workers", 1, "--out")):
        # As ourselves, where it is writable: this loads what the command imports lazily.
        warm_up = invoke(args[0], closed_log, *args[1:], *([closed_log.parent / "out"] if args[0] == "summarize" else []))
        assert warm_up.exit_code == 0, warm_up.output
        result = unprivileged.run_cli(args[0], log, *args[1:], *([out] if args[0] == "summarize" else []))
        assert result.returncode == 0, f"{args[0]} in a read-only folder: {result.stderr}"
        assert "Traceback" not in result.stderr
    assert (out / "run_summaries.csv").exists()
    assert listing(log.parent) == before


def test_a_wal_mode_log_without_its_wal_is_read_in_a_read_only_folder(closed_log, shared):
    # What a kill during the writer's close can leave: the WAL folded back, the file still marked WAL.
    log = copy_closed_log(closed_log, shared)
    with sqlite3.connect(log) as conn:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    assert [p.name for p in log.parent.iterdir()] == ["run.db"]
    make_read_only(log.parent)
    assert invoke("verify", closed_log).exit_code == 0  # loads what verify imports lazily
    result = unprivileged.run_cli("verify", log)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    assert [p.name for p in log.parent.iterdir()] == ["run.db"]


def test_a_hot_journal_in_a_read_only_folder_is_named_in_one_line(closed_log, shared):
    from test_crash_resume import interrupt_a_rollback_journal_write

    log = copy_closed_log(closed_log, shared)
    interrupt_a_rollback_journal_write(log, create_table=False)
    make_read_only(log.parent)
    assert invoke("verify", closed_log).exit_code == 0  # loads what verify imports lazily
    result = unprivileged.run_cli("verify", log)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "run.db-journal" in result.stderr and "interrupted write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    # Where it can be written, the first reader rolls the journal back and the log verifies.
    log.parent.chmod(0o755)
    log.chmod(0o644)
    assert verify_log(log).ok


def test_summarize_skips_sidecars_locks_and_signed_heads(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed in ("101", "102"):
        assert invoke("run", runs / f"baseline_{seed}.db", "--seed", seed, "--turns", TURNS).exit_code == 0
    held = Run.open(runs / "baseline_102.db")  # open for writing: its -wal and -shm are there
    try:
        for name in ("baseline_101.db.head", "baseline_101.head", "ghost.db-journal", "old.db.writer-lock", "x.lock"):
            (runs / name).write_text("not a log\n")
        assert {"baseline_102.db-wal", "baseline_102.db-shm"} <= {p.name for p in runs.iterdir()}
        everything = sorted(runs.iterdir())
        result = invoke("summarize", *everything, "--out", tmp_path / "out", "--no-report", "--workers", 1)
        assert result.exit_code == 0, result.output
    finally:
        held.close()
    assert (tmp_path / "out" / "run_summaries.csv").read_text().count("\n") == 3  # header + two runs
    only_sidecars = invoke("summarize", runs / "ghost.db-journal", "--out", tmp_path / "out2")
    assert only_sidecars.exit_code == 2 and "none of the given files is a log" in only_sidecars.output
