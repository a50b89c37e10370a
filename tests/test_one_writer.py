"""One writer per log; readers work while it writes.

A second process that tries to append gets WriterBusy (one line, exit 2
through the CLI) and the log stays valid. Meanwhile every reader command
(replay, audit, diff, verify, log) succeeds against the live file and sees a
prefix of the log that ends on a turn's seal and verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.errors import WriterBusy
from simledger.ledger.replay import load_state
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log

TURNS = 70
PAUSE_S = 0.04

WRITER = f"""
import sys, time
from simledger.ledger.run import Run
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes
from simledger.study.runner import agent_ids
regime = load_regimes()["baseline"]
run = Run.create(sys.argv[1], agents=agent_ids(8), seed=109, config=engine_config(regime, 8),
                 identity={{"regime": "baseline", "run_name": "baseline_109", "turns": {TURNS}}})
print("created", flush=True)
free = sys.stdin.readline().strip() == "go"  # "go": append every turn; "step": one turn per line read
policy = StudyPolicy(regime["policy"], 109)
for turn in range(1, {TURNS} + 1):
    if not free and turn > 1:
        sys.stdin.readline()
    run.step(policy.decide(TurnView.from_state(run.state, turn, {TURNS})))
    print("turn", turn, flush=True)
    if free:
        time.sleep({PAUSE_S})
run.close()
print("done", flush=True)
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def writer(tmp_path):
    """A child process that created the log and, once told, appends TURNS turns slowly."""
    path = tmp_path / "live.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "created\n", proc.stderr.read()
    yield path, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.close()


def go(proc, word: str = "go") -> None:
    """Let the writer append every turn ("go"), or just its next turn ("step")."""
    proc.stdin.write(f"{word}\n")
    proc.stdin.flush()


def wait_done(proc) -> None:
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()  # read(), not communicate(): keeps what readline() buffered
    proc.wait(timeout=120)
    assert proc.returncode == 0 and out.rstrip().endswith("done"), err


def read_prefix(path) -> list[str]:
    with Store(path) as store:
        return [h for _, h in store.rows(columns=("seq", "hash"))]


def test_second_writer_is_refused_while_the_first_appends(writer):
    path, proc = writer
    # A real second process, started while the first holds the log.
    second = subprocess.Popen([sys.executable, "-m", "simledger.cli.main", "run", str(path), "--resume"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    go(proc)
    with pytest.raises(WriterBusy, match="already open for writing"):
        Run.open(path)
    in_process = invoke("run", path, "--resume")
    assert in_process.exit_code == 2, in_process.output
    assert in_process.output.count("\n") == 1 and "already open for writing" in in_process.output
    out, err = second.communicate(timeout=120)
    assert second.returncode == 2, out + err
    assert "already open for writing" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert proc.poll() is None, "the first writer finished before the second tried: the test proved nothing"
    wait_done(proc)
    result = verify_log(path)
    assert result.ok and result.turns == TURNS, result.message


def test_readers_succeed_and_see_a_verified_prefix_while_a_writer_appends(writer):
    path, proc = writer
    seen: list[tuple[str, dict]] = []
    sealed_turns: set[int] = set()
    commands = ("verify", "replay", "log", "audit", "diff")
    # Each read starts as the writer starts its next turn, so it overlaps a write on any machine,
    # and the reads spread over the whole run (no timing decides what they see).
    for i in range(TURNS):
        go(proc, "step")
        command = commands[i % len(commands)]
        if command == "verify":
            result = invoke("verify", path, "--json")
            assert result.exit_code == 0, result.output
            doc = json.loads(result.stdout)
            assert doc["ok"], doc
            seen.append(("verify", doc))
            sealed_turns.add(doc["turns"])
        elif command == "replay":
            result = invoke("replay", path, "--json")
            assert result.exit_code == 0, result.output
            seen.append(("replay", json.loads(result.stdout)))
        elif command == "log":
            result = invoke("log", path, "--kind", "turn_sealed", "--limit", 1000, "--json")
            assert result.exit_code == 0, result.output
            seals = json.loads(result.stdout)["events"]
            assert [e["turn"] for e in seals] == list(range(len(seals)))
        elif command == "audit":
            result = invoke("audit", path, "--agent", "agent_0", "--json")
            assert result.exit_code == 0, result.output  # exit 1 would mean a statement that does not reconcile
        else:
            turn = max(sealed_turns, default=0)
            result = invoke("diff", path, path, "--until", "turn", turn, "--json")
            assert result.exit_code == 0, result.output
        assert proc.stdout.readline() == f"turn {i + 1}\n"
    wait_done(proc)
    assert verify_log(path).ok
    final = read_prefix(path)
    mid_run = {t for t in sealed_turns if 0 < t < TURNS}
    assert len(mid_run) >= 5, f"reads saw too few distinct turns while the writer ran: {sorted(sealed_turns)}"
    for name, doc in seen:
        if name == "verify":
            # What the reader verified is exactly the first events of the final log.
            assert final[doc["events"] - 1] == doc["head_hash"]
        else:
            with Store(path) as store:
                state = load_state(store, doc["turn"])
            assert state.events == doc["events"] and state.token_supply() == doc["token_supply"]


def test_a_reader_sees_one_snapshot_for_its_whole_life(writer):
    path, proc = writer
    with Store(path) as store:
        first = store.head()
        go(proc)
        time.sleep(10 * PAUSE_S)
        assert store.head() == first  # turns committed meanwhile are not half-visible to this reader
        assert store.count() == first[0] + 1
    wait_done(proc)
    with Store(path) as store:
        assert store.head()[0] > first[0]
