"""Crash safety: a SIGKILL at any chosen point never leaves a partial turn, and one --resume reaches the same head.

Kill points are chosen, not timed. A recording run of `simledger run` lists
every SQL statement the process executes (sqlite3's trace callback, installed
on each connection by the forked child, not by simledger); each killed run then
SIGKILLs itself just before its Nth statement. The points cover the creation
(after the file appears, before and inside the one transaction that writes
schema, meta and genesis, just after its COMMIT), many turns (their BEGIN, a
row mid-turn, the read models, the COMMIT, just after it, the checkpoint turn)
and the close (before the switch out of WAL). After each kill the file is no
run yet (an empty file creation replaces) or a log that verifies, ends on a
seal and is a prefix of the uninterrupted run; one `--resume` then finishes it with the uninterrupted run's head and leaves one file.

The runs use the CLI's defaults but 12 turns (turn 10 writes a checkpoint);
`simledger run --turns 12 DB --resume` is the same command whether the kill
came before the genesis committed (it creates the run) or after (it continues
it, the turn count coming from the log).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.errors import NoRunYet
from simledger.ledger.store import Store, is_unstarted_log
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run, resume_run

SEED, AGENTS, TURNS = 101, 8, 12
RUN = ("run", "--turns", str(TURNS))  # + the db; seed 101, 8 agents, baseline: the CLI's defaults
SIDE_FILES = ("-wal", "-shm", "-journal", ".writer-lock")

# One process imports the CLI and warms it up once, then forks a fresh child per command; each
# child runs the same ``cli.main.main()`` as ``python -m simledger.cli.main``. A child told
# ``kill_at`` traces every SQL statement of every connection and SIGKILLs itself just before
# statement number ``kill_at``; told ``record``, it writes the statements it ran to that file.
ZYGOTE = r"""
import contextlib, io, json, os, signal, sqlite3, sys
import simledger.cli.main as cli
sys.argv = ["simledger", "run", "warmup.db", "--turns", "1"]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    cli.main()
print("ready", flush=True)

