"""Crash safety: SIGKILL at random moments never leaves a partial turn, and --resume reaches the same head.

`simledger run` is started in a child process and killed with SIGKILL after a
seeded random delay. After each kill the log must verify, end on a seal (or
not exist yet), hold exactly a prefix of the uninterrupted run's events, and
both `simledger run DB --resume` (a child process) and `resume_run` through the
API must finish it with the uninterrupted run's head hash, whatever stale
``-wal`` / ``-shm`` / ``.writer-lock`` files the kill left behind.

The child imports the CLI before it is told its arguments (then calls the same
``cli.main.main()`` as ``python -m simledger.cli.main``), so the random delay
measures the run itself rather than interpreter start-up and most kills land
mid-run. The runs use the CLI's defaults (seed 101, 8 agents, 40 turns,
baseline), so ``simledger run DB --resume`` with no other option is the same
command whether the kill came before or after the genesis committed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.store import Store, is_unstarted_log
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run, resume_run

SEED, AGENTS, TURNS = 101, 8, 40  # the defaults of `simledger run`
USEFUL_KILLS = 50
MAX_ATTEMPTS = 110
TIME_LIMIT_S = 100.0
RANDOM_SEED = 8_2024
SIDE_FILES = ("-wal", "-shm", "-journal", ".writer-lock")

# One process imports the CLI and warms it up once, then forks a fresh child per
# command; each child runs the same ``cli.main.main()`` as ``python -m simledger.cli.main``.
ZYGOTE = r"""
import contextlib, io, json, os, sys
import simledger.cli.main as cli
# Warm up with one short run: typer and the engine import and cache things on first use.
sys.argv = ["simledger", "run", "warmup.db", "--turns", "1"]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    cli.main()
print("ready", flush=True)
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "start":
        pid = os.fork()
        if pid == 0:
            fd = os.open(command["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.argv = ["simledger", *command["args"]]
            code = 1
            try:
                cli.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            finally:
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

    def start(self, *args: str) -> "Command":
        """Start `simledger ARGS` in a fresh process and return it (its output goes to a file)."""
        self.count += 1
        out = self.cwd / f"command_{self.count}.out"
        started = time.perf_counter()
        pid = self._ask({"op": "start", "args": [str(a) for a in args], "out": str(out)})
        return Command(self, pid, out, started)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


class Command:
    """One forked `simledger` process."""

    def __init__(self, zygote: Zygote, pid: int, out: Path, started: float) -> None:
        self.zygote, self.pid, self.out, self.started = zygote, pid, out, started

    def kill(self) -> bool:
        """SIGKILL the process (it is ours and not yet reaped); return whether it was still running."""
        os.kill(self.pid, signal.SIGKILL)
        return self.wait()[0] == -signal.SIGKILL

    def wait(self) -> tuple[int, str]:
        """Return (exit code, output) once the process ends."""
        code = self.zygote._ask({"op": "wait", "pid": self.pid})
        return code, self.out.read_text() if self.out.exists() else ""


def wait_for_file(path: Path, timeout: float = 30.0) -> float:
    """Return the moment ``path`` exists (polling every 2 ms)."""
    deadline = time.perf_counter() + timeout
    while not path.exists():
        assert time.perf_counter() < deadline, f"{path} never appeared"
        time.sleep(0.002)
    return time.perf_counter()


def read_hashes(path: Path) -> list[tuple[str, str]]:
    """Return (kind, hash) of every event in seq order (read-only)."""
    with Store(path) as store:
        return [(kind, h) for _, kind, h in store.rows(columns=("seq", "kind", "hash"))]


def side_files(path: Path) -> dict[str, int]:
    return {suffix: (path.parent / (path.name + suffix)).stat().st_size
            for suffix in SIDE_FILES if (path.parent / (path.name + suffix)).exists()}


def copy_log(path: Path, target: Path) -> None:
    """Copy a log with its -wal/-shm/lock files, as a backup taken right after the crash would."""
    for suffix in ("", *SIDE_FILES):
        source = path.parent / (path.name + suffix)
        if source.exists():
            shutil.copyfile(source, target.parent / (target.name + suffix))


def classify(path: Path, reference: list[tuple[str, str]]) -> str:
    """Return what the kill left: 'no log', 'unstarted', 'mid-run' or 'finished'."""
    if not path.exists() or path.stat().st_size == 0 or is_unstarted_log(path):
        return "no log"
    n = len(read_hashes(path))
    return "finished" if n == len(reference) else "mid-run"


def check_killed_log(path: Path, reference: list[tuple[str, str]]) -> int:
    """Verify a killed log: it verifies, ends on a seal, and is a prefix of the uninterrupted run; return its turns."""
    result = verify_log(path)
    assert result.ok, result.message
    stored = read_hashes(path)
    assert stored == reference[:len(stored)], "the killed log is not a prefix of the uninterrupted run"
    assert stored[-1][0] == "turn_sealed", f"the last event is a {stored[-1][0]}, not a seal"
    return result.turns


def test_sigkill_at_random_moments_never_leaves_a_partial_turn_and_resume_reaches_the_same_head(tmp_path):
    regimes = load_regimes()
    reference_run = execute_run(tmp_path / "reference.db", regime_name="baseline", regime=regimes["baseline"],
                                seed=SEED, agents=AGENTS, turns=TURNS)
    reference_head = reference_run.head_hash.hex()
    reference_run.close()
    reference = read_hashes(tmp_path / "reference.db")

    # An uninterrupted run through the CLI gives the same head; its duration calibrates the kill delays.
    work = tmp_path / "kills"
    work.mkdir()
    zygote = Zygote(work)
    command = zygote.start("run", "uninterrupted.db")
    file_seconds = wait_for_file(work / "uninterrupted.db") - command.started
    code, out = command.wait()
    run_seconds = time.perf_counter() - command.started - file_seconds
    assert code == 0 and reference_head in out.replace("\n", ""), out

    rng = random.Random(RANDOM_SEED)
    outcomes: dict[str, int] = {"no log": 0, "mid-run": 0, "finished": 0}
    turns_at_kill: list[int] = []
    stale_wal = 0
    started = time.perf_counter()
    attempt = 0
    while outcomes["mid-run"] < USEFUL_KILLS and attempt < MAX_ATTEMPTS and time.perf_counter() - started < TIME_LIMIT_S:
        db = work / f"kill_{attempt}.db"
        # One kill in ten counts from the start (it may come before the file exists), the rest from the
        # moment the file appears, so that most land while turns are being written.
        early = rng.random() < 0.1
        delay = rng.uniform(0.0, file_seconds if early else run_seconds)
        command = zygote.start("run", db.name)
        since = command.started if early else wait_for_file(db)
        time.sleep(max(0.0, since + delay - time.perf_counter()))
        was_running = command.kill()
        outcome = classify(db, reference) if was_running else "finished"
        outcomes[outcome] += 1
        if outcome == "finished":  # keep most kills mid-run while the machine's speed drifts
            run_seconds *= 0.9
        if outcome == "mid-run":
            turns_at_kill.append(check_killed_log(db, reference))
            stale_wal += side_files(db).get("-wal", 0) > 0
            copy_log(db, work / f"api_{attempt}.db")
        # The CLI resume runs in its own process while the API resume runs here.
        resume = zygote.start("run", db.name, "--resume")
        if outcome == "mid-run":
            api_run = resume_run(work / f"api_{attempt}.db", regimes)
            try:
                assert api_run.head_hash.hex() == reference_head, f"API resume after a kill at attempt {attempt}"
            finally:
                api_run.close()
        code, out = resume.wait()
        assert code == 0, f"resume after a kill at attempt {attempt} ({outcome}) failed: {out}"
        assert "Traceback" not in out
        with Store(db) as store:
            assert store.head()[1].hex() == reference_head, f"CLI resume after a kill at attempt {attempt}"
        attempt += 1
    zygote.close()
    elapsed = time.perf_counter() - started

    print(f"\n{attempt} kills in {elapsed:.1f} s: {outcomes}; mid-run kills left a non-empty -wal {stale_wal} times; "
          f"turns in the log at each kill (turn 0 = genesis included): {sorted(turns_at_kill)}")
    assert outcomes["mid-run"] >= USEFUL_KILLS, f"only {outcomes['mid-run']} kills landed mid-run: {outcomes}"
    assert outcomes["mid-run"] > attempt / 2, f"most kills should land mid-run: {outcomes}"
    assert len(set(turns_at_kill)) >= 10, "kills should land at many different turns"
    assert stale_wal > 0, "no kill left a -wal file behind, so stale files were never exercised"


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


def test_resume_works_over_stale_wal_shm_journal_and_lock_files(tmp_path):
    regimes = load_regimes()
    reference = execute_run(tmp_path / "reference.db", regime_name="baseline", regime=regimes["baseline"], seed=SEED,
                            agents=AGENTS, turns=TURNS)
    reference_head = reference.head_hash.hex()
    reference.close()
    path = tmp_path / "crashed.db"
    crash_after_turns(path, 12)
    (tmp_path / "crashed.db-journal").write_bytes(b"")  # a leftover empty rollback journal must not matter either
    left = side_files(path)
    assert left["-wal"] > 0 and "-shm" in left and ".writer-lock" in left, left
    assert verify_log(path).turns == 13  # turns 0..12, each committed whole
    result = CliRunner().invoke(app, ["run", str(path), "--resume"])
    assert result.exit_code == 0, result.output
    assert reference_head in result.output.replace("\n", "")
    assert verify_log(path).ok


def test_resume_creates_the_run_when_the_kill_came_before_its_genesis_committed(tmp_path):
    regimes = load_regimes()
    reference = execute_run(tmp_path / "reference.db", regime_name="baseline", regime=regimes["baseline"], seed=SEED,
                            agents=AGENTS, turns=TURNS)
    reference_head = reference.head_hash.hex()
    reference.close()
    # A kill right after SQLite wrote the file header: a database with no table.
    header_only = tmp_path / "header_only.db"
    conn = sqlite3.connect(header_only)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    # A kill between the schema's commit and the genesis's commit: simledger's schema, no event.
    schema_only = tmp_path / "schema_only.db"
    Store(schema_only, create=True).close()
    for path in (header_only, schema_only):
        assert path.stat().st_size > 0 and is_unstarted_log(path)
        refused = CliRunner().invoke(app, ["run", str(path)])
        assert refused.exit_code == 2 and "--resume" in refused.output  # never silently overwritten
        result = CliRunner().invoke(app, ["run", str(path), "--resume"])
        assert result.exit_code == 0, result.output
        assert reference_head in result.output.replace("\n", "")


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
