"""Hostile agent input: whatever an agent sends, the engine records it and refuses it cleanly.

Hypothesis drives `Run.step` with arbitrary action payloads for up to 8 agents
over several turns: wrong types, huge and negative numbers, unknown ids,
self-dealing contracts (proposer = counterparty = arbitrator), delivery turns
in the past, nested junk, huge strings, NaN and infinities. No exception may
escape (except BadInput for a request that names no agent of the run, which
must leave the log untouched), and after every turn:

* every ``action_submitted`` has either its accepted effect or exactly one
  ``action_rejected`` whose ``input_seq`` is its seq, never both, never neither;
* tokens are accounted for: ``held_tokens() == expected_tokens()``;
* a settled, defaulted or expired contract never changes again;
* the fold of the stored log equals the live state (digest and snapshot bytes);
* and the log verifies (checked on the final log, which contains every turn).
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simledger.events import types as ev
from simledger.events.actions import ACTION_NAMES
from simledger.ledger.errors import BadInput
from simledger.ledger.replay import load_state, positioned_events
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.verify import verify_log
from simledger.projections.state import snapshot_bytes, state_digest
from simledger.study.regimes import engine_config, load_regimes

CLOSED = ("settled", "defaulted", "expired")
RUNS = itertools.count()

# --- strategies --------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 50, 10**6, 2**63 - 1, -(2**63), 2**63, 2**64, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.booleans(),
)
HUGE_TEXT = st.sampled_from(["x" * 100_000, "\u0000" * 1000, "\ud7ff" * 5000, "💥" * 20_000])
JUNK = st.recursive(
    st.one_of(st.none(), NUMBERS, st.text(max_size=30), HUGE_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def agent_or_unknown(agents: list[str]):
    return st.one_of(st.sampled_from(agents), st.sampled_from(["engine", "", "agent_999", "nobody", "agent_0 "]), JUNK)


def contract_ids():
    return st.one_of(st.sampled_from([f"contract_{i}" for i in range(1, 8)]),
                     st.sampled_from(["contract_0", "contract_-1", "contract_999", ""]), JUNK)


def offers(agents: list[str], proposer: str):
    """Contract offers, often self-dealing, often with past or absurd delivery turns and amounts."""
    party = st.one_of(st.just(proposer), agent_or_unknown(agents))
    amount = st.one_of(st.integers(min_value=-5, max_value=300), NUMBERS)
    terms = st.fixed_dictionaries(
        {"price": amount, "delivery_turn": st.one_of(st.integers(min_value=-3, max_value=15), NUMBERS)},
        optional={"description": st.one_of(st.text(max_size=20), HUGE_TEXT, JUNK), "condition": JUNK,
                  "pool_members": JUNK},
    )
    collateral = st.fixed_dictionaries({}, optional={
        "proposer_locked": amount, "counterparty_locked": amount, "arbitrator_locked": amount})
    return st.fixed_dictionaries(
        {"counterparty": party, "arbitrator": party,
         "contract_type": st.one_of(st.sampled_from(["service", "information_sale", "forward", "loan"]), JUNK),
         "terms": st.one_of(terms, JUNK)},
        optional={"collateral": st.one_of(collateral, JUNK), "penalty": amount, "arbitrator_fee": amount,
                  "settlement_type": st.one_of(st.just("attested"), JUNK), "payload": JUNK, "extra_field": JUNK},
    )


def get_contract_moves(state, agent: str) -> list[dict]:
    """Return the contract actions that make sense for ``agent`` now: sign, confirm, dispute, rule."""
    moves = []
    for cid, c in state.contracts.items():
        if c.status == "proposed" and agent == c.counterparty:
            moves.append({"action": "sign_contract", "contract_id": cid, "role": "counterparty"})
        elif c.status == "countersigned" and agent == c.arbitrator:
            moves.append({"action": "sign_contract", "contract_id": cid, "role": "arbitrator"})
        elif c.status == "active" and agent in c.parties():
            moves += [{"action": "confirm_delivery", "contract_id": cid}] * 4
            if agent != c.arbitrator:
                moves.append({"action": "dispute_delivery", "contract_id": cid})
        elif c.status == "disputed" and agent == c.arbitrator:
            moves += [{"action": "arbitrator_ruling", "contract_id": cid, "ruling_for": who}
                      for who in (c.proposer, c.counterparty)]
    return moves


def plausible_actions(agents: list[str], agent: str, turn: int, state):
    """Actions an honest agent might send, so that contracts open, progress and close amid the junk."""
    others = [a for a in agents if a != agent]
    small = st.integers(min_value=1, max_value=120)
    offer = st.builds(
        lambda pair, kind, price, due, locks: {
            "counterparty": pair[0], "arbitrator": pair[1], "contract_type": kind,
            "terms": {"price": price, "delivery_turn": turn + due},
            "collateral": {"proposer_locked": locks[0], "counterparty_locked": locks[1], "arbitrator_locked": locks[2]},
            "penalty": locks[0], "arbitrator_fee": locks[2]},
        st.permutations(others).map(lambda p: (p[0], p[1])),
        st.sampled_from(["service", "information_sale", "forward", "loan"]), small, st.integers(2, 6),
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 10)))
    simple = st.one_of(
        st.fixed_dictionaries({"action": st.sampled_from(["mine", "job", "study"])}),
        st.fixed_dictionaries({"action": st.sampled_from(["stake", "unstake", "burn"]), "amount": small}),
        st.fixed_dictionaries({"action": st.just("transfer"), "to": st.sampled_from(others), "amount": small}),
        st.fixed_dictionaries({"action": st.just("propose_contract"), "contract": offer}),
    )
    moves = get_contract_moves(state, agent)
    return st.one_of(simple, *[st.sampled_from(moves)] * 3) if moves else simple


def get_scripted_move(state, agent: str, turn: int, trio: tuple[str, str, str]) -> dict:
    """Return an honest agent's move: contracts among the first three agents that settle, default, lapse or go to ruling."""
    for cid, c in state.contracts.items():
        number = int(cid.rsplit("_", 1)[1])
        due = c.offer.terms.delivery_turn
        if c.status == "proposed" and agent == c.counterparty and number % 5 != 4:  # every fifth offer lapses
            return {"action": "sign_contract", "contract_id": cid, "role": "counterparty"}
        if c.status == "countersigned" and agent == c.arbitrator:
            return {"action": "sign_contract", "contract_id": cid, "role": "arbitrator"}
        if c.status == "disputed" and agent == c.arbitrator:
            return {"action": "arbitrator_ruling", "contract_id": cid, "ruling_for": c.proposer}
        if c.status == "active" and turn >= due and agent in c.parties():
            if number % 3 == 0 and agent == c.proposer:
                return {"action": "dispute_delivery", "contract_id": cid}
            if number % 3 == 1 and agent not in c.confirmed_by:
                return {"action": "confirm_delivery", "contract_id": cid}
            # number % 3 == 2: nobody confirms, the contract defaults at its deadline
    if agent == trio[0] and turn % 2 == 1:
        offer = {"counterparty": trio[1], "arbitrator": trio[2], "contract_type": "service",
                 "terms": {"price": 12, "delivery_turn": turn + 3},
                 "collateral": {"proposer_locked": 5, "counterparty_locked": 5, "arbitrator_locked": 2},
                 "penalty": 4, "arbitrator_fee": 2}
        return {"action": "propose_contract", "contract": offer}
    return {"action": "mine"}