def trace_statements(kill_at, record):
    statements = []
    connect = sqlite3.connect
    def on_statement(sql):
        statements.append(sql)
        if len(statements) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    def traced_connect(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(on_statement)
        return conn
    sqlite3.connect = traced_connect
    return statements

for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "start":
        pid = os.fork()
        if pid == 0:
            fd = os.open(command["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            statements = trace_statements(command.get("kill_at"), command.get("record"))
            sys.argv = ["simledger", *command["args"]]
            code = 1
            try:
                cli.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            finally:
                if command.get("record"):
                    with open(command["record"], "w") as f:
                        json.dump(statements, f)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(pid, flush=True)
    elif command["op"] == "wait":
        _, status = os.waitpid(command["pid"], 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Zygote:
    """A child with the CLI imported that forks one process per `simledger` command line."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=cwd)
        assert self.proc.stdout.readline() == "ready\n"
        self.count = 0

    def _ask(self, command: dict) -> int:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def run(self, *args: str, **hooks) -> tuple[int, str]:
        """Run `simledger ARGS` in a fresh process; return (exit code, output); -9 means it killed itself."""
        self.count += 1
        out = self.cwd / f"command_{self.count}.out"
        pid = self._ask({"op": "start", "args": [str(a) for a in args], "out": str(out), **hooks})
        code = self._ask({"op": "wait", "pid": pid})
        return code, out.read_text() if out.exists() else ""

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def read_hashes(path: Path) -> list[tuple[str, str]]:
    """Return (kind, hash) of every event in seq order (read-only)."""
    with Store(path) as store:
        return [(kind, h) for _, kind, h in store.rows(columns=("seq", "kind", "hash"))]


def side_files(path: Path) -> dict[str, int]:
    return {suffix: (path.parent / (path.name + suffix)).stat().st_size
            for suffix in SIDE_FILES if (path.parent / (path.name + suffix)).exists()}


def kill_points(statements: list[str]) -> dict[int, str]:
    """Return {statement number: what the kill interrupts} across creation, turns and close."""
    def number(i: int) -> int:  # statements are numbered from 1, the trace's count
        return i + 1

    begins = [i for i, sql in enumerate(statements) if sql.startswith("BEGIN IMMEDIATE")]
    commits = [i for i, sql in enumerate(statements) if sql == "COMMIT"]
    assert len(begins) == len(commits) == TURNS + 1, (len(begins), len(commits))
    points: dict[int, str] = {}
    # Creation: every statement up to the genesis's BEGIN, then through its transaction, then after COMMIT.
    for i in range(begins[0] + 1):
        points[number(i)] = f"creation, before `{statements[i][:40]}`"
    genesis = range(begins[0] + 1, commits[0])
    for i in list(genesis)[:: max(1, len(genesis) // 12)]:
        points[number(i)] = f"inside the genesis transaction, before `{statements[i][:40]}`"
    points[number(commits[0])] = "genesis COMMIT"
    points[number(commits[0] + 1)] = "just after the genesis COMMIT"
    for turn in range(1, TURNS + 1):
        begin, commit = begins[turn], commits[turn]
        inserts = [i for i in range(begin, commit) if statements[i].startswith("INSERT INTO events")]
        chosen = {begin: "BEGIN", inserts[len(inserts) // 2]: "an event row mid-turn", commit: "COMMIT",
                  commit + 1: "just after COMMIT"}
        if turn in (1, 10, TURNS):  # the read models, and turn 10's checkpoint
            chosen[inserts[-1] + 1] = "the read models"
            chosen.update({i: "the checkpoint" for i in range(begin, commit) if "checkpoints" in statements[i]})
        for i, what in chosen.items():
            if i < len(statements):
                points[number(i)] = f"turn {turn}: {what}"
    for i in range(commits[-1] + 1, len(statements)):
        points[number(i)] = f"close, before `{statements[i][:40]}`"
    return points


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple[str, str]]:
    path = tmp_path_factory.mktemp("reference") / "reference.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=SEED, agents=AGENTS,
                turns=TURNS).close()
    return read_hashes(path)


def check_killed_log(path: Path, reference: list[tuple[str, str]]) -> str:
    """Check what a kill left and return it: 'no file', 'no run yet', or 'turns 0..N'."""
    if not path.exists():
        return "no file"
    verified = CliRunner().invoke(app, ["verify", str(path)])
    assert "Traceback" not in verified.output and verified.output.count("\n") <= 2, verified.output
    try:
        result = verify_log(path)
    except NoRunYet:
        assert is_unstarted_log(path)
        assert verified.exit_code == 2 and "no run yet" in verified.output, verified.output
        return "no run yet"
    assert result.ok, result.message
    stored = read_hashes(path)
    assert stored == reference[:len(stored)], "the killed log is not a prefix of the uninterrupted run"
    assert stored[-1][0] == "turn_sealed", f"the last event is a {stored[-1][0]}, not a seal"
    return f"turns 0..{result.turns}"


def test_sigkill_at_chosen_points_never_leaves_a_partial_turn_and_one_resume_reaches_the_same_head(
        tmp_path, reference):
    reference_head = reference[-1][1]
    zygote = Zygote(tmp_path)
    try:
        code, out = zygote.run(*RUN, "recorded.db", record=str(tmp_path / "statements.json"))
        assert code == 0 and reference_head in out.replace("\n", ""), out
        assert side_files(tmp_path / "recorded.db") == {}, "a closed log is one file"
        statements = json.loads((tmp_path / "statements.json").read_text())
        points = kill_points(statements)
        outcomes: dict[str, int] = {}
        for kill_at, what in sorted(points.items()):
            db = tmp_path / f"kill_{kill_at}.db"
            code, out = zygote.run(*RUN, db.name, kill_at=kill_at)
            assert code == -signal.SIGKILL, f"the run was not killed at statement {kill_at} ({what}): {out}"
            left = check_killed_log(db, reference)
            kind = "turns" if left.startswith("turns") else left
            outcomes[kind] = outcomes.get(kind, 0) + 1
            code, out = zygote.run(*RUN, db.name, "--resume")
            assert code == 0 and "Traceback" not in out, f"resume after a kill at {what} failed: {out}"
            assert read_hashes(db)[-1][1] == reference_head, f"resume after a kill at {what}"
            assert side_files(db) == {}, f"after a kill at {what}, the resumed and closed log left {side_files(db)}"
    finally:
        zygote.close()
    kills = len(points)
    print(f"\n{kills} SIGKILLs at chosen statements of {len(statements)}: {outcomes}")
    assert kills >= 50
    assert outcomes.get("no run yet", 0) >= 10 and outcomes.get("turns", 0) >= 40, outcomes


def crash_after_turns(path: Path, turns: int) -> None:
    """Play ``turns`` turns of the CLI-default run in a child that dies without closing anything."""
    script = (
        "import os, sys\n"
        "from simledger.ledger.run import Run\n"
        "from simledger.study.policy import TurnView\n"
        "from simledger.study.study_policy import StudyPolicy\n"
        "from simledger.study.regimes import engine_config, load_regimes\n"
        "from simledger.study.runner import agent_ids, run_name\n"
        f"regime = load_regimes()['baseline']\n"
        f"run = Run.create(sys.argv[1], agents=agent_ids({AGENTS}), seed={SEED}, config=engine_config(regime, {AGENTS}),"
        f" identity={{'regime': 'baseline', 'run_name': run_name('baseline', {SEED}), 'turns': {TURNS}}})\n"
        "policy = StudyPolicy(regime['policy'], run.state.seed)\n"
        f"for turn in range(1, {turns} + 1):\n"
        f"    run.step(policy.decide(TurnView.from_state(run.state, turn, {TURNS})))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)


def interrupt_a_rollback_journal_write(path: Path, *, create_table: bool) -> None:
    """Leave ``path`` with a hot journal, as a kill in the middle of a rollback-journal write does.

    A forked child writes in rollback-journal mode with a one-page cache, so SQLite
    spills changed pages into the file before the commit, then dies.
    """
    pid = os.fork()
    if pid == 0:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA cache_size = 1")
        conn.execute("BEGIN IMMEDIATE")
        if create_table:
            conn.execute("CREATE TABLE scratch (x BLOB)")
        for _ in range(200):
            conn.execute("INSERT INTO checkpoints(turn, seq, state) VALUES (NULL, 0, randomblob(1000))"
                         if not create_table else "INSERT INTO scratch VALUES (randomblob(1000))")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (path.parent / (path.name + "-journal")).stat().st_size > 0


def test_resume_works_over_stale_wal_shm_and_journal_files(tmp_path, reference):
    path = tmp_path / "crashed.db"
    crash_after_turns(path, 7)
    (tmp_path / "crashed.db-journal").write_bytes(b"")  # a leftover empty rollback journal must not matter either
    left = side_files(path)
    assert left["-wal"] > 0 and "-shm" in left, left
    assert verify_log(path).turns == 7  # turns 1..7 after the genesis, each committed whole
    result = CliRunner().invoke(app, ["run", str(path), "--resume"])
    assert result.exit_code == 0, result.output
    assert reference[-1][1] in result.output.replace("\n", "")
    assert verify_log(path).ok and side_files(path) == {}


def test_a_hot_journal_over_a_closed_log_is_rolled_back_by_the_first_reader(tmp_path, reference):
    path = tmp_path / "closed.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=SEED, agents=AGENTS,
                turns=TURNS).close()
    interrupt_a_rollback_journal_write(path, create_table=False)
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert read_hashes(path) == reference and side_files(path) == {}


def test_a_creation_killed_mid_write_is_no_run_yet_and_one_resume_creates_the_run(tmp_path, reference):
    # A file SQLite was writing when the kill came, with its hot journal: until rolled back it
    # holds half-written pages; rolled back it is empty.
    path = tmp_path / "half_created.db"
    interrupt_a_rollback_journal_write(path, create_table=True)
    assert path.stat().st_size > 0
    verified = CliRunner().invoke(app, ["verify", str(path)])
    assert verified.exit_code == 2 and "no run yet" in verified.output and verified.output.count("\n") == 1, \
        verified.output
    result = CliRunner().invoke(app, ["run", str(path), "--resume", "--turns", str(TURNS)])
    assert result.exit_code == 0, result.output
    assert read_hashes(path)[-1][1] == reference[-1][1]


def test_resume_creates_the_run_when_the_kill_came_before_its_genesis_committed(tmp_path, reference):
    # A kill right after SQLite wrote the file header: a database with no table.
    header_only = tmp_path / "header_only.db"
    conn = sqlite3.connect(header_only)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    # What an older simledger left when killed between its schema's commit and its genesis's.
    schema_only = tmp_path / "schema_only.db"
    with Store(schema_only, create=True) as store:
        with store.transaction():
            pass
    for path in (header_only, schema_only):
        assert path.stat().st_size > 0 and is_unstarted_log(path)
        refused = CliRunner().invoke(app, ["run", str(path)])
        assert refused.exit_code == 2 and "--resume" in refused.output  # never silently overwritten
        result = CliRunner().invoke(app, ["run", str(path), "--resume", "--turns", str(TURNS)])
        assert result.exit_code == 0, result.output
        assert reference[-1][1] in result.output.replace("\n", "")


def test_a_creation_that_fails_leaves_no_file(tmp_path, monkeypatch):
    from simledger.ledger import run as run_module

    def failing_seal(rec, turn):
        raise RuntimeError("the genesis seal fails")

    monkeypatch.setattr(run_module.engine, "process_seal", failing_seal)
    with pytest.raises(RuntimeError):
        run_module.Run.create(tmp_path / "failed.db", agents=["a", "b", "c"], seed=1)
    assert list(tmp_path.iterdir()) == []


def test_resume_never_creates_over_a_file_that_holds_something(tmp_path):
    other_app = tmp_path / "other.db"
    conn = sqlite3.connect(other_app)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = other_app.read_bytes()
    assert not is_unstarted_log(other_app)
    result = CliRunner().invoke(app, ["run", str(other_app), "--resume"])
    assert result.exit_code == 2 and "not a simledger log" in result.output
    assert other_app.read_bytes() == before


def test_state_restored_from_a_checkpoint_keeps_the_folds_order_so_a_resume_does_not_diverge(tmp_path):
    from simledger.ledger.replay import best_checkpoint, load_state
    from simledger.projections.state import snapshot_bytes
    from simledger.study.policy import TurnView
    from simledger.study.study_policy import StudyPolicy
    from simledger.study.regimes import engine_config
    from simledger.ledger.run import Run

    regime = load_regimes()["baseline"]
    agents = 12  # agent_10 sorts before agent_2: a sorted snapshot would reorder the accounts
    reference = execute_run(tmp_path / "reference.db", regime_name="baseline", regime=regime, seed=SEED, agents=agents,
                            turns=22)
    reference_head = reference.head_hash.hex()
    reference.close()
    with Store(tmp_path / "reference.db") as store:
        for turn in (10, 20):
            assert best_checkpoint(store, turn) is not None
            restored, folded = load_state(store, turn), load_state(store, turn, use_checkpoints=False)
            assert list(restored.accounts) == list(folded.accounts)
            assert list(restored.contracts) == list(folded.contracts)
            assert snapshot_bytes(restored) == snapshot_bytes(folded)
    # A run stopped right after a checkpoint turn resumes (from that checkpoint) to the same head.
    stopped = tmp_path / "stopped.db"
    run = Run.create(stopped, agents=[f"agent_{i}" for i in range(agents)], seed=SEED,
                     config=engine_config(regime, agents),
                     identity={"regime": "baseline", "run_name": f"baseline_{SEED}", "turns": 22})
    policy = StudyPolicy(regime["policy"], SEED)
    for turn in range(1, 11):
        run.step(policy.decide(TurnView.from_state(run.state, turn, 22)))
    run.close()
    resumed = resume_run(stopped, load_regimes())
    try:
        assert resumed.head_hash.hex() == reference_head
    finally:
        resumed.close()


def test_refusing_to_create_over_a_log_leaves_it_untouched(tmp_path):
    path = tmp_path / "run.db"
    crash_after_turns(path, 2)  # a killed writer's log: WAL mode, with its -wal
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "run.db-shm"}
    from simledger.ledger.errors import LedgerError
    from simledger.ledger.run import Run

    with pytest.raises(LedgerError, match="refusing to overwrite"):
        Run.create(path, agents=["a", "b", "c"], seed=1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "run.db-shm"} == before


def test_creating_over_an_empty_file_ignores_a_deleted_logs_wal(tmp_path, reference):
    # Someone deleted a killed run's file but not its -wal: an empty file of the same name must not inherit it.
    path = tmp_path / "run.db"
    crash_after_turns(path, 2)
    path.unlink()
    path.write_bytes(b"")
    result = CliRunner().invoke(app, ["run", str(path), "--turns", str(TURNS)])
    assert result.exit_code == 0, result.output
    assert read_hashes(path) == reference and side_files(path) == {}
