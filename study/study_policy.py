"""The study's agents: ``choose_action`` of ``run_experiments.py``, one registry entry (kind ``study``).

``StudyPolicy`` makes exactly the driver's ``random.Random`` calls in the
driver's order (all agents from one generator, asked in agent order), so a run
is a pure function of (regime, seed, agents, turns) and can be re-driven from
its seed on resume.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..events.actions import AgentInput
from ..events.config import Count, Rate
from ..projections.state import ContractStatus
from .policy import AgentView, PolicyKind, TurnView, decide_turn

Number = Annotated[float, Meta(ge=-10**9, le=10**9)]


class StudyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="study",
                  tag_field="kind"):
    """The driver's policy parameters (a regime's ``policy`` object)."""

    num_cores: Count
    core_bid_mean: Number
    core_bid_std: Number
    low_balance_threshold: Number
    mine_prob: Rate
    stake_prob: Rate
    burn_prob: Rate
    transfer_prob: Rate
    propose_prob: Rate
    study_prob: Rate
    sign_prob: Rate
    arb_sign_prob: Rate
    confirm_prob: Rate
    dispute_prob: Rate


CONTRACT_TYPES = ["service", "information_sale", "forward", "loan"]
# The statuses the contract scans compare with, looked up once: reading an enum member costs
# as much as the comparison itself, and every agent scans every contract three times a turn.
PROPOSED, COUNTERSIGNED = ContractStatus.PROPOSED, ContractStatus.COUNTERSIGNED
ACTIVE, DISPUTED = ContractStatus.ACTIVE, ContractStatus.DISPUTED
AWAITING_SIGNATURES = (PROPOSED, COUNTERSIGNED)


class StudyPolicy:
    """The study's stochastic agents; one object plays every agent of a run from one generator."""

    def __init__(self, params: StudyParams | dict[str, Any], seed: int) -> None:
        self.p = params if isinstance(params, StudyParams) else msgspec.convert(params, StudyParams)
        self.rng = random.Random(seed)

    def decide(self, view: TurnView) -> list[AgentInput]:
        """Return every agent's input for the turn (this policy playing them all)."""
        return decide_turn(lambda agent: self, view)

    def act(self, view: AgentView) -> AgentInput:
        action, speech = self.choose(view)
        return AgentInput(agent_id=view.agent_id, thinking="", action=action, speech=speech,
                          thinking_units=self.rng.randint(10, 100), output_units=self.rng.randint(20, 180))

    def choose(self, view: AgentView) -> tuple[dict, str | None]:
        """Return (action, speech) for one agent; priorities as in the driver."""
        rng, p, me = self.rng, self.p, view.agent_id
        by_agent = {a["agent_id"]: a for a in view.agents}
        balance = by_agent[me]["balance"]
        for c in view.contracts:
            if c["status"] == DISPUTED and c["arbitrator"] == me:
                ruling_for = c["proposer"] if rng.random() < 0.55 else c["counterparty"]
                return {"action": "arbitrator_ruling", "contract_id": c["contract_id"], "ruling_for": ruling_for}, None
        for c in view.contracts:
            if c["status"] not in AWAITING_SIGNATURES:
                continue
            if c["counterparty"] == me and c["status"] == PROPOSED and rng.random() < p.sign_prob:
                return {"action": "sign_contract", "contract_id": c["contract_id"], "role": "counterparty"}, None
            if c["arbitrator"] == me and rng.random() < p.arb_sign_prob:
                return {"action": "sign_contract", "contract_id": c["contract_id"], "role": "arbitrator"}, None
        for c in view.contracts:
            if c["status"] == ACTIVE and int(c["terms"]["delivery_turn"]) <= view.turn \
                    and me in (c["proposer"], c["counterparty"]):
                if rng.random() < p.confirm_prob:
                    return {"action": "confirm_delivery", "contract_id": c["contract_id"]}, None
                if rng.random() < p.dispute_prob:
                    return {"action": "dispute_delivery", "contract_id": c["contract_id"]}, None
        if view.turn == 1:
            core_id = f"core_{rng.randrange(p.num_cores)}"
            bid = max(1, int(abs(rng.gauss(p.core_bid_mean, p.core_bid_std))))
            bid = min(bid, max(1, int(balance * 0.35)))
            return {"action": "bid_core", "core_id": core_id, "amount": bid}, None
        if balance < 0:
            if rng.random() < 0.6:
                return {"action": "job"}, "taking job to cover debt"
            return {"action": "mine"}, None
        if balance < p.low_balance_threshold and rng.random() < 0.35:
            return {"action": "job"}, None
        return self.choose_routine(view, me, by_agent, balance)

    def choose_routine(self, view, me, by_agent, balance) -> tuple[dict, str | None]:
        """Return the agent's routine action: one uniform draw walks the probability ladder."""
        rng, p = self.rng, self.p
        r = rng.random()
        if r < p.mine_prob:
            return {"action": "mine"}, None
        r -= p.mine_prob
        if r < p.stake_prob and balance > 20:
            amount = min(int(balance * rng.uniform(0.05, 0.25)), max(5, int(balance) - 1))
            return {"action": "stake", "amount": max(1, amount)}, None
        r -= p.stake_prob
        if r < p.burn_prob and balance > 20:
            amount = min(int(balance * rng.uniform(0.03, 0.2)), max(3, int(balance) - 1))
            return {"action": "burn", "amount": max(1, amount)}, None
        r -= p.burn_prob
        if r < p.transfer_prob and balance > 15:
            others = [a for a in by_agent if a != me]
            to = rng.choice(others)
            amount = max(1, min(int(balance * rng.uniform(0.01, 0.08)), 30))
            return {"action": "transfer", "to": to, "amount": amount, "fee": 1}, "small transfer"
        r -= p.transfer_prob
        if r < p.propose_prob and view.turn < view.max_turns - 2 and balance > 80:
            return self.propose(view, me, by_agent), "contract proposal"
        if balance > 100 and rng.random() < p.study_prob:
            return {"action": "study"}, None
        return {"action": "mine"}, None

    def propose(self, view, me, by_agent) -> dict:
        """Return a contract proposal drawn from the driver's template."""
        rng = self.rng
        others = [a for a in by_agent if a != me]
        counterparty = rng.choice(others)
        arbitrator = rng.choice([a for a in others if a != counterparty])
        delivery = min(view.max_turns - 1, view.turn + rng.randint(2, 6))
        price = rng.randint(15, 80)
        p_lock, cp_lock, a_lock = rng.randint(10, 40), rng.randint(10, 40), rng.randint(5, 20)
        contract_type = rng.choice(CONTRACT_TYPES)
        return {
            "action": "propose_contract",
            "contract": {
                "counterparty": counterparty, "arbitrator": arbitrator, "contract_type": contract_type,
                "terms": {"description": f"auto-generated {contract_type} at turn {view.turn}", "price": price,
                          "delivery_turn": delivery, "condition": None, "pool_members": None},
                "collateral": {"proposer_locked": p_lock, "counterparty_locked": cp_lock, "arbitrator_locked": a_lock},
                "settlement_type": "attested", "penalty": rng.randint(5, 20), "arbitrator_fee": rng.randint(2, 8),
                "payload": None,
            },
        }


STUDY = PolicyKind(params=StudyParams, build=StudyPolicy, replayable=True)
