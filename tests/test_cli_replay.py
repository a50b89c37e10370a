"""`simledger replay`: the state at the end of a turn, from checkpoints or genesis, and its user errors."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.envelope import decode_payload
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.projections.reducers import apply_event
from simledger.projections.state import State, snapshot_bytes, snapshot_state
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 12


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result) -> None:
    """A user mistake: non-zero exit, one line of output, no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "run.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=101, agents=8,
                turns=TURNS).close()
    return path


def fold_first_turns(path, turn: int) -> State:
    """Return the state folded event by event from genesis, stopping after ``turn`` (no checkpoints)."""
    state = State()
    with Store(path) as store:
        for env in store.envelopes():
            if env.turn > turn:
                break
            apply_event(state, decode_payload(env.kind, env.payload_version, env.payload), env.seq, env.turn)
    return state


def state_view(state: State) -> dict:
    """Return what replay reports, computed straight from a State."""
    by_status: dict[str, set] = {}
    for cid, contract in state.contracts.items():
        by_status.setdefault(contract.status, set()).add(cid)
    return {
        "turn": state.sealed_turn, "events": state.events, "token_supply": state.token_supply(),
        "accounts": {a: (acc.balance, acc.staked, acc.balance + acc.staked, acc.locked)
                     for a, acc in state.accounts.items()},
        "cores": {core: list(owner) for core, owner in state.cores.items()},
        "contracts": by_status, "last_block": state.last_block, "last_seal": state.last_seal,
    }


def doc_view(doc: dict) -> dict:
    """Return the same view from replay's JSON document."""
    return {
        "turn": doc["turn"], "events": doc["events"], "token_supply": doc["token_supply"],
        "accounts": {r["agent_id"]: (r["balance"], r["staked"], r["wealth"], r["locked"]) for r in doc["accounts"]},
        "cores": {r["core_id"]: [r["owner"], r["proportion_ppm"]] for r in doc["cores"]},
        "contracts": {status: set(ids) for status, ids in doc["contracts"].items()},
        "last_block": doc["last_block"], "last_seal": doc["last_seal"],
    }


def replay_json(*args) -> dict:
    result = invoke("replay", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("turn", [0, 1, 5, 9, 10, 11, TURNS])
def test_replay_until_turn_equals_fold_without_checkpoints(log_path, turn):
    doc = replay_json(log_path, "--until", "turn", turn)
    with Store(log_path) as store:
        expected = load_state(store, turn, use_checkpoints=False)
    assert doc_view(doc) == state_view(expected)
    assert doc_view(doc) == state_view(fold_first_turns(log_path, turn))
    assert doc["turn"] == turn


def test_until_n_and_until_turn_n_agree(log_path):
    assert replay_json(log_path, "--until", "7") == replay_json(log_path, "--until", "turn", "7")


def test_replay_without_until_is_the_end_of_the_log(log_path):
    doc = replay_json(log_path)
    with Store(log_path) as store:
        assert doc["turn"] == store.head()[2] == TURNS
        assert doc["events"] == store.count()
        assert doc_view(doc) == state_view(load_state(store, use_checkpoints=False))


def test_replay_tables_show_every_agent_and_the_seal(log_path):
    result = invoke("replay", log_path, "--until", "turn", 4)
    assert result.exit_code == 0, result.output
    with Store(log_path) as store:
        state = load_state(store, 4)
    for agent in state.agents:
        assert agent in result.output
    assert f"turn {state.last_seal['turn']} (seq {state.last_seal['seq']})" in result.output


def test_agent_filter_keeps_only_that_agent_and_its_contracts(log_path):
    doc = replay_json(log_path, "--agent", "agent_3")
    with Store(log_path) as store:
        state = load_state(store)
    assert [r["agent_id"] for r in doc["accounts"]] == ["agent_3"]
    listed = {cid for ids in doc["contracts"].values() for cid in ids}
    assert listed == {cid for cid, c in state.contracts.items() if "agent_3" in c.parties()}
    assert all(r["owner"] == "agent_3" for r in doc["cores"])


def test_contract_filter_shows_that_contract_in_detail(log_path):
    with Store(log_path) as store:
        state = load_state(store)
    cid, contract = next(iter(state.contracts.items()))
    doc = replay_json(log_path, "--contract", cid)
    assert doc["contracts"] == {contract.status: [cid]}
    assert doc["contract"]["event_seqs"] == contract.history
    assert doc["contract"]["status"] == contract.status


@pytest.mark.parametrize("blob_kind", ["altered_state", "garbage"])
def test_tampered_checkpoint_falls_back_to_the_right_answer(log_path, tmp_path, blob_kind):
    copy = tmp_path / "tampered.db"
    shutil.copy(log_path, copy)
    with sqlite3.connect(copy) as conn:
        (blob,) = conn.execute("SELECT state FROM checkpoints WHERE turn = 10").fetchone()
        forged = snapshot_state(blob)
        forged.accounts["agent_0"].balance += 1_000_000  # a checkpoint that would lie if trusted
        new_blob = snapshot_bytes(forged) if blob_kind == "altered_state" else b"\x00not msgpack"
        conn.execute("UPDATE checkpoints SET state = ? WHERE turn = 10", [new_blob])
    doc = replay_json(copy, "--until", "turn", 11)
    with Store(log_path) as store:
        truth = load_state(store, 11, use_checkpoints=False)
    assert doc_view(doc) == state_view(truth)
    assert doc["accounts"][0]["balance"] == truth.accounts["agent_0"].balance


def make_not_a_log(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    return path


@pytest.mark.parametrize("case", ["missing", "not_a_log", "garbage", "empty", "directory"])
def test_replay_of_a_file_that_is_not_a_log_is_one_line(tmp_path, case):
    path = tmp_path / "x.db"
    if case == "not_a_log":
        make_not_a_log(path)
    elif case == "garbage":
        path.write_bytes(b"this is not SQLite at all\n" * 100)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "directory":
        path.mkdir()
    result = invoke("replay", path)
    assert_one_line_error(result)
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [
    ["--until", "turn", str(TURNS + 1)],  # beyond the log
    ["--until", "turn"],  # no number
    ["--until", "soon"],  # not a number
    ["--until", "-3"],  # negative
    ["--agent", "nobody"],  # unknown agent
    ["--contract", "contract_999"],  # unknown contract
    ["--until", "turn", "2", "--contract", "contract_999"],
])
def test_replay_user_mistakes_are_one_line(log_path, args):
    result = invoke("replay", log_path, *args)
    assert_one_line_error(result)
    assert result.exit_code == 2
