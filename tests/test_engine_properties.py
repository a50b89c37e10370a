"""Invariants under random streams of valid, invalid and junk actions (hypothesis).

For 2-8 agents and up to 40 turns of random inputs (well-formed actions with random
ids and amounts, many of which the guards must reject, plus junk), with random knobs:

* after every event, folded one at a time from the stored log, the token identity
  holds: held tokens == genesis + minted - sunk (R23);
* a settled, defaulted or expired contract never changes again: no later event
  names it, and its status, collateral, confirmations and history stay put (R21);
* after every turn, folding the stored log from genesis (no checkpoints) gives the
  live state exactly: same state digest (the seal's) and same msgpack snapshot;
* re-executing the recorded inputs through a fresh run from the same genesis
  reproduces every event hash (``ledger.reexecute``).

Contract amounts stay below 10^6 here: near-int64 prices can overflow the encoder
(see ``test_contracts.py::test_huge_contract_price_does_not_wedge_the_run``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st


from simledger.events import types as ev
from simledger.ledger.errors import BadInput
from simledger.ledger.reexecute import reexecute
from simledger.ledger.replay import load_state, positioned_events
from simledger.ledger.run import Run
from simledger.projections.reducers import apply_event
from simledger.projections.state import OPEN_STATUSES, State, snapshot_bytes, state_digest

CLOSING = (ev.ContractSettled, ev.ContractDefaulted, ev.ContractExpired)

# --- strategies: abstract actions, resolved against the state at the start of each turn -------------

DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]

small = st.integers(-3, 120)
amount = st.one_of(st.integers(1, 120), small, st.integers(-50, 3000), st.sampled_from([0, 1, 2**63 - 1, -(2**63)]))
contract_amount = st.one_of(st.integers(0, 40), st.integers(-2, 60), st.integers(0, 10**6))
selector = st.integers(0, 11)
bad_count = st.sampled_from([-1, 10**9 + 1, "lots", None, 1.5, True, 2**70])
# one input in eight has a malformed unit count; most bill little or nothing
UNIT_STRATEGIES = [
    st.just((0, 0)), st.tuples(st.integers(0, 1100), st.integers(0, 110)),
    st.tuples(st.integers(0, 300), st.integers(0, 300)), st.tuples(st.integers(0, 3000), st.integers(0, 600)),
    st.one_of(st.tuples(bad_count, st.integers(0, 200)), st.tuples(st.integers(0, 200), bad_count)),
]
UNIT_WEIGHTS = [3, 2, 1, 1, 1]
units = st.sampled_from([i for i, w in enumerate(UNIT_WEIGHTS) for _ in range(w)]).flatmap(UNIT_STRATEGIES.__getitem__)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4))
junk = st.one_of(
    st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                           max_size=3), max_leaves=6),
    st.builds(lambda name, extra: {"action": name, **extra},
              st.sampled_from(["mine", "stake", "transfer", "propose_contract", "sign_contract", "bid_core", "fly"]),
              st.dictionaries(st.sampled_from(["amount", "to", "contract_id", "role", "core_id", "contract"]),
                              json_leaf, max_size=3)),
    st.just({"action": "mine", "deep": DEEP}),  # nesting deeper than 32: recorded as a marker
)

propose = st.tuples(
    st.just("propose"), st.integers(0, 3).map(bool),  # honest (3 in 4): three distinct known parties
    selector, selector, st.integers(-1, 5), contract_amount, contract_amount, contract_amount,
    st.tuples(contract_amount, contract_amount, contract_amount),
    st.sampled_from(["service", "loan", "forward", "information_sale", "service", "gift"]),
)
# role "next": the signature the contract still needs (counterparty, then arbitrator)
sign = st.tuples(st.just("sign"), selector, st.sampled_from(["next"] * 7 + ["counterparty", "arbitrator", "judge"]),
                 st.integers(0, 4).map(bool))  # signed by the contract's own party (4 in 5)
ACTION_STRATEGIES = {
    "mine": st.just(("mine",)), "job": st.just(("job",)), "study": st.just(("study",)),
    "stake": st.tuples(st.just("stake"), amount), "unstake": st.tuples(st.just("unstake"), amount),
    "burn": st.tuples(st.just("burn"), amount),
    "transfer": st.tuples(st.just("transfer"), selector, amount, st.one_of(st.just(0), amount)),
    "bid": st.tuples(st.just("bid"), selector, amount),
    "propose": propose, "sign": sign,
    "confirm": st.tuples(st.just("confirm"), selector, st.integers(0, 3)),
    "dispute": st.tuples(st.just("dispute"), selector, st.integers(0, 3)),
    "ruling": st.tuples(st.just("ruling"), selector, st.integers(0, 3), st.integers(0, 4).map(bool)),
    "junk": st.tuples(st.just("junk"), junk),
    # the next step an open contract needs, by the party that owes it (sign, confirm, dispute, rule)
    "advance": st.tuples(st.just("advance"), selector, st.integers(0, 5)),
}
# contract actions weighted up, so that contracts get signed, confirmed, disputed and ruled
ACTION_WEIGHTS = {"propose": 3, "sign": 2, "confirm": 2, "dispute": 1, "ruling": 1, "advance": 12}
abstract_action = st.sampled_from([k for k in ACTION_STRATEGIES for _ in range(ACTION_WEIGHTS.get(k, 1))]).flatmap(
    ACTION_STRATEGIES.__getitem__)

# the agent: mostly (3 in 4) the slot's position, so most turns have one input per agent; else any agent
slot = st.tuples(st.sampled_from([None] * 36 + list(range(12))), abstract_action, units)
turn_plan = st.lists(slot, max_size=7)

knobs = st.fixed_dictionaries({
    "genesis_tokens_per_agent": st.sampled_from([0, 60, 1000, 1000]),
    "num_cores": st.integers(1, 5),
    "commons_threshold_per_turn": st.sampled_from([0, 100]),
    "base_inference_rate": st.sampled_from([0.5, 1.0, 3.0]),
    "interest_rate_per_turn": st.sampled_from([0.0, 0.01, 0.3]),
    "block_threshold": st.sampled_from([5.0, 20.0]),
    "burn_maturity_turns": st.integers(0, 3),
    "burn_decay_rate": st.sampled_from([0.0, 0.02, 0.5]),
    "unstake_delay_turns": st.integers(0, 3),
    "attested_confirmation_window": st.integers(0, 3),
    "slash_both_on_timeout": st.booleans(),
    "signing_bonus": st.sampled_from([0, 50]),
})


def pick(items: list, sel: int) -> Any:
    return items[sel % len(items)]


def resolve(plan_slot: tuple, state: State, index: int, used: set[str]) -> dict:
    """Return the concrete /turn input for the ``index``-th abstract slot, given the state at the turn's start.

    ``used`` holds the agents already given an input this turn (updated here).
    """
    agent_sel, action, (thinking, output) = plan_slot
    agents = state.agents
    agent = pick(agents, index if agent_sel is None else agent_sel)
    turn = state.sealed_turn + 1
    kind = action[0]
    body: Any
    if kind == "junk":
        body = action[1]
    elif kind in ("mine", "job", "study"):
        body = {"action": kind}
    elif kind in ("stake", "unstake", "burn"):
        body = {"action": kind, "amount": action[1]}
    elif kind == "transfer":
        body = {"action": "transfer", "to": pick([*agents, "ghost"], action[1]), "amount": action[2], "fee": action[3]}
    elif kind == "bid":
        body = {"action": "bid_core", "core_id": pick([f"core_{i}" for i in range(6)], action[1]), "amount": action[2]}
    elif kind == "propose":
        _, honest, cp, arb, offset, price, penalty, fee, (pl, cl, al), ctype = action
        if honest and len(agents) >= 3:
            others = [a for a in agents if a != agent]
            counterparty = pick(others, cp)
            arbitrator = pick([a for a in others if a != counterparty], arb)
            offset, ctype = max(offset, 1) + 2, ctype if ctype != "gift" else "service"
            price, penalty, fee, pl, cl, al = (abs(v) % 60 for v in (price, penalty, fee, pl, cl, al))
        else:
            counterparty, arbitrator = pick([*agents, "ghost"], cp), pick(agents, arb)
        body = {"action": "propose_contract", "contract": {
            "counterparty": counterparty, "arbitrator": arbitrator, "contract_type": ctype,
            "terms": {"description": "x", "price": price, "delivery_turn": turn + offset},
            "collateral": {"proposer_locked": pl, "counterparty_locked": cl, "arbitrator_locked": al},
            "penalty": penalty, "arbitrator_fee": fee}}
    else:
        open_ids = [cid for cid, c in state.contracts.items() if c.status in OPEN_STATUSES]
        if kind == "advance":
            agent, body = advance(state, open_ids, action[1], action[2], used) or new_contract(state, agent,
                                                                                              action[2])
            used.add(agent)
            return {"agent_id": agent, "action": body, "thinking_units": thinking, "output_units": output}
        any_ids = [f"contract_{i}" for i in range(1, len(state.contracts) + 2)]  # and one not made yet
        # mostly an open contract (selectors 0-8), else any id, closed or unknown (9-11)
        cid = pick(open_ids, action[1]) if open_ids and action[1] < 9 else pick(any_ids, action[1])
        contract = state.contracts.get(cid)
        parties = list(contract.parties()) if contract else agents[:3]
        if kind == "sign":
            role, by_party = action[2], action[3]
            if role == "next":
                role = "counterparty" if contract is None or "counterparty" not in contract.signed_by else "arbitrator"
            if by_party and contract:
                agent = contract.counterparty if role == "counterparty" else contract.arbitrator
            body = {"action": "sign_contract", "contract_id": cid, "role": role}
        elif kind in ("confirm", "dispute"):
            agent = pick([*parties, agent], action[2])
            body = {"action": f"{kind}_delivery", "contract_id": cid}
        else:
            if action[3]:
                agent = parties[-1]
            body = {"action": "arbitrator_ruling", "contract_id": cid, "ruling_for": pick([*parties, agent], action[2])}
    used.add(agent)
    return {"agent_id": agent, "action": body, "thinking_units": thinking, "output_units": output}


def resolve_turn(slots: list[tuple], state: State) -> list[dict]:
    """Return a turn's concrete inputs."""
    used: set[str] = set()
    return [resolve(s, state, i, used) for i, s in enumerate(slots)]


