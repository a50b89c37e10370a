"""`simledger.open_run`: the notebook tables of a real run agree with the projection at every turn.

The tables come from one fold of the log; the projection they are checked against
comes from `load_state(store, N)` (what `simledger replay --until turn N` shows),
one replay per turn, and from the log's events read back by SQL.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

import simledger
from simledger.cli.main import app
from simledger.ledger.errors import NotALog
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.projections.metrics import run_summary
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 40
STATUSES = ("proposed", "countersigned", "active", "disputed", "settled", "defaulted", "expired")
FIXTURE = Path(__file__).parent / "fixtures" / "format_v1.db"


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("workbench") / "baseline_101.db"
    execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=101, turns=TURNS).close()
    return path


@pytest.fixture(scope="module")
def run(log_path):
    return simledger.open_run(log_path)


@pytest.fixture(scope="module")
def projections(log_path):
    """The projection at the end of every turn, one replay each."""
    with Store(log_path) as store:
        return [load_state(store, turn) for turn in range(TURNS + 1)]


def test_one_row_per_turn_and_per_turn_and_agent(run):
    assert run.turns().turn.tolist() == list(range(TURNS + 1))
    accounts = run.accounts()
    assert accounts.shape[0] == (TURNS + 1) * 8
    assert accounts.groupby("turn").agent_id.apply(list).tolist() == [[f"agent_{i}" for i in range(8)]] * (TURNS + 1)


def test_accounts_agree_with_the_projection_at_every_turn(run, projections):
    accounts = run.accounts().set_index(["turn", "agent_id"])
    fees = run.events(kind="inference_fee_charged").assign(agent_id=lambda f: f.data.str["agent"],
                                                           fee=lambda f: f.data.str["fee"])
    fees_by_turn_agent = fees.groupby(["turn", "agent_id"]).fee.sum().to_dict()
    for turn, state in enumerate(projections):
        metrics = state.turns[-1] if state.turns and state.turns[-1].turn == turn else None
        owners = {owner for owner, _ in state.cores.values()}
        for agent, account in state.accounts.items():
            row = accounts.loc[(turn, agent)]
            assert (row.balance, row.staked, row.locked, row.wealth) == (
                account.balance, account.staked, account.locked, account.balance + account.staked), (turn, agent)
            assert bool(row.owns_core) == (agent in owners)
            assert row.dividends == (metrics.dividends.get(agent, 0) if metrics else 0)
            assert row.interest == (metrics.interest.get(agent, 0) if metrics else 0)
            assert row.fees_paid == fees_by_turn_agent.get((turn, agent), 0)


def test_turns_agree_with_the_projection_at_every_turn(run, projections):
    turns = run.turns().set_index("turn")
    for turn, state in enumerate(projections):
        row = turns.loc[turn]
        summary = run_summary(state)
        metrics = state.turns[-1] if state.turns and state.turns[-1].turn == turn else None
        assert (row.gini_balance, row.gini_wealth) == (summary["gini_balance"], summary["gini_wealth"]), turn
        assert row.token_supply == state.token_supply() == summary["token_supply_final"]
        assert row.events == state.events - (projections[turn - 1].events if turn else 0)
        statuses = Counter(c.status for c in state.contracts.values())
        for status in STATUSES:
            assert row[f"contracts_{status}"] == statuses.get(status, 0), (turn, status)
        if metrics is None:
            assert turn == 0 and row.fees == row.dividends == row.interest == row.errors == 0
            continue
        assert (row.fees, row.dividends, row.interest) == (metrics.fees, metrics.dividends_total, metrics.interest_total)
        assert (row.settled, row.defaulted, row.errors) == (metrics.settled_count, metrics.defaulted_count,
                                                            metrics.error_count)
        assert optional(row.block_winner) == metrics.block_winner
        assert json.loads(row.errors_by_reason) == dict(Counter(f"{e['action']}/{e['reason']}" for e in metrics.errors))


def test_the_last_turn_matches_the_runs_summary(run, projections):
    summary = run_summary(projections[-1])
    turns = run.turns()
    assert turns.fees.sum() == summary["inference_fees_total"]
    assert turns.dividends.sum() == summary["dividends_total"]
    assert turns.errors.sum() == summary["total_errors"]
    assert turns.block_winner.notna().sum() == summary["blocks_produced"]


def test_tables_agree_with_replay_json(run, log_path):
    accounts, turns = run.accounts(), run.turns().set_index("turn")
    for turn in range(TURNS + 1):
        result = CliRunner().invoke(app, ["replay", str(log_path), "--until", "turn", str(turn), "--json"])
        assert result.exit_code == 0, result.output
        replay = json.loads(result.output)
        ours = accounts[accounts.turn == turn][["agent_id", "balance", "staked", "wealth", "locked"]]
        shown = [{"agent_id": a["agent_id"], **{k: a[k] for k in ("balance", "staked", "wealth", "locked")}}
                 for a in replay["accounts"]]
        assert ours.to_dict("records") == shown
        assert turns.loc[turn].token_supply == replay["token_supply"]
        by_status = {status: len(ids) for status, ids in replay["contracts"].items()}
        assert {s: n for s in STATUSES if (n := turns.loc[turn, f"contracts_{s}"])} == by_status
        owners = {core["owner"] for core in replay["cores"]}
        assert set(accounts[(accounts.turn == turn) & accounts.owns_core].agent_id) == owners


def test_contracts_have_their_lifecycle_turns(run, projections):
    contracts = run.contracts()
    final = projections[-1].contracts
    assert contracts.contract_id.tolist() == list(final), "creation order"
    assert contracts["rank"].tolist() == list(range(len(final)))
    assert {"settled", "defaulted"} <= set(contracts.status)  # offers of new runs never lapse (R20)
    signed = run.events(kind="contract_signed")
    countersigned = signed[signed.data.str["status"] == "countersigned"].groupby("contract_id").turn.min()
    activated = run.events(kind="contract_activated").groupby("contract_id").turn.min()
    for row in contracts.itertuples():
        contract = final[row.contract_id]
        assert (row.status, optional(row.outcome), row.proposer, row.counterparty) == (
            contract.status, contract.outcome, contract.proposer, contract.counterparty)  # open ones have none
        assert row.proposed_turn == contract.created_turn
        assert optional(row.closed_turn) == contract.closed_turn
        assert row.events == len(contract.history)
        for column, expected in (("countersigned_turn", countersigned), ("activated_turn", activated)):
            value = getattr(row, column)
            assert optional(value) == expected.get(row.contract_id), (row.contract_id, column)


def optional(value):
    """Return a cell's value, or None where pandas shows it missing (NA, NaN)."""
    import pandas

    return None if pandas.isna(value) else value