def hostile_actions(agents: list[str], agent: str):
    """Subtly wrong or plainly junk payloads."""
    amount = st.one_of(st.integers(min_value=-5, max_value=400), NUMBERS, JUNK)
    shaped = st.one_of(
        st.fixed_dictionaries({"action": st.sampled_from(["stake", "unstake", "burn"]), "amount": amount}),
        st.fixed_dictionaries({"action": st.just("transfer"), "to": agent_or_unknown(agents), "amount": amount},
                              optional={"fee": amount}),
        st.fixed_dictionaries({"action": st.just("bid_core"), "amount": amount,
                               "core_id": st.one_of(st.sampled_from(["core_0", "core_1", "core_99"]), JUNK)}),
        st.fixed_dictionaries({"action": st.just("propose_contract"), "contract": st.one_of(offers(agents, agent),
                                                                                          JUNK)}),
        st.fixed_dictionaries({"action": st.just("sign_contract"), "contract_id": contract_ids(),
                               "role": st.one_of(st.sampled_from(["counterparty", "arbitrator", "proposer"]), JUNK)}),
        st.fixed_dictionaries({"action": st.sampled_from(["confirm_delivery", "dispute_delivery"]),
                               "contract_id": contract_ids()}),
        st.fixed_dictionaries({"action": st.just("arbitrator_ruling"), "contract_id": contract_ids(),
                               "ruling_for": agent_or_unknown(agents)}),
    )
    junk_named = st.fixed_dictionaries({"action": st.one_of(st.sampled_from(ACTION_NAMES), JUNK)},
                                       optional={"amount": JUNK, "to": JUNK, "contract_id": JUNK, "contract": JUNK})
    return st.one_of(shaped, shaped, junk_named, JUNK)