def advance_step(contract, variant: int) -> tuple[str, dict]:
    """Return (agent, action) for the step an open contract needs next, by the party that owes it."""
    body: dict = {"contract_id": contract.contract_id}
    if contract.status in ("proposed", "countersigned"):
        role = "counterparty" if "counterparty" not in contract.signed_by else "arbitrator"
        agent = contract.counterparty if role == "counterparty" else contract.arbitrator
        body.update(action="sign_contract", role=role)
    elif contract.status == "active" and variant == 0:
        agent = (contract.proposer, contract.counterparty)[variant % 2]
        body.update(action="dispute_delivery")
    elif contract.status == "active":
        waiting = [p for p in contract.parties() if p not in contract.confirmed_by] or list(contract.parties())
        agent = pick(waiting, variant)
        body.update(action="confirm_delivery")
    else:
        agent = contract.arbitrator
        body.update(action="arbitrator_ruling", ruling_for=(contract.proposer, contract.counterparty)[variant % 2])
    return agent, body


def new_contract(state: State, agent: str, variant: int) -> tuple[str, dict]:
    """Return a well-formed proposal by ``agent`` (a mine when there are fewer than three agents)."""
    others = [a for a in state.agents if a != agent]
    if len(others) < 2:
        return agent, {"action": "mine"}
    counterparty, arbitrator = pick(others, variant), pick(others, variant + 1)
    offer = {"counterparty": counterparty, "arbitrator": arbitrator, "contract_type": "service",
             "terms": {"price": 10 + variant, "delivery_turn": state.sealed_turn + 4 + variant % 3},
             "collateral": {"proposer_locked": variant, "counterparty_locked": 3, "arbitrator_locked": variant % 2},
             "penalty": 4, "arbitrator_fee": 2}
    return agent, {"action": "propose_contract", "contract": offer}


