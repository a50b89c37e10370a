"""`simledger diff`: projection differences of two runs and the first seq where their logs part."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.actions import AgentInput
from simledger.ledger.replay import load_state
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.study.regimes import load_regimes
from simledger.study.runner import agent_ids, execute_run

TURNS = 10
SHARED_TURNS = 6  # the prefix pair shares turns 0..6, then takes different inputs


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def build(path, seed: int, turns: int = TURNS):
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=seed, agents=8,
                turns=turns).close()
    return path


def hand_inputs(different_agent: str | None) -> list[AgentInput]:
    """Everyone mines; ``different_agent`` takes a job instead."""
    return [AgentInput(agent_id=a, action={"action": "job" if a == different_agent else "mine"},
                       thinking_units=50, output_units=120) for a in agent_ids(8)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diff")
    a, b = build(root / "seed101.db", 101), build(root / "seed102.db", 102)
    prefix_a, prefix_b = build(root / "prefix_a.db", 101, SHARED_TURNS), build(root / "prefix_b.db", 101, SHARED_TURNS)
    for path, differ in ((prefix_a, None), (prefix_b, "agent_3")):
        with Run.open(path) as run:
            for _ in range(3):
                run.step(hand_inputs(differ))
    return {"a": a, "b": b, "prefix_a": prefix_a, "prefix_b": prefix_b}


def diff_json(*args) -> tuple[int, dict]:
    result = invoke("diff", *args, "--json")
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def test_diff_of_a_run_with_itself_exits_0(runs):
    result = invoke("diff", runs["a"], runs["a"])
    assert result.exit_code == 0, result.output
    assert "projections are identical" in result.output
    code, doc = diff_json(runs["a"], runs["a"])
    assert code == 0 and doc["identical"] is True and doc["divergence"] is None
    assert doc["accounts"] == doc["contracts"] == doc["metrics"] == []


def test_diff_of_two_seeds_exits_1_and_names_turn_0_seq_0(runs):
    result = invoke("diff", runs["a"], runs["b"])
    assert result.exit_code == 1
    assert "turn 0 seq 0" in result.output
    code, doc = diff_json(runs["a"], runs["b"])
    assert code == 1 and doc["identical"] is False
    assert (doc["divergence"]["seq"], doc["divergence"]["turn"]) == (0, 0)
    assert doc["divergence"]["kind_a"] == doc["divergence"]["kind_b"] == "run_genesis"


def test_account_deltas_are_b_minus_a(runs):
    _, doc = diff_json(runs["a"], runs["b"])
    with Store(runs["a"]) as sa, Store(runs["b"]) as sb:
        a, b = load_state(sa), load_state(sb)
    position = lambda state, agent: (state.accounts[agent].balance, state.accounts[agent].staked)  # noqa: E731
    expected = {agent for agent in a.agents if position(a, agent) != position(b, agent)}
    assert {row["agent_id"] for row in doc["accounts"]} == expected
    for row in doc["accounts"]:
        acc_a, acc_b = a.accounts[row["agent_id"]], b.accounts[row["agent_id"]]
        assert row["delta"] == {"balance": acc_b.balance - acc_a.balance, "staked": acc_b.staked - acc_a.staked,
                                "wealth": acc_b.wealth - acc_a.wealth}
    statuses = {row["contract_id"]: (row["a"], row["b"]) for row in doc["contracts"]}
    for cid in set(a.contracts) | set(b.contracts):
        pair = (a.contracts[cid].status if cid in a.contracts else None,
                b.contracts[cid].status if cid in b.contracts else None)
        assert (cid in statuses) == (pair[0] != pair[1])
    metrics = {m["name"]: m for m in doc["metrics"]}
    assert ("token_supply_final" in metrics) == (a.token_supply() != b.token_supply())
    if "token_supply_final" in metrics:
        assert metrics["token_supply_final"]["delta"] == b.token_supply() - a.token_supply()


def test_diff_names_the_first_divergent_input_of_runs_sharing_a_prefix(runs):
    with Store(runs["prefix_a"]) as store:
        (row,) = store.select("turn = ? AND kind = 'action_submitted' AND actor = ?", [SHARED_TURNS + 1, "agent_3"])
    code, doc = diff_json(runs["prefix_a"], runs["prefix_b"])
    assert code == 1
    assert (doc["divergence"]["seq"], doc["divergence"]["turn"]) == (row[0], SHARED_TURNS + 1)
    assert doc["divergence"]["kind_a"] == doc["divergence"]["kind_b"] == "action_submitted"
    assert doc["divergence"]["hash_a"] == row[9] != doc["divergence"]["hash_b"]
    result = invoke("diff", runs["prefix_a"], runs["prefix_b"])
    assert f"turn {SHARED_TURNS + 1} seq {row[0]}" in result.output


def test_diff_until_the_shared_prefix_is_identical(runs):
    code, doc = diff_json(runs["prefix_a"], runs["prefix_b"], "--until", "turn", SHARED_TURNS)
    assert code == 0 and doc["identical"] is True and doc["divergence"] is None
    code, doc = diff_json(runs["prefix_a"], runs["prefix_b"], "--until", SHARED_TURNS + 1)
    assert code == 1 and doc["divergence"]["turn"] == SHARED_TURNS + 1


def test_diff_of_a_log_and_its_longer_continuation_names_where_one_ends(runs, tmp_path):
    short = build(tmp_path / "short.db", 101, SHARED_TURNS)
    code, doc = diff_json(short, runs["prefix_a"])
    with Store(short) as store:
        count = store.count()
    assert code == 1
    assert doc["divergence"]["seq"] == count and doc["divergence"]["kind_a"] is None


@pytest.mark.parametrize("case", ["missing", "beyond", "bad_until"])
def test_diff_errors_exit_2_in_one_line(runs, tmp_path, case):
    args = {"missing": [runs["a"], tmp_path / "nope.db"],
            "beyond": [runs["a"], runs["b"], "--until", "turn", TURNS + 5],
            "bad_until": [runs["a"], runs["b"], "--until", "later"]}[case]
    result = invoke("diff", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