@st.composite
def turn_inputs(draw, agents: list[str], turn: int, state) -> list[dict]:
    """One turn's inputs: a subset of agents (some twice), each with an action and possibly junk fields."""
    chosen = draw(st.lists(st.sampled_from(agents), max_size=len(agents) + 2))
    inputs = []
    for agent in chosen:
        hostile = draw(st.integers(0, 2)) == 0
        action = draw(hostile_actions(agents, agent) if hostile else plausible_actions(agents, agent, turn, state))
        item = {"agent_id": agent, "action": action}
        if draw(st.booleans()):
            item["thinking_units"] = draw(st.one_of(st.integers(min_value=0, max_value=5000), NUMBERS, JUNK))
            item["output_units"] = draw(st.one_of(st.integers(min_value=0, max_value=5000), NUMBERS, JUNK))
        if draw(st.integers(0, 9)) == 0:
            item["thinking"] = draw(st.one_of(HUGE_TEXT, JUNK))
            item["speech"] = draw(JUNK)
        inputs.append(item)
    return inputs


# --- checks -------------------------------------------------------------------------------------


def get_closed_contracts(state) -> dict[str, tuple]:
    """Return everything about each closed contract that must never change again."""
    return {cid: (c.status, c.outcome, c.closed_turn, dict(c.locked), dict(c.signed_by), list(c.confirmed_by),
                  c.disputed_by, c.ruling_for, list(c.history))
            for cid, c in state.contracts.items() if c.status in CLOSED}


def check_turn_invariants(run: Run, closed_before: dict[str, tuple]) -> dict[str, tuple]:
    """Check the invariants after one turn; return the closed contracts now."""
    state = run.state
    assert state.held_tokens() == state.expected_tokens(), "token accounting identity broken"
    closed_now = get_closed_contracts(state)
    for cid, frozen in closed_before.items():
        assert closed_now.get(cid) == frozen, f"closed contract {cid} changed after closing"
    with Store(run.store.path) as reader:
        folded = load_state(reader, use_checkpoints=False)
        restored = load_state(reader)  # from the newest verified checkpoint, when there is one
    assert state_digest(folded) == state_digest(state) == state_digest(restored)
    assert snapshot_bytes(folded) == snapshot_bytes(state) == snapshot_bytes(restored)
    return closed_now


def check_every_input_is_answered(path) -> tuple[int, int]:
    """Check each action_submitted has its effect or exactly one rejection (never both); return the counts."""
    submitted, answers = [], {}
    with Store(path) as store:
        for seq, _, event in positioned_events(store):
            if isinstance(event, ev.ActionSubmitted):
                submitted.append(seq)
            elif (input_seq := getattr(event, "input_seq", None)) is not None:
                answers.setdefault(input_seq, []).append(ev.kind_of(event))
    rejected = 0
    for seq in submitted:
        kinds = answers.pop(seq, [])
        assert kinds, f"input at seq {seq} has neither an effect nor a rejection"
        if "action_rejected" in kinds:
            assert kinds == ["action_rejected"], f"input at seq {seq} was both rejected and applied: {kinds}"
            rejected += 1
    assert not answers, f"effects or rejections point at seqs that are not inputs: {sorted(answers)}"
    return len(submitted), rejected


# --- the property ---------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), n_agents=st.integers(min_value=3, max_value=8), turns=st.integers(min_value=4, max_value=12))
def test_arbitrary_agent_input_is_recorded_refused_cleanly_and_keeps_every_invariant(tmp_path, data, n_agents, turns):
    agents = [f"agent_{i}" for i in range(n_agents)]
    trio = (agents[0], agents[1], agents[2])
    honest = data.draw(st.integers(0, 3), label="honest trio") != 0
    path = tmp_path / f"hostile_{next(RUNS)}.db"
    run = Run.create(path, agents=agents, seed=data.draw(st.integers(0, 2**32), label="seed"),
                     config=engine_config(load_regimes()["baseline"], n_agents))
    try:
        closed = check_turn_invariants(run, {})
        for _ in range(turns):
            turn = run.next_turn
            inputs = data.draw(turn_inputs(agents, turn, run.state), label=f"turn {turn}")
            if honest:  # the first three agents play straight first; their drawn inputs become duplicates
                inputs = [{"agent_id": a, "action": get_scripted_move(run.state, a, turn, trio)} for a in trio] + inputs
            if data.draw(st.integers(0, 14), label="bad request") == 0:
                check_bad_request_changes_nothing(run, inputs, data.draw(st.sampled_from(["agent", "signature"])))
            run.step(inputs)
            closed = check_turn_invariants(run, closed)
    finally:
        run.close()
    check_every_input_is_answered(path)
    result = verify_log(path)
    assert result.ok and result.turns == turns, result.message