def advance(state: State, open_ids: list[str], sel: int, variant: int, used: set[str]) -> tuple[str, dict] | None:
    """Return the next step of the first open contract (from ``sel`` on) whose party has not acted this turn."""
    for i in range(len(open_ids)):
        agent, body = advance_step(state.contracts[pick(open_ids, sel + i)], variant)
        if agent not in used:
            return agent, body
    return None


# --- the checks -----------------------------------------------------------------------------------------------


def frozen(contract) -> tuple:
    return (contract.status, dict(contract.locked), list(contract.confirmed_by), contract.ruling_for,
            contract.disputed_by, dict(contract.signed_by), list(contract.history))


class Checker:
    """Folds the stored log one event at a time beside the live run, checking the invariants."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.shadow = State()
        self.closed: dict[str, tuple] = {}
        self.next_seq = 0
        self.events = 0

    def fold_new_events(self) -> None:
        for seq, turn, event in positioned_events(self.run.store, start_seq=self.next_seq):
            cid = getattr(event, "contract_id", None)
            assert cid not in self.closed, f"seq {seq}: {ev.kind_of(event)} about closed {cid}"
            apply_event(self.shadow, event, seq, turn)
            assert self.shadow.held_tokens() == self.shadow.expected_tokens(), f"identity broken at seq {seq}"
            if isinstance(event, CLOSING):
                self.closed[cid] = frozen(self.shadow.contracts[cid])
            self.next_seq = seq + 1
            self.events += 1

    def check_turn(self) -> None:
        self.fold_new_events()
        live = self.run.state
        replayed = load_state(self.run.store, use_checkpoints=False)
        digest = state_digest(live)
        assert state_digest(replayed) == digest == state_digest(self.shadow) == live.last_seal["state_digest"]
        assert snapshot_bytes(replayed) == snapshot_bytes(live) == snapshot_bytes(self.shadow)
        for cid, snapshot in self.closed.items():
            assert frozen(live.contracts[cid]) == snapshot, cid


def play_stream(n_agents: int, seed: int, config: dict, plan: list[list[tuple]], ghost_turn: int | None) -> None:
    """Play ``plan`` on a fresh run, checking every invariant; then re-execute the log."""
    with tempfile.TemporaryDirectory(prefix="simledger-prop-") as tmp:
        path = Path(tmp) / "run.db"
        agents = [f"ag{i}" for i in range(n_agents)]
        run = Run.create(path, agents=agents, seed=seed, config={"num_agents": n_agents, **config})
        checker = Checker(run)
        try:
            checker.check_turn()  # genesis and its seal
            for turn_index, turn_slots in enumerate(plan):
                # at most one input more than there are agents: duplicates happen, but do not dominate
                inputs = resolve_turn(turn_slots[:n_agents + 1], run.state)
                if turn_index == ghost_turn:
                    head = run.store.head()
                    with pytest.raises(BadInput):
                        run.step([*inputs, {"agent_id": "ghost", "action": {"action": "mine"}}])
                    assert run.store.head() == head  # refused before anything was recorded
                run.step(inputs)
                checker.check_turn()
            assert snapshot_bytes(load_state(run.store)) == snapshot_bytes(run.state)  # with checkpoints too
            assert checker.events == run.state.events
            for outcome in sorted({c.outcome or c.status for c in run.state.contracts.values()}):
                event(f"a contract ended {outcome}")  # coverage, see --hypothesis-show-statistics
        finally:
            run.close()
        result = reexecute(path)
        assert result.ok, result.message
        assert result.events == checker.events


PROPERTY_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=50, **PROPERTY_SETTINGS)
@given(n_agents=st.integers(2, 8), seed=st.integers(0, 2**32), config=knobs,
       plan=st.lists(turn_plan, min_size=1, max_size=12), ghost=st.one_of(st.none(), st.integers(0, 11)))
def test_invariants_hold_on_random_streams(n_agents, seed, config, plan, ghost):
    play_stream(n_agents, seed, config, plan, ghost)


@settings(max_examples=25, **PROPERTY_SETTINGS)
@given(n_agents=st.integers(6, 8), seed=st.integers(0, 2**32), config=knobs,
       plan=st.lists(turn_plan.filter(bool), min_size=40, max_size=40))
def test_invariants_hold_on_forty_turn_streams(n_agents, seed, config, plan):
    play_stream(n_agents, seed, config, plan, None)


def test_contract_paths_are_exercised_by_the_strategy():
    """Guard against a strategy that never gets past the guards: a fixed stream must reach each outcome."""
    plan = []
    for index, offset in enumerate((6, 4, 2)):  # proposed at turns 1, 3, 5: all due for delivery at turn 7
        plan.append([(0, ("propose", False, 1, 2, offset, 10, 5, 3, (2, 2, 2), "service"), (0, 0))])
        plan.append([(1, ("sign", index, "counterparty", True), (0, 0)),
                     (2, ("sign", index, "arbitrator", True), (0, 0))])
    # contract_1 confirmed by both principals, contract_2 disputed and ruled, contract_3 left to default
    plan.append([(0, ("confirm", 0, 0), (0, 0)), (1, ("confirm", 0, 1), (0, 0)), (2, ("confirm", 0, 2), (0, 0))])
    plan.append([(1, ("dispute", 0, 1), (0, 0)), (2, ("ruling", 0, 1, True), (0, 0))])  # contract_2: first open
    plan.extend([[]] * 6)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run.create(Path(tmp) / "r.db", agents=["ag0", "ag1", "ag2"], seed=1, config={"num_agents": 3})
        for turn_slots in plan:
            run.step(resolve_turn(turn_slots, run.state))
        outcomes = {cid: (c.status, c.outcome) for cid, c in run.state.contracts.items()}
        run.close()
    assert outcomes == {"contract_1": ("settled", "confirmed"),
                        "contract_2": ("settled", "ruled_for_counterparty"),
                        "contract_3": ("defaulted", "confirmation_window_closed")}
