"""The writer lock belongs to the file: a second writer is refused whatever path names the log.

The lock is an flock on the database file itself, so a symlink, a hard link or
another relative path to a log already open for writing reaches the same lock;
`run --resume` and `serve` on such a path fail at once with one line, and no
lock file is ever left beside the log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.api.service import LedgerService
from simledger.cli.main import app
from simledger.ledger.errors import WriterBusy
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run


@pytest.fixture
def log(tmp_path) -> Path:
    path = tmp_path / "logs" / "run.db"
    path.parent.mkdir()
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=101, agents=4, turns=3).close()
    return path


def other_names(path: Path, tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Return other paths to the same file: a symlink, a hard link, a relative path from elsewhere."""
    (tmp_path / "elsewhere").mkdir()
    symlink = tmp_path / "elsewhere" / "link.db"
    symlink.symlink_to(path)
    hard_link = tmp_path / "elsewhere" / "hard.db"
    os.link(path, hard_link)
    monkeypatch.chdir(tmp_path / "elsewhere")
    return {"symlink": symlink, "hard link": hard_link, "relative path": Path("..") / "logs" / "run.db"}


def test_a_second_writer_through_another_path_is_refused(log, tmp_path, monkeypatch):
    names = other_names(log, tmp_path, monkeypatch)
    with Run.open(log):
        for how, path in names.items():
            with pytest.raises(WriterBusy, match="already open for writing"):
                Run.open(path)
            result = CliRunner().invoke(app, ["run", str(path), "--resume"])
            assert result.exit_code == 2 and result.output.count("\n") == 1, f"{how}: {result.output}"
            assert "already open for writing" in result.output, how
    assert verify_log(log).ok
    for path in names.values():  # once the first writer closed, any name may write
        Run.open(path).close()
    assert sorted(p.name for p in log.parent.iterdir()) == ["run.db", "run.head"]  # no lock file, no sidecar


def test_serve_on_a_symlink_to_a_log_being_written_fails_at_start_in_one_line(log, tmp_path):
    link = tmp_path / "link.db"
    link.symlink_to(log)
    with Run.open(log):
        with pytest.raises(WriterBusy):
            LedgerService(link)
        # The real command, in its own process: it must refuse before it listens.
        served = subprocess.run([sys.executable, "-m", "simledger.cli.main", "serve", "--db", str(link), "--port", "0"],
                                capture_output=True, text=True, timeout=120)
    assert served.returncode == 2, served.stdout + served.stderr
    assert "already open for writing" in served.stderr and len(served.stderr.strip().splitlines()) == 1
    assert "Traceback" not in served.stderr


def test_a_server_waiting_for_init_holds_the_file_against_other_paths(tmp_path):
    path = tmp_path / "new.db"
    service = LedgerService(path)
    link = tmp_path / "link.db"
    link.symlink_to(path)
    try:
        with pytest.raises(WriterBusy):
            LedgerService(link)
        with pytest.raises(WriterBusy):
            Run.create(link, agents=["a", "b", "c"], seed=1)
        service.init(agent_ids=["a", "b", "c"], config=None, seed=1, identity=None, rules=None)
        with pytest.raises(WriterBusy):  # the lock passed to the run with no gap
            Run.open(link)
    finally:
        service.close()
    assert verify_log(link).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.db", "new.db"]


LEAVE_WAL = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0)
print(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0])
"""


def test_closing_the_writer_keeps_the_sqlite_locks_of_readers_in_its_process(log):
    # POSIX drops every record lock a process holds on a file when it closes any descriptor of it:
    # the writer lock's descriptor must wait for this process's last connection to the file.
    writer = Run.open(log)
    reader = Store(log)  # the log is in WAL mode now: the reader holds SQLite's shared lock on the file
    head = reader.head()
    writer.close()  # it cannot leave WAL while the reader is there
    other = subprocess.run([sys.executable, "-c", LEAVE_WAL, str(log)], capture_output=True, text=True, timeout=120)
    assert other.returncode != 0 and "locked" in other.stderr, "another process could take the file from our reader"
    assert reader.head() == head
    reader.close()
    Run.open(log).close()  # no reader left: this close leaves one file
    assert sorted(p.name for p in log.parent.iterdir()) == ["run.db", "run.head"]
    assert verify_log(log).ok
