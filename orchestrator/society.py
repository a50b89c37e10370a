"""A run's players when some agents are language models: the policy registry's society, plus recorded calls.

The genesis identity's ``policies`` names every agent's spec (``{"kind": "llm",
...}`` or any registry kind, e.g. the study's heuristic), so a log alone says
how each agent was played. Registry policies act one agent at a time from the
study's view; ``llm`` agents with equal specs share one ``LLMPolicy`` that asks
the model for all of them at once. A turn is decided from an observation alone,
so the same decisions come out in-process, over HTTP and in re-execution.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from ..events import types as ev
from ..events.actions import AgentInput
from ..events.config import InvalidConfig
from ..ledger.errors import BadInput, RunStateError
from ..study.policies import Society, load_policy
from ..study.policy import TurnView
from .calls import CallRecord, CallRequest
from .llm_policy import LLMPolicy, LLMSettings
from .transport import Transport


class TurnDecision(msgspec.Struct, frozen=True, kw_only=True):
    inputs: list[AgentInput]  # agent order
    calls: list[ev.ModelCalled]  # agent order, then attempt order
    blobs: dict[str, bytes]


def society_identity(agents: list[str], llm_agents: list[str], settings: LLMSettings,
                     others: dict[str, Any]) -> dict[str, Any]:
    """Return the genesis ``policies``: ``settings`` for ``llm_agents``, the ``others`` spec for the rest."""
    unknown = sorted(set(llm_agents) - set(agents))
    if unknown:
        raise BadInput(f"no agent {unknown[0]!r} in this run (agents are {agents[0]} .. {agents[-1]})")
    llm, rest = msgspec.to_builtins(settings), msgspec.to_builtins(load_policy(others))
    return {"policies": {a: llm if a in llm_agents else rest for a in agents}}


def is_society_run(identity: dict[str, Any]) -> bool:
    """Return whether a genesis names language-model agents (runs the orchestrator plays)."""
    policies = identity.get("policies")
    return isinstance(policies, dict) and any(isinstance(s, dict) and s.get("kind") == "llm" for s in policies.values())


def view_of(observation: dict[str, Any]) -> TurnView:
    """Return the registry policies' view of an observation (balances, open contracts in creation order)."""
    return TurnView(turn=observation["turn"], max_turns=observation["max_turns"],
                    agents=[{"agent_id": a["agent_id"], "balance": a["balance"], "staked": a["staked"]}
                            for a in observation["agents"]],
                    contracts=observation["contracts"])


class Players:
    """Every agent's policy; decides a whole turn, inputs in agent order."""

    def __init__(self, society: Society, concurrency: int = 4) -> None:
        self.society = society
        self.models: dict[int, tuple[LLMPolicy, list[str]]] = {}  # one entry per LLM policy object, agents in order
        for agent, player in society.players.items():
            if isinstance(player, LLMPolicy):
                player.concurrency = max(1, concurrency)
                self.models.setdefault(id(player), (player, []))[1].append(agent)

    @classmethod
    def from_identity(cls, identity: dict[str, Any], *, seed: int, agents: list[str],
                      concurrency: int = 4) -> "Players":
        specs = identity.get("policies")
        if not isinstance(specs, dict) or list(specs) != list(agents):
            raise RunStateError("the genesis does not name every agent's policy, in agent order")
        try:
            return cls(Society(specs, seed), concurrency)
        except InvalidConfig as err:
            raise RunStateError(f"the genesis names an invalid policy: {err}") from None

    def decide(self, observation: dict[str, Any], transport: Transport | None,
               on_call: Callable[[CallRequest, CallRecord], None] | None = None) -> TurnDecision:
        """Return the turn's inputs and the model calls behind them."""
        view = view_of(observation)
        by_agent: dict[str, AgentInput] = {}
        calls: dict[str, list[ev.ModelCalled]] = {}
        blobs: dict[str, bytes] = {}
        for agent, player in self.society.players.items():
            if not isinstance(player, LLMPolicy):
                by_agent[agent] = player.act(view.seen_by(agent))
        for policy, members in self.models.values():
            for agent, decision in zip(members, policy.decide(observation, members, transport, on_call)):
                by_agent[agent], calls[agent] = decision.input, decision.calls
                blobs.update(decision.blobs)
        order = list(self.society.players)
        return TurnDecision(inputs=[by_agent[a] for a in order],
                            calls=[call for a in order for call in calls.get(a, [])], blobs=blobs)
