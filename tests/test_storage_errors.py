"""A full disk or a permission problem ends a command in one line, never a traceback, and the log stays valid.

The full disk is made deterministic: each writer connection gets SQLite's
``max_page_count`` (the same SQLITE_FULL a full disk gives), or a file the
command writes is ``/dev/full`` (ENOSPC from the OS). Permission problems are
real: the command runs as a user the folder's bits bind (see _unprivileged).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log

sys.path.insert(0, str(Path(__file__).parent))  # tests/_unprivileged.py (importlib mode adds nothing to sys.path)
import _unprivileged as unprivileged  # noqa: E402

TURNS = "12"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(output: str) -> str:
    """Return the error of ``output``: one line, the last (a progress bar may have been drawn before it)."""
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in output and len(errors) == 1 and output.endswith(errors[0] + "\n"), output
    return errors[0]


def limit_writer_pages(monkeypatch, pages: int) -> None:
    """Give every read-write SQLite connection a size limit of ``pages`` pages: past it, "disk is full"."""
    connect = sqlite3.connect

    def limited(database, *args, **kwargs):
        conn = connect(database, *args, **kwargs)
        if "mode=rw" in str(database):
            conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(sqlite3, "connect", limited)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[str, int]:
    """Return (head hash, pages) of the uninterrupted run."""
    path = tmp_path_factory.mktemp("reference") / "reference.db"
    assert invoke("run", path, "--turns", TURNS).exit_code == 0
    with Store(path) as store:
        return store.head()[1].hex(), store.conn.execute("PRAGMA page_count").fetchone()[0]


def test_disk_full_during_run_is_one_line_the_log_verifies_and_resume_finishes_it(tmp_path, monkeypatch, reference):
    head, pages = reference
    path = tmp_path / "full.db"
    limit_writer_pages(monkeypatch, pages * 2 // 3)
    result = invoke("run", path, "--turns", TURNS)
    assert result.exit_code == 2 and "disk is full" in one_line(result.output)
    verified = verify_log(path)
    assert verified.ok and 0 < verified.turns < int(TURNS), verified.message
    monkeypatch.undo()
    resumed = invoke("run", path, "--resume")
    assert resumed.exit_code == 0 and head in resumed.output.replace("\n", ""), resumed.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.db", "full.head"]  # the log and its signed head


def test_disk_full_while_creating_leaves_no_file(tmp_path, monkeypatch):
    limit_writer_pages(monkeypatch, 3)
    result = invoke("run", tmp_path / "new.db", "--turns", TURNS)
    assert result.exit_code == 2 and "disk is full" in one_line(result.output)
    assert list(tmp_path.iterdir()) == []


def test_no_space_left_for_the_summaries_is_one_line(tmp_path, reference):
    log = tmp_path / "run.db"
    assert invoke("run", log, "--turns", "2").exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "run_summaries.json").symlink_to("/dev/full")
    result = invoke("summarize", log, "--out", out, "--no-report", "--workers", 1)
    assert result.exit_code == 2, result.output
    assert "run_summaries.json: No space left on device" in one_line(result.output)


@pytest.fixture
def read_only_folder(tmp_path):
    folder = unprivileged.shared_folder()
    log = folder / "logs" / "run.db"
    log.parent.mkdir()
    assert invoke("run", log, "--turns", "2").exit_code == 0
    assert invoke("run", tmp_path / "warm.db", "--turns", "2").exit_code == 0  # loads what `run` imports lazily
    assert invoke("run", tmp_path / "warm.db", "--resume").exit_code == 0
    log.chmod(0o444)
    log.parent.chmod(0o555)
    yield log
    unprivileged.remove_folder(folder)


def test_creating_a_run_in_a_read_only_folder_is_one_line(read_only_folder):
    result = unprivileged.run_cli("run", read_only_folder.parent / "new.db", "--turns", "2")
    assert result.returncode == 2 and "Permission denied" in one_line(result.stderr), result.stderr
    assert sorted(p.name for p in read_only_folder.parent.iterdir()) == ["run.db", "run.head"]


def test_resuming_a_read_only_log_is_one_line_and_the_log_is_untouched(read_only_folder):
    before = read_only_folder.read_bytes()
    result = unprivileged.run_cli("run", read_only_folder, "--resume")
    assert result.returncode == 2 and "Permission denied" in one_line(result.stderr), result.stderr
    assert read_only_folder.read_bytes() == before


@pytest.mark.parametrize("command", [
    ("verify",), ("replay",), ("log",), ("audit", "--agent", "agent_0"), ("head",), ("diff", "SAME"),
    ("summarize", "--no-report", "--workers", 1, "--out", "OUT"),
])
def test_reading_an_unreadable_log_is_one_line(read_only_folder, tmp_path, command):
    def args(log, out):
        return [command[0], log, *[log if a == "SAME" else out if a == "OUT" else a for a in command[1:]]]

    readable = tmp_path / "readable.db"
    readable.write_bytes(read_only_folder.read_bytes())
    # As ourselves (maybe root) on a readable copy: loads what the command imports lazily.
    assert invoke(*args(readable, tmp_path / "out")).exit_code == 0
    read_only_folder.chmod(0o000)
    result = unprivileged.run_cli(*args(read_only_folder, read_only_folder.parent.parent / "out"))
    assert result.returncode == 2 and "cannot open" in one_line(result.stderr), result.stderr


def test_disk_full_during_a_served_turn_is_507_and_the_log_stays_whole(tmp_path, monkeypatch):
    from litestar.testing import TestClient

    from simledger.api.app import create_app
    from simledger.api.service import LedgerService

    agents = ["agent_0", "agent_1", "agent_2"]
    service = LedgerService(tmp_path / "served.db")
    limit_writer_pages(monkeypatch, 40)
    speech = "x" * 3000  # each turn needs pages: the limit is met within a few turns
    statuses = []
    with TestClient(create_app(service)) as client:
        assert client.post("/init", json={"agent_ids": agents, "seed": 7}).status_code == 200
        for _ in range(30):
            inputs = [{"agent_id": a, "action": {"action": "mine"}, "speech": speech} for a in agents]
            response = client.post("/turn", json={"inputs": inputs})
            statuses.append(response.status_code)
            if response.status_code != 200:
                assert response.status_code == 507 and "disk is full" in response.json()["error"], response.text
                break
    service.close()
    assert statuses[-1] == 507 and statuses.count(200) >= 1, statuses
    result = verify_log(tmp_path / "served.db")
    assert result.ok and result.turns == statuses.count(200), result.message