def test_state_is_the_projection(run, projections):
    assert run.state(turn=17).accounts == projections[17].accounts
    assert run.state().sealed_turn == TURNS


def test_events_filter_by_kind_turns_and_actor(run):
    every = run.events()
    assert every.seq.tolist() == list(range(len(every)))
    owner = next(iter(run.state().cores.values()))[0]  # a core owner: receives dividends
    picked = run.events(kind=["dividend_paid", "interest_charged"], turns=range(10, 21), actor=owner)
    expected = every[every.kind.isin(["dividend_paid", "interest_charged"]) & every.turn.between(10, 20)
                     & (every.actor == owner)]
    assert len(picked) > 0 and picked.seq.tolist() == expected.seq.tolist()
    assert set(picked.data.str["type"]) <= {"dividend_paid", "interest_charged"}
    assert run.events(turns=5).turn.unique().tolist() == [5]


def test_an_unknown_event_kind_is_a_clear_error(run):
    with pytest.raises(ValueError, match="did you mean 'dividend_paid'"):
        run.events(kind="dividends_paid")


def test_a_file_that_is_not_a_log_is_refused(tmp_path):
    (tmp_path / "notes.db").write_text("not sqlite")
    with pytest.raises(NotALog):
        simledger.open_run(tmp_path / "notes.db")
    with pytest.raises(NotALog):
        simledger.open_run(tmp_path / "missing.db")


def test_a_first_version_log_without_per_turn_tables_is_read_by_folding_it(tmp_path):
    path = tmp_path / "v1.db"
    shutil.copy(FIXTURE, path)
    run = simledger.open_run(path)
    with Store(path) as store:
        state = load_state(store)
    assert run.turns().turn.tolist() == list(range(state.sealed_turn + 1))
    final = run.accounts().query("turn == @state.sealed_turn").set_index("agent_id").balance.to_dict()
    assert final == {agent: account.balance for agent, account in state.accounts.items()}
    assert run.verify().ok


def test_frames_without_pandas_say_how_to_install_it(run, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'simledger\[frames\]'"):
        run.turns()