def check_bad_request_changes_nothing(run: Run, inputs: list[dict], kind: str) -> None:
    """A request naming no agent of the run, or with a forged signature, is refused whole: nothing is written."""
    bad = {"agent_id": "mallory", "action": {"action": "mine"}} if kind == "agent" else \
        {"agent_id": run.state.agents[0], "action": {"action": "mine"}, "signature": "ab" * 64}
    head, digest = run.head_hash, state_digest(run.state)
    with pytest.raises(BadInput):
        run.step([*inputs, bad])
    assert run.head_hash == head and state_digest(run.state) == digest
    with Store(run.store.path) as reader:
        assert reader.head()[1] == head


# --- targeted cases (each changes one thing) ------------------------------------------------------


@pytest.fixture
def small_run(tmp_path):
    agents = [f"agent_{i}" for i in range(3)]
    run = Run.create(tmp_path / "r.db", agents=agents, seed=5, config=engine_config(load_regimes()["baseline"], 3))
    yield run
    run.close()


def rejections(run: Run) -> list[ev.ActionRejected]:
    with Store(run.store.path) as store:
        return [e for _, _, e in positioned_events(store) if isinstance(e, ev.ActionRejected)]


def test_self_dealing_contract_is_rejected(small_run):
    offer = {"counterparty": "agent_0", "arbitrator": "agent_0", "contract_type": "service",
             "terms": {"price": 10, "delivery_turn": 5}}
    small_run.step([{"agent_id": "agent_0", "action": {"action": "propose_contract", "contract": offer}}])
    (rejected,) = rejections(small_run)
    assert rejected.agent == "agent_0" and rejected.action == "propose_contract"
    assert not small_run.state.contracts


def test_delivery_turn_in_the_past_is_rejected(small_run):
    small_run.step([])
    small_run.step([])
    offer = {"counterparty": "agent_1", "arbitrator": "agent_2", "contract_type": "service",
             "terms": {"price": 10, "delivery_turn": 1}}
    small_run.step([{"agent_id": "agent_0", "action": {"action": "propose_contract", "contract": offer}}])
    (rejected,) = rejections(small_run)
    assert rejected.action == "propose_contract" and not small_run.state.contracts


@pytest.mark.parametrize("amount", [-1, 0, 2**63 - 1, 2**64, -(2**63), 1.5, math.nan, "10", None, [1], True])
def test_absurd_stake_amount_is_rejected_and_moves_nothing(small_run, amount):
    before = {a: (acc.balance, acc.staked) for a, acc in small_run.state.accounts.items()}
    small_run.step([{"agent_id": "agent_1", "action": {"action": "stake", "amount": amount}}])
    (rejected,) = rejections(small_run)
    assert rejected.agent == "agent_1" and rejected.action == "stake"
    assert small_run.state.accounts["agent_1"].staked == before["agent_1"][1]
    assert small_run.state.held_tokens() == small_run.state.expected_tokens()


def test_scripted_contracts_reach_every_ending_and_never_change_after_it(tmp_path):
    agents = [f"agent_{i}" for i in range(5)]
    trio = (agents[0], agents[1], agents[2])
    run = Run.create(tmp_path / "scripted.db", agents=agents, seed=17,
                     config=engine_config(load_regimes()["baseline"], 5))
    junk = [{"action": "transfer", "to": "agent_0", "amount": -(2**63)}, {"action": "stake", "amount": math.inf},
            {"action": "sign_contract", "contract_id": "contract_1", "role": "arbitrator"},
            {"action": "confirm_delivery", "contract_id": "contract_2"}, {"nested": [[[{"x": math.nan}]]]},
            {"action": "arbitrator_ruling", "contract_id": "contract_3", "ruling_for": "agent_4"}]
    closed: dict[str, tuple] = check_turn_invariants(run, {})
    try:
        for turn in range(1, 19):
            inputs = [{"agent_id": a, "action": get_scripted_move(run.state, a, turn, trio)} for a in trio]
            inputs += [{"agent_id": agents[3 + turn % 2], "action": junk[turn % len(junk)]}]
            run.step(inputs)
            closed = check_turn_invariants(run, closed)
    finally:
        run.close()
    endings = {c.outcome if c.status == "settled" else c.status for c in run.state.contracts.values()}
    assert {"confirmed", "ruled_for_proposer", "defaulted"} <= endings, endings
    submitted, rejected = check_every_input_is_answered(tmp_path / "scripted.db")
    assert 0 < rejected < submitted
    assert verify_log(tmp_path / "scripted.db").ok
