"""The policy interface: what an agent sees at the start of a turn, and what it answers.

A policy is given an ``AgentView`` (the start-of-turn state the study's agents
saw, plus which agent it is playing) and returns that agent's ``AgentInput``
for the turn. Every agent of a run is played by some policy; one policy object
may play several agents (the study policy plays all of them from one random
stream, asked in agent order, as the driver did). ``study.policies`` holds the
registry of policy kinds; docs/architecture.md says how to add one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Protocol

import msgspec

from ..events.actions import AgentInput
from ..ledger.readmodels import contract_data
from ..projections.state import Contract, State


@dataclass(frozen=True)
class TurnView:
    """What every agent sees at the start of a turn (the driver's ``/state`` and contracts table)."""

    turn: int
    max_turns: int
    agents: list[dict[str, Any]]  # [{"agent_id", "balance", "staked"}] in agent order
    contracts: list[dict[str, Any]]  # contract data + "status", in creation order

    @classmethod
    def from_state(cls, state: State, turn: int, max_turns: int,
                   offers: dict[str, tuple[Any, dict[str, Any]]] | None = None) -> "TurnView":
        """Return the start-of-turn view of ``state``.

        ``offers`` is a memo a caller may keep across a run's turns: contract id -> (offer, its data).
        A contract's offer never changes once proposed, and converting every offer every turn
        was a twentieth of an in-memory run; a contract whose offer is not the memo's very object
        is converted afresh. A view is read, not written: its contracts' nested data is shared
        between the turns' views.
        """
        agents = [{"agent_id": a, "balance": state.accounts[a].balance, "staked": state.accounts[a].staked}
                  for a in state.agents]
        offers = {} if offers is None else offers
        contracts = [{**get_contract_data(offers, c), "status": c.status} for c in state.contracts.values()]
        return cls(turn=turn, max_turns=max_turns, agents=agents, contracts=contracts)

    def seen_by(self, agent_id: str) -> "AgentView":
        """Return this view as the agent ``agent_id`` receives it."""
        return AgentView(**{name: getattr(self, name) for name in SHARED_FIELDS}, agent_id=agent_id)


def get_contract_data(offers: dict[str, tuple[Any, dict[str, Any]]], contract: Contract) -> dict[str, Any]:
    """Return ``contract_data(contract)``, from the memo ``offers`` when it holds this very offer (else stored there)."""
    known = offers.get(contract.contract_id)
    if known is None or known[0] is not contract.offer:
        known = offers[contract.contract_id] = (contract.offer, contract_data(contract))
    return known[1]


SHARED_FIELDS = tuple(f.name for f in fields(TurnView))
"""The fields every agent's view shares (``dataclasses.fields`` is too slow to ask once per agent per turn)."""


@dataclass(frozen=True)
class AgentView(TurnView):
    """A turn's view as one agent receives it: the shared view plus who it is."""

    agent_id: str = ""


class Policy(Protocol):
    """Plays one or more agents: one input per agent per turn."""

    def act(self, view: AgentView) -> AgentInput:
        """Return the input of ``view.agent_id`` for ``view.turn``."""


@dataclass(frozen=True)
class PolicyKind:
    """One entry of the policy registry."""

    params: type[msgspec.Struct]
    """The parameters: a Struct tagged with the kind (``tag_field="kind"``), validated once when loaded."""
    build: Callable[[Any, int], Policy]
    """``build(params, seed)``: the policy object shared by every agent these parameters play in a run."""
    replayable: bool
    """Same seed and same views give the same inputs: a resumed run re-drives it from the seed and checks
    each recorded input. A policy that is not (a person, a language model) is resumed from its recorded
    inputs instead, and only acts on the turns still to play."""


def decide_turn(player_of: Callable[[str], Policy], view: TurnView) -> list[AgentInput]:
    """Return every agent's input for the turn, asking each agent's policy in agent order."""
    return [player_of(a["agent_id"]).act(view.seen_by(a["agent_id"])) for a in view.agents]
